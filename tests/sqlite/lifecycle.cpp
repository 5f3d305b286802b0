// The SQLite store's data lifecycle: the shared contract, and what only a file can show: the state after
// reopening, removals by a second store object while the first appends, the migration of a file of layout 2,
// reads and conditions by query once events are removed, and what an append reads.

#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using orchestrix::DeleteMode;
using orchestrix::DeleteOptions;
using orchestrix::ExpectedVersion;
using orchestrix::StreamInfo;
using orchestrix::StreamStatus;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using DcbStore = orchestrix::SqliteEventStore<dcb_domain::CourseEvent>;

const orchestrix::SqliteOptions quick{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)};

struct SqliteLifecycleFactory {
    using store_type = Store;
    test_support::TempDir dir{"orchestrix-sqlite-lifecycle"};
    std::unique_ptr<store_type> make() { return std::make_unique<store_type>(dir.file("events.db"), quick); }
};

// SQL run on the file by another connection, as a tool (or an older program) would.
class RawDb {
public:
    explicit RawDb(const std::string& path) {
        REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
        sqlite3_busy_timeout(db_, 5000);
    }
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
    // Every row of `sql`, its columns joined by '|'.
    std::vector<std::string> rows(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
        std::vector<std::string> out;
        while (sqlite3_step(s) == SQLITE_ROW) {
            std::string row;
            for (int c = 0; c < sqlite3_column_count(s); ++c) {
                if (c != 0) row += '|';
                const auto* text = sqlite3_column_text(s, c);
                row += text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
            }
            out.push_back(row);
        }
        sqlite3_finalize(s);
        return out;
    }
    std::string value(const std::string& sql) {
        const auto r = rows(sql);
        return r.empty() ? std::string() : r.front();
    }

private:
    sqlite3* db_ = nullptr;
};

std::vector<orchestrix::EventEnvelope<AccountEvent>> deposit_batch(const std::string& account, int count) {
    std::vector<orchestrix::EventEnvelope<AccountEvent>> batch;
    for (int i = 0; i < count; ++i) batch.emplace_back(MoneyDeposited{account, i + 1});
    return batch;
}

std::vector<orchestrix::position_t> positions(const Store& store) {
    std::vector<orchestrix::position_t> out;
    for (const auto& e : store.read_all()) out.push_back(e.position);
    return out;
}

// The layout orchestrix wrote before the data lifecycle (user_version 2), as it created a file.
constexpr const char* layout_2_sql = R"sql(
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
CREATE TABLE IF NOT EXISTS event_tags (
    tag      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);
PRAGMA user_version = 2;
)sql";

} // namespace

#define ORCHESTRIX_LIFECYCLE_STORES std::tuple<SqliteLifecycleFactory>
#include "support/lifecycle_contract.hpp"

static_assert(orchestrix::lifecycle_event_store<Store>);
static_assert(orchestrix::lifecycle_event_store<DcbStore>);

TEST_CASE("sqlite lifecycle: deletions, truncations and the removed count survive reopening the file") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path, quick);
        store.append("soft", deposit_batch("soft", 2), ExpectedVersion::no_stream());     // 1-2
        store.append("hard", deposit_batch("hard", 2), ExpectedVersion::no_stream());     // 3-4
        store.append("cut", deposit_batch("cut", 3), ExpectedVersion::no_stream());       // 5-7
        store.append("strict", deposit_batch("strict", 1), ExpectedVersion::no_stream()); // 8
        store.delete_stream("soft", ExpectedVersion::exact(2), DeleteOptions{});
        store.delete_stream("hard", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard});
        store.truncate_stream("cut", 3);
        store.delete_stream("strict", ExpectedVersion::any(),
                            DeleteOptions{DeleteMode::soft, orchestrix::Recreation::on_no_stream});
    }
    Store store(path, quick);
    CHECK(store.removed_count() == 7);
    CHECK(store.stream_info("soft") == StreamInfo{2, 1, 3, StreamStatus::deleted, orchestrix::Recreation::on_append});
    CHECK(store.stream_info("hard").status == StreamStatus::tombstoned);
    CHECK(store.stream_info("cut") == StreamInfo{3, 1, 3, StreamStatus::active, orchestrix::Recreation::on_append});
    CHECK(store.stream_info("strict").recreation == orchestrix::Recreation::on_no_stream);
    CHECK(positions(store) == std::vector<orchestrix::position_t>{7});
    CHECK_THROWS_AS(store.append("hard", deposit_batch("hard", 1), ExpectedVersion::any()),
                    orchestrix::StreamDeletedError);
    CHECK_THROWS_AS(store.append("strict", deposit_batch("strict", 1), ExpectedVersion::any()),
                    orchestrix::StreamDeletedError);
    // The removed positions stay taken: the last event removed was at 8, the next append gets 9.
    CHECK(store.head_position() == 8);
    const auto recreated = store.append("soft", deposit_batch("soft", 1), ExpectedVersion::no_stream());
    CHECK(recreated == orchestrix::AppendResult{3, 9, 9, true});
    CHECK(store.stream_info("soft") == StreamInfo{3, 3, 3, StreamStatus::active, orchestrix::Recreation::on_append});
}

