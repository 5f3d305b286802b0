// The lifecycle of the PostgreSQL store (docs/lifecycle.md): the shared contract, and what is PostgreSQL's own:
// the state kept in orchestrix_streams across store objects, removals racing appends from other connections,
// the upgrade of a database made before orchestrix_streams existed, reads by query after removals, and the
// append's plans once lifecycle rows exist.

#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using orchestrix::DeleteMode;
using orchestrix::DeleteOptions;
using orchestrix::ExpectedVersion;
using orchestrix::Recreation;
using orchestrix::RetentionRule;
using orchestrix::StreamInfo;
using orchestrix::StreamStatus;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using TaggedStore = orchestrix::PostgresEventStore<dcb_domain::CourseEvent>;
using Raw = test_support::RawConnection;

static_assert(orchestrix::lifecycle_event_store<Store>);
static_assert(orchestrix::lifecycle_event_store<TaggedStore>);

std::vector<MoneyDeposited> account_deposits(const std::string& account, int count, int from = 1) {
    std::vector<MoneyDeposited> out;
    for (int i = 0; i < count; ++i) out.push_back(MoneyDeposited{account, from + i});
    return out;
}

std::vector<std::uint64_t> versions(const std::vector<orchestrix::RecordedEvent<AccountEvent>>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) out.push_back(e.version);
    return out;
}

// The layout the store created before the lifecycle (no orchestrix_streams, no event_tags_by_position, the
// append functions without lifecycle checks), as that version wrote it.
constexpr const char* previous_schema = R"sql(SELECT pg_advisory_xact_lock(7236451023345861);
CREATE TABLE IF NOT EXISTS events (
    position       bigint      PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    payload        json        NOT NULL,
    metadata       json        NOT NULL,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_id   text        PRIMARY KEY,
    aggregate_type text        NOT NULL,
    version        bigint      NOT NULL,
    schema_version integer     NOT NULL,
    state          text        NOT NULL,
    taken_at       timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS event_tags (
    tag      text   NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tag, position)
);
-- Not CREATE INDEX IF NOT EXISTS: that locks the table (waiting for appends in flight) even when the index exists.
DO $do$ BEGIN
    IF to_regclass('events_by_type') IS NULL THEN
        CREATE INDEX events_by_type ON events (type, position);
    END IF;
END $do$;
CREATE OR REPLACE FUNCTION orchestrix_append_tagged(
    p_stream text, p_kind integer, p_expected bigint, p_ids uuid[], p_types text[],
    p_schema_versions integer[], p_payloads text[], p_metadata text[],
    p_tags text[], p_tag_events integer[], p_condition text, p_after bigint, p_values text[])
RETURNS TABLE (status integer, stream_version bigint, first_position bigint, last_position bigint)
LANGUAGE plpgsql
-- Index probes only, whatever the statistics say: the plans below are made once per session and kept, and one
-- made on an empty table would otherwise read the whole table at every append until the table is analysed.
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $fn$
DECLARE
    v_count    bigint := cardinality(p_ids);
    v_stored   boolean;
    v_now      timestamptz;
    v_conflict bigint;
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;
    -- One statement, three probes of unique indexes: the stream's last version, the head, the batch's ids.
    SELECT coalesce((SELECT e.version FROM events e WHERE e.stream_id = p_stream ORDER BY e.version DESC LIMIT 1), 0),
           coalesce((SELECT e.position FROM events e ORDER BY e.position DESC LIMIT 1), 0),
           EXISTS (SELECT FROM events e WHERE e.event_id = ANY (p_ids))
      INTO stream_version, first_position, v_stored;
    last_position := 0;
    IF v_stored THEN
        status := 2;
        first_position := 0;
    ELSIF NOT (p_kind = 0 OR (p_kind = 1 AND stream_version = 0) OR (p_kind = 2 AND stream_version > 0)
               OR (p_kind = 3 AND stream_version = p_expected)) THEN
        status := 1;
        first_position := 0;
    ELSIF v_count > 9223372036854775807 - stream_version OR v_count > 9223372036854775807 - first_position THEN
        status := 3;
    ELSE
        IF p_condition <> '' THEN
            EXECUTE p_condition INTO v_conflict USING p_after, p_values;
        END IF;
        IF v_conflict IS NOT NULL THEN
            status := 4;
            first_position := v_conflict;
        ELSE
            v_now := clock_timestamp();
            INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, metadata,
                                recorded_at)
            SELECT first_position + u.n, p_stream, stream_version + u.n, u.id, u.type, u.sv, u.payload::json,
                   u.meta::json, v_now
            FROM unnest(p_ids, p_types, p_schema_versions, p_payloads, p_metadata)
                 WITH ORDINALITY AS u(id, type, sv, payload, meta, n);
            INSERT INTO event_tags (tag, position)
            SELECT t.tag, first_position + t.n FROM unnest(p_tags, p_tag_events) AS t(tag, n);
            PERFORM pg_notify('orchestrix_events', (first_position + v_count)::text);
            status := 0;
            stream_version := stream_version + v_count;
            last_position := first_position + v_count;
            first_position := first_position + 1;
        END IF;
    END IF;
    RETURN NEXT;
