#include <orchestrix/core/decision.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"

#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace dcb_domain;
using orchestrix::ExpectedVersion;
using orchestrix::tag;
using Store = orchestrix::InMemoryEventStore<CourseEvent>;

struct Capacity {
    using event_types = std::variant<CourseDefined, CourseCapacityChanged>;
    std::string course_id;
    std::int64_t capacity = 0;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {tag("course", course_id)}; }
    void apply(const CourseDefined& e) { capacity = e.capacity; }
    void apply(const CourseCapacityChanged& e) { capacity = e.capacity; }
};

struct Subscribed {
    using event_types = std::variant<StudentSubscribed>;
    std::string course_id;
    std::vector<std::string> students{};
    [[nodiscard]] std::array<std::string, 1> tags() const { return {tag("course", course_id)}; }
    void apply(const StudentSubscribed& e) { students.push_back(e.student_id); }
};

// A projection without tags reads every event of its types.
struct ClaimedNames {
    using event_types = std::variant<UsernameClaimed>;
    std::size_t count = 0;
    void apply(const UsernameClaimed&) { ++count; }
};

static_assert(orchestrix::decision_projection<Capacity, CourseEvent>);
static_assert(orchestrix::decision_projection<ClaimedNames, CourseEvent>);
struct NoApply {
    using event_types = std::variant<CourseDefined>;
};
static_assert(!orchestrix::decision_projection<NoApply, CourseEvent>);

} // namespace

TEST_CASE("decision: the query is derived from the projections' event types and tags") {
    const auto item = orchestrix::projection_query_item(Capacity{"c1"});
    CHECK(item.types == std::vector<std::string>{"course.defined", "course.capacity_changed"});
    CHECK(item.tags == std::vector<std::string>{"course:c1"});
    const auto untagged = orchestrix::projection_query_item(ClaimedNames{});
    CHECK(untagged.types == std::vector<std::string>{"user.username_claimed"});
    CHECK(untagged.tags.empty());

    Store store;
    orchestrix::DecisionRepository decisions(store);
    const auto d = decisions.load(Capacity{"c1"}, ClaimedNames{});
    REQUIRE(d.query.items().size() == 2);
    CHECK(d.query.items()[1].types == std::vector<std::string>{"user.username_claimed"});
    CHECK(d.position == 0);
}

TEST_CASE("decision: each event reaches only the projections whose types and tags it matches") {
    Store store;
    store.append("c1", {CourseDefined{"c1", 3}, StudentSubscribed{"a", "c1"}}, ExpectedVersion::any());
    store.append("c2", {CourseDefined{"c2", 9}, StudentSubscribed{"b", "c2"}}, ExpectedVersion::any());
    store.append("u", {UsernameClaimed{"ada", "u1"}, UsernameClaimed{"bob", "u2"}}, ExpectedVersion::any());
    orchestrix::DecisionRepository decisions(store);
    const auto d = decisions.load(Capacity{"c1"}, Subscribed{"c1"}, Subscribed{"c2"}, ClaimedNames{});
    CHECK(std::get<0>(d.state).capacity == 3);
    CHECK(std::get<1>(d.state).students == std::vector<std::string>{"a"});
    CHECK(std::get<2>(d.state).students == std::vector<std::string>{"b"});
    CHECK(std::get<3>(d.state).count == 2);
    CHECK(d.position == 6);
}

TEST_CASE("decision: execute appends what the decision returns, and nothing for an empty result") {
    Store store;
    store.append("c1", {CourseDefined{"c1", 2}}, ExpectedVersion::any());
    orchestrix::DecisionRepository decisions(store);
    const auto one =
        decisions.execute("c1", std::tuple{Capacity{"c1"}, Subscribed{"c1"}}, [](const Capacity&, const Subscribed&) {
            return StudentSubscribed{"a", "c1"};
        });
    CHECK(one.append.written);
    CHECK(one.attempts == 1);
    const auto many = decisions.execute("c1", std::tuple{Subscribed{"c1"}}, [](const Subscribed&) {
        return std::vector<CourseEvent>{StudentSubscribed{"b", "c1"}, CourseCapacityChanged{"c1", 5}};
    });
    CHECK(many.append.first_position == 3);
    CHECK(many.append.last_position == 4);
    const auto none = decisions.execute("c1", std::tuple{Subscribed{"c1"}},
                                        [](const Subscribed&) { return std::optional<StudentSubscribed>{}; });
    CHECK_FALSE(none.append.written);
    CHECK(store.head_position() == 4);
}

TEST_CASE("decision: a refusal propagates at once and a conflict is decided again on fresh state") {
    Store store;
    store.append("c1", {CourseDefined{"c1", 1}}, ExpectedVersion::any());
    orchestrix::DecisionRepository decisions(store);
    int calls = 0;
    std::vector<std::chrono::microseconds> waits;
    orchestrix::RetryPolicy retry;
    retry.sleep = [&](std::chrono::microseconds w) { waits.push_back(w); };
    const auto subscribe = [&](const std::string& student) {
        return decisions.execute(
            "c1", std::tuple{Capacity{"c1"}, Subscribed{"c1"}},
            [&, student](const Capacity& c, const Subscribed& s) {
                ++calls;
                if (calls == 1) store.append("c1", {CourseCapacityChanged{"c1", 2}}, ExpectedVersion::any()); // a rival
                if (static_cast<std::int64_t>(s.students.size()) >= c.capacity) throw std::runtime_error("full");
                return StudentSubscribed{student, "c1"};
            },
            retry);
    };
    const auto result = subscribe("a");
    CHECK(result.attempts == 2); // the rival's change came after the first read: decided again
    CHECK(waits.size() == 1);
    CHECK(subscribe("b").attempts == 1);
    CHECK_THROWS_WITH(subscribe("c"), "full");
    CHECK(waits.size() == 1); // no retry for a refusal

    // A conflict on every attempt: the last one is rethrown after max_attempts.
    orchestrix::RetryPolicy twice;
    twice.max_attempts = 2;
    twice.sleep = [](std::chrono::microseconds) {};
    int tries = 0;
    CHECK_THROWS_AS(
        decisions.execute(
            "c1", std::tuple{Subscribed{"c1"}},
            [&](const Subscribed&) {
                ++tries;
                store.append("c1", {StudentSubscribed{"r" + std::to_string(tries), "c1"}}, ExpectedVersion::any());
                return StudentSubscribed{"z", "c1"};
            },
            twice),
        orchestrix::AppendConditionError);
    CHECK(tries == 2);
}
