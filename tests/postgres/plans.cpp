// The append's lookups in PostgreSQL (the stream's version and the batch's event ids, in `orchestrix_append`,
// and the stored rows of a retry) must be index probes whatever the statistics of the events table say: a
// sequential scan makes every append cost O(events stored). A plan is chosen when a session first runs a
// statement and kept, so a session that started on an empty table kept a sequential scan until the table was
// analysed (issue "Performance, round two"). These tests fill a table that is never analysed (autovacuum off
// for it) and count the sequential scans of it (pg_stat_user_tables.seq_scan) across appends of new ids,
// idempotent retries, refused retries and version conflicts, by sessions that planned on the empty table and
// by fresh ones.

#include <orchestrix/postgres/event_store.hpp>

#include <orchestrix/durable/query_sql.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::ExpectedVersion;

using Raw = test_support::RawConnection;

// The sequential scans of the events table so far. Sessions report their statistics at exit at the latest,
// so call this once the sessions being counted have closed (`wait_for_sessions_to_close`).
std::int64_t seq_scans(Raw& raw) {
    (void)raw.exec("SELECT pg_stat_clear_snapshot()");
    return std::stoll(raw.exec("SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'events'::regclass"));
}

// Waits until no session named `application` is connected any more, so that all of them have reported
// their statistics (a session reports them as it exits, just after it leaves pg_stat_activity).
void wait_for_sessions_to_close(Raw& raw, const std::string& application) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (raw.exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", {application}) != "0") {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    (void)raw.exec("SELECT pg_stat_force_next_flush()");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

// Appends through every path of `orchestrix_append` (and, `with_retries`, of the retry check), keeping track
// of the streams' versions and of the head.
class Workload {
public:
    void run(Store& store, const std::vector<std::string>& streams, int rounds, bool with_retries = true) {
        for (int i = 0; i < rounds; ++i) {
            const std::string& stream = streams[static_cast<std::size_t>(i) % streams.size()];
            const std::uint64_t version = versions_[stream];
            std::vector<Envelope> batch;
            for (int k = 0; k <= i % 3; ++k) batch.emplace_back(MoneyDeposited{stream, i * 10 + k});
            const auto expected = version == 0 ? ExpectedVersion::no_stream() : ExpectedVersion::exact(version);

            // New ids.
            const auto result = store.append(stream, batch, expected);
            REQUIRE(result.written);
            REQUIRE(result.first_position == head_ + 1);
            versions_[stream] = result.stream_version;
            head_ = result.last_position;

            // New ids at a version the stream is not at: a conflict.
            const std::vector<Envelope> late{MoneyDeposited{stream, 1}};
            CHECK_THROWS_AS(store.append(stream, late, ExpectedVersion::exact(version)), orchestrix::ConcurrencyError);
            CHECK_THROWS_AS(store.append(stream, late, ExpectedVersion::no_stream()), orchestrix::ConcurrencyError);
            if (!with_retries) continue;

            // The same batch again: an idempotent retry, with the same and with any expected version.
            const auto retry = store.append(stream, batch, expected);
            CHECK_FALSE(retry.written);
            CHECK(retry.last_position == result.last_position);
            CHECK_FALSE(store.append(stream, batch, ExpectedVersion::any()).written);

            // A stored id with another event: refused.
            std::vector<Envelope> changed = batch;
            changed.back().event = MoneyDeposited{stream, -1};
            CHECK_THROWS_AS(store.append(stream, changed, ExpectedVersion::any()), orchestrix::IdempotencyError);
        }
    }

    // Adds `count` events behind the head, spread over the streams fill-0 .. fill-9, in one INSERT that
    // reads nothing of the table (so it scans nothing). The table is not analysed.
    void fill(Raw& raw, std::uint64_t count) {
        (void)raw.exec("INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, "
                       "metadata, recorded_at) "
                       "SELECT $1::bigint + g + 1, 'fill-' || (g % 10), g / 10 + 1, md5('fill' || g)::uuid, "
                       "'account.deposited', 1, '{\"account_id\":\"fill\",\"amount\":1}', "
                       "json_build_object('causation_id', '', 'correlation_id', '', 'event_id', "
                       "md5('fill' || g)::uuid), now() FROM generate_series(0, $2::bigint - 1) AS g",
                       {std::to_string(head_), std::to_string(count)});
        for (std::uint64_t k = 0; k < 10; ++k) versions_["fill-" + std::to_string(k)] = count / 10;
        head_ += count;
    }

    [[nodiscard]] std::uint64_t head() const noexcept { return head_; }

private:
    std::map<std::string, std::uint64_t> versions_;
    std::uint64_t head_ = 0;
};

} // namespace

