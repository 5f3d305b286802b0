// Raw appends on the SQLite store (`append_raw`, durable/store_base.hpp) and JSON Lines of CloudEvents
// (json/cloudevents.hpp) moved between SQLite files, typed and raw.

#include <orchestrix/json/cloudevents.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using orchestrix::ExpectedVersion;
using orchestrix::RawEventData;

const orchestrix::SqliteOptions fast{orchestrix::SqliteSynchronous::off, std::chrono::seconds(5)};

// The columns the typed append would write for `event`, as a raw event.
RawEventData raw(const AccountEvent& event,
                 orchestrix::Metadata metadata = {orchestrix::Uuid::generate(), {}, {}, {}, {}}) {
    const orchestrix::SerializedEvent columns = orchestrix::JsonCodec<AccountEvent>{}.serialize(event, metadata);
    return {metadata.event_id.to_string(), columns.type, columns.schema_version, columns.payload, columns.metadata};
}

std::vector<orchestrix::RawRecordedEvent> rows(const Store& store) { return store.read_all_raw(); }

// The stored rows without the recording time (the importing store's own).
std::vector<orchestrix::RawRecordedEvent> timeless(std::vector<orchestrix::RawRecordedEvent> all) {
    for (auto& row : all) row.recorded_at = {};
    return all;
}

void fill(Store& store) {
    const orchestrix::Metadata traced{
        orchestrix::Uuid::generate(),
        "corr",
        "cause",
        {},
        *orchestrix::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")};
    (void)store.append("account-1", {AccountEvent{AccountOpened{"account-1", "Ada"}}}, ExpectedVersion::no_stream());
    (void)store.append("account-2", {AccountEvent{AccountOpened{"account-2", "Grace"}}}, ExpectedVersion::no_stream());
    (void)store.append("account-1",
                       {orchestrix::EventEnvelope<AccountEvent>(AccountEvent{MoneyDeposited{"account-1", 10}}, traced),
                        orchestrix::EventEnvelope<AccountEvent>(AccountEvent{MoneyDeposited{"account-1", 20}})},
                       ExpectedVersion::exact(1));
    (void)store.append("account-2", {AccountEvent{MoneyDeposited{"account-2", 5}}}, ExpectedVersion::exact(1));
}

} // namespace

TEST_CASE("sqlite append_raw: the rows are stored as given and read back typed and raw", "[sqlite][raw]") {
    test_support::TempDir dir("orchestrix-raw");
    Store store(dir.file("events.db"), fast);
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), "corr", "cause", {}, {}};
    const std::vector<RawEventData> batch = {raw(AccountEvent{AccountOpened{"a", "Ada"}}, metadata),
                                             raw(AccountEvent{MoneyDeposited{"a", 7}})};
    const auto result = store.append_raw("a", batch, ExpectedVersion::no_stream());
    CHECK(result == orchestrix::AppendResult{2, 1, 2, true});

    const auto typed = store.read_stream("a");
    REQUIRE(typed.size() == 2);
    CHECK(typed[0].event == AccountEvent{AccountOpened{"a", "Ada"}});
    CHECK(typed[0].metadata.event_id == metadata.event_id);
    CHECK(typed[0].metadata.correlation_id == "corr");
    CHECK(typed[1].event == AccountEvent{MoneyDeposited{"a", 7}});
    const auto stored = rows(store);
    REQUIRE(stored.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(stored[i].event_id == batch[i].event_id);
        CHECK(stored[i].type == batch[i].type);
        CHECK(stored[i].schema_version == batch[i].schema_version);
        CHECK(stored[i].payload == batch[i].payload);
        CHECK(stored[i].metadata == batch[i].metadata);
        CHECK(stored[i].version == i + 1);
    }
    CHECK(store.append_raw("a", std::vector<RawEventData>{}, ExpectedVersion::any()) ==
          orchestrix::AppendResult{2, 0, 0, false});
}

