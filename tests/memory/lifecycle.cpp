// The in-memory store's data lifecycle (memory/event_store.hpp, docs/lifecycle.md): the shared contract, and
// what only this store promises (indexes, waiting, threads, freed memory).

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/lifecycle.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/test_events.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

namespace {

struct InMemoryLifecycleFactory {
    using store_type = orchestrix::InMemoryEventStore<test_domain::AccountEvent>;
    std::unique_ptr<store_type> make() { return std::make_unique<store_type>(); }
};

} // namespace

#define ORCHESTRIX_LIFECYCLE_STORES std::tuple<InMemoryLifecycleFactory>
#include "support/lifecycle_contract.hpp"

namespace {

using orchestrix::DeleteMode;
using orchestrix::DeleteOptions;
using orchestrix::ExpectedVersion;
using orchestrix::position_t;
using orchestrix::stream_version_t;
using orchestrix::unlimited;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using CourseStore = orchestrix::InMemoryEventStore<dcb_domain::CourseEvent>;

static_assert(orchestrix::lifecycle_event_store<Store>);
static_assert(orchestrix::lifecycle_event_store<CourseStore>);

std::vector<orchestrix::EventEnvelope<AccountEvent>> deposits(const std::string& account, int count) {
    std::vector<orchestrix::EventEnvelope<AccountEvent>> batch;
    for (int i = 0; i < count; ++i) batch.emplace_back(MoneyDeposited{account, i + 1});
    return batch;
}

template <class S>
std::vector<position_t> query_positions(const S& store, const orchestrix::Query& query, position_t after = 0) {
    std::vector<position_t> out;
    for (const auto& e : store.read(query, after).events) out.push_back(e.position);
    return out;
}

// An event that counts the payloads alive, so a test can tell freed events from hidden ones.
struct Counted {
    static inline std::atomic<long> alive{0};
    Counted() { ++alive; }
    Counted(const Counted&) { ++alive; }
    Counted(Counted&&) noexcept { ++alive; }
    Counted& operator=(const Counted&) = default;
    Counted& operator=(Counted&&) noexcept = default;
    ~Counted() { --alive; }
    bool operator==(const Counted&) const = default;
};
struct Payload {
    static constexpr std::string_view type_name = "test.payload";
    std::string text;
    Counted counted;
    bool operator==(const Payload&) const = default;
};
using PayloadEvent = std::variant<Payload>;

} // namespace

TEST_CASE("in-memory lifecycle: reads by query and the append condition skip removed events") {
    using namespace dcb_domain;
    CourseStore store;
    store.append("course-a", {CourseDefined{"a", 10}}, ExpectedVersion::no_stream());    // 1
    store.append("course-b", {CourseDefined{"b", 10}}, ExpectedVersion::no_stream());    // 2
    store.append("course-a", {StudentSubscribed{"s1", "a"}}, ExpectedVersion::exact(1)); // 3
    store.append("course-b", {StudentSubscribed{"s1", "b"}}, ExpectedVersion::exact(1)); // 4
    store.append("course-a", {StudentSubscribed{"s2", "a"}, CourseCapacityChanged{"a", 20}},
                 ExpectedVersion::exact(2)); // 5-6

    const auto course_a = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "a")}}});
    const auto student_s1 = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("student", "s1")}}});
    const auto subscriptions =
        orchestrix::Query::of({orchestrix::QueryItem{{std::string(StudentSubscribed::type_name)}, {}}});
    REQUIRE(query_positions(store, course_a) == std::vector<position_t>{1, 3, 5, 6});

    SECTION("a truncation") {
        CHECK(store.truncate_stream("course-a", 3).events_removed == 2);
        CHECK(query_positions(store, course_a) == std::vector<position_t>{5, 6});
        CHECK(query_positions(store, student_s1) == std::vector<position_t>{4});
        CHECK(query_positions(store, subscriptions) == std::vector<position_t>{4, 5});
        CHECK(query_positions(store, orchestrix::Query::all()) == std::vector<position_t>{2, 4, 5, 6});
        CHECK(query_positions(store, orchestrix::Query::all(), 2) == std::vector<position_t>{4, 5, 6});
        // What a query read covers is still the head.
        CHECK(store.read(course_a).position == 6);
        // A condition on a removed event no longer fails; one on a kept event still does.
        const auto student_s2 = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("student", "s2")}}});
        CHECK_THROWS_AS(store.append("x", {AnnouncementPosted{"hi"}}, ExpectedVersion::any(),
                                     orchestrix::AppendCondition{student_s2, std::nullopt}),
                        orchestrix::AppendConditionError);
        store.truncate_stream("course-b", 3);
        CHECK(store
                  .append("x", {AnnouncementPosted{"hi"}}, ExpectedVersion::any(),
                          orchestrix::AppendCondition{student_s1, std::nullopt})
                  .written);
    }
    SECTION("a delete, after which a tag no event carries any more is not found") {
        CHECK(store.delete_stream("course-a", ExpectedVersion::exact(4), DeleteOptions{}).events_removed == 4);
        CHECK(query_positions(store, course_a).empty());
        CHECK(query_positions(store, subscriptions) == std::vector<position_t>{4});
        CHECK(store
                  .append("course-a", {CourseDefined{"a", 5}}, ExpectedVersion::no_stream(),
                          orchestrix::AppendCondition{course_a, std::nullopt})
                  .stream_version == 5);
        CHECK(query_positions(store, course_a) == std::vector<position_t>{7});
        // Reading the matches in place sees only stored events.
        std::vector<position_t> visited;
        store.visit(orchestrix::Query::all(), 0, [&](const auto& e) { visited.push_back(e.position()); });
        CHECK(visited == std::vector<position_t>{2, 4, 7});
    }
}

