#pragma once

// The dynamic-consistency-boundary contract (docs/dcb.md): one suite that every `dcb_event_store` passes
// unchanged, with the DCB specification's (dcb.events) reading and appending rules as its cases.
//
// Include this header after defining ORCHESTRIX_DCB_STORES as a std::tuple of factory types. A factory
//
//     struct MyFactory {
//         using store_type = ...;                  // an orchestrix::dcb_event_store over dcb_domain::CourseEvent
//         static constexpr int race_threads = 8;   // the race for the last seats: writers ...
//         static constexpr int race_seats = 5;     // ... and seats (race_threads * 3 students compete)
//         std::unique_ptr<store_type> make();      // a new, empty store
//         std::unique_ptr<store_type> open_again(); // optional: another handle (connection) on the last store
//     };

#include "support/catch.hpp"
#include "support/dcb_events.hpp"

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/decision.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#ifndef ORCHESTRIX_DCB_STORES
#error "define ORCHESTRIX_DCB_STORES as a std::tuple of store factories before including this header"
#endif

namespace dcb_contract {

using namespace dcb_domain;
using orchestrix::AppendCondition;
using orchestrix::AppendConditionError;
using orchestrix::ExpectedVersion;
using orchestrix::position_t;
using orchestrix::Query;
using orchestrix::query_item;
using orchestrix::QueryItem;
using orchestrix::tag;
using Envelope = orchestrix::EventEnvelope<CourseEvent>;

template <class Factory>
concept can_open_again = requires(Factory& f) {
    f.open_again();
};

template <class Result>
std::vector<position_t> positions(const Result& result) {
    std::vector<position_t> out;
    for (const auto& e : result.events) out.push_back(e.position);
    return out;
}

// Fills a store with a known history (positions in comments) and returns it.
template <class Store>
void seed(Store& store) {
    const auto any = ExpectedVersion::any();
    store.append("course-c1", {CourseDefined{"c1", 10}}, any);         // 1
    store.append("course-c2", {CourseDefined{"c2", 15}}, any);         // 2
    store.append("course-c1", {StudentSubscribed{"s1", "c1"}}, any);   // 3
    store.append("announcements", {AnnouncementPosted{"hello"}}, any); // 4
    store.append("course-c2", {StudentSubscribed{"s1", "c2"}}, any);   // 5
    store.append("course-c1", {CourseCapacityChanged{"c1", 12}}, any); // 6
    store.append("course-c1", {StudentSubscribed{"s2", "c1"}}, any);   // 7
    store.append("users", {UsernameClaimed{"ada", "u1"}}, any);        // 8
}

// A decision's projections for the course-subscription example of the DCB specification.
struct CourseCapacity {
    using event_types = std::variant<CourseDefined, CourseCapacityChanged>;
    std::string course_id;
    std::int64_t capacity = 0;
    bool exists = false;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {tag("course", course_id)}; }
    void apply(const CourseDefined& e) {
        capacity = e.capacity;
        exists = true;
    }
    void apply(const CourseCapacityChanged& e) { capacity = e.capacity; }
};

struct CourseSubscriptions {
    using event_types = std::variant<StudentSubscribed>;
    std::string course_id;
    std::int64_t count = 0;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {tag("course", course_id)}; }
    void apply(const StudentSubscribed&) { ++count; }
};

struct StudentSubscriptions {
    using event_types = std::variant<StudentSubscribed>;
    std::string student_id;
    std::int64_t count = 0;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {tag("student", student_id)}; }
    void apply(const StudentSubscribed&) { ++count; }
};

struct CourseFull : std::runtime_error {
    CourseFull() : std::runtime_error("course is full") {}
};

} // namespace dcb_contract

