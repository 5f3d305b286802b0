#pragma once

// The last seats of a course, booked by conditional appends straight on a store (no DecisionRepository): what
// the durable stores' race tests run from several threads, connections and processes.

#include "support/dcb_events.hpp"

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>

#include <cstdint>
#include <string>
#include <variant>

namespace dcb_seats {

/// What a booking decides on: the course's capacity and its subscriptions.
inline orchestrix::Query course_query(const std::string& course) {
    using namespace dcb_domain;
    return orchestrix::Query::of(
        {orchestrix::query_item<CourseDefined, CourseCapacityChanged>({orchestrix::tag("course", course)}),
         orchestrix::query_item<StudentSubscribed>({orchestrix::tag("course", course)})});
}

/// Subscribes `student` to `course` if a seat is left: reads the course, decides, and appends on the
/// condition that nothing the decision read changed since; a refused append (`AppendConditionError`, counted
/// in `refusals`) reads and decides again. Returns whether the student got a seat. Any other error escapes.
template <class Store>
bool subscribe(Store& store, const std::string& course, const std::string& student, std::uint64_t& refusals) {
    using namespace dcb_domain;
    const orchestrix::Query query = course_query(course);
    for (;;) {
        const auto read = store.read(query);
        std::int64_t capacity = 0;
        std::int64_t taken = 0;
        for (const auto& e : read.events) {
            if (const auto* defined = std::get_if<CourseDefined>(&e.event)) capacity = defined->capacity;
            if (const auto* changed = std::get_if<CourseCapacityChanged>(&e.event)) capacity = changed->capacity;
            if (std::holds_alternative<StudentSubscribed>(e.event)) ++taken;
        }
        if (taken >= capacity) return false;
        try {
            (void)store.append("course-" + course, {StudentSubscribed{student, course}},
                               orchestrix::ExpectedVersion::any(), orchestrix::AppendCondition{query, read.position});
            return true;
        } catch (const orchestrix::AppendConditionError&) {
            ++refusals;
        }
    }
}

} // namespace dcb_seats
