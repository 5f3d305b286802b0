#pragma once

// The DCB workload (decisions across streams, docs/dcb.md), shared by the in-memory, SQLite and PostgreSQL
// benchmarks (keep it fixed so figures compare across versions): the course/student domain of
// examples/11-dcb.
//
// Store:    N events (10,000 or 100,000): N/10 courses, each defined once (CourseDefined, tag course:<c>)
//           and then given 9 subscriptions (StudentSubscribed, tags student:<s> and course:<c>) by 3N/10
//           students, each of whom takes 3 courses. The courses are defined first, then the subscriptions
//           come round-robin over the courses, so each course's 10 events are spread over the whole log.
//           Each event goes to the stream "course-<c>".
// Decision: subscribe student s to course c (what examples/11-dcb decides): read the course's definition
//           and its subscriptions (tag course:<c>) and the student's subscriptions (tag student:<s>), 13
//           events; check that the course exists, has a free seat (capacity 1,000,000: always) and that
//           the student takes fewer than 10 courses (always); append StudentSubscribed{s, c} to
//           "course-<c>" on the condition that none of those events changed since the read. Decision i
//           (i < N/10) is for course i and student 3i+1, so every decision of a run reads the same number
//           of events (each course and each student is decided on once).

#include <orchestrix/orchestrix.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace bench::dcb {

using orchestrix::tag;

struct CourseDefined {
    static constexpr std::string_view type_name = "course.defined";
    std::string course_id;
    std::int64_t capacity = 0;
    bool operator==(const CourseDefined&) const = default;
    auto tags() const { return std::array{tag("course", course_id)}; }
};
struct CourseCapacityChanged {
    static constexpr std::string_view type_name = "course.capacity_changed";
    std::string course_id;
    std::int64_t capacity = 0;
    bool operator==(const CourseCapacityChanged&) const = default;
    auto tags() const { return std::array{tag("course", course_id)}; }
};
struct StudentSubscribed {
    static constexpr std::string_view type_name = "course.student_subscribed";
    std::string student_id;
    std::string course_id;
    bool operator==(const StudentSubscribed&) const = default;
    auto tags() const { return std::array{tag("student", student_id), tag("course", course_id)}; }
};
using Event = std::variant<CourseDefined, CourseCapacityChanged, StudentSubscribed>;

inline constexpr std::int64_t capacity = 1'000'000; // never reached: every decision appends
inline constexpr int max_courses_per_student = 10;  // checked, never reached
inline constexpr int subscriptions_per_course = 9;
inline constexpr int courses_per_student = 3;

inline std::string course_id(std::int64_t i) {
    char buffer[24];
    std::snprintf(buffer, sizeof buffer, "c%06lld", static_cast<long long>(i));
    return buffer;
}
inline std::string student_id(std::int64_t i) {
    char buffer[24];
    std::snprintf(buffer, sizeof buffer, "s%06lld", static_cast<long long>(i));
    return buffer;
}
inline std::string course_stream(const std::string& course) { return "course-" + course; }

/// Courses in a store of `events` events.
inline std::int64_t courses_of(std::int64_t events) { return events / (1 + subscriptions_per_course); }

/// Calls `f(stream, event)` for each event of the store of `events` events, in order.
template <class F>
void for_each_prefill_event(std::int64_t events, F&& f) {
    const std::int64_t courses = courses_of(events);
    for (std::int64_t c = 0; c < courses; ++c) {
        const std::string course = course_id(c);
        f(course_stream(course), Event{CourseDefined{course, capacity}});
    }
    for (std::int64_t k = 0; k < courses * subscriptions_per_course; ++k) {
        const std::string course = course_id(k % courses);
        f(course_stream(course), Event{StudentSubscribed{student_id(k / courses_per_student), course}});
    }
}

/// The course and student of decision `i` (i < courses_of(events)).
inline std::string decision_course(std::int64_t i) { return course_id(i); }
inline std::string decision_student(std::int64_t i) { return student_id(3 * i + 1); }

// The decision's projections (as examples/11-dcb declares them).
struct CourseCapacity {
    using event_types = std::variant<CourseDefined, CourseCapacityChanged>;
    std::string course_id;
    std::int64_t capacity = 0;
    bool exists = false;
    auto tags() const { return std::array{tag("course", course_id)}; }
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
    auto tags() const { return std::array{tag("course", course_id)}; }
    void apply(const StudentSubscribed&) { ++count; }
};
struct StudentSubscriptions {
    using event_types = std::variant<StudentSubscribed>;
    std::string student_id;
    std::int64_t count = 0;
    auto tags() const { return std::array{tag("student", student_id)}; }
    void apply(const StudentSubscribed&) { ++count; }
};

/// The decision: the event to append, or an exception (never thrown in the workload).
inline StudentSubscribed decide(const std::string& student, const std::string& course, bool exists, std::int64_t seats,
                                std::int64_t taken, std::int64_t mine) {
    if (!exists) throw std::runtime_error("no course " + course);
    if (taken >= seats) throw std::runtime_error("course " + course + " is full");
    if (mine >= max_courses_per_student) throw std::runtime_error(student + " takes too many courses");
    return StudentSubscribed{student, course};
}

/// The query the decision reads and appends on (what DecisionRepository::load builds from the projections).
inline orchestrix::Query decision_query(const std::string& student, const std::string& course) {
    return orchestrix::Query::of({
        orchestrix::query_item<CourseDefined, CourseCapacityChanged>({tag("course", course)}),
        orchestrix::query_item<StudentSubscribed>({tag("course", course)}),
        orchestrix::query_item<StudentSubscribed>({tag("student", student)}),
    });
}

} // namespace bench::dcb
