// Dynamic consistency boundaries on the SQLite store: the contract (support/dcb_contract.hpp), and what is
// SQLite's own: the tags table, the migration of a file of layout 1, the query plans, and conditional appends
// racing from several store objects and processes on one file.

#include <orchestrix/durable/query_sql.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/dcb_seats.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

// Explicit instantiations compile (ORCHESTRIX_INSTANTIATE_SQLITE_EVENT_STORE,
// docs/stores.md): the calls an untagged store lacks are only explained when called.
ORCHESTRIX_INSTANTIATE_SQLITE_EVENT_STORE(dcb_domain::CourseEvent);
ORCHESTRIX_INSTANTIATE_SQLITE_EVENT_STORE(test_domain::AccountEvent);

namespace {

using dcb_domain::CourseEvent;
using Store = orchestrix::SqliteEventStore<CourseEvent>;
using orchestrix::AppendCondition;
using orchestrix::ExpectedVersion;
using orchestrix::Query;
using orchestrix::query_item;
using orchestrix::QueryItem;
using orchestrix::tag;

// Each store a file of its own; `open_again` opens another store object (another connection) on the last.
struct SqliteDcbFactory {
    using store_type = Store;
    static constexpr int race_threads = 8;
    static constexpr int race_seats = 5;
    test_support::TempDir dir{"orchestrix-sqlite-dcb"};
    int files = 0;
    std::string path;
    std::unique_ptr<store_type> make() {
        path = dir.file("events-" + std::to_string(++files) + ".db");
        return open_again();
    }
    // Writers on other store objects wait for the file's write lock (busy_timeout) rather than fail at once.
    std::unique_ptr<store_type> open_again() {
        return std::make_unique<store_type>(
            path, orchestrix::SqliteOptions{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(30000)});
    }
};

// A raw connection to a store's file, as another program would open it.
class RawDb {
public:
    explicit RawDb(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;
    ~RawDb() { sqlite3_close(db_); }

    void exec(const std::string& sql) {
        char* error = nullptr;
        const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
        const std::string message = error != nullptr ? error : "";
        sqlite3_free(error);
        INFO(sql << ": " << message);
        REQUIRE(rc == SQLITE_OK);
    }

    // The rows of `sql`, each row's columns joined by '|'; `bind` binds its parameters first.
    template <class Bind>
    std::vector<std::string> rows(const std::string& sql, Bind&& bind) {
        sqlite3_stmt* stmt = nullptr;
        INFO(sql << ": " << sqlite3_errmsg(db_));
        REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
        bind(stmt);
        std::vector<std::string> out;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            std::string row;
            for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
                if (c != 0) row += '|';
                const auto* text = sqlite3_column_text(stmt, c);
                row += text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
            }
            out.push_back(row);
        }
        sqlite3_finalize(stmt);
        return out;
    }
    std::vector<std::string> rows(const std::string& sql) {
        return rows(sql, [](sqlite3_stmt*) {});
    }
    std::string value(const std::string& sql) {
        const auto r = rows(sql);
        return r.empty() ? std::string() : r.front();
    }

private:
    sqlite3* db_ = nullptr;
};

// An event whose type lists a tag twice: stored once.
struct Listed {
    static constexpr std::string_view type_name = "test.listed";
    std::string name;
    bool operator==(const Listed&) const = default;
    [[nodiscard]] std::array<std::string, 3> tags() const { return {tag("item", name), "shared", tag("item", name)}; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Listed, name)
using ListedEvent = std::variant<Listed>;

// The layout of orchestrix 0.1 (user_version 1), as it created a file.
constexpr const char* layout_1_sql = R"sql(
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_id   TEXT    PRIMARY KEY,
    aggregate_type TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    taken_at       INTEGER NOT NULL
);
PRAGMA user_version = 1;
)sql";

std::vector<orchestrix::position_t> positions(const orchestrix::QueryResult<CourseEvent>& result) {
    std::vector<orchestrix::position_t> out;
    for (const auto& e : result.events) out.push_back(e.position);
    return out;
}

} // namespace

#define ORCHESTRIX_DCB_STORES std::tuple<SqliteDcbFactory>
#include "support/dcb_contract.hpp"

static_assert(orchestrix::dcb_event_store<Store>);
// A store of events without tags is an ordinary store: it has no read by query.
static_assert(!orchestrix::dcb_event_store<orchestrix::SqliteEventStore<test_domain::AccountEvent>>);
static_assert(orchestrix::event_store<orchestrix::SqliteEventStore<test_domain::AccountEvent>>);