TEMPLATE_LIST_TEST_CASE("dcb contract: a query by type and tag returns the matching events in global order", "[dcb]",
                        ORCHESTRIX_DCB_STORES) {
    using namespace dcb_contract;
    TestType factory;
    auto store = factory.make();
    seed(*store);

    // Types only (any of them), tags only (all of them), both.
    CHECK(positions(store->read(Query::of({query_item<CourseDefined>()}))) == std::vector<position_t>{1, 2});
    CHECK(positions(store->read(Query::of({query_item<CourseDefined, CourseCapacityChanged>()}))) ==
          std::vector<position_t>{1, 2, 6});
    CHECK(positions(store->read(Query::of({QueryItem{{}, {tag("course", "c1")}}}))) ==
          std::vector<position_t>{1, 3, 6, 7});
    CHECK(positions(store->read(Query::of({QueryItem{{}, {tag("course", "c1"), tag("student", "s1")}}}))) ==
          std::vector<position_t>{3});
    CHECK(positions(store->read(Query::of({query_item<StudentSubscribed>({tag("student", "s1")})}))) ==
          std::vector<position_t>{3, 5});
    // A type and a tag that no event has together.
    CHECK(store->read(Query::of({query_item<UsernameClaimed>({tag("course", "c1")})})).events.empty());
    // Items are OR'ed; an event matched by two items is returned once.
    CHECK(positions(store->read(
              Query::of({query_item<CourseDefined>({tag("course", "c2")}), QueryItem{{}, {tag("student", "s1")}},
                         query_item<StudentSubscribed>({tag("course", "c2")})}))) == std::vector<position_t>{2, 3, 5});
    // An event without tags is found by its type.
    const auto announcements = store->read(Query::of({query_item<AnnouncementPosted>()}));
    REQUIRE(announcements.events.size() == 1);
    CHECK(announcements.events[0].position == 4);
    CHECK(announcements.events[0].stream_id == "announcements");
    CHECK(std::get<AnnouncementPosted>(announcements.events[0].event).text == "hello");
    // An unknown tag matches nothing; Query::all() matches everything.
    CHECK(store->read(Query::of({QueryItem{{}, {tag("course", "nope")}}})).events.empty());
    CHECK(positions(store->read(Query::all())) == std::vector<position_t>{1, 2, 3, 4, 5, 6, 7, 8});
}

TEMPLATE_LIST_TEST_CASE("dcb contract: a read starts after a position and reports the position it covers", "[dcb]",
                        ORCHESTRIX_DCB_STORES) {
    using namespace dcb_contract;
    TestType factory;
    auto store = factory.make();
    seed(*store);
    const Query c1 = Query::of({QueryItem{{}, {tag("course", "c1")}}});

    const auto all = store->read(c1);
    CHECK(all.position == 8); // the head, although the last match is at 6
    const auto after3 = store->read(c1, 3);
    CHECK(positions(after3) == std::vector<position_t>{6, 7});
    CHECK(after3.position == 8);
    CHECK(store->read(c1, 7).events.empty());
    CHECK(store->read(c1, 7).position == 8);
    CHECK(store->read(c1, 100).events.empty());

    // A read cut short by max_count covers up to its last event, so that a decision made on it is safe.
    const auto first_two = store->read(c1, 0, 2);
    CHECK(positions(first_two) == std::vector<position_t>{1, 3});
    CHECK(first_two.position == 3);
    const auto next = store->read(c1, first_two.position, 2);
    CHECK(positions(next) == std::vector<position_t>{6, 7});
    CHECK(store->read(c1, 0, 0).events.empty());

    // The events read are the stored events, with stream, version and metadata.
    const auto one = store->read(Query::of({query_item<CourseCapacityChanged>()}));
    REQUIRE(one.events.size() == 1);
    CHECK(one.events[0].stream_id == "course-c1");
    CHECK(one.events[0].version == 3);
    CHECK(std::get<CourseCapacityChanged>(one.events[0].event) == CourseCapacityChanged{"c1", 12});
    CHECK(one.events[0].metadata == store->read_all(6, 1)[0].metadata);

    // An empty store.
    auto empty = factory.make();
    CHECK(empty->read(Query::all()).events.empty());
    CHECK(empty->read(Query::all()).position == 0);
}

TEMPLATE_LIST_TEST_CASE("dcb contract: a conditional append fails only if a matching event came after its position",
                        "[dcb]", ORCHESTRIX_DCB_STORES) {
    using namespace dcb_contract;
    TestType factory;
    auto store = factory.make();
    seed(*store);
    const auto any = ExpectedVersion::any();
    const Query c1_subscriptions = Query::of({query_item<StudentSubscribed>({tag("course", "c1")})});

    // Matching events at or before `after` do not count; non-matching ones after it do not either.
    const auto written =
        store->append("course-c1", {StudentSubscribed{"s3", "c1"}}, any, AppendCondition{c1_subscriptions, 7});
    CHECK(written.written);
    CHECK(written.first_position == 9);

    // A matching event after `after` refuses the append, naming the first such position; nothing is written.
    try {
        (void)store->append("course-c1", {StudentSubscribed{"s4", "c1"}}, any, AppendCondition{c1_subscriptions, 2});
        FAIL("the conditional append was not refused");
    } catch (const AppendConditionError& e) {
        CHECK(e.position() == 3);
        CHECK(e.after() == std::optional<position_t>(2));
        CHECK(e.stream() == "course-c1");
    }
    CHECK(store->read_all().size() == 9);

    // Without a position the condition is "no matching event at all".
    CHECK_THROWS_AS(store->append("users", {UsernameClaimed{"ada", "u2"}}, any,
                                  AppendCondition{Query::of({query_item<UsernameClaimed>({tag("username", "ada")})})}),
                    AppendConditionError);
    CHECK(store
              ->append("users", {UsernameClaimed{"grace", "u2"}}, any,
                       AppendCondition{Query::of({query_item<UsernameClaimed>({tag("username", "grace")})})})
              .written);

    // Query::all(): no event at all after the position.
    CHECK_THROWS_AS(store->append("x", {AnnouncementPosted{"a"}}, any, AppendCondition{Query::all(), 9}),
                    AppendConditionError);
    const position_t head = store->read(Query::all()).position;
    CHECK(store->append("x", {AnnouncementPosted{"b"}}, any, AppendCondition{Query::all(), head}).written);

    // The events appended under a condition carry their tags like any other.
    CHECK(positions(store->read(Query::of({QueryItem{{}, {tag("user", "u2")}}}))) == std::vector<position_t>{10});
}