TEST_CASE("sqlite lifecycle: positions of removed events at the head are never given again") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path, quick);
        store.append("a", deposit_batch("a", 2), ExpectedVersion::no_stream()); // 1-2
        store.append("b", deposit_batch("b", 3), ExpectedVersion::no_stream()); // 3-5
        CHECK(store.delete_stream("b", ExpectedVersion::any(), DeleteOptions{}).events_removed == 3);
        CHECK(store.head_position() == 5);
        CHECK(store.append("c", deposit_batch("c", 1), ExpectedVersion::no_stream()).first_position == 6);
        CHECK(store.truncate_stream("c", 2).events_removed == 1); // 6 removed: the head of the rows is 2 again
        const std::vector<orchestrix::RetentionRule> everything{{"a", 0, std::nullopt}};
        CHECK(store.apply_retention(everything, std::chrono::system_clock::now()).events_removed == 2);
        CHECK(store.read_all().empty());
        CHECK(store.head_position() == 6);
    }
    Store store(path, quick); // what the file keeps, not the object
    CHECK(store.head_position() == 6);
    CHECK(store.append("d", deposit_batch("d", 2), ExpectedVersion::no_stream()) ==
          orchestrix::AppendResult{2, 7, 8, true});
    CHECK(positions(store) == std::vector<orchestrix::position_t>{7, 8});
    CHECK(RawDb(path).value("SELECT position FROM orchestrix_head") == "6");
}

TEST_CASE("sqlite lifecycle: an append reads the lifecycle table only for a stream that holds no events") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path, quick);
    store.append("a", deposit_batch("a", 1), ExpectedVersion::no_stream());
    // Another program drops the table: the appends that would read it fail, the others never notice.
    RawDb(path).exec("DROP TABLE orchestrix_streams");
    CHECK(store.append("a", deposit_batch("a", 2), ExpectedVersion::exact(1)).stream_version == 3);
    CHECK(store.stream_version("a") == 3);
    CHECK_THROWS_AS(store.append("new", deposit_batch("new", 1), ExpectedVersion::no_stream()),
                    orchestrix::SqliteError);
    CHECK(store.read_stream("new").empty());
}

