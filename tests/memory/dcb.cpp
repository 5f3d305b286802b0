#include <orchestrix/core/dcb.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/test_events.hpp"

#include <memory>
#include <tuple>

namespace {

struct InMemoryDcbFactory {
    using store_type = orchestrix::InMemoryEventStore<dcb_domain::CourseEvent>;
    static constexpr int race_threads = 8;
    static constexpr int race_seats = 5;
    std::unique_ptr<store_type> make() { return std::make_unique<store_type>(); }
};

} // namespace

#define ORCHESTRIX_DCB_STORES std::tuple<InMemoryDcbFactory>
#include "support/dcb_contract.hpp"

static_assert(orchestrix::dcb_event_store<orchestrix::InMemoryEventStore<dcb_domain::CourseEvent>>);
// A store of events that do not declare tags is an ordinary store, with neither the calls nor their index.
static_assert(!orchestrix::dcb_event_store<orchestrix::InMemoryEventStore<test_domain::AccountEvent>>);
static_assert(orchestrix::event_store<orchestrix::InMemoryEventStore<test_domain::AccountEvent>>);

TEST_CASE("in-memory store: dcb indexes make a condition check cost the events after its position") {
    using namespace dcb_domain;
    using orchestrix::ExpectedVersion;
    orchestrix::InMemoryEventStore<CourseEvent> store;
    // 10,000 subscriptions to other courses, then one course: its reads and checks find it by its tag.
    for (int i = 0; i < 10'000; ++i) {
        store.append("course-" + std::to_string(i % 100),
                     {StudentSubscribed{"s" + std::to_string(i), std::to_string(i % 100)}}, ExpectedVersion::any());
    }
    store.append("course-x", {CourseDefined{"x", 1}}, ExpectedVersion::any());
    const auto query = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "x")}}});
    const auto read = store.read(query);
    REQUIRE(read.events.size() == 1);
    CHECK(read.events[0].position == 10'001);
    CHECK(read.position == 10'001);
    // Two tags of which one is rare: the rare one's list is walked.
    const auto both = orchestrix::Query::of(
        {orchestrix::QueryItem{{}, {orchestrix::tag("course", "7"), orchestrix::tag("student", "s107")}}});
    REQUIRE(store.read(both).events.size() == 1);
    CHECK(store.read(both).events[0].position == 108);
    CHECK(store
              .append("course-x", {StudentSubscribed{"s", "x"}}, ExpectedVersion::any(),
                      orchestrix::AppendCondition{query, read.position})
              .written);
}
