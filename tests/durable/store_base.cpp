// What the durable stores share (durable/store_base.hpp): comparing a stored row with a retried
// event, the idempotent-retry verdicts, and turning a row that cannot be decoded into an error naming it.

#include <orchestrix/durable/store_base.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Codec = orchestrix::JsonCodec<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::durable::StoredEventRow;

// A codec that reports an unknown type as its registry does (InvalidArgumentError), or throws a ready-made
// StoredEventDecodeError, to check how decode_row passes each on.
struct OddCodec {
    Codec inner;
    [[nodiscard]] orchestrix::SerializedEvent serialize(const AccountEvent& e, const orchestrix::Metadata& m) const {
        return inner.serialize(e, m);
    }
    [[nodiscard]] orchestrix::RecordedEvent<AccountEvent>
    deserialize(const orchestrix::SerializedEventView& row, std::string stream, orchestrix::stream_version_t v,
                orchestrix::position_t p, std::chrono::system_clock::time_point t) const {
        if (row.type == "legacy.type") throw orchestrix::InvalidArgumentError("type", "no such type: legacy.type");
        if (row.type == "already.reported") {
            throw orchestrix::StoredEventDecodeError(
                99, "elsewhere", 7,
                orchestrix::DecodeError(orchestrix::DecodeError::Kind::invalid_value, "already.reported", "/x", "no"));
        }
        return inner.deserialize(row, std::move(stream), v, p, t);
    }
    [[nodiscard]] AccountEvent deserialize_event(std::string_view type, std::uint32_t schema_version,
                                                 std::string_view payload) const {
        return inner.deserialize_event(type, schema_version, payload);
    }
};
static_assert(orchestrix::event_codec<OddCodec, AccountEvent>);

} // namespace

TEST_CASE("durable store: a stored row is the same event as a retried one by bytes, or once decoded") {
    const Codec codec;
    const AccountEvent event = MoneyDeposited{"acc", 5};
    const auto encoded = codec.serialize(event, orchestrix::Metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}});
    const StoredEventRow same{"acc", 1, 1, encoded.type, encoded.schema_version, encoded.payload};
    CHECK(orchestrix::durable::same_event<AccountEvent>(codec, same, event, encoded));

    StoredEventRow reordered = same; // the same event in other bytes, stored under another schema version
    reordered.schema_version = 0;
    reordered.payload = R"({"amount":5,"account_id":"acc"})";
    CHECK_FALSE(orchestrix::durable::same_event<AccountEvent>(codec, reordered, event, encoded)); // v0 is refused

    StoredEventRow renamed = same; // stored under a name this codec reads as the same type
    Codec with_rename;
    with_rename.add_rename("money.deposited", "account.deposited");
    renamed.type = "money.deposited";
    renamed.payload = R"({"amount":5,"account_id":"acc"})";
    CHECK(orchestrix::durable::same_event<AccountEvent>(with_rename, renamed, event, encoded));
    renamed.payload = R"({"amount":6,"account_id":"acc"})";
    CHECK_FALSE(orchestrix::durable::same_event<AccountEvent>(with_rename, renamed, event, encoded));
    renamed.payload = "not json";
    CHECK_FALSE(orchestrix::durable::same_event<AccountEvent>(with_rename, renamed, event, encoded));
}

TEST_CASE("durable store: decode_row names the row whatever the codec throws") {
    const OddCodec codec;
    const auto id = orchestrix::Uuid::generate();
    const auto when = std::chrono::system_clock::time_point{} + std::chrono::hours(1);
    const std::string metadata = R"({"event_id":")" + id.to_string() + R"("})";

    const orchestrix::SerializedEventView good("account.opened", 1, R"({"account_id":"a","owner":"o"})", metadata);
    const auto recorded = orchestrix::durable::decode_row<AccountEvent>(codec, good, "a", 1, 4, when, id.to_string());
    CHECK(recorded.event == AccountEvent{AccountOpened{"a", "o"}});
    CHECK(recorded.position == 4);

    try {
        const orchestrix::SerializedEventView legacy("legacy.type", 1, "{}", metadata);
        (void)orchestrix::durable::decode_row<AccountEvent>(codec, legacy, "a", 2, 5, when, id.to_string());
        FAIL("decoded");
    } catch (const orchestrix::StoredEventDecodeError& e) {
        CHECK(e.kind() == orchestrix::DecodeError::Kind::unknown_type);
        CHECK(e.position() == 5);
        CHECK(e.json_path() == "/type");
        CHECK(e.event_type() == "legacy.type");
    }
    try {
        const orchestrix::SerializedEventView reported("already.reported", 1, "{}", metadata);
        (void)orchestrix::durable::decode_row<AccountEvent>(codec, reported, "a", 3, 6, when, id.to_string());
        FAIL("decoded");
    } catch (const orchestrix::StoredEventDecodeError& e) {
        CHECK(e.position() == 99); // passed on as it was
        CHECK(e.stream_id() == "elsewhere");
    }
    try {
        (void)orchestrix::durable::decode_row<AccountEvent>(codec, good, "a", 1, 4, when,
                                                            orchestrix::Uuid::generate().to_string());
        FAIL("decoded");
    } catch (const orchestrix::StoredEventDecodeError& e) {
        CHECK(e.json_path() == "/metadata/event_id");
        CHECK(std::string(e.what()).find("position 4") != std::string::npos);
    }
}

TEST_CASE("durable store: the retry analysis of stored rows") {
    const Codec codec;
    const std::vector<Envelope> batch{MoneyDeposited{"acc", 1}, MoneyDeposited{"acc", 2}};
    std::vector<orchestrix::SerializedEvent> encoded;
    for (const auto& e : batch) encoded.push_back(codec.serialize(e.event, e.metadata));
    auto row = [&](std::size_t i, orchestrix::stream_version_t version) {
        return std::optional<StoredEventRow>(StoredEventRow{"acc", version, version + 10, encoded[i].type,
                                                            encoded[i].schema_version, encoded[i].payload});
    };
    using orchestrix::ExpectedVersion;
    const std::vector<std::optional<StoredEventRow>> none(2);
    CHECK_FALSE(orchestrix::durable::check_idempotent_retry<AccountEvent>(
        codec, "acc", std::span(batch), std::span(encoded), std::span(none), ExpectedVersion::any(), 0));
    const std::vector<std::optional<StoredEventRow>> both{row(0, 3), row(1, 4)};
    const auto retry = orchestrix::durable::check_idempotent_retry<AccountEvent>(
        codec, "acc", std::span(batch), std::span(encoded), std::span(both), ExpectedVersion::exact(2), 4);
    REQUIRE(retry);
    CHECK(*retry == orchestrix::AppendResult{4, 13, 14, false});
    CHECK_THROWS_AS(orchestrix::durable::check_idempotent_retry<AccountEvent>(codec, "acc", std::span(batch),
                                                                              std::span(encoded), std::span(both),
                                                                              ExpectedVersion::exact(3), 4),
                    orchestrix::ConcurrencyError);
    const std::vector<std::optional<StoredEventRow>> one{row(0, 3), std::nullopt};
    CHECK_THROWS_AS(orchestrix::durable::check_idempotent_retry<AccountEvent>(
                        codec, "acc", std::span(batch), std::span(encoded), std::span(one), ExpectedVersion::any(), 4),
                    orchestrix::IdempotencyError);
}