TEST_CASE("sqlite store: dcb tags are stored once per event and position, in the append's transaction") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    orchestrix::SqliteEventStore<ListedEvent> store(path);
    REQUIRE(store.append("list", {Listed{"a"}, Listed{"b"}}, ExpectedVersion::no_stream()).written);
    RawDb raw(path);
    CHECK(raw.rows("SELECT tag, position FROM event_tags ORDER BY position, tag") ==
          std::vector<std::string>{"item:a|1", "shared|1", "item:b|2", "shared|2"});
    // A retry writes no tags again; a refused conditional append writes none.
    const std::vector<orchestrix::EventEnvelope<ListedEvent>> batch{{Listed{"c"}}};
    REQUIRE(store.append("list", batch, ExpectedVersion::exact(2)).written);
    CHECK_FALSE(store.append("list", batch, ExpectedVersion::exact(2)).written);
    CHECK_THROWS_AS(store.append("list", {Listed{"d"}}, ExpectedVersion::any(),
                                 AppendCondition{Query::of({QueryItem{{}, {"shared"}}}), 2}),
                    orchestrix::AppendConditionError);
    CHECK(raw.value("SELECT count(*) FROM event_tags") == "6");
    CHECK(raw.value("SELECT group_concat(position) FROM event_tags WHERE tag = 'shared'") == "1,2,3");
    // Read by the shared tag and one item's.
    const auto shared = store.read(Query::of({QueryItem{{}, {"shared", tag("item", "b")}}}));
    REQUIRE(shared.events.size() == 1);
    CHECK(shared.events[0].position == 2);
    CHECK(shared.position == 3);
}

TEST_CASE("sqlite store: dcb a store of untagged events keeps no tags and appends as before") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    orchestrix::SqliteEventStore<test_domain::AccountEvent> store(path);
    CHECK(store.append("acc", {test_domain::AccountOpened{"acc", "Ada"}, test_domain::MoneyDeposited{"acc", 5}},
                       ExpectedVersion::no_stream()) == orchestrix::AppendResult{2, 1, 2, true});
    CHECK(store.read_stream("acc").size() == 2);
    RawDb raw(path);
    CHECK(raw.value("SELECT count(*) FROM event_tags") == "0");
}

TEST_CASE("sqlite store: dcb a file of layout 1 is migrated on open and its events still read") {
    test_support::TempDir dir;
    const auto old_path = dir.file("old.db");
    const auto source_path = dir.file("source.db");
    // Events as a previous version stored them: the rows of a store, copied into a file of layout 1.
    {
        Store source(source_path);
        source.append("course-c1", {dcb_domain::CourseDefined{"c1", 10}}, ExpectedVersion::no_stream());
        source.append("course-c1", {dcb_domain::StudentSubscribed{"s1", "c1"}}, ExpectedVersion::exact(1));
        source.append("announcements", {dcb_domain::AnnouncementPosted{"hi"}}, ExpectedVersion::no_stream());
    }
    {
        RawDb raw(old_path);
        raw.exec(layout_1_sql);
        (void)raw.value("PRAGMA journal_mode = WAL");
        raw.exec("ATTACH DATABASE '" + source_path + "' AS source");
        raw.exec("INSERT INTO events SELECT * FROM source.events");
        raw.exec("DETACH DATABASE source");
        REQUIRE(raw.value("SELECT count(*) FROM sqlite_master WHERE name IN ('event_tags', 'events_by_type')") == "0");
    }
    const auto before = Store(source_path).read_all();
    {
        Store store(old_path);
        RawDb raw(old_path);
        CHECK(raw.value("PRAGMA user_version") == "3");
        CHECK(raw.value("SELECT count(*) FROM sqlite_master WHERE name IN ('event_tags', 'events_by_type')") == "2");
        CHECK(raw.value("PRAGMA integrity_check") == "ok");
        CHECK(store.read_all() == before);
        // The events stored before have no tags: found by type, not by tag.
        const Query by_tag = Query::of({QueryItem{{}, {tag("course", "c1")}}});
        CHECK(positions(store.read(Query::of({query_item<dcb_domain::CourseDefined>()}))) ==
              std::vector<orchestrix::position_t>{1});
        CHECK(store.read(by_tag).events.empty());
        CHECK(store.read(by_tag).position == 3);
        // New events carry theirs.
        store.append("course-c1", {dcb_domain::StudentSubscribed{"s2", "c1"}}, ExpectedVersion::exact(2),
                     AppendCondition{by_tag, 3});
        CHECK(positions(store.read(by_tag)) == std::vector<orchestrix::position_t>{4});
    }
    // Opening it again changes nothing.
    Store again(old_path);
    CHECK(again.read_all().size() == 4);
    CHECK(RawDb(old_path).value("PRAGMA user_version") == "3");
}