END
$fn$;
CREATE OR REPLACE FUNCTION orchestrix_read_query(p_sql text, p_after bigint, p_values text[], p_limit bigint)
RETURNS TABLE (r_position bigint, r_stream_id text, r_version bigint, r_event_id text, r_type text,
               r_schema_version integer, r_payload text, r_metadata text, r_recorded_at bigint, r_head bigint)
LANGUAGE plpgsql
STABLE -- its statements share the calling statement's snapshot: the head is that of the rows
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $fn$
DECLARE
    v_head bigint := coalesce((SELECT e.position FROM events e ORDER BY e.position DESC LIMIT 1), 0);
BEGIN
    RETURN QUERY EXECUTE p_sql USING p_after, p_values, p_limit, v_head;
    IF NOT FOUND THEN
        r_head := v_head;
        RETURN NEXT;
    END IF;
END
$fn$;
CREATE OR REPLACE FUNCTION orchestrix_append(
    p_stream text, p_kind integer, p_expected bigint, p_ids uuid[], p_types text[],
    p_schema_versions integer[], p_payloads text[], p_metadata text[])
RETURNS TABLE (status integer, stream_version bigint, first_position bigint, last_position bigint)
LANGUAGE sql
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $fn$
    SELECT * FROM orchestrix_append_tagged(p_stream, p_kind, p_expected, p_ids, p_types, p_schema_versions,
                                           p_payloads, p_metadata, NULL, NULL, '', 0, NULL);
$fn$;
)sql";

// Each store a schema of its own on the test cluster.
struct PostgresLifecycleFactory {
    using store_type = Store;
    std::unique_ptr<store_type> make() { return std::make_unique<store_type>(test_support::fresh_postgres_database()); }
};

} // namespace

#define ORCHESTRIX_LIFECYCLE_STORES std::tuple<PostgresLifecycleFactory>
#include "support/lifecycle_contract.hpp"

