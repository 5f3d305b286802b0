// Dynamic consistency boundaries on the PostgreSQL store: the contract (support/dcb_contract.hpp), and what is
// PostgreSQL's own: the tags table, the upgrade of a database made before it, conditional appends racing from
// several connections, and reads by query during appends. The plans are in plans.cpp.

#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/dcb_seats.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

using dcb_domain::CourseEvent;
using Store = orchestrix::PostgresEventStore<CourseEvent>;
using orchestrix::AppendCondition;
using orchestrix::ExpectedVersion;
using orchestrix::Query;
using orchestrix::query_item;
using orchestrix::QueryItem;
using orchestrix::tag;
using Raw = test_support::RawConnection;

// Each store a schema of its own; `open_again` opens another store object (other connections) on the last.
struct PostgresDcbFactory {
    using store_type = Store;
    static constexpr int race_threads = 8;
    static constexpr int race_seats = 5;
    std::string url;
    std::unique_ptr<store_type> make() {
        url = test_support::fresh_postgres_database();
        return std::make_unique<store_type>(url, orchestrix::PostgresOptions{8, true});
    }
    std::unique_ptr<store_type> open_again() {
        return std::make_unique<store_type>(url, orchestrix::PostgresOptions{1, false});
    }
};

std::vector<orchestrix::position_t> positions(const orchestrix::QueryResult<CourseEvent>& result) {
    std::vector<orchestrix::position_t> out;
    for (const auto& e : result.events) out.push_back(e.position);
    return out;
}

} // namespace

#define ORCHESTRIX_DCB_STORES std::tuple<PostgresDcbFactory>
#include "support/dcb_contract.hpp"

static_assert(orchestrix::dcb_event_store<Store>);
// A store of events without tags is an ordinary store: it has no read by query.
static_assert(!orchestrix::dcb_event_store<orchestrix::PostgresEventStore<test_domain::AccountEvent>>);
static_assert(orchestrix::event_store<orchestrix::PostgresEventStore<test_domain::AccountEvent>>);
// Explicit instantiations compile (ORCHESTRIX_INSTANTIATE_POSTGRES_EVENT_STORE,
// docs/stores.md): the calls an untagged store lacks are only explained when called.
ORCHESTRIX_INSTANTIATE_POSTGRES_EVENT_STORE(dcb_domain::CourseEvent);
ORCHESTRIX_INSTANTIATE_POSTGRES_EVENT_STORE(test_domain::AccountEvent);

TEST_CASE("postgres store: dcb tags are stored once per event and position, with the append") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    Raw raw(url);
    REQUIRE(store
                .append("course-c1", {dcb_domain::CourseDefined{"c1", 3}, dcb_domain::StudentSubscribed{"s1", "c1"}},
                        ExpectedVersion::no_stream())
                .written);
    REQUIRE(store.append("announcements", {dcb_domain::AnnouncementPosted{"hi"}}, ExpectedVersion::any()).written);
    const std::string all_tags =
        "SELECT string_agg(tag || '@' || position, ',' ORDER BY position, tag) FROM event_tags";
    CHECK(raw.exec(all_tags) == "course:c1@1,course:c1@2,student:s1@2");
    // A retry writes no tags again; a refused conditional append writes none.
    const std::vector<orchestrix::EventEnvelope<CourseEvent>> batch{{dcb_domain::StudentSubscribed{"s2", "c1"}}};
    REQUIRE(store.append("course-c1", batch, ExpectedVersion::exact(2)).written);
    CHECK_FALSE(store.append("course-c1", batch, ExpectedVersion::exact(2)).written);
    const Query c1 = Query::of({QueryItem{{}, {tag("course", "c1")}}});
    try {
        (void)store.append("course-c1", {dcb_domain::StudentSubscribed{"s3", "c1"}}, ExpectedVersion::any(),
                           AppendCondition{c1, 1});
        FAIL("the conditional append was not refused");
    } catch (const orchestrix::AppendConditionError& e) {
        CHECK(e.position() == 2);
        CHECK(e.after() == std::optional<orchestrix::position_t>(1));
    }
    CHECK(raw.exec(all_tags) == "course:c1@1,course:c1@2,student:s1@2,course:c1@4,student:s2@4");
    CHECK(raw.exec("SELECT max(position) FROM events") == "4");
    CHECK(positions(store.read(c1, 1)) == std::vector<orchestrix::position_t>{2, 4});
}

TEST_CASE("postgres store: dcb a store of untagged events keeps no tags and appends as before") {
    const auto url = test_support::fresh_postgres_database();
    orchestrix::PostgresEventStore<test_domain::AccountEvent> store(url);
    CHECK(store.append("acc", {test_domain::AccountOpened{"acc", "Ada"}, test_domain::MoneyDeposited{"acc", 5}},
                       ExpectedVersion::no_stream()) == orchestrix::AppendResult{2, 1, 2, true});
    CHECK(store.append("acc", {test_domain::MoneyDeposited{"acc", 6}}, ExpectedVersion::exact(2)) ==
          orchestrix::AppendResult{3, 3, 3, true});
    CHECK(store.read_stream("acc").size() == 3);
    Raw raw(url);
    CHECK(raw.exec("SELECT count(*) FROM event_tags") == "0");
}

