#include <orchestrix/crypto/codec.hpp>

#include "support/catch.hpp"
#include "support/crypto_events.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace crypto_domain;
using orchestrix::InMemoryKeyStore;
using orchestrix::Metadata;
using orchestrix::SerializedEvent;
using orchestrix::Uuid;
using Codec = orchestrix::ShreddingCodec<CryptoEvent, InMemoryKeyStore>;

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

Metadata metadata_with(const Uuid& id) {
    Metadata metadata;
    metadata.event_id = id;
    return metadata;
}

Metadata fresh_metadata() { return metadata_with(Uuid::generate()); }

CryptoEvent read_back(const Codec& codec, const SerializedEvent& row) {
    return codec.deserialize_event(row.type, row.schema_version, row.payload);
}

// The sealed value at `pointer` of a stored payload, as JSON.
nlohmann::json sealed_at(const SerializedEvent& row, const std::string& pointer) {
    return nlohmann::json::parse(row.payload).at(nlohmann::json::json_pointer(pointer));
}

SerializedEvent with_payload(SerializedEvent row, const nlohmann::json& payload) {
    row.payload = payload.dump();
    return row;
}

} // namespace

TEST_CASE("shredding codec: personal data round-trips, and is stored encrypted") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const CryptoEvent event = AccountOpened{"acc-1", Personal<std::string>("cust-1", "Ada Lovelace")};

    const SerializedEvent row = codec.serialize(event, fresh_metadata());

    CHECK(row.type == "account.opened");
    CHECK_FALSE(contains(row.payload, "Ada"));
    const nlohmann::json sealed = sealed_at(row, "/holder_name/$personal");
    CHECK(sealed.at("subject") == "cust-1");
    CHECK(sealed.at("key") == 1);
    CHECK(sealed.size() == 4);
    REQUIRE(keys.current_key("cust-1"));
    CHECK(keys.current_key("cust-1")->version == 1);
    CHECK(read_back(codec, row) == event);
}

TEST_CASE("shredding codec: events without personal data are written as the inner codec writes them") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const orchestrix::JsonCodec<CryptoEvent> plain;
    const CryptoEvent event = MoneyDeposited{"acc-1", 250};
    const Metadata metadata = fresh_metadata();

    CHECK(codec.serialize(event, metadata) == plain.serialize(event, metadata));
    CHECK(read_back(codec, codec.serialize(event, metadata)) == event);
    CHECK_FALSE(keys.current_key("acc-1"));
}

TEST_CASE("shredding codec: after forget, reads give the value erased, and other subjects still read") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const SerializedEvent ada = codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada Lovelace"}}, fresh_metadata());
    const SerializedEvent bob = codec.serialize(AccountOpened{"acc-2", {"cust-2", "Bob"}}, fresh_metadata());
    CHECK(std::get<AccountOpened>(read_back(codec, ada)).holder_name.value() == "Ada Lovelace");

    CHECK(codec.forget("cust-1"));
    CHECK_FALSE(codec.forget("cust-1")); // idempotent: nothing left to destroy
    CHECK(keys.is_forgotten("cust-1"));

    const auto erased = std::get<AccountOpened>(read_back(codec, ada));
    CHECK(erased.account_id == "acc-1");
    CHECK(erased.holder_name.is_erased());
    CHECK(erased.holder_name.subject() == "cust-1");
    CHECK(erased.holder_name == Personal<std::string>::erased("cust-1"));
    CHECK(erased.holder_name.value_or("[erased]") == "[erased]");
    CHECK_THROWS_AS((void)erased.holder_name.value(), orchestrix::ErasedDataError);
    CHECK(std::get<AccountOpened>(read_back(codec, bob)).holder_name.value() == "Bob");
}