TEST_CASE("postgres plans: appends, retries and conflicts never scan the events table sequentially") {
    const std::string application = "orchestrix_plans_" + std::to_string(::getpid());
    const std::string url = test_support::fresh_postgres_database();
    const std::string store_url = url + "&application_name=" + application;
    Raw raw(url);
    const std::vector<std::string> own{"acc-0", "acc-1", "acc-2", "acc-3"};
    const std::vector<std::string> filled{"fill-0", "fill-3", "fill-7"};
    constexpr std::uint64_t fill_count = 5000;
    Workload workload;
    {
        // The schema, in a session of its own: building the table's indexes counts as sequential scans of it.
        Store create(store_url);
    }
    wait_for_sessions_to_close(raw, application);
    (void)raw.exec("ALTER TABLE events SET (autovacuum_enabled = false)");
    const std::int64_t scans_before = seq_scans(raw);
    {
        // A session that plans its statements on the empty table, then appends to the filled one. (Not the
        // retries yet: their lookup is planned at each call, for the table as it is then, and a sequential scan
        // of a table of one page is the right plan.)
        Store store(store_url, orchestrix::PostgresOptions{1, true});
        REQUIRE(raw.exec("SELECT coalesce(last_analyze, last_autoanalyze)::text FROM pg_stat_user_tables "
                         "WHERE relid = 'events'::regclass")
                    .empty());
        workload.run(store, own, 12, false);
        workload.fill(raw, fill_count);
        workload.run(store, own, 12);
        workload.run(store, filled, 6);
    }
    {
        // A fresh session on the filled table, which was never analysed.
        Store store(store_url, orchestrix::PostgresOptions{1, true});
        workload.run(store, own, 12);
        workload.run(store, filled, 6);
    }
    wait_for_sessions_to_close(raw, application);
    CHECK(raw.exec("SELECT reltuples::bigint FROM pg_class WHERE oid = 'events'::regclass") == "-1"); // not analysed
    CHECK(seq_scans(raw) == scans_before);
    CHECK(raw.exec("SELECT max(position) FROM events") == std::to_string(workload.head()));
}

TEST_CASE("postgres plans: a database made by the previous version works, and gets the new function on open") {
    const std::string url = test_support::fresh_postgres_database();
    Raw raw(url);
    raw.script(orchestrix::detail::postgres::schema_sql);
    raw.script(test_support::previous_append_function);
    const std::string settings =
        "SELECT coalesce(array_to_string(proconfig, ','), '') FROM pg_proc WHERE oid = "
        "'orchestrix_append(text, integer, bigint, uuid[], text[], integer[], text[], text[])'::regprocedure";
    REQUIRE(raw.exec(settings).empty());
    {
        // A store that may not touch the schema appends through the previous function.
        Store store(url, orchestrix::PostgresOptions{1, false});
        const std::vector<Envelope> batch{MoneyDeposited{"acc", 1}, MoneyDeposited{"acc", 2}};
        CHECK(store.append("acc", batch, ExpectedVersion::no_stream()) == orchestrix::AppendResult{2, 1, 2, true});
        CHECK(store.append("acc", batch, ExpectedVersion::no_stream()) == orchestrix::AppendResult{2, 1, 2, false});
        CHECK(raw.exec(settings).empty());
    }
    // A store that creates the schema replaces it.
    Store store(url);
    CHECK(raw.exec(settings) == "enable_seqscan=off,enable_bitmapscan=off");
    CHECK(store.append("acc", {MoneyDeposited{"acc", 3}}, ExpectedVersion::exact(2)) ==
          orchestrix::AppendResult{3, 3, 3, true});
    CHECK(store.read_stream("acc").size() == 3);
}

// Dynamic consistency boundaries: a conditional append's check (run by `orchestrix_append_tagged` under its
// settings) and a read by query (an unnamed statement, planned at each call for its values) find events by
// index scans of event_tags (tag, position), events_by_type (type, position) and the primary key, never by a
// sequential scan of either table.
namespace {

using dcb_domain::CourseEvent;
using DcbStore = orchestrix::PostgresEventStore<CourseEvent>;
using orchestrix::AppendCondition;
using orchestrix::Query;
using orchestrix::query_item;
using orchestrix::QueryItem;
using orchestrix::tag;

std::int64_t seq_scans_of(Raw& raw, const std::string& table) {
    (void)raw.exec("SELECT pg_stat_clear_snapshot()");
    return std::stoll(raw.exec("SELECT seq_scan FROM pg_stat_user_tables WHERE relid = $1::regclass", {table}));
}

// The plan of a statement built by `orchestrix::durable` (PostgreSQL dialect), its parameters bound with their
// types as the store binds them, one line per row.
std::string explain(Raw& raw, const orchestrix::durable::QuerySql& sql, std::int64_t after, std::int64_t limit) {
    std::string values = "{";
    for (const auto& v : sql.values) {
        if (values.size() > 1) values += ',';
        values += '"' + v + '"'; // test tags: no quotes or backslashes
    }
    values += '}';
    const std::string after_text = std::to_string(after);
    const std::string limit_text = std::to_string(limit);
    const std::vector<const char*> params{after_text.c_str(), values.c_str(), limit_text.c_str()};
    const std::vector<Oid> types{20, 1009, 20};
    PGresult* r =
        PQexecParams(raw.get(), ("EXPLAIN " + sql.sql).c_str(), 3, types.data(), params.data(), nullptr, nullptr, 0);
    INFO(sql.sql << ": " << PQresultErrorMessage(r));
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string plan;
    for (int i = 0; ok && i < PQntuples(r); ++i) plan += std::string(PQgetvalue(r, i, 0)) + "\n";
    PQclear(r);
    REQUIRE(ok);
    return plan;
}

std::vector<Query> dcb_plan_queries() {
    using namespace dcb_domain;
    return {
        Query::of({QueryItem{{}, {tag("course", "c7")}}}),
        Query::of({QueryItem{{}, {tag("course", "c7"), tag("student", "s3")}}}),
        Query::of({query_item<StudentSubscribed>({tag("course", "c7")})}),
        Query::of({query_item<CourseDefined, CourseCapacityChanged>({tag("course", "c7")}),
                   query_item<StudentSubscribed>({tag("course", "c7")}),
                   query_item<StudentSubscribed>({tag("student", "s4")})}),
        Query::of({query_item<CourseCapacityChanged>()}),
    };
}

} // namespace

