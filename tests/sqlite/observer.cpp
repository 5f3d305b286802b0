// Observers on the SQLite store: appends and reads reported under the kind "sqlite", and the trace context
// kept in the metadata column as "traceparent".

#include <orchestrix/core/repository.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/sqlite_raw.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace test_domain;
using orchestrix::AppendOutcome;
using orchestrix::ExpectedVersion;
using orchestrix::ReadKind;
using orchestrix::TraceContext;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;

constexpr std::string_view sample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// Records appends and reads, with the texts copied.
class Recorder : public orchestrix::Observer {
public:
    struct Append {
        std::string store{};
        std::string stream{};
        std::size_t events = 0;
        AppendOutcome outcome = AppendOutcome::written;
    };
    struct Read {
        std::string store{};
        ReadKind kind = ReadKind::stream;
        std::string stream{};
        std::uint64_t events = 0;
    };
    void on_append(const orchestrix::AppendObservation& o) override {
        appends.push_back(Append{std::string(o.store), std::string(o.stream), o.events, o.outcome});
    }
    void on_read(const orchestrix::ReadObservation& o) override {
        reads.push_back(Read{std::string(o.store), o.kind, std::string(o.stream), o.events});
    }
    [[nodiscard]] std::size_t count(AppendOutcome outcome) const {
        return static_cast<std::size_t>(
            std::count_if(appends.begin(), appends.end(), [&](const Append& a) { return a.outcome == outcome; }));
    }
    std::vector<Append> appends{};
    std::vector<Read> reads{};
};

orchestrix::SqliteOptions quick() { return orchestrix::SqliteOptions{orchestrix::SqliteSynchronous::normal, {}}; }

TraceContext trace(std::string_view text) {
    const auto parsed = TraceContext::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

using test_support::raw_exec;

} // namespace

TEST_CASE("sqlite observer: appends are reported with their outcome under the kind sqlite") {
    test_support::TempDir dir{"orchestrix-observer"};
    Store store(dir.file("events.db"), quick());
    Recorder recorder;
    CHECK(store.observer() == nullptr);
    store.observe(&recorder);
    CHECK(store.observer() == &recorder);

    const std::vector<Envelope> first{AccountOpened{"1", "ann"}, MoneyDeposited{"1", 5}};
    (void)store.append("account-1", first, ExpectedVersion::no_stream());                 // written
    (void)store.append("account-1", {MoneyDeposited{"1", 1}}, ExpectedVersion::exact(2)); // written
    (void)store.append("account-2", {AccountOpened{"2", "bob"}}, ExpectedVersion::any()); // written
    CHECK_FALSE(store.append("account-1", first, ExpectedVersion::no_stream()).written);  // idempotent retry
    CHECK_THROWS_AS(store.append("account-1", {MoneyDeposited{"1", 2}}, ExpectedVersion::exact(1)),
                    orchestrix::ConcurrencyError); // conflict
    CHECK_THROWS_AS(store.append("", {MoneyDeposited{"1", 2}}, ExpectedVersion::any()),
                    orchestrix::InvalidArgumentError); // failed, rethrown as it was

    REQUIRE(recorder.appends.size() == 6);
    CHECK(recorder.count(AppendOutcome::written) == 3);
    CHECK(recorder.count(AppendOutcome::idempotent) == 1);
    CHECK(recorder.count(AppendOutcome::conflict) == 1);
    CHECK(recorder.count(AppendOutcome::failed) == 1);
    for (const auto& a : recorder.appends) CHECK(a.store == "sqlite");
    CHECK(recorder.appends[0].events == 2);
    CHECK(recorder.appends[0].stream == "account-1");
    CHECK(recorder.appends[3].outcome == AppendOutcome::idempotent);
    CHECK(recorder.appends[4].outcome == AppendOutcome::conflict);
    CHECK(recorder.appends[5].outcome == AppendOutcome::failed);
    CHECK(store.head_position() == 4);

    // Reads: one report each, with the number of events.
    CHECK(store.read_stream("account-1").size() == 3);
    CHECK(store.visit_stream("account-1", 3, [](const auto&) {}) == 1);
    CHECK(store.read_all(2).size() == 3);
    CHECK(store.visit_all(
              1, [](const auto&) {}, 2) == 2);
    REQUIRE(recorder.reads.size() == 4);
    const std::uint64_t counts[] = {3, 1, 3, 2};
    const ReadKind kinds[] = {ReadKind::stream, ReadKind::stream, ReadKind::all, ReadKind::all};
    for (std::size_t i = 0; i < 4; ++i) {
        INFO(i);
        CHECK(recorder.reads[i].store == "sqlite");
        CHECK(recorder.reads[i].kind == kinds[i]);
        CHECK(recorder.reads[i].events == counts[i]);
    }
    CHECK(recorder.reads[0].stream == "account-1");
    CHECK(recorder.reads[2].stream.empty());

    // Detached: nothing more.
    store.observe(nullptr);
    (void)store.append("account-3", {AccountOpened{"3", "cy"}}, ExpectedVersion::any());
    (void)store.read_all();
    CHECK(recorder.appends.size() == 6);
    CHECK(recorder.reads.size() == 4);
}