TEST_CASE("sqlite lifecycle: removals by a second store object on the file while the first appends") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store writer(path, quick);
    Store remover(path, quick);
    constexpr int streams = 6;
    constexpr int rounds = 60;
    std::atomic<bool> done{false};
    std::vector<orchestrix::position_t> given;
    std::map<std::string, orchestrix::stream_version_t> last_version;
    std::uint64_t appended = 0;
    int wrong = 0; // what the appender saw that it should not have (checked after it ends: Catch2 is one thread)
    std::thread appender([&] {
        for (int round = 0; round < rounds; ++round) {
            for (int s = 0; s < streams; ++s) {
                const std::string stream = "s-" + std::to_string(s);
                // `any`: a stream the remover deleted is recreated; a tombstoned one refuses.
                try {
                    const auto r = writer.append(stream, deposit_batch(stream, 2), ExpectedVersion::any());
                    if (!r.written || r.stream_version <= last_version[stream]) ++wrong; // versions never repeat
                    last_version[stream] = r.stream_version;
                    given.push_back(r.first_position);
                    given.push_back(r.last_position);
                    appended += 2;
                } catch (const orchestrix::StreamDeletedError& e) {
                    if (e.reason() != orchestrix::StreamDeletedError::Reason::tombstoned || stream != "s-0") ++wrong;
                }
            }
        }
        done = true;
    });
    std::uint64_t removed = 0;
    int turn = 0;
    removed += remover.delete_stream("s-0", ExpectedVersion::any(), {DeleteMode::hard}).events_removed;
    while (!done) {
        const std::string stream = "s-" + std::to_string(1 + turn % (streams - 1));
        if (turn % 3 == 0) {
            removed += remover.delete_stream(stream, ExpectedVersion::any(), DeleteOptions{}).events_removed;
        } else {
            const auto info = remover.stream_info(stream);
            if (info.status == StreamStatus::active && info.version > 1) {
                removed += remover.truncate_stream(stream, info.version).events_removed;
            }
        }
        ++turn;
        // A pause, as between real removals: SQLite's busy wait is a poll, and a writer that took the lock back at
        // once would starve the other for its whole busy timeout.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    appender.join();
    CHECK(wrong == 0);
    CHECK(turn > 0);
    // No position was given twice, and those given rise.
    CHECK(std::set<orchestrix::position_t>(given.begin(), given.end()).size() == given.size());
    CHECK(std::is_sorted(given.begin(), given.end()));
    // What is left plus what was removed is what was appended; each stream's versions run on from its first.
    const auto all = writer.read_all();
    CHECK(remover.removed_count() == removed);
    CHECK(all.size() + removed == appended);
    for (int s = 0; s < streams; ++s) {
        const std::string stream = "s-" + std::to_string(s);
        const StreamInfo info = writer.stream_info(stream);
        const auto events = writer.read_stream(stream);
        INFO(stream);
        for (std::size_t i = 0; i < events.size(); ++i) CHECK(events[i].version == info.first_version + i);
        if (!events.empty()) CHECK(events.back().version == info.version);
    }
    CHECK(writer.stream_info("s-0").status == StreamStatus::tombstoned);
    CHECK(RawDb(path).value("PRAGMA integrity_check") == "ok");
}

TEST_CASE("sqlite lifecycle: a file of layout 2 is migrated on open, and its events can be removed") {
    test_support::TempDir dir;
    const auto old_path = dir.file("old.db");
    const auto source_path = dir.file("source.db");
    {
        DcbStore source(source_path, quick);
        source.append("course-c1", {dcb_domain::CourseDefined{"c1", 10}}, ExpectedVersion::no_stream());
        source.append("course-c1", {dcb_domain::StudentSubscribed{"s1", "c1"}}, ExpectedVersion::exact(1));
        source.append("course-c2", {dcb_domain::CourseDefined{"c2", 5}}, ExpectedVersion::no_stream());
    }
    {
        RawDb raw(old_path);
        raw.exec(layout_2_sql);
        (void)raw.value("PRAGMA journal_mode = WAL");
        raw.exec("ATTACH DATABASE '" + source_path + "' AS source");
        raw.exec("INSERT INTO events SELECT * FROM source.events");
        raw.exec("INSERT INTO event_tags SELECT * FROM source.event_tags");
        raw.exec("DETACH DATABASE source");
    }
    const auto before = DcbStore(source_path, quick).read_all();
    {
        DcbStore store(old_path, quick);
        RawDb raw(old_path);
        CHECK(raw.value("PRAGMA user_version") == "3");
        CHECK(raw.value("SELECT count(*) FROM sqlite_master WHERE name IN ('orchestrix_streams', 'orchestrix_head', "
                        "'event_tags_by_position')") == "3");
        CHECK(raw.value("SELECT count(*) FROM orchestrix_streams") == "0");
        CHECK(raw.value("PRAGMA integrity_check") == "ok");
        CHECK(store.read_all() == before);
        CHECK(store.stream_info("course-c1") ==
              StreamInfo{2, 1, 1, StreamStatus::active, orchestrix::Recreation::on_append});
        CHECK(store.removed_count() == 0);
        // The events stored before can be removed, their tags with them.
        const orchestrix::Query c1 =
            orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "c1")}}});
        CHECK(store.read(c1).events.size() == 2);
        CHECK(store.delete_stream("course-c1", ExpectedVersion::exact(2), DeleteOptions{}).events_removed == 2);
        CHECK(store.read(c1).events.empty());
        CHECK(raw.rows("SELECT tag, position FROM event_tags ORDER BY position") ==
              std::vector<std::string>{"course:c2|3"});
        CHECK(store.append("course-c3", {dcb_domain::CourseDefined{"c3", 1}}, ExpectedVersion::no_stream())
                  .first_position == 4);
    }
    // Opening it again changes nothing.
    DcbStore again(old_path, quick);
    CHECK(again.read_all().size() == 2);
    CHECK(again.removed_count() == 2);
    CHECK(RawDb(old_path).value("PRAGMA user_version") == "3");
}