TEST_CASE("shredding codec: the whole record read by deserialize has erased values and its metadata") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const Metadata metadata = fresh_metadata();
    const SerializedEvent row = codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, metadata);
    codec.forget("cust-1");
    const auto time = std::chrono::system_clock::now();

    const auto recorded = codec.deserialize(row, "account-acc-1", 1, 7, time);

    CHECK(recorded.stream_id == "account-acc-1");
    CHECK(recorded.position == 7);
    CHECK(recorded.metadata.event_id == metadata.event_id);
    CHECK(std::get<AccountOpened>(recorded.event).holder_name.is_erased());
}

TEST_CASE("shredding codec: a forgotten subject refuses writes, and no key is made for it") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    (void)codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, fresh_metadata());
    codec.forget("cust-1");

    CHECK_THROWS_AS((void)codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, fresh_metadata()),
                    orchestrix::SubjectForgottenError);
    CHECK_THROWS_AS(codec.rotate("cust-1"), orchestrix::SubjectForgottenError);

    // Forgotten straight through the key store, before this codec ever saw the subject.
    keys.forget("cust-9");
    try {
        (void)codec.serialize(TransferAgreed{"t-1", 5, {"cust-2", "Bob"}, {"cust-9", "Eve"}, std::nullopt},
                              fresh_metadata());
        FAIL("a write for a forgotten subject went through");
    } catch (const orchestrix::SubjectForgottenError& e) {
        CHECK(e.subject() == "cust-9");
    }
    CHECK_FALSE(keys.current_key("cust-1"));
    CHECK_FALSE(keys.current_key("cust-9"));
}

TEST_CASE("shredding codec: an altered ciphertext is a DecodeError naming the event and the path") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const SerializedEvent row = codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada Lovelace"}}, fresh_metadata());
    nlohmann::json payload = nlohmann::json::parse(row.payload);
    std::string data = payload["holder_name"]["$personal"]["data"];
    data[2] = data[2] == 'A' ? 'B' : 'A';
    payload["holder_name"]["$personal"]["data"] = data;

    try {
        (void)read_back(codec, with_payload(row, payload));
        FAIL("an altered ciphertext was read");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.kind() == orchestrix::DecodeError::Kind::invalid_value);
        CHECK(e.event_type() == "account.opened");
        CHECK(e.json_path() == "/payload/holder_name");
        CHECK(contains(e.what(), "does not decrypt"));
    }
}

TEST_CASE("shredding codec: a ciphertext moved to another subject or key version does not decrypt") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const SerializedEvent row = codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, fresh_metadata());
    (void)codec.serialize(AccountOpened{"acc-2", {"cust-2", "Bob"}}, fresh_metadata());
    codec.rotate("cust-1");

    nlohmann::json moved = nlohmann::json::parse(row.payload);
    moved["holder_name"]["$personal"]["subject"] = "cust-2";
    CHECK_THROWS_AS((void)read_back(codec, with_payload(row, moved)), orchestrix::DecodeError);

    nlohmann::json reversioned = nlohmann::json::parse(row.payload);
    reversioned["holder_name"]["$personal"]["key"] = 2;
    CHECK_THROWS_AS((void)read_back(codec, with_payload(row, reversioned)), orchestrix::DecodeError);
}

