#pragma once

// JSON conversions of the workload's events, for the durable stores (which keep events as JSON).

#include "dcb_workload.hpp"
#include "workload.hpp"

#include <nlohmann/json.hpp>

namespace bench {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Opened, account_id, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, account_id, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Withdrawn, account_id, amount)
} // namespace bench

namespace bench::dcb {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CourseDefined, course_id, capacity)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CourseCapacityChanged, course_id, capacity)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StudentSubscribed, student_id, course_id)
} // namespace bench::dcb
