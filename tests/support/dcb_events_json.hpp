#pragma once

// JSON conversions of the tagged test domain's events, for the durable stores.

#include "support/dcb_events.hpp"

#include <orchestrix/json.hpp>

#include <nlohmann/json.hpp>

namespace dcb_domain {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CourseDefined, course_id, capacity)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CourseCapacityChanged, course_id, capacity)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StudentSubscribed, student_id, course_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UsernameClaimed, username, user_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AnnouncementPosted, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NoteTagged, raw_tag)

} // namespace dcb_domain