TEST_CASE("shredding codec: the stored shape is read strictly") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const SerializedEvent row = codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, fresh_metadata());
    const nlohmann::json good = nlohmann::json::parse(row.payload);
    const auto refused_at = [&](nlohmann::json payload, const std::string& path) {
        try {
            (void)read_back(codec, with_payload(row, payload));
            FAIL("a malformed sealed value was read: " + payload.dump());
        } catch (const orchestrix::DecodeError& e) {
            CHECK(e.json_path() == path);
            CHECK(e.event_type() == "account.opened");
        }
    };

    nlohmann::json extra = good;
    extra["holder_name"]["$personal"]["plain"] = "Ada";
    refused_at(extra, "/payload/holder_name/$personal/plain");
    nlohmann::json beside = good;
    beside["holder_name"]["name"] = "Ada";
    refused_at(beside, "/payload/holder_name");
    nlohmann::json no_nonce = good;
    no_nonce["holder_name"]["$personal"].erase("nonce");
    refused_at(no_nonce, "/payload/holder_name/$personal/nonce");
    nlohmann::json short_nonce = good;
    short_nonce["holder_name"]["$personal"]["nonce"] = "AAAA";
    refused_at(short_nonce, "/payload/holder_name/$personal/nonce");
    nlohmann::json bad_base64 = good;
    bad_base64["holder_name"]["$personal"]["data"] = "not base64!";
    refused_at(bad_base64, "/payload/holder_name/$personal/data");
    nlohmann::json version_zero = good;
    version_zero["holder_name"]["$personal"]["key"] = 0;
    refused_at(version_zero, "/payload/holder_name/$personal/key");
    nlohmann::json empty_subject = good;
    empty_subject["holder_name"]["$personal"]["subject"] = "";
    refused_at(empty_subject, "/payload/holder_name/$personal/subject");

    // Plaintext where a sealed value belongs, and an opened form smuggled into storage.
    nlohmann::json plaintext = good;
    plaintext["holder_name"] = "Ada";
    CHECK_THROWS_AS((void)read_back(codec, with_payload(row, plaintext)), orchestrix::DecodeError);
    nlohmann::json opened = good;
    opened["holder_name"] = {{"$personal", {{"subject", "cust-1"}, {"value", "Ada"}}}};
    refused_at(opened, "/payload/holder_name/$personal/value");
}

TEST_CASE("shredding codec: a sealed value reads with its key spelled with escapes") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const CryptoEvent event = AccountOpened{"acc-1", {"cust-1", "Ada"}};
    SerializedEvent row = codec.serialize(event, fresh_metadata());
    const auto at = row.payload.find("\"$personal\"");
    REQUIRE(at != std::string::npos);
    row.payload.replace(at, 11, "\"\\u0024personal\"");
    REQUIRE(row.payload.find("$personal") == std::string::npos);

    CHECK(read_back(codec, row) == event);
    codec.forget("cust-1");
    CHECK(std::get<AccountOpened>(read_back(codec, row)).holder_name.is_erased());
}

TEST_CASE("shredding codec: rotation adds the next key version, and old events still read") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const SerializedEvent before = codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, fresh_metadata());

    CHECK(codec.rotate("cust-1") == 2);
    const SerializedEvent after = codec.serialize(AccountOpened{"acc-1", {"cust-1", "Ada L."}}, fresh_metadata());

    CHECK(sealed_at(before, "/holder_name/$personal/key") == 1);
    CHECK(sealed_at(after, "/holder_name/$personal/key") == 2);
    CHECK(keys.current_key("cust-1")->version == 2);
    CHECK(std::get<AccountOpened>(read_back(codec, before)).holder_name.value() == "Ada");
    CHECK(std::get<AccountOpened>(read_back(codec, after)).holder_name.value() == "Ada L.");
    CHECK(codec.rotate("cust-7") == 1); // a subject without a key gets version 1

    codec.forget("cust-1");
    CHECK(std::get<AccountOpened>(read_back(codec, before)).holder_name.is_erased());
    CHECK(std::get<AccountOpened>(read_back(codec, after)).holder_name.is_erased());
}

TEST_CASE("shredding codec: Personal outside the codec is refused both ways, never plaintext") {
    const orchestrix::JsonCodec<CryptoEvent> plain;
    const CryptoEvent event = AccountOpened{"acc-1", {"cust-1", "Ada"}};

    try {
        (void)plain.serialize(event, fresh_metadata());
        FAIL("personal data was written by a plain JsonCodec");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.event_type() == "account.opened");
        CHECK(contains(e.what(), "ShreddingCodec"));
    }
    CHECK_THROWS_AS(nlohmann::json(Personal<std::string>("cust-1", "Ada")), orchestrix::EncodeError);

    InMemoryKeyStore keys;
    const SerializedEvent row = Codec(keys).serialize(event, fresh_metadata());
    try {
        (void)plain.deserialize_event(row.type, row.schema_version, row.payload);
        FAIL("personal data was read by a plain JsonCodec");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(contains(e.what(), "ShreddingCodec"));
    }
}

