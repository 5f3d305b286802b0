// Raw appends on the PostgreSQL store (`append_raw`, durable/store_base.hpp) and JSON Lines of CloudEvents
// (json/cloudevents.hpp) moved between PostgreSQL databases, typed and raw.

#include <orchestrix/json/cloudevents.hpp>
#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <sstream>
#include <string>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using orchestrix::ExpectedVersion;
using orchestrix::RawEventData;

RawEventData raw(const AccountEvent& event,
                 orchestrix::Metadata metadata = {orchestrix::Uuid::generate(), {}, {}, {}, {}}) {
    const orchestrix::SerializedEvent columns = orchestrix::JsonCodec<AccountEvent>{}.serialize(event, metadata);
    return {metadata.event_id.to_string(), columns.type, columns.schema_version, columns.payload, columns.metadata};
}

std::vector<orchestrix::RawRecordedEvent> timeless(std::vector<orchestrix::RawRecordedEvent> all) {
    for (auto& row : all) row.recorded_at = {};
    return all;
}

} // namespace

TEST_CASE("postgres append_raw: rows as given, read back typed and raw, retries idempotent", "[postgres][raw]") {
    Store store(test_support::fresh_postgres_database());
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), "corr", "cause", {}, {}};
    std::vector<RawEventData> batch = {raw(AccountEvent{AccountOpened{"a", "Ada"}}, metadata),
                                       raw(AccountEvent{MoneyDeposited{"a", 7}})};
    for (auto& c : batch[1].event_id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto first = store.append_raw("a", batch, ExpectedVersion::no_stream());
    CHECK(first == orchestrix::AppendResult{2, 1, 2, true});

    const auto typed = store.read_stream("a");
    REQUIRE(typed.size() == 2);
    CHECK(typed[0].event == AccountEvent{AccountOpened{"a", "Ada"}});
    CHECK(typed[0].metadata.correlation_id == "corr");
    CHECK(typed[1].event == AccountEvent{MoneyDeposited{"a", 7}});
    const auto rows = store.read_all_raw();
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].payload == batch[0].payload); // the json column keeps the text as given
    CHECK(rows[0].metadata == batch[0].metadata);
    CHECK(rows[1].event_id == typed[1].metadata.event_id.to_string()); // lowercase

    // Retries: the batch, a slice of it, the same JSON written differently.
    CHECK(store.append_raw("a", batch, ExpectedVersion::no_stream()) == orchestrix::AppendResult{2, 1, 2, false});
    CHECK_FALSE(store.append_raw("a", std::vector{batch[1]}, ExpectedVersion::exact(1)).written);
    RawEventData spaced = batch[1];
    spaced.payload = R"({ "amount": 7, "account_id": "a" })";
    CHECK_FALSE(store.append_raw("a", std::vector{spaced}, ExpectedVersion::any()).written);
    // Reuses: another payload, another stream, a partly stored batch, a retry whose expectation did not hold.
    RawEventData changed = batch[1];
    changed.payload = R"({"account_id":"a","amount":8})";
    try {
        (void)store.append_raw("a", std::vector{changed}, ExpectedVersion::any());
        FAIL("a reused id was accepted");
    } catch (const orchestrix::IdempotencyError& e) {
        CHECK(e.reason() == orchestrix::IdempotencyError::Reason::different_payload);
    }
    try {
        (void)store.append_raw("b", std::vector{batch[0]}, ExpectedVersion::any());
        FAIL("a reused id was accepted");
    } catch (const orchestrix::IdempotencyError& e) {
        CHECK(e.reason() == orchestrix::IdempotencyError::Reason::different_stream);
    }
    try {
        (void)store.append_raw("a", std::vector{batch[1], raw(AccountEvent{MoneyDeposited{"a", 2}})},
                               ExpectedVersion::any());
        FAIL("a partly stored batch was accepted");
    } catch (const orchestrix::IdempotencyError& e) {
        CHECK(e.reason() == orchestrix::IdempotencyError::Reason::partial_overlap);
    }
    CHECK_THROWS_AS(store.append_raw("a", batch, ExpectedVersion::exact(1)), orchestrix::ConcurrencyError);
    CHECK_THROWS_AS(
        store.append_raw("a", std::vector{raw(AccountEvent{MoneyDeposited{"a", 2}})}, ExpectedVersion::exact(1)),
        orchestrix::ConcurrencyError);
    CHECK(store.stream_version("a") == 2);
    CHECK(store.head_position() == 2);
}