TEST_CASE("sqlite store: dcb a file of a newer layout is refused") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    { Store create(path); }
    RawDb(path).exec("PRAGMA user_version = 4");
    try {
        Store store(path);
        FAIL("a file of layout 4 was opened");
    } catch (const orchestrix::SqliteError& e) {
        CHECK(std::string(e.what()).find("schema version 4") != std::string::npos);
    }
    CHECK(RawDb(path).value("PRAGMA user_version") == "4");
}

TEST_CASE("sqlite store: dcb reads and conditions by query are index searches, never a scan of the events") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path, {orchestrix::SqliteSynchronous::off, {}});
        std::vector<orchestrix::EventEnvelope<CourseEvent>> batch;
        for (int c = 0; c < 40; ++c) {
            const std::string course = "c" + std::to_string(c);
            batch.emplace_back(dcb_domain::CourseDefined{course, 30});
            for (int s = 0; s < 25; ++s) {
                batch.emplace_back(dcb_domain::StudentSubscribed{"s" + std::to_string(s), course});
            }
            batch.emplace_back(dcb_domain::AnnouncementPosted{course});
        }
        store.append("fill", batch, ExpectedVersion::any());
    }
    namespace d = orchestrix::durable;
    const std::vector<Query> queries{
        Query::all(),
        Query::of({QueryItem{{}, {tag("course", "c7")}}}),
        Query::of({QueryItem{{}, {tag("course", "c7"), tag("student", "s3")}}}),
        Query::of({query_item<dcb_domain::StudentSubscribed>({tag("course", "c7")})}),
        Query::of({query_item<dcb_domain::CourseDefined, dcb_domain::CourseCapacityChanged>({tag("course", "c7")}),
                   query_item<dcb_domain::StudentSubscribed>({tag("course", "c7")}),
                   query_item<dcb_domain::StudentSubscribed>({tag("student", "s4")})}),
        Query::of({query_item<dcb_domain::AnnouncementPosted, dcb_domain::CourseDefined>()}),
    };
    const std::regex scan_of_a_table("^SCAN (events|event_tags|e|t[0-9]+)( |$)");
    RawDb raw(path);
    for (const bool analysed : {false, true}) {
        if (analysed) raw.exec("ANALYZE");
        for (const Query& query : queries) {
            for (const bool read : {true, false}) {
                const d::QuerySql sql = read ? d::query_rows_sql(query, d::SqlDialect::sqlite, "position, type")
                                             : d::query_first_match_sql(query, d::SqlDialect::sqlite);
                const auto plan = raw.rows("EXPLAIN QUERY PLAN " + sql.sql, [&](sqlite3_stmt* s) {
                    sqlite3_bind_int64(s, 1, 100);
                    if (read) sqlite3_bind_int64(s, 2, 50);
                    for (std::size_t i = 0; i < sql.values.size(); ++i) {
                        sqlite3_bind_text(s, static_cast<int>(i) + 3, sql.values[i].c_str(), -1, SQLITE_TRANSIENT);
                    }
                });
                INFO((analysed ? "analysed: " : "not analysed: ") << sql.sql);
                REQUIRE_FALSE(plan.empty());
                for (const std::string& step : plan) {
                    const std::string detail = step.substr(step.rfind('|') + 1);
                    INFO(detail);
                    CHECK_FALSE(std::regex_search(detail, scan_of_a_table));
                }
            }
        }
    }
    // And they find what they should.
    Store store(path);
    CHECK(store.read(queries[2]).events.size() == 1);
    CHECK(store.read(queries[4], 0).events.size() == 1 + 25 + 40 - 1); // s4 of c7 once
    CHECK(store.read(queries[5]).events.size() == 80);
}

TEST_CASE("sqlite store: dcb many query shapes, more than the statements kept prepared, all read right") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"));
    for (int s = 0; s < 100; ++s) {
        store.append("course-c", {dcb_domain::StudentSubscribed{"s" + std::to_string(s), "c"}}, ExpectedVersion::any());
    }
    for (int round = 0; round < 2; ++round) {
        for (std::size_t n = 1; n <= 100; ++n) {
            std::vector<QueryItem> items;
            for (std::size_t s = 0; s < n; ++s)
                items.push_back(QueryItem{{}, {tag("student", "s" + std::to_string(s))}});
            const auto result = store.read(Query::of(items), 0, 1000);
            REQUIRE(result.events.size() == n);
            CHECK(result.position == 100);
            CHECK_THROWS_AS(store.append("course-c", {dcb_domain::StudentSubscribed{"x", "c"}}, ExpectedVersion::any(),
                                         AppendCondition{Query::of(items), n - 1}),
                            orchestrix::AppendConditionError);
        }
    }
}