TEST_CASE("shredding codec: an empty subject and an erased value cannot be written") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    try {
        (void)codec.serialize(AccountOpened{"acc-1", Personal<std::string>("", "Ada")}, fresh_metadata());
        FAIL("a value without a subject was written");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(contains(e.what(), "empty subject"));
    }
    CHECK_THROWS_AS((void)codec.serialize(AccountOpened{"acc-1", {}}, fresh_metadata()), orchestrix::EncodeError);
    CHECK_THROWS_AS(
        (void)codec.serialize(AccountOpened{"acc-1", Personal<std::string>::erased("cust-1")}, fresh_metadata()),
        orchestrix::EncodeError);
    CHECK_THROWS_AS((void)codec.serialize(AccountOpened{"acc-1", {std::string(300, 'x'), "Ada"}}, fresh_metadata()),
                    orchestrix::InvalidArgumentError);
    CHECK_FALSE(keys.current_key("cust-1"));
}

TEST_CASE("shredding codec: the same event gives the same bytes, another event id other bytes") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const CryptoEvent event = AccountOpened{"acc-1", {"cust-1", "Ada"}};
    const Metadata metadata = fresh_metadata();

    const SerializedEvent first = codec.serialize(event, metadata);
    CHECK(codec.serialize(event, metadata) == first);
    CHECK(Codec(keys).serialize(event, metadata) == first); // another codec (no cache), same key

    const SerializedEvent other = codec.serialize(event, fresh_metadata());
    CHECK(sealed_at(other, "/holder_name/$personal/nonce") != sealed_at(first, "/holder_name/$personal/nonce"));
    CHECK(sealed_at(other, "/holder_name/$personal/data") != sealed_at(first, "/holder_name/$personal/data"));
}

TEST_CASE("shredding codec: a whole struct of personal fields is one sealed value") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const CryptoEvent event =
        CustomerRegistered{"c-1", {"cust-1", CustomerDetails{"Ada", "ada@example.org", 1815, {"+44 1", "+44 2"}}}};
    const SerializedEvent row = codec.serialize(event, fresh_metadata());
    CHECK_FALSE(contains(row.payload, "ada@example.org"));
    CHECK_FALSE(contains(row.payload, "1815"));
    CHECK(read_back(codec, row) == event);

    const CryptoEvent card = ContactShared{{"cust-1", ContactCard{"Ada", "London"}}};
    const SerializedEvent card_row = codec.serialize(card, fresh_metadata());
    CHECK(nlohmann::json::parse(card_row.payload).contains("$personal")); // the payload itself is sealed
    CHECK(read_back(codec, card_row) == card);

    codec.forget("cust-1");
    const auto erased = std::get<CustomerRegistered>(read_back(codec, row));
    CHECK(erased.customer_id == "c-1");
    CHECK(erased.details.is_erased());
    CHECK(std::get<ContactShared>(read_back(codec, card_row)).card.is_erased());
}

TEST_CASE("shredding codec: several subjects in one event are sealed and forgotten apart") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    const CryptoEvent event =
        TransferAgreed{"t-1", 100, {"cust-1", "Ada"}, {"cust-2", "Bob"}, Personal{"cust-1", std::string("rent")}};
    const SerializedEvent row = codec.serialize(event, fresh_metadata());
    CHECK(sealed_at(row, "/payer_name/$personal/subject") == "cust-1");
    CHECK(sealed_at(row, "/payee_name/$personal/subject") == "cust-2");
    CHECK(read_back(codec, row) == event);

    codec.forget("cust-1");
    const auto read = std::get<TransferAgreed>(read_back(codec, row));
    CHECK(read.amount == 100);
    CHECK(read.payer_name.is_erased());
    REQUIRE(read.note);
    CHECK(read.note->is_erased());
    CHECK(read.payee_name.value() == "Bob");
}