TEST_CASE("sqlite observer: a refused conditional append is a conflict, and a read by query is reported") {
    using namespace dcb_domain;
    test_support::TempDir dir{"orchestrix-observer"};
    orchestrix::SqliteEventStore<CourseEvent> store(dir.file("events.db"), quick());
    Recorder recorder;
    store.observe(&recorder);
    (void)store.append("course-1", {CourseDefined{"c1", 10}, StudentSubscribed{"s1", "c1"}}, ExpectedVersion::any());
    const auto query = orchestrix::Query::of({orchestrix::QueryItem{{}, {"course:c1"}}});
    const orchestrix::AppendCondition condition{query, 1};
    CHECK_THROWS_AS(store.append("course-1", {CourseDefined{"c1", 20}}, ExpectedVersion::any(), condition),
                    orchestrix::AppendConditionError);
    REQUIRE(recorder.appends.size() == 2);
    CHECK(recorder.appends[1].outcome == AppendOutcome::conflict);

    CHECK(store.read(query).events.size() == 2);
    REQUIRE(recorder.reads.size() == 1);
    CHECK(recorder.reads[0].kind == ReadKind::query);
    CHECK(recorder.reads[0].events == 2);
    CHECK(recorder.reads[0].store == "sqlite");
}

TEST_CASE("sqlite observer: an event's trace context is stored as traceparent and read back") {
    test_support::TempDir dir{"orchestrix-observer"};
    const std::string path = dir.file("events.db");
    const TraceContext t = trace(sample);
    {
        Store store(path, quick());
        Envelope traced{AccountOpened{"1", "ann"}};
        traced.metadata.trace = t;
        (void)store.append("account-1", {traced, Envelope{MoneyDeposited{"1", 5}}}, ExpectedVersion::no_stream());
        // A retry is a retry whatever its trace context; the stored one stays.
        CHECK_FALSE(store.append("account-1", {traced}, ExpectedVersion::no_stream()).written);
        Envelope other = traced;
        other.metadata.trace = trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        CHECK_FALSE(store.append("account-1", {other}, ExpectedVersion::no_stream()).written);
    }
    Store store(path, quick()); // read back from the file
    const auto events = store.read_stream("account-1");
    REQUIRE(events.size() == 2);
    CHECK(events[0].metadata.trace == t);
    CHECK(events[1].metadata.trace == TraceContext{});

    // The metadata column: "traceparent" only for the traced event.
    const auto raw = store.read_all_raw();
    REQUIRE(raw.size() == 2);
    CHECK(raw[0].metadata.find("\"traceparent\":\"" + std::string(sample) + "\"") != std::string::npos);
    CHECK(raw[1].metadata.find("traceparent") == std::string::npos);
}

TEST_CASE("sqlite observer: a stored traceparent that is not one is a decode error naming the field") {
    test_support::TempDir dir{"orchestrix-observer"};
    const std::string path = dir.file("events.db");
    Store store(path, quick());
    Envelope traced{AccountOpened{"1", "ann"}};
    traced.metadata.trace = trace(sample);
    (void)store.append("account-1", {traced}, ExpectedVersion::no_stream());

    const char* const bad[] = {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "",
                               "00-00000000000000000000000000000000-00f067aa0ba902b7-01"};
    for (const char* value : bad) {
        INFO(value);
        raw_exec(path, std::string("UPDATE events SET metadata = json_set(metadata, '$.traceparent', '") + value +
                           "') WHERE position = 1");
        try {
            (void)store.read_stream("account-1");
            FAIL("a malformed traceparent was read");
        } catch (const orchestrix::StoredEventDecodeError& e) {
            CHECK(e.position() == 1);
            CHECK(std::string(e.what()).find("/metadata/traceparent") != std::string::npos);
        }
    }
    // Not a string at all.
    raw_exec(path, "UPDATE events SET metadata = json_set(metadata, '$.traceparent', 7) WHERE position = 1");
    CHECK_THROWS_AS(store.read_all(), orchestrix::StoredEventDecodeError);
    // Absent: the empty context.
    raw_exec(path, "UPDATE events SET metadata = json_remove(metadata, '$.traceparent') WHERE position = 1");
    CHECK(store.read_all().at(0).metadata.trace == TraceContext{});
}

TEST_CASE("sqlite observer: a TraceScope's context reaches the events a repository saves") {
    test_support::TempDir dir{"orchestrix-observer"};
    Store store(dir.file("events.db"), quick());
    orchestrix::Repository<Account, Store> accounts(store, "account-");
    const TraceContext request = trace(sample);
    {
        const orchestrix::TraceScope scope(request);
        (void)accounts.execute("1", OpenAccount{"1", "ann"});
    }
    (void)accounts.execute("1", Deposit{5});
    const auto events = store.read_stream("account-1");
    REQUIRE(events.size() == 2);
    CHECK(events[0].metadata.trace == request);
    CHECK_FALSE(events[1].metadata.trace.valid());
}