TEST_CASE("postgres plans: dcb reads and conditions by query never scan the events or tags sequentially") {
    using namespace dcb_domain;
    const std::string application = "orchestrix_dcb_plans_" + std::to_string(::getpid());
    const std::string url = test_support::fresh_postgres_database();
    const std::string store_url = url + "&application_name=" + application;
    Raw raw(url);
    {
        // The schema, in a session of its own (building indexes scans the tables), then 40 courses of 25
        // subscriptions each, appended in batches (an append scans nothing).
        DcbStore create(store_url);
        for (int c = 0; c < 40; ++c) {
            const std::string course = "c" + std::to_string(c);
            std::vector<orchestrix::EventEnvelope<CourseEvent>> batch{{CourseDefined{course, 30}}};
            for (int s = 0; s < 25; ++s) batch.emplace_back(StudentSubscribed{"s" + std::to_string(s), course});
            batch.emplace_back(AnnouncementPosted{course});
            REQUIRE(create.append("course-" + course, batch, ExpectedVersion::no_stream()).written);
        }
        REQUIRE(create.append("course-c7", {CourseCapacityChanged{"c7", 40}}, ExpectedVersion::any()).written);
    }
    wait_for_sessions_to_close(raw, application);
    (void)raw.exec("ALTER TABLE events SET (autovacuum_enabled = false)");
    (void)raw.exec("ALTER TABLE event_tags SET (autovacuum_enabled = false)");
    const std::int64_t events_before = seq_scans_of(raw, "events");
    const std::int64_t tags_before = seq_scans_of(raw, "event_tags");
    const auto queries = dcb_plan_queries();
    {
        DcbStore store(store_url, orchestrix::PostgresOptions{1, false});
        for (const Query& query : queries) {
            const auto read = store.read(query);
            REQUIRE_FALSE(read.events.empty());
            CHECK(read.position == store.head_position());
            CHECK(store.read(query, read.events.front().position, 2).events.size() <= 2);
            // A condition that holds, and one that fails on the first match.
            CHECK(store
                      .append("course-c99", {AnnouncementPosted{"x"}}, ExpectedVersion::any(),
                              AppendCondition{query, read.position})
                      .written);
            CHECK_THROWS_AS(store.append("course-c99", {AnnouncementPosted{"y"}}, ExpectedVersion::any(),
                                         AppendCondition{query, read.events.front().position - 1}),
                            orchestrix::AppendConditionError);
        }
        CHECK_THROWS_AS(store.append("course-c99", {AnnouncementPosted{"z"}}, ExpectedVersion::any(),
                                     AppendCondition{Query::all(), 3}),
                        orchestrix::AppendConditionError);
    }
    wait_for_sessions_to_close(raw, application);
    CHECK(raw.exec("SELECT reltuples::bigint FROM pg_class WHERE oid = 'event_tags'::regclass") == "-1");
    CHECK(seq_scans_of(raw, "events") == events_before);
    CHECK(seq_scans_of(raw, "event_tags") == tags_before);

    // The plans themselves, before and after the tables are analysed, under the settings of the functions that
    // run them (orchestrix_read_query, orchestrix_append_tagged).
    namespace d = orchestrix::durable;
    (void)raw.exec("SET enable_seqscan = off");
    (void)raw.exec("SET enable_bitmapscan = off");
    for (const bool analysed : {false, true}) {
        if (analysed) (void)raw.exec("ANALYZE events; ANALYZE event_tags");
        for (const Query& query : queries) {
            const std::string read =
                explain(raw, d::query_rows_sql(query, d::SqlDialect::postgres, "position, type"), 100, 50);
            const std::string check = explain(raw, d::query_first_match_sql(query, d::SqlDialect::postgres), 100, 0);
            INFO((analysed ? "analysed" : "not analysed") << ", read:\n" << read << "condition:\n" << check);
            for (const std::string& plan : {read, check}) {
                CHECK(plan.find("Seq Scan") == std::string::npos);
                CHECK(plan.find("Bitmap") == std::string::npos);
                CHECK(plan.find("Index") != std::string::npos);
            }
        }
    }
}