TEST_CASE("postgres append_raw: what a reader could not read is refused and nothing is written", "[postgres][raw]") {
    orchestrix::EncodeOptions write;
    write.max_bytes = 150;
    Store store(test_support::fresh_postgres_database(), {}, orchestrix::JsonCodec<AccountEvent>({}, write));
    const RawEventData good = raw(AccountEvent{MoneyDeposited{"a", 7}});
    std::vector<RawEventData> invalid(8, good);
    invalid[0].event_id = "not-a-uuid";
    invalid[1].type.clear();
    invalid[2].schema_version = 0;
    invalid[3].payload = "[7]";
    invalid[4].payload = R"({"a":1,"a":2})";
    invalid[5].metadata = R"({"event_id":")" + good.event_id + R"(","tenant":"x"})";
    invalid[6].metadata = raw(AccountEvent{MoneyDeposited{"a", 7}}).metadata;
    invalid[7].type = "bad\xc3\x28type";
    for (const auto& event : invalid) {
        CHECK_THROWS_AS(store.append_raw("a", std::vector{event}, ExpectedVersion::any()),
                        orchestrix::InvalidArgumentError);
    }
    RawEventData large = good;
    large.payload = R"({"account_id":")" + std::string(140, 'x') + R"(","amount":7})";
    CHECK_THROWS_AS(store.append_raw("a", std::vector{large}, ExpectedVersion::any()), orchestrix::EncodeError);
    CHECK_THROWS_AS(store.append_raw(std::string("a\0b", 3), std::vector{good}, ExpectedVersion::any()),
                    orchestrix::InvalidArgumentError);
    CHECK(store.head_position() == 0);
    CHECK(store.append_raw("a", std::vector{good}, ExpectedVersion::any()).written);
}

TEST_CASE("postgres cloudevents: export then import into a fresh database gives the same rows, and again nothing",
          "[postgres][raw][cloudevents]") {
    Store source(test_support::fresh_postgres_database());
    const orchestrix::Metadata traced{
        orchestrix::Uuid::generate(),
        "corr",
        "cause",
        {},
        *orchestrix::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")};
    (void)source.append("account-1", {AccountEvent{AccountOpened{"account-1", "Ada"}}}, ExpectedVersion::no_stream());
    (void)source.append("account-2", {AccountEvent{AccountOpened{"account-2", "Grace"}}}, ExpectedVersion::no_stream());
    (void)source.append("account-1",
                        {orchestrix::EventEnvelope<AccountEvent>(AccountEvent{MoneyDeposited{"account-1", 10}}, traced),
                         orchestrix::EventEnvelope<AccountEvent>(AccountEvent{MoneyDeposited{"account-1", 20}})},
                        ExpectedVersion::exact(1));
    std::ostringstream out;
    CHECK(orchestrix::export_cloudevents_raw(source, out) == 4);
    std::ostringstream typed_out;
    CHECK(orchestrix::export_cloudevents(source, typed_out, source.codec()) == 4);
    CHECK(typed_out.str() == out.str());

    Store copy(test_support::fresh_postgres_database());
    std::istringstream in(out.str());
    CHECK(orchestrix::import_cloudevents_raw(copy, in) == orchestrix::CloudEventImportResult{4, 0});
    CHECK(timeless(copy.read_all_raw()) == timeless(source.read_all_raw()));
    std::istringstream again(out.str());
    CHECK(orchestrix::import_cloudevents_raw(copy, again) == orchestrix::CloudEventImportResult{0, 4});
    std::istringstream typed_again(out.str());
    CHECK(orchestrix::import_cloudevents(copy, typed_again, copy.codec()) == orchestrix::CloudEventImportResult{0, 4});
    CHECK(copy.head_position() == 4);
    CHECK(copy.read_all().at(2).metadata.trace == traced.trace);

    Store typed_copy(test_support::fresh_postgres_database());
    std::istringstream typed_in(typed_out.str());
    CHECK(orchestrix::import_cloudevents(typed_copy, typed_in, typed_copy.codec()) ==
          orchestrix::CloudEventImportResult{4, 0});
    CHECK(timeless(typed_copy.read_all_raw()) == timeless(source.read_all_raw()));

    // A bad line: named, and what came before it stays.
    std::vector<std::string> lines;
    std::istringstream split(out.str());
    for (std::string line; std::getline(split, line);) lines.push_back(line);
    nlohmann::json bad = nlohmann::json::parse(lines[3]);
    bad["id"] = "C234-1234-1234";
    Store partial(test_support::fresh_postgres_database());
    std::istringstream with_bad(lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\n" + bad.dump() + "\n");
    try {
        (void)orchestrix::import_cloudevents_raw(partial, with_bad);
        FAIL("the import went past a bad line");
    } catch (const orchestrix::CloudEventImportError& e) {
        CHECK(e.line() == 4);
        CHECK(e.done().imported == 3);
    }
}