TEST_CASE("sqlite lifecycle: reads and conditions by query skip removed events, whose tags are deleted with them") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    DcbStore store(path, quick);
    using dcb_domain::StudentSubscribed;
    store.append("course-c1", {dcb_domain::CourseDefined{"c1", 10}}, ExpectedVersion::no_stream()); // 1
    store.append("student-s1", {StudentSubscribed{"s1", "c1"}, StudentSubscribed{"s1", "c2"}},
                 ExpectedVersion::no_stream());                                                // 2-3
    store.append("student-s2", {StudentSubscribed{"s2", "c1"}}, ExpectedVersion::no_stream()); // 4
    const orchestrix::Query c1 = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "c1")}}});
    const orchestrix::Query s1 = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("student", "s1")}}});
    const orchestrix::Query subscriptions =
        orchestrix::Query::of({orchestrix::query_item<StudentSubscribed>()}); // by type alone

    CHECK(store.truncate_stream("student-s1", 2).events_removed == 1); // position 2
    auto read = store.read(c1);
    REQUIRE(read.events.size() == 2);
    CHECK(read.events[0].position == 1);
    CHECK(read.events[1].position == 4);
    CHECK(read.position == 4);
    CHECK(store.read(subscriptions).events.size() == 2);

    CHECK(store.delete_stream("student-s1", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard}).events_removed ==
          1);
    CHECK(store.read(s1).events.empty());
    CHECK(store.read(s1).position == 4);
    CHECK(store.read(subscriptions).events.size() == 1);
    // No tag of a removed event is left: a condition on them finds nothing after position 0.
    RawDb raw(path);
    CHECK(raw.value("SELECT count(*) FROM event_tags WHERE position IN (2, 3)") == "0");
    CHECK(store
              .append("student-s3", {StudentSubscribed{"s3", "c2"}}, ExpectedVersion::no_stream(),
                      orchestrix::AppendCondition{
                          orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "c2")}}}), 0})
              .written);
    // A condition still sees the events that are left.
    CHECK_THROWS_AS(store.append("student-s4", {StudentSubscribed{"s4", "c1"}}, ExpectedVersion::no_stream(),
                                 orchestrix::AppendCondition{c1, 1}),
                    orchestrix::AppendConditionError);
    // The tags of a stream's events are found by position, not by a scan of the tags.
    const auto plan = raw.rows("EXPLAIN QUERY PLAN DELETE FROM event_tags WHERE position IN (SELECT position FROM "
                               "events WHERE stream_id = 'x' AND version < 5)");
    REQUIRE_FALSE(plan.empty());
    bool by_index = false;
    for (const auto& row : plan) by_index = by_index || row.find("event_tags_by_position") != std::string::npos;
    CHECK(by_index);
}

TEST_CASE("sqlite lifecycle: retention by age removes a prefix of each stream, by the time each event was recorded") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path, quick);
    store.append("log", deposit_batch("log", 4), ExpectedVersion::no_stream());
    store.append("other", deposit_batch("other", 1), ExpectedVersion::no_stream());
    // Recorded an hour, 30 minutes and 10 minutes ago, and now (as an older program's rows may say).
    const auto now = std::chrono::system_clock::now();
    const auto micros = [&](std::chrono::minutes ago) {
        return std::to_string(orchestrix::durable::to_micros(now - ago));
    };
    RawDb raw(path);
    raw.exec("UPDATE events SET recorded_at = " + micros(std::chrono::minutes(60)) + " WHERE position = 1");
    raw.exec("UPDATE events SET recorded_at = " + micros(std::chrono::minutes(30)) + " WHERE position = 2");
    raw.exec("UPDATE events SET recorded_at = " + micros(std::chrono::minutes(10)) + " WHERE position = 3");
    raw.exec("UPDATE events SET recorded_at = " + micros(std::chrono::minutes(60)) + " WHERE position = 5");
    const std::vector<orchestrix::RetentionRule> rules{{"log", std::nullopt, std::chrono::minutes(20)}};
    CHECK(store.apply_retention(rules, now) == orchestrix::RetentionReport{1, 2});
    CHECK(store.stream_info("log").first_version == 3);
    CHECK(store.read_stream("other").size() == 1); // another prefix
    // A century is no overflow: nothing is that old.
    const std::vector<orchestrix::RetentionRule> ancient{{"", std::nullopt, std::chrono::hours(24 * 365 * 100000)}};
    CHECK(store.apply_retention(ancient, now) == orchestrix::RetentionReport{0, 0});
}