TEST_CASE("sqlite append_raw: an id in either case is stored in lowercase", "[sqlite][raw]") {
    test_support::TempDir dir("orchestrix-raw");
    Store store(dir.file("events.db"), fast);
    RawEventData event = raw(AccountEvent{MoneyDeposited{"a", 1}});
    const std::string lower = event.event_id;
    for (auto& c : event.event_id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    (void)store.append_raw("a", std::vector{event}, ExpectedVersion::any());
    CHECK(rows(store).at(0).event_id == lower);
    CHECK(store.read_all().at(0).metadata.event_id.to_string() == lower);
}

TEST_CASE("sqlite append_raw: retries are idempotent, reuses of ids refused", "[sqlite][raw]") {
    test_support::TempDir dir("orchestrix-raw");
    Store store(dir.file("events.db"), fast);
    const std::vector<RawEventData> batch = {raw(AccountEvent{AccountOpened{"a", "Ada"}}),
                                             raw(AccountEvent{MoneyDeposited{"a", 7}})};
    const auto first = store.append_raw("a", batch, ExpectedVersion::no_stream());
    (void)store.append("a", {AccountEvent{MoneyDeposited{"a", 1}}}, ExpectedVersion::exact(2));

    SECTION("the same batch again writes nothing and reports the original append") {
        const auto again = store.append_raw("a", batch, ExpectedVersion::no_stream());
        CHECK(again == orchestrix::AppendResult{2, first.first_position, first.last_position, false});
        CHECK(rows(store).size() == 3);
    }
    SECTION("a slice of it, with its expectation") {
        const auto tail = store.append_raw("a", std::vector{batch[1]}, ExpectedVersion::exact(1));
        CHECK(tail == orchestrix::AppendResult{2, 2, 2, false});
    }
    SECTION("the same JSON written differently is the same event") {
        RawEventData spaced = batch[1];
        spaced.payload = R"({ "amount": 7, "account_id": "a" })";
        CHECK_FALSE(store.append_raw("a", std::vector{spaced}, ExpectedVersion::any()).written);
    }
    SECTION("the same id with another payload") {
        RawEventData changed = batch[1];
        changed.payload = R"({"account_id":"a","amount":8})";
        try {
            (void)store.append_raw("a", std::vector{changed}, ExpectedVersion::any());
            FAIL("a reused id was accepted");
        } catch (const orchestrix::IdempotencyError& e) {
            CHECK(e.reason() == orchestrix::IdempotencyError::Reason::different_payload);
        }
    }
    SECTION("the same id in another stream") {
        try {
            (void)store.append_raw("b", std::vector{batch[0]}, ExpectedVersion::any());
            FAIL("a reused id was accepted");
        } catch (const orchestrix::IdempotencyError& e) {
            CHECK(e.reason() == orchestrix::IdempotencyError::Reason::different_stream);
        }
    }
    SECTION("a batch that is partly stored") {
        try {
            (void)store.append_raw("a", std::vector{batch[1], raw(AccountEvent{MoneyDeposited{"a", 2}})},
                                   ExpectedVersion::any());
            FAIL("a partly stored batch was accepted");
        } catch (const orchestrix::IdempotencyError& e) {
            CHECK(e.reason() == orchestrix::IdempotencyError::Reason::partial_overlap);
        }
    }
    SECTION("a retry whose expectation did not hold") {
        CHECK_THROWS_AS(store.append_raw("a", batch, ExpectedVersion::exact(1)), orchestrix::ConcurrencyError);
    }
    SECTION("a new batch whose expectation does not hold") {
        CHECK_THROWS_AS(
            store.append_raw("a", std::vector{raw(AccountEvent{MoneyDeposited{"a", 2}})}, ExpectedVersion::exact(1)),
            orchestrix::ConcurrencyError);
    }
    SECTION("the same id twice in one batch") {
        const RawEventData event = raw(AccountEvent{MoneyDeposited{"a", 3}});
        try {
            (void)store.append_raw("a", std::vector{event, event}, ExpectedVersion::any());
            FAIL("a duplicated id was accepted");
        } catch (const orchestrix::IdempotencyError& e) {
            CHECK(e.reason() == orchestrix::IdempotencyError::Reason::duplicate_in_batch);
        }
    }
    CHECK(store.stream_version("a") == 3);
}

TEST_CASE("sqlite append_raw: what a reader could not read is refused and nothing is written", "[sqlite][raw]") {
    orchestrix::DecodeOptions read;
    read.max_bytes = 200;
    read.max_depth = 4;
    orchestrix::EncodeOptions write;
    write.max_bytes = 150;
    write.max_depth = 3;
    test_support::TempDir dir("orchestrix-raw");
    Store store(dir.file("events.db"), fast, orchestrix::JsonCodec<AccountEvent>(read, write));
    const RawEventData good = raw(AccountEvent{MoneyDeposited{"a", 7}});
    const std::string id = good.event_id;
    const std::string metadata = good.metadata;

    struct Case {
        const char* name;
        std::function<void(RawEventData&)> change;
        const char* says;
    };
    const std::vector<Case> invalid = {
        {"an id that is not a UUID", [](RawEventData& e) { e.event_id = "C234-1234-1234"; }, "UUID"},
        {"the nil UUID",
         [](RawEventData& e) {
             e.event_id = "00000000-0000-0000-0000-000000000000";
             e.metadata =
                 R"({"causation_id":"","correlation_id":"","event_id":"00000000-0000-0000-0000-000000000000"})";
         },
         "UUID"},
        {"an empty type", [](RawEventData& e) { e.type.clear(); }, "type"},
        {"a type with a NUL", [](RawEventData& e) { e.type = std::string("a\0b", 3); }, "type"},
        {"a type over 1024 bytes", [](RawEventData& e) { e.type = std::string(1025, 't'); }, "type"},
        {"schema version 0", [](RawEventData& e) { e.schema_version = 0; }, "schema version"},
        {"a payload that is not JSON", [](RawEventData& e) { e.payload = "{\"amount\": 7"; }, "payload"},
        {"a payload that is an array", [](RawEventData& e) { e.payload = "[7]"; }, "JSON object"},
        {"a payload with a duplicate key", [](RawEventData& e) { e.payload = R"({"a":1,"a":2})"; }, "twice"},
        {"a payload with invalid UTF-8", [](RawEventData& e) { e.payload = "{\"a\":\"\xc3\x28\"}"; }, "UTF-8"},
        {"metadata that is not JSON", [](RawEventData& e) { e.metadata = "nope"; }, "metadata"},
        {"metadata with an unknown field",
         [&](RawEventData& e) { e.metadata = R"({"event_id":")" + id + R"(","tenant":"x"})"; }, "tenant"},
        {"metadata without an event id", [](RawEventData& e) { e.metadata = R"({"correlation_id":"c"})"; }, "event_id"},
        {"metadata of another id",
         [](RawEventData& e) {
             e.metadata = raw(AccountEvent{MoneyDeposited{"a", 7}}).metadata;
         },
         "is not its"},
        {"a malformed traceparent",
         [&](RawEventData& e) { e.metadata = R"({"event_id":")" + id + R"(","traceparent":"00-1-2-3"})"; },
         "traceparent"},
    };
    for (const auto& c : invalid) {
        DYNAMIC_SECTION(c.name) {
            RawEventData event = good;
            c.change(event);
            try {
                (void)store.append_raw("a", std::vector{good, event}, ExpectedVersion::any());
                FAIL("accepted");
            } catch (const orchestrix::InvalidArgumentError& e) {
                INFO(e.what());
                CHECK(std::string(e.what()).find(c.says) != std::string::npos);
                CHECK(std::string(e.what()).find("event 1") != std::string::npos);
            }
            CHECK(store.head_position() == 0);
        }
    }
    SECTION("a malformed stream id") {
        CHECK_THROWS_AS(store.append_raw(std::string("a\0b", 3), std::vector{good}, ExpectedVersion::any()),
                        orchestrix::InvalidArgumentError);
        CHECK_THROWS_AS(store.append_raw("", std::vector{good}, ExpectedVersion::any()),
                        orchestrix::InvalidArgumentError);
    }
    SECTION("texts over the write limits, as the typed append refuses them") {
        RawEventData large = good;
        large.payload = R"({"account_id":")" + std::string(140, 'x') + R"(","amount":7})";
        try {
            (void)store.append_raw("a", std::vector{large}, ExpectedVersion::any());
            FAIL("a payload over the write limit was accepted");
        } catch (const orchestrix::EncodeError& e) {
            CHECK(e.kind() == orchestrix::EncodeError::Kind::too_large);
            CHECK(e.json_path() == "/payload");
            CHECK(e.limit() == 150);
        }
        RawEventData deep = good;
        deep.payload = R"({"a":{"b":{"c":{}}}})";
        try {
            (void)store.append_raw("a", std::vector{deep}, ExpectedVersion::any());
            FAIL("a payload over the depth limit was accepted");
        } catch (const orchestrix::EncodeError& e) {
            CHECK(e.kind() == orchestrix::EncodeError::Kind::too_deep);
            CHECK(e.limit() == 3);
        }
        RawEventData long_metadata = good;
        long_metadata.metadata = R"({"event_id":")" + id + R"(","correlation_id":")" + std::string(120, 'c') + R"("})";
        try {
            (void)store.append_raw("a", std::vector{long_metadata}, ExpectedVersion::any());
            FAIL("metadata over the write limit was accepted");
        } catch (const orchestrix::EncodeError& e) {
            CHECK(e.json_path() == "/metadata");
        }
    }
    CHECK(store.head_position() == 0);
    CHECK(store.append_raw("a", std::vector{good}, ExpectedVersion::any()).written);
    CHECK(metadata == rows(store).at(0).metadata);
}

TEST_CASE("sqlite append_raw: a type this program does not know is stored as given", "[sqlite][raw]") {
    test_support::TempDir dir("orchestrix-raw");
    Store store(dir.file("events.db"), fast);
    RawEventData other = raw(AccountEvent{MoneyDeposited{"a", 7}});
    other.type = "account.frozen";
    other.schema_version = 4;
    (void)store.append_raw("a", std::vector{other}, ExpectedVersion::any());
    CHECK(rows(store).at(0).type == "account.frozen");
    CHECK(rows(store).at(0).schema_version == 4);
    CHECK_THROWS_AS(store.read_all(), orchestrix::StoredEventDecodeError);
}

TEST_CASE("sqlite cloudevents: export then raw import into a fresh file gives the same rows, and again nothing",
          "[sqlite][raw][cloudevents]") {
    test_support::TempDir dir("orchestrix-raw");
    Store source(dir.file("source.db"), fast);
    fill(source);
    std::ostringstream typed_out;
    CHECK(orchestrix::export_cloudevents(source, typed_out, source.codec()) == 5);
    std::ostringstream raw_out;
    CHECK(orchestrix::export_cloudevents_raw(source, raw_out) == 5);
    CHECK(raw_out.str() == typed_out.str()); // one format, with or without compiled types

    Store copy(dir.file("copy.db"), fast);
    std::istringstream in(raw_out.str());
    CHECK(orchestrix::import_cloudevents_raw(copy, in) == orchestrix::CloudEventImportResult{5, 0});
    CHECK(timeless(rows(copy)) == timeless(rows(source)));
    std::istringstream again(raw_out.str());
    CHECK(orchestrix::import_cloudevents_raw(copy, again) == orchestrix::CloudEventImportResult{0, 5});
    CHECK(timeless(rows(copy)) == timeless(rows(source)));

    // The typed import of the same file is idempotent on the raw one: the same ids, the same events.
    std::istringstream typed_again(typed_out.str());
    CHECK(orchestrix::import_cloudevents(copy, typed_again, copy.codec()) == orchestrix::CloudEventImportResult{0, 5});

    // And typed into another fresh file: the same rows too.
    Store typed_copy(dir.file("typed.db"), fast);
    std::istringstream typed_in(typed_out.str());
    CHECK(orchestrix::import_cloudevents(typed_copy, typed_in, typed_copy.codec()) ==
          orchestrix::CloudEventImportResult{5, 0});
    CHECK(timeless(rows(typed_copy)) == timeless(rows(source)));
    CHECK(typed_copy.read_all().at(2).metadata.trace.valid());
}

TEST_CASE("sqlite cloudevents: a raw import stops at the first bad line and keeps what came before",
          "[sqlite][raw][cloudevents]") {
    test_support::TempDir dir("orchestrix-raw");
    Store source(dir.file("source.db"), fast);
    fill(source);
    std::ostringstream out;
    (void)orchestrix::export_cloudevents_raw(source, out);
    std::istringstream in_lines(out.str());
    std::vector<std::string> lines;
    for (std::string line; std::getline(in_lines, line);) lines.push_back(line);
    nlohmann::json bad = nlohmann::json::parse(lines[2]);
    bad["data"] = "not an object";
    Store copy(dir.file("copy.db"), fast);
    std::istringstream in(lines[0] + "\n" + lines[1] + "\n" + bad.dump() + "\n" + lines[3] + "\n");
    try {
        (void)orchestrix::import_cloudevents_raw(copy, in);
        FAIL("the import went past a bad line");
    } catch (const orchestrix::CloudEventImportError& e) {
        INFO(e.what());
        CHECK(e.line() == 3);
        CHECK(e.done() == orchestrix::CloudEventImportResult{2, 0});
        CHECK(std::string(e.what()).find("\"data\"") != std::string::npos);
    }
    CHECK(copy.head_position() == 2);
}

TEST_CASE("sqlite cloudevents: the typed import stores the events' tags, the raw import none",
          "[sqlite][raw][cloudevents][dcb]") {
    using Tagged = orchestrix::SqliteEventStore<dcb_domain::CourseEvent>;
    test_support::TempDir dir("orchestrix-raw");
    Tagged source(dir.file("source.db"), fast);
    (void)source.append("course-c1", {dcb_domain::CourseEvent{dcb_domain::CourseDefined{"c1", 10}}},
                        ExpectedVersion::no_stream());
    std::ostringstream out;
    (void)orchestrix::export_cloudevents(source, out, source.codec());
    const auto by_tag = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "c1")}}});
    const auto by_type = orchestrix::Query::of({orchestrix::QueryItem{{"course.defined"}, {}}});
    CHECK(source.read(by_tag).events.size() == 1);

    Tagged typed(dir.file("typed.db"), fast);
    std::istringstream typed_in(out.str());
    (void)orchestrix::import_cloudevents(typed, typed_in, typed.codec());
    CHECK(typed.read(by_tag).events.size() == 1);

    Tagged raw_copy(dir.file("raw.db"), fast);
    std::istringstream raw_in(out.str());
    (void)orchestrix::import_cloudevents_raw(raw_copy, raw_in);
    CHECK(raw_copy.read(by_tag).events.empty());
    CHECK(raw_copy.read(by_type).events.size() == 1);
}

TEST_CASE("sqlite append_raw: an attached observer sees a raw append as an append", "[sqlite][raw]") {
    struct Appends : orchestrix::Observer {
        std::vector<orchestrix::AppendObservation> seen;
        void on_append(const orchestrix::AppendObservation& o) override { seen.push_back(o); }
    } appends;
    test_support::TempDir dir("orchestrix-raw");
    Store store(dir.file("events.db"), fast);
    store.observe(&appends);
    const std::vector<RawEventData> batch = {raw(AccountEvent{MoneyDeposited{"a", 7}})};
    (void)store.append_raw("a", batch, ExpectedVersion::any());
    (void)store.append_raw("a", batch, ExpectedVersion::any());
    REQUIRE(appends.seen.size() == 2);
    CHECK(appends.seen[0].store == "sqlite");
    CHECK(appends.seen[0].stream == "a");
    CHECK(appends.seen[0].events == 1);
    CHECK(appends.seen[0].outcome == orchestrix::AppendOutcome::written);
    CHECK(appends.seen[1].outcome == orchestrix::AppendOutcome::idempotent);
}