TEST_CASE("postgres lifecycle: the state is kept in the database, for every store object on it") {
    const std::string url = test_support::fresh_postgres_database();
    {
        Store store(url);
        (void)store.append("acc-1", account_deposits("acc-1", 5), ExpectedVersion::no_stream());
        (void)store.append("acc-2", account_deposits("acc-2", 3), ExpectedVersion::no_stream());
        (void)store.append("acc-3", account_deposits("acc-3", 2), ExpectedVersion::no_stream());
        (void)store.append("acc-4", account_deposits("acc-4", 2), ExpectedVersion::no_stream());
        CHECK(store.truncate_stream("acc-1", 4) == orchestrix::RemovalResult{3, 5});
        CHECK(store.delete_stream("acc-2", ExpectedVersion::exact(3),
                                  DeleteOptions{DeleteMode::soft, Recreation::on_no_stream}) ==
              orchestrix::RemovalResult{3, 3});
        CHECK(store.delete_stream("acc-3", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard}) ==
              orchestrix::RemovalResult{2, 2});
        CHECK(store.truncate_stream("acc-4", 3) == orchestrix::RemovalResult{2, 2});
        CHECK(store.removed_count() == 10);
    }
    Store other(url, orchestrix::PostgresOptions{2, false});
    CHECK(other.removed_count() == 10);
    CHECK(other.stream_info("acc-1") == StreamInfo{5, 1, 4, StreamStatus::active, Recreation::on_append});
    CHECK(other.stream_info("acc-2") == StreamInfo{3, 1, 4, StreamStatus::deleted, Recreation::on_no_stream});
    CHECK(other.stream_info("acc-3").status == StreamStatus::tombstoned);
    CHECK(other.stream_info("acc-4") == StreamInfo{2, 1, 3, StreamStatus::active, Recreation::on_append});
    CHECK(other.stream_info("never") == StreamInfo{});
    CHECK(other.stream_version("acc-1") == 5);
    CHECK(other.stream_version("acc-2") == 0);
    CHECK(other.stream_version("acc-3") == 0);
    CHECK(other.stream_version("acc-4") == 2);
    CHECK(versions(other.read_stream("acc-1")) == std::vector<std::uint64_t>{4, 5});
    CHECK(other.read_stream("acc-2").empty());
    CHECK(other.read_all().size() == 2);

    // The appends' function reads the same state: refusals, a recreation, an append to an emptied stream.
    CHECK_THROWS_AS(other.append("acc-2", account_deposits("acc-2", 1), ExpectedVersion::any()),
                    orchestrix::StreamDeletedError);
    CHECK_THROWS_AS(other.append("acc-3", account_deposits("acc-3", 1), ExpectedVersion::no_stream()),
                    orchestrix::StreamDeletedError);
    CHECK_THROWS_AS(other.append("acc-4", account_deposits("acc-4", 1), ExpectedVersion::no_stream()),
                    orchestrix::ConcurrencyError);
    const auto recreated = other.append("acc-2", account_deposits("acc-2", 2), ExpectedVersion::no_stream());
    CHECK(recreated.stream_version == 5);
    CHECK(versions(other.read_stream("acc-2")) == std::vector<std::uint64_t>{4, 5});
    CHECK(other.stream_info("acc-2") == StreamInfo{5, 4, 4, StreamStatus::active, Recreation::on_no_stream});
    CHECK(other.append("acc-4", account_deposits("acc-4", 1), ExpectedVersion::exact(2)).stream_version == 3);
    CHECK(other.stream_info("acc-4") == StreamInfo{3, 1, 3, StreamStatus::active, Recreation::on_append});
    try {
        (void)other.append("acc-3", account_deposits("acc-3", 1), ExpectedVersion::any());
        FAIL("an append to a tombstone was accepted");
    } catch (const orchestrix::StreamDeletedError& e) {
        CHECK(e.reason() == orchestrix::StreamDeletedError::Reason::tombstoned);
        CHECK(e.stream() == "acc-3");
    }
    Raw raw(url);
    CHECK(raw.exec("SELECT count(*) FROM orchestrix_streams") == "4");
    CHECK(raw.exec("SELECT sum(removed) FROM orchestrix_streams") == "10");
}