TEMPLATE_LIST_TEST_CASE("dcb contract: conditions compose with expected versions and idempotent retries", "[dcb]",
                        ORCHESTRIX_DCB_STORES) {
    using namespace dcb_contract;
    TestType factory;
    auto store = factory.make();
    seed(*store);
    const Query c1 = Query::of({QueryItem{{}, {tag("course", "c1")}}});

    // Both checked: the expected version first (docs/dcb.md), then the condition.
    CHECK_THROWS_AS(
        store->append("course-c1", {StudentSubscribed{"s5", "c1"}}, ExpectedVersion::exact(1), AppendCondition{c1, 8}),
        orchestrix::ConcurrencyError);
    CHECK_THROWS_AS(
        store->append("course-c1", {StudentSubscribed{"s5", "c1"}}, ExpectedVersion::exact(4), AppendCondition{c1, 1}),
        AppendConditionError);
    const std::vector<Envelope> batch{Envelope{StudentSubscribed{"s5", "c1"}}, Envelope{StudentSubscribed{"s6", "c1"}}};
    const auto first =
        store->append("course-c1", std::span<const Envelope>(batch), ExpectedVersion::exact(4), AppendCondition{c1, 8});
    CHECK(first.written);
    CHECK(first.stream_version == 6);

    // Re-sending the stored batch is an idempotent retry although its own events now match the condition.
    const auto again =
        store->append("course-c1", std::span<const Envelope>(batch), ExpectedVersion::exact(4), AppendCondition{c1, 8});
    CHECK_FALSE(again.written);
    CHECK(again.first_position == first.first_position);
    CHECK(again.last_position == first.last_position);
    CHECK(store->read_all().size() == 10);

    // An empty batch is a no-op whatever the condition.
    CHECK_FALSE(store->append("course-c1", std::span<const Envelope>(), ExpectedVersion::any(), AppendCondition{c1, 0})
                    .written);
    // read_stream and read_all see tagged events like any other.
    CHECK(store->read_stream("course-c1").size() == 6);
}