TEST_CASE("sqlite store: dcb store objects on one file racing for the last seat never overbook the course") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    constexpr int threads = 6;
    constexpr int students_each = 4;
    constexpr int seats = 5;
    Store(path).append("course-race", {dcb_domain::CourseDefined{"race", seats}}, ExpectedVersion::no_stream());
    std::atomic<int> subscribed{0};
    std::atomic<int> full{0};
    std::atomic<int> other_errors{0};
    std::atomic<std::uint64_t> refusals{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
            try {
                Store store(path, {orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(30000)});
                std::uint64_t refused = 0;
                for (int k = 0; k < students_each; ++k) {
                    const std::string student = "s" + std::to_string(t) + "-" + std::to_string(k);
                    (dcb_seats::subscribe(store, "race", student, refused) ? subscribed : full)++;
                }
                refusals += refused;
            } catch (...) {
                ++other_errors;
            }
        });
    }
    for (auto& w : writers) w.join();
    INFO("refused conditional appends: " << refusals.load());
    CHECK(other_errors.load() == 0);
    CHECK(subscribed.load() == seats);
    CHECK(full.load() == threads * students_each - seats);
    Store store(path);
    CHECK(store.read(Query::of({query_item<dcb_domain::StudentSubscribed>({tag("course", "race")})})).events.size() ==
          seats);
}

TEST_CASE("sqlite store: dcb processes racing for the last seat on one file never overbook the course") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    constexpr int processes = 4;
    constexpr int students_each = 3;
    constexpr int seats = 4;
    Store(path).append("course-race", {dcb_domain::CourseDefined{"race", seats}}, ExpectedVersion::no_stream());
    std::vector<pid_t> children;
    for (int p = 0; p < processes; ++p) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // The exit status: how many students got a seat, or 100 for any error but a refused append.
            try {
                Store store(path, {orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(30000)});
                int got = 0;
                std::uint64_t refused = 0;
                for (int k = 0; k < students_each; ++k) {
                    if (dcb_seats::subscribe(store, "race", "p" + std::to_string(p) + "-" + std::to_string(k), refused))
                        ++got;
                }
                ::_exit(got);
            } catch (...) {
                ::_exit(100);
            }
        }
        children.push_back(child);
    }
    int subscribed = 0;
    for (const pid_t child : children) {
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) <= students_each);
        subscribed += WEXITSTATUS(status);
    }
    CHECK(subscribed == seats);
    Store store(path);
    CHECK(store.read(Query::of({query_item<dcb_domain::StudentSubscribed>({tag("course", "race")})})).events.size() ==
          seats);
    CHECK(RawDb(path).value("PRAGMA integrity_check") == "ok");
}

TEST_CASE("sqlite store: dcb a reader by query during appends on other store objects sees every match once") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    constexpr int writers_count = 3;
    constexpr int per_writer = 60;
    const orchestrix::SqliteOptions options{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(30000)};
    Store reader(path, options);
    const Query query = Query::of({QueryItem{{}, {tag("course", "watched")}}});
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < writers_count; ++w) {
        writers.emplace_back([&, w] {
            try {
                Store store(path, options);
                for (int i = 0; i < per_writer; ++i) {
                    const std::string student = "w" + std::to_string(w) + "-" + std::to_string(i);
                    (void)store.append("course-watched", {dcb_domain::StudentSubscribed{student, "watched"}},
                                       ExpectedVersion::any());
                    (void)store.append("course-other", {dcb_domain::StudentSubscribed{student, "other"}},
                                       ExpectedVersion::any());
                }
            } catch (...) {
                ++failures;
            }
        });
    }
    std::thread stopper([&] {
        for (auto& w : writers) w.join();
        done = true;
    });
    std::vector<orchestrix::position_t> seen;
    orchestrix::position_t covered = 0;
    for (;;) {
        const bool last_round = done.load();
        std::vector<orchestrix::position_t> batch;
        const auto position = reader.visit(
            query, covered, [&](const orchestrix::RecordedEventView<CourseEvent>& e) { batch.push_back(e.position()); },
            7);
        for (const auto p : batch) {
            REQUIRE(p > covered);
            seen.push_back(p);
        }
        REQUIRE(position >= covered);
        covered = position;
        if (last_round && batch.empty()) break;
    }
    stopper.join();
    CHECK(failures.load() == 0);
    CHECK(seen == positions(reader.read(query)));
    CHECK(seen.size() == static_cast<std::size_t>(writers_count * per_writer));
}