TEST_CASE("postgres lifecycle: the positions of removed events at the head are never given out again") {
    const std::string url = test_support::fresh_postgres_database();
    {
        Store store(url);
        (void)store.append("acc-1", account_deposits("acc-1", 2), ExpectedVersion::no_stream());
        (void)store.append("acc-2", account_deposits("acc-2", 3), ExpectedVersion::no_stream());
        CHECK(store.delete_stream("acc-2").events_removed == 3);
        CHECK(store.head_position() == 5);
    }
    Store store(url);
    CHECK(store.head_position() == 5);
    const auto next = store.append("acc-3", account_deposits("acc-3", 1), ExpectedVersion::no_stream());
    CHECK(next.first_position == 6);
    CHECK(store.truncate_stream("acc-3", 2).events_removed == 1);
    CHECK(store.truncate_stream("acc-1", 3).events_removed == 2);
    CHECK(store.read_all().empty());
    CHECK(store.head_position() == 6);
    CHECK(store.append("acc-1", account_deposits("acc-1", 1), ExpectedVersion::exact(2)).first_position == 7);
    const auto all = store.read_all();
    REQUIRE(all.size() == 1);
    CHECK(all[0].position == 7);
    CHECK(all[0].version == 3);
}

TEST_CASE("postgres lifecycle: bad input is refused with a typed error and changes nothing") {
    const std::string url = test_support::fresh_postgres_database();
    Store store(url);
    (void)store.append("acc-1", account_deposits("acc-1", 3), ExpectedVersion::no_stream());
    CHECK_THROWS_AS(store.delete_stream(std::string("bad\0id", 6)), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(store.delete_stream(""), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(store.truncate_stream("\xff", 1), orchestrix::InvalidArgumentError);
    try {
        (void)store.truncate_stream("acc-1", 5);
        FAIL("a truncation past the version was accepted");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "before");
    }
    const std::vector<RetentionRule> negative{RetentionRule{"", std::nullopt, std::chrono::seconds(-1)}};
    try {
        (void)store.apply_retention(negative, std::chrono::system_clock::now());
        FAIL("a negative max_age was accepted");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "rules");
    }
    CHECK_THROWS_AS(store.delete_stream("acc-1", ExpectedVersion::exact(2)), orchestrix::ConcurrencyError);
    CHECK(store.stream_info(std::string("bad\0id", 6)) == StreamInfo{});
    CHECK(store.read_stream("acc-1").size() == 3);
    CHECK(store.removed_count() == 0);
    // A refused operation leaves its connection usable (rolled back, not left in a transaction).
    Store one(url, orchestrix::PostgresOptions{1, false});
    CHECK_THROWS_AS(one.truncate_stream("acc-1", 9), orchestrix::InvalidArgumentError);
    CHECK(one.truncate_stream("acc-1", 2).events_removed == 1);
    CHECK(one.removed_count() == 1);
}

TEST_CASE("postgres lifecycle: retention removes prefixes by count and by age, in one call") {
    const std::string url = test_support::fresh_postgres_database();
    Store store(url);
    (void)store.append("orders-1", account_deposits("orders-1", 6), ExpectedVersion::no_stream());
    (void)store.append("orders-2", account_deposits("orders-2", 2), ExpectedVersion::no_stream());
    (void)store.append("audit-1", account_deposits("audit-1", 4), ExpectedVersion::no_stream());
    Raw raw(url);
    // audit-1's first two events are old.
    raw.script("UPDATE events SET recorded_at = now() - interval '40 days' WHERE stream_id = 'audit-1' "
               "AND version <= 2");
    const std::vector<RetentionRule> rules{
        RetentionRule{"orders-", 3, std::nullopt},
        RetentionRule{"audit-", std::nullopt, std::chrono::hours(24 * 30)},
        RetentionRule{"audit-", 10, std::nullopt},
    };
    const auto report = store.apply_retention(rules, std::chrono::system_clock::now());
    CHECK(report == orchestrix::RetentionReport{2, 5});
    CHECK(versions(store.read_stream("orders-1")) == std::vector<std::uint64_t>{4, 5, 6});
    CHECK(versions(store.read_stream("orders-2")) == std::vector<std::uint64_t>{1, 2});
    CHECK(versions(store.read_stream("audit-1")) == std::vector<std::uint64_t>{3, 4});
    CHECK(store.stream_info("audit-1").first_version == 3);
    CHECK(store.removed_count() == 5);
    CHECK(store.apply_retention(rules, std::chrono::system_clock::now()) == orchestrix::RetentionReport{});
}