TEMPLATE_LIST_TEST_CASE("dcb contract: malformed queries and tags are refused and nothing is written", "[dcb]",
                        ORCHESTRIX_DCB_STORES) {
    using namespace dcb_contract;
    TestType factory;
    auto store = factory.make();
    seed(*store);

    // A type the store does not hold would make a condition that never fails: refused.
    const Query unknown = Query::of({QueryItem{{"course.misspelt"}, {}}});
    try {
        (void)store->read(unknown);
        FAIL("an unknown type was accepted");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "query");
        CHECK(std::string(e.what()).find("course.misspelt") != std::string::npos);
    }
    CHECK_THROWS_AS(store->append("x", {AnnouncementPosted{"a"}}, ExpectedVersion::any(), AppendCondition{unknown, 0}),
                    orchestrix::InvalidArgumentError);
    // An event whose tag is empty, too long, not UTF-8 or holds a NUL: refused with the whole batch.
    for (const std::string& bad : {std::string(), std::string(orchestrix::max_tag_length + 1, 'a'), std::string("\xff"),
                                   std::string("a\0b", 3)}) {
        const std::vector<Envelope> batch{Envelope{AnnouncementPosted{"fine"}}, Envelope{NoteTagged{bad}}};
        try {
            (void)store->append("course-bad", std::span<const Envelope>(batch), ExpectedVersion::any());
            FAIL("a malformed tag was accepted");
        } catch (const orchestrix::InvalidArgumentError& e) {
            CHECK(e.argument() == "events");
            CHECK(std::string(e.what()).find("note.tagged") != std::string::npos);
        }
    }
    CHECK(
        store->append("course-bad", {NoteTagged{std::string(orchestrix::max_tag_length, 'a')}}, ExpectedVersion::any())
            .written);
    CHECK(store->read(Query::of({QueryItem{{}, {std::string(orchestrix::max_tag_length, 'a')}}})).events.size() == 1);
    CHECK(store->read_all().size() == 9);
    CHECK(store->stream_version("course-bad") == 1);
    // Queries refuse malformed items when they are made.
    CHECK_THROWS_AS(Query::of(std::vector<QueryItem>{}), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(Query::of({QueryItem{}}), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(Query::of({QueryItem{{}, {""}}}), orchestrix::InvalidArgumentError);
}

TEMPLATE_LIST_TEST_CASE("dcb contract: a decision folds its projections from one read", "[dcb]",
                        ORCHESTRIX_DCB_STORES) {
    using namespace dcb_contract;
    TestType factory;
    auto store = factory.make();
    seed(*store);
    orchestrix::DecisionRepository decisions(*store);

    const auto d = decisions.load(CourseCapacity{"c1"}, CourseSubscriptions{"c1"}, StudentSubscriptions{"s1"});
    const auto& [capacity, course, student] = d.state;
    CHECK(capacity.exists);
    CHECK(capacity.capacity == 12);
    CHECK(course.count == 2);
    CHECK(student.count == 2);
    CHECK(d.position == 8);

    // A decision on that state is stored only while it holds.
    const std::vector<Envelope> s3{Envelope{StudentSubscribed{"s3", "c1"}}};
    CHECK(decisions.append("course-c1", std::span<const Envelope>(s3), d).written);
    const std::vector<Envelope> s4{Envelope{StudentSubscribed{"s4", "c1"}}};
    CHECK_THROWS_AS(decisions.append("course-c1", std::span<const Envelope>(s4), d), AppendConditionError);
    // An unrelated event does not invalidate it: the decision about s1 and c1 still holds after c2 changes.
    const auto fresh = decisions.load(CourseCapacity{"c1"}, CourseSubscriptions{"c1"}, StudentSubscriptions{"s1"});
    store->append("course-c2", {CourseCapacityChanged{"c2", 3}}, ExpectedVersion::any());
    CHECK(decisions.append("course-c1", std::span<const Envelope>(s4), fresh).written);
}

TEMPLATE_LIST_TEST_CASE("dcb contract: writers racing for the last seats never overbook a course", "[dcb][race]",
                        ORCHESTRIX_DCB_STORES) {
    using namespace dcb_contract;
    TestType factory;
    auto store = factory.make();
    const int threads = TestType::race_threads;
    const int seats = TestType::race_seats;
    store->append("course-race", {CourseDefined{"race", seats}}, ExpectedVersion::any());

    std::atomic<int> subscribed{0};
    std::atomic<int> full{0};
    std::atomic<int> untyped{0};
    std::atomic<std::uint32_t> conflicts{0};
    std::vector<std::thread> writers;
    std::vector<std::unique_ptr<typename TestType::store_type>> handles;
    for (int t = 0; t < threads; ++t) {
        if constexpr (can_open_again<TestType>) {
            handles.push_back(factory.open_again());
        }
    }
    for (int t = 0; t < threads; ++t) {
        auto* handle = handles.empty() ? store.get() : handles[static_cast<std::size_t>(t)].get();
        writers.emplace_back([&, handle, t] {
            orchestrix::DecisionRepository decisions(*handle);
            orchestrix::RetryPolicy retry;
            retry.max_attempts = 200;
            retry.initial_delay = std::chrono::microseconds(100);
            retry.max_delay = std::chrono::microseconds(5000);
            for (int k = 0; k < 3; ++k) {
                const std::string student = "s" + std::to_string(t) + "-" + std::to_string(k);
                try {
                    const auto result = decisions.execute(
                        "course-race",
                        std::tuple{CourseCapacity{"race"}, CourseSubscriptions{"race"}, StudentSubscriptions{student}},
                        [&](const CourseCapacity& c, const CourseSubscriptions& s, const StudentSubscriptions& mine) {
                            if (s.count >= c.capacity) throw CourseFull();
                            if (mine.count > 0) throw std::logic_error("subscribed twice");
                            return StudentSubscribed{student, "race"};
                        },
                        retry);
                    conflicts += result.attempts - 1;
                    ++subscribed;
                } catch (const CourseFull&) {
                    ++full;
                } catch (...) {
                    ++untyped;
                }
            }
        });
    }
    for (auto& w : writers) w.join();
    INFO("conflicts retried: " << conflicts.load());
    CHECK(untyped.load() == 0);
    CHECK(subscribed.load() == seats);
    CHECK(full.load() == threads * 3 - seats);
    const auto stored = store->read(Query::of({query_item<StudentSubscribed>({tag("course", "race")})}));
    CHECK(stored.events.size() == static_cast<std::size_t>(seats));
    std::set<std::string> students;
    for (const auto& e : stored.events) students.insert(std::get<StudentSubscribed>(e.event).student_id);
    CHECK(students.size() == static_cast<std::size_t>(seats));
}