TEST_CASE("in-memory lifecycle: removals leave the head, and wait_for_position still wakes on appends") {
    Store store;
    store.append("a", deposits("a", 3), ExpectedVersion::no_stream());
    store.append("b", deposits("b", 2), ExpectedVersion::no_stream());
    store.delete_stream("a", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard});
    store.truncate_stream("b", 3);
    CHECK(store.head_position() == 5);
    CHECK(store.stream_count() == 0);
    CHECK(store.read_all(1, unlimited).empty());
    // A removed position was stored: waiting for it returns at once.
    CHECK(store.wait_for_position(5, std::chrono::milliseconds(0)));
    CHECK_FALSE(store.wait_for_position(6, std::chrono::milliseconds(1)));

    std::atomic<bool> woke{false};
    std::thread waiter([&] { woke = store.wait_for_position(6, std::chrono::seconds(10)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const orchestrix::AppendResult r = store.append("c", deposits("c", 1), ExpectedVersion::no_stream());
    waiter.join();
    CHECK(woke);
    CHECK(r.first_position == 6);
    CHECK(store.stream_count() == 1);
    CHECK(lifecycle_contract::positions_of(store) == std::vector<position_t>{6});
}

TEST_CASE("in-memory lifecycle: reads, retries and positions stay right once the removed front of the log is dropped") {
    Store store;
    for (int i = 0; i < 40; ++i)
        store.append("old-" + std::to_string(i), deposits("x", 5), ExpectedVersion::no_stream());
    const auto kept_batch = deposits("kept", 3);
    store.append("kept", kept_batch, ExpectedVersion::no_stream()); // 201-203
    for (int i = 0; i < 40; ++i)
        store.delete_stream("old-" + std::to_string(i), ExpectedVersion::any(), DeleteOptions{});
    store.append("new", deposits("new", 2), ExpectedVersion::no_stream()); // 204-205

    CHECK(store.head_position() == 205);
    CHECK(lifecycle_contract::positions_of(store) == std::vector<position_t>{201, 202, 203, 204, 205});
    CHECK(store.read_all(150, 2).front().position == 201);
    CHECK(store.read_all(203, unlimited).size() == 3);
    CHECK(store.read_all(206, unlimited).empty());
    std::vector<position_t> visited;
    CHECK(store.visit_all(
              0, [&](const auto& e) { visited.push_back(e.position()); }, 4) == 4);
    CHECK(visited == std::vector<position_t>{201, 202, 203, 204});
    // A retry of the kept batch is still recognised, and reports the original positions.
    const orchestrix::AppendResult retry = store.append("kept", kept_batch, ExpectedVersion::no_stream());
    CHECK_FALSE(retry.written);
    CHECK(retry.first_position == 201);
    CHECK(retry.stream_version == 3);
    // The removed streams' ids are free again: re-appending one of their batches is a new append.
    CHECK(store.removed_count() == 200);
    CHECK(store.stream_count() == 2);
    CHECK(store.stream_info("old-7").status == orchestrix::StreamStatus::deleted);
    CHECK(store.stream_version("old-7") == 0);
}

TEST_CASE("in-memory lifecycle: removed events are freed, not hidden") {
    {
        orchestrix::InMemoryEventStore<PayloadEvent> store;
        const long before = Counted::alive.load();
        for (int s = 0; s < 4; ++s) {
            std::vector<orchestrix::EventEnvelope<PayloadEvent>> batch;
            for (int i = 0; i < 50; ++i) batch.emplace_back(Payload{std::string(200, 'x'), Counted{}});
            store.append("s" + std::to_string(s), batch, ExpectedVersion::no_stream());
        }
        CHECK(Counted::alive.load() - before == 200);

        store.delete_stream("s0", ExpectedVersion::any(), DeleteOptions{});
        CHECK(Counted::alive.load() - before == 150);
        store.truncate_stream("s1", 41); // keeps 41-50
        CHECK(Counted::alive.load() - before == 110);
        const std::vector<orchestrix::RetentionRule> rules{{"s", 5, std::nullopt}};
        CHECK(store.apply_retention(rules, std::chrono::system_clock::now()) == orchestrix::RetentionReport{3, 95});
        CHECK(Counted::alive.load() - before == 15);
        CHECK(store.read_stream("s2", 0, unlimited).front().version == 46);
        CHECK(store.stream_info("s3") ==
              orchestrix::StreamInfo{50, 1, 46, orchestrix::StreamStatus::active, orchestrix::Recreation::on_append});
    }
    CHECK(Counted::alive.load() == 0);
}

TEST_CASE("in-memory lifecycle: retention by age removes each stream's events recorded before the cutoff") {
    Store store;
    for (int i = 0; i < 4; ++i) {
        store.append("log", deposits("log", 1), ExpectedVersion::any());
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    const auto events = store.read_stream("log", 1, unlimited);
    REQUIRE(events.size() == 4);
    // Cut off at the third event's time: the first two were recorded before it.
    const auto third = events[2].metadata.recorded_at;
    const std::vector<orchestrix::RetentionRule> rules{{"log", std::nullopt, std::chrono::seconds(10)}};
    CHECK(store.apply_retention(rules, third + std::chrono::seconds(10)) == orchestrix::RetentionReport{1, 2});
    CHECK(lifecycle_contract::versions_of(store, "log") == std::vector<stream_version_t>{3, 4});
    // A max_age longer than the clock's range removes nothing.
    const std::vector<orchestrix::RetentionRule> forever{{"", std::nullopt, std::chrono::seconds::max()}};
    CHECK(store.apply_retention(forever, std::chrono::system_clock::now()) == orchestrix::RetentionReport{0, 0});
}

TEST_CASE("in-memory lifecycle: removals under concurrent appends and reads keep every read consistent") {
    Store store;
    constexpr int writers = 4;
    constexpr int rounds = 300;
    std::atomic<bool> done{false};
    std::atomic<int> bad_reads{0};

    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            for (int r = 0; r < rounds; ++r) {
                const std::string stream = "w" + std::to_string(w) + "-" + std::to_string(r % 10);
                store.append(stream, deposits(stream, 2), ExpectedVersion::any());
            }
        });
    }
    threads.emplace_back([&] { // the remover
        int n = 0;
        while (!done) {
            const std::string stream = "w" + std::to_string(n % writers) + "-" + std::to_string(n % 10);
            if (n % 3 == 0) {
                store.delete_stream(stream, ExpectedVersion::any(), DeleteOptions{});
            } else {
                const orchestrix::StreamInfo info = store.stream_info(stream);
                if (info.status == orchestrix::StreamStatus::active && info.version > 1) {
                    store.truncate_stream(stream, info.version);
                }
            }
            if (n % 7 == 0) {
                const std::vector<orchestrix::RetentionRule> rules{{"w1", 3, std::nullopt}};
                (void)store.apply_retention(rules, std::chrono::system_clock::now());
            }
            ++n;
        }
    });
    threads.emplace_back([&] { // a reader: global order ascending, each stream's versions ascending
        while (!done) {
            const auto all = store.read_all(1, unlimited);
            position_t last = 0;
            for (const auto& e : all) {
                if (e.position <= last) ++bad_reads;
                last = e.position;
            }
            const auto one = store.read_stream("w0-0", 0, unlimited);
            for (std::size_t i = 1; i < one.size(); ++i)
                if (one[i].version != one[i - 1].version + 1) ++bad_reads;
        }
    });
    for (int w = 0; w < writers; ++w) threads[static_cast<std::size_t>(w)].join();
    done = true;
    for (std::size_t t = writers; t < threads.size(); ++t) threads[t].join();

    CHECK(bad_reads == 0);
    CHECK(store.head_position() == static_cast<position_t>(writers * rounds * 2));
    const auto all = store.read_all(1, unlimited);
    CHECK(all.size() + store.removed_count() == store.head_position());
    std::set<std::string> streams;
    for (const auto& e : all) streams.insert(e.stream_id);
    CHECK(streams.size() == store.stream_count());
    // Every stream reads as a run of versions ending at its version.
    for (const std::string& s : streams) {
        const auto events = store.read_stream(s, 0, unlimited);
        REQUIRE_FALSE(events.empty());
        CHECK(events.back().version == store.stream_version(s));
        CHECK(events.front().version == store.stream_info(s).first_version);
        CHECK(events.back().version - events.front().version + 1 == events.size());
    }
}