TEST_CASE("postgres lifecycle: reads by query skip removed events, whose tags are deleted with them") {
    const std::string url = test_support::fresh_postgres_database();
    TaggedStore store(url);
    using dcb_domain::CourseDefined;
    using dcb_domain::StudentSubscribed;
    (void)store.append("course-a", {CourseDefined{"a", 10}, StudentSubscribed{"s1", "a"}},
                       ExpectedVersion::no_stream());
    (void)store.append("course-b", {CourseDefined{"b", 5}, StudentSubscribed{"s1", "b"}, StudentSubscribed{"s2", "b"}},
                       ExpectedVersion::no_stream());
    Raw raw(url);
    REQUIRE(raw.exec("SELECT count(*) FROM event_tags") == "8");
    const orchestrix::Query student =
        orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("student", "s1")}}});
    REQUIRE(store.read(student).events.size() == 2);

    CHECK(store.delete_stream("course-a").events_removed == 2);
    const auto after_delete = store.read(student);
    REQUIRE(after_delete.events.size() == 1);
    CHECK(after_delete.events[0].stream_id == "course-b");
    CHECK(raw.exec("SELECT count(*) FROM event_tags") == "5");

    CHECK(store.truncate_stream("course-b", 3).events_removed == 2);
    CHECK(store.read(student).events.empty());
    const orchestrix::Query course_b =
        orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "b")}}});
    const auto left = store.read(course_b);
    REQUIRE(left.events.size() == 1);
    CHECK(left.events[0].version == 3);
    CHECK(raw.exec("SELECT count(*) FROM event_tags") == "2");
    CHECK(raw.exec("SELECT count(*) FROM event_tags t WHERE NOT EXISTS "
                   "(SELECT FROM events e WHERE e.position = t.position)") == "0");
    // A conditional append sees only what is left.
    const orchestrix::AppendCondition none_for_s1{student, std::nullopt};
    CHECK(store.append("course-c", {CourseDefined{"c", 1}}, ExpectedVersion::no_stream(), none_for_s1).written);
}

TEST_CASE("postgres lifecycle: removals racing appends from other connections keep positions in commit order") {
    const std::string url = test_support::fresh_postgres_database();
    Store setup(url);
    constexpr int writers = 3;
    constexpr int per_writer = 60;
    constexpr int doomed = 20;
    for (int d = 0; d < doomed; ++d) {
        const std::string stream = "doomed-" + std::to_string(d);
        (void)setup.append(stream, account_deposits(stream, 4), ExpectedVersion::no_stream());
    }
    std::atomic<int> running{writers};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            try {
                Store store(url, orchestrix::PostgresOptions{1, false});
                const std::string stream = "live-" + std::to_string(w);
                for (int i = 0; i < per_writer; ++i) {
                    (void)store.append(stream, account_deposits(stream, 1 + i % 2, i * 10),
                                       i == 0 ? ExpectedVersion::no_stream() : ExpectedVersion::stream_exists());
                }
            } catch (...) {
                failed = true;
            }
            --running;
        });
    }
    threads.emplace_back([&] {
        try {
            Store store(url, orchestrix::PostgresOptions{1, false});
            for (int d = 0; d < doomed; ++d) {
                const std::string stream = "doomed-" + std::to_string(d);
                if (d % 3 == 0) {
                    (void)store.truncate_stream(stream, 3);
                } else {
                    (void)store.delete_stream(stream, ExpectedVersion::exact(4),
                                              DeleteOptions{d % 3 == 1 ? DeleteMode::soft : DeleteMode::hard});
                }
            }
        } catch (...) {
            failed = true;
        }
    });
    // A reader polling after its checkpoint, as a subscription does: it must see every live event.
    std::map<std::string, std::vector<std::uint64_t>> seen;
    orchestrix::position_t checkpoint = 0;
    bool ordered = true;
    Store reader(url, orchestrix::PostgresOptions{1, false});
    const auto poll = [&] {
        for (const auto& e : reader.read_all(checkpoint + 1)) {
            if (e.position <= checkpoint) ordered = false;
            checkpoint = e.position;
            if (e.stream_id.rfind("live-", 0) == 0) seen[e.stream_id].push_back(e.version);
        }
    };
    while (running > 0) poll();
    for (auto& t : threads) t.join();
    poll();
    REQUIRE_FALSE(failed);
    CHECK(ordered);
    for (int w = 0; w < writers; ++w) {
        const std::string stream = "live-" + std::to_string(w);
        const auto stored = versions(reader.read_stream(stream));
        CHECK(seen[stream] == stored);
        std::vector<std::uint64_t> contiguous;
        for (std::uint64_t v = 1; v <= stored.size(); ++v) contiguous.push_back(v);
        CHECK(stored == contiguous);
    }
    CHECK(reader.removed_count() == 7 * 2 + 13 * 4);
    std::set<orchestrix::position_t> positions;
    for (const auto& e : reader.read_all()) positions.insert(e.position);
    CHECK(positions.size() == reader.read_all().size());
}