TEST_CASE("shredding codec: a key version missing for a subject that was not forgotten is a DecodeError") {
    InMemoryKeyStore keys;
    InMemoryKeyStore other_keys;
    const SerializedEvent row = Codec(keys).serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, fresh_metadata());
    try {
        (void)read_back(Codec(other_keys), row);
        FAIL("data was read without its key");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.json_path() == "/payload/holder_name");
        CHECK(contains(e.what(), "not forgotten"));
    }
}

TEST_CASE("shredding codec: a subject forgotten elsewhere reads erased once the cached key expires") {
    InMemoryKeyStore keys;
    const Codec cached(keys, orchestrix::JsonCodec<CryptoEvent>{},
                       orchestrix::ShreddingOptions{std::chrono::milliseconds(200), 100});
    const Codec uncached(keys, orchestrix::JsonCodec<CryptoEvent>{},
                         orchestrix::ShreddingOptions{std::chrono::milliseconds(0), 100});
    const SerializedEvent row = cached.serialize(AccountOpened{"acc-1", {"cust-1", "Ada"}}, fresh_metadata());
    const auto name = [&](const Codec& codec) { return std::get<AccountOpened>(read_back(codec, row)).holder_name; };
    CHECK(name(cached).value() == "Ada");

    keys.forget("cust-1"); // another process, or the key store directly

    CHECK(name(uncached).is_erased());
    CHECK(name(cached).value() == "Ada"); // its cached key, for up to key_cache_ttl
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(name(cached).is_erased());

    // A copy shares its original's cache: forgetting through either is seen by both at once.
    InMemoryKeyStore keys2;
    const Codec original(keys2);
    const Codec copy = original; // NOLINT(performance-unnecessary-copy-initialization)
    const SerializedEvent row2 = original.serialize(AccountOpened{"acc-2", {"cust-2", "Bob"}}, fresh_metadata());
    CHECK(std::get<AccountOpened>(read_back(original, row2)).holder_name.value() == "Bob");
    copy.forget("cust-2");
    CHECK(std::get<AccountOpened>(read_back(original, row2)).holder_name.is_erased());
}

TEST_CASE("shredding codec: personal values that JSON cannot carry are refused on write") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    CHECK_THROWS_AS(
        (void)codec.serialize(AccountOpened{"acc-1", {"cust-1", std::string("\xff\xfe")}}, fresh_metadata()),
        orchestrix::EncodeError);
}

TEST_CASE("shredding codec: threads write and read through one codec while subjects are forgotten") {
    InMemoryKeyStore keys;
    const Codec codec(keys);
    constexpr int subjects = 8;
    const auto subject = [](int i) { return "cust-" + std::to_string(i); };
    std::vector<SerializedEvent> rows;
    for (int i = 0; i < subjects; ++i) {
        rows.push_back(
            codec.serialize(AccountOpened{"acc", {subject(i), "name " + std::to_string(i)}}, fresh_metadata()));
    }

    std::atomic<int> unexpected{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int n = 0; n < 300; ++n) {
                const int i = (n + t) % subjects;
                try {
                    const SerializedEvent row = codec.serialize(
                        AccountOpened{"acc", {subject(i), "name " + std::to_string(i)}}, fresh_metadata());
                    const auto read = std::get<AccountOpened>(read_back(codec, row)).holder_name;
                    if (!read.is_erased() && read.value() != "name " + std::to_string(i)) ++unexpected;
                } catch (const orchestrix::SubjectForgottenError&) {
                    if (i >= subjects / 2) ++unexpected; // only the first half is forgotten
                } catch (...) {
                    ++unexpected;
                }
            }
        });
    }
    for (int i = 0; i < subjects / 2; ++i) codec.forget(subject(i));
    for (auto& thread : threads) thread.join();

    CHECK(unexpected == 0);
    for (int i = 0; i < subjects; ++i) {
        const auto name = std::get<AccountOpened>(read_back(codec, rows[static_cast<std::size_t>(i)])).holder_name;
        CHECK(name.is_erased() == (i < subjects / 2));
    }
}