TEST_CASE("postgres store: dcb a database made before tags gets them when a store creates the schema") {
    const auto url = test_support::fresh_postgres_database();
    Raw raw(url);
    // The schema as orchestrix 0.1 left it: no tags table, no index by type, the previous append function.
    raw.script(orchestrix::detail::postgres::schema_sql);
    raw.script("DROP FUNCTION orchestrix_append_tagged; DROP FUNCTION orchestrix_read_query; DROP TABLE event_tags; "
               "DROP INDEX events_by_type;");
    raw.script(test_support::previous_append_function);
    {
        orchestrix::PostgresEventStore<test_domain::AccountEvent> old(url, {1, false});
        REQUIRE(old.append("acc", {test_domain::MoneyDeposited{"acc", 1}}, ExpectedVersion::no_stream()).written);
    }
    {
        // A store of tagged events that may not create the schema cannot append: the function is missing.
        Store store(url, {1, false});
        CHECK_THROWS_AS(store.append("course-c1", {dcb_domain::CourseDefined{"c1", 3}}, ExpectedVersion::any()),
                        orchestrix::PostgresError);
    }
    Store store(url);
    CHECK(raw.exec("SELECT count(*) FROM pg_class WHERE relname IN ('event_tags', 'events_by_type') AND "
                   "relnamespace = current_schema()::regnamespace") == "2");
    REQUIRE(store.append("course-c1", {dcb_domain::CourseDefined{"c1", 3}}, ExpectedVersion::any()).written);
    CHECK(positions(store.read(Query::of({QueryItem{{}, {tag("course", "c1")}}}))) ==
          std::vector<orchestrix::position_t>{2});
    CHECK(store.head_position() == 2);
}

TEST_CASE("postgres store: dcb connections racing for the last seat never overbook the course") {
    const auto url = test_support::fresh_postgres_database();
    constexpr int threads = 8;
    constexpr int students_each = 3;
    constexpr int seats = 5;
    Store(url).append("course-race", {dcb_domain::CourseDefined{"race", seats}}, ExpectedVersion::no_stream());
    std::atomic<int> subscribed{0};
    std::atomic<int> full{0};
    std::atomic<int> other_errors{0};
    std::atomic<std::uint64_t> refusals{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
            try {
                Store store(url, {1, false}); // a connection of its own
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
    Store store(url);
    CHECK(store.read(Query::of({query_item<dcb_domain::StudentSubscribed>({tag("course", "race")})})).events.size() ==
          seats);
}

TEST_CASE("postgres store: dcb processes racing for the last seat never overbook the course") {
    const auto url = test_support::fresh_postgres_database();
    constexpr int processes = 4;
    constexpr int students_each = 3;
    constexpr int seats = 4;
    Store(url).append("course-race", {dcb_domain::CourseDefined{"race", seats}}, ExpectedVersion::no_stream());
    std::vector<pid_t> children;
    for (int p = 0; p < processes; ++p) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // The exit status: how many students got a seat, or 100 for any error but a refused append.
            try {
                Store store(url, {1, false});
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
    Store store(url);
    CHECK(store.read(Query::of({query_item<dcb_domain::StudentSubscribed>({tag("course", "race")})})).events.size() ==
          seats);
}

TEST_CASE("postgres store: dcb a reader by query during appends sees every matching event once, in order") {
    const auto url = test_support::fresh_postgres_database();
    constexpr int writers_count = 3;
    constexpr int per_writer = 60;
    Store store(url, {4, true});
    const Query query = Query::of({QueryItem{{}, {tag("course", "watched")}}});
    std::atomic<bool> done{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < writers_count; ++w) {
        writers.emplace_back([&, w] {
            for (int i = 0; i < per_writer; ++i) {
                const std::string student = "w" + std::to_string(w) + "-" + std::to_string(i);
                // Every other event is of another course, so that matches are not every position.
                (void)store.append("course-watched", {dcb_domain::StudentSubscribed{student, "watched"}},
                                   ExpectedVersion::any());
                (void)store.append("course-other", {dcb_domain::StudentSubscribed{student, "other"}},
                                   ExpectedVersion::any());
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
        const auto result = store.read(query, covered, 7);
        for (const auto& e : result.events) {
            REQUIRE(e.position > covered);
            seen.push_back(e.position);
        }
        REQUIRE(result.position >= covered);
        covered = result.position;
        if (last_round && result.events.empty()) break;
    }
    stopper.join();
    CHECK(seen == positions(store.read(query)));
    CHECK(seen.size() == static_cast<std::size_t>(writers_count * per_writer));
}