TEST_CASE("postgres lifecycle: a database made before orchestrix_streams opens, upgrades in place and works") {
    const std::string url = test_support::fresh_postgres_database();
    Raw raw(url);
    raw.script(previous_schema);
    // Events (with their tags) written through the previous append function.
    const auto old_append = [&](const std::string& stream, const std::string& id, const std::string& type,
                                const std::string& payload, const std::string& tags) {
        const std::string metadata = R"({"causation_id":"","correlation_id":"","event_id":")" + id + R"("})";
        return raw.exec("SELECT status FROM orchestrix_append_tagged($1, 0, 0, ARRAY[$2]::uuid[], ARRAY[$3], "
                        "ARRAY[1], ARRAY[$4], ARRAY[$5], $6::text[], "
                        "array_fill(1, ARRAY[cardinality($6::text[])]), '', 0, NULL)",
                        {stream, id, type, payload, metadata, tags});
    };
    REQUIRE(old_append("course-a", "00000000-0000-4000-8000-000000000001", "course.defined",
                       R"({"course_id":"a","capacity":3})", "{course:a}") == "0");
    REQUIRE(old_append("course-b", "00000000-0000-4000-8000-000000000002", "course.defined",
                       R"({"course_id":"b","capacity":4})", "{course:b}") == "0");
    REQUIRE(old_append("course-a", "00000000-0000-4000-8000-000000000003", "course.student_subscribed",
                       R"({"student_id":"s1","course_id":"a"})", "{student:s1,course:a}") == "0");
    REQUIRE(raw.exec("SELECT to_regclass('orchestrix_streams') IS NULL") == "t");

    TaggedStore store(url);
    CHECK(raw.exec("SELECT to_regclass('orchestrix_streams') IS NOT NULL") == "t");
    CHECK(raw.exec("SELECT to_regclass('event_tags_by_position') IS NOT NULL") == "t");
    CHECK(store.read_all().size() == 3);
    CHECK(store.stream_info("course-a") == StreamInfo{2, 1, 1, StreamStatus::active, Recreation::on_append});
    CHECK(store.delete_stream("course-a", ExpectedVersion::exact(2)).events_removed == 2);
    CHECK(raw.exec("SELECT count(*) FROM event_tags") == "1");
    const orchestrix::Query course_a =
        orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "a")}}});
    CHECK(store.read(course_a).events.empty());
    // The replaced append function recreates the deleted stream after its last version.
    const auto recreated = store.append("course-a", {dcb_domain::CourseDefined{"a", 9}}, ExpectedVersion::no_stream());
    CHECK(recreated.stream_version == 3);
    CHECK(recreated.first_position == 4);
    CHECK(store.read(course_a).events.size() == 1);
    CHECK(store.append("course-b", {dcb_domain::CourseCapacityChanged{"b", 5}}, ExpectedVersion::exact(1))
              .stream_version == 2);
    // Opening it again (the upgrade is idempotent) keeps everything.
    TaggedStore again(url);
    CHECK(again.stream_info("course-a") == StreamInfo{3, 3, 3, StreamStatus::active, Recreation::on_append});
    CHECK(again.removed_count() == 2);
    CHECK(again.read_all().size() == 3);
}

TEST_CASE("postgres lifecycle: appends to new, deleted and emptied streams never scan a table sequentially") {
    const std::string application = "orchestrix_lifecycle_plans_" + std::to_string(::getpid());
    const std::string url = test_support::fresh_postgres_database();
    const std::string store_url = url + "&application_name=" + application;
    Raw raw(url);
    { Store create(store_url); }
    (void)raw.exec("ALTER TABLE events SET (autovacuum_enabled = false)");
    (void)raw.exec("ALTER TABLE orchestrix_streams SET (autovacuum_enabled = false)");
    (void)raw.exec("ALTER TABLE orchestrix_head SET (autovacuum_enabled = false)");
    const auto scans = [&] {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (raw.exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", {application}) != "0") {
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        (void)raw.exec("SELECT pg_stat_force_next_flush()");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        (void)raw.exec("SELECT pg_stat_clear_snapshot()");
        return raw.exec("SELECT sum(seq_scan)::text FROM pg_stat_user_tables "
                        "WHERE relname IN ('events', 'orchestrix_streams', 'orchestrix_head')");
    };
    const std::string before = scans();
    {
        // Planned on empty tables, then run on filled ones.
        Store store(store_url, orchestrix::PostgresOptions{1, false});
        (void)store.append("s-0", account_deposits("s-0", 1), ExpectedVersion::no_stream());
        (void)store.delete_stream("s-0");
        (void)store.append("s-0", account_deposits("s-0", 1), ExpectedVersion::any());
        raw.script("INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, "
                   "metadata, recorded_at) SELECT 3 + g, 'fill-' || (g % 50), g / 50 + 1, md5('f' || g)::uuid, "
                   "'account.deposited', 1, '{\"account_id\":\"f\",\"amount\":1}', json_build_object("
                   "'causation_id', '', 'correlation_id', '', 'event_id', md5('f' || g)::uuid), now() "
                   "FROM generate_series(0, 4999) AS g;"
                   "INSERT INTO orchestrix_streams SELECT 'gone-' || g, 3, 1, 4, 1, 0, 3 "
                   "FROM generate_series(1, 2000) AS g");
        for (int i = 0; i < 20; ++i) {
            const std::string gone = "gone-" + std::to_string(i * 7 + 1);
            CHECK(store.append(gone, account_deposits(gone, 1), ExpectedVersion::no_stream()).stream_version == 4);
            const std::string fresh = "new-" + std::to_string(i);
            CHECK(store.append(fresh, account_deposits(fresh, 2), ExpectedVersion::no_stream()).stream_version == 2);
            const std::string fill = "fill-" + std::to_string(i);
            CHECK(store.append(fill, account_deposits(fill, 1), ExpectedVersion::exact(100)).stream_version == 101);
            CHECK(store.stream_version(gone) == 4);
            (void)store.delete_stream(fresh);
            CHECK(store.append(fresh, account_deposits(fresh, 1), ExpectedVersion::no_stream()).stream_version == 3);
        }
    }
    CHECK(scans() == before);

    // An append to a stream with events does not read orchestrix_streams at all.
    const auto streams_reads = [&] {
        (void)scans(); // waits for the sessions to report
        return raw.exec("SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                        "WHERE relname = 'orchestrix_streams'");
    };
    const std::string reads_before = streams_reads();
    {
        Store store(store_url, orchestrix::PostgresOptions{1, false});
        for (int i = 0; i < 20; ++i) {
            const std::string fill = "fill-" + std::to_string(20 + i);
            CHECK(store.append(fill, account_deposits(fill, 1), ExpectedVersion::exact(100)).stream_version == 101);
        }
    }
    CHECK(streams_reads() == reads_before);
}
