#pragma once

// A small tagged domain for the dynamic-consistency-boundary tests: courses with a capacity, students who
// subscribe to them, user names that must be unique, and an event without tags.

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/message.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace dcb_domain {

struct CourseDefined {
    static constexpr std::string_view type_name = "course.defined";
    std::string course_id;
    std::int64_t capacity = 0;
    bool operator==(const CourseDefined&) const = default;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {orchestrix::tag("course", course_id)}; }
};

struct CourseCapacityChanged {
    static constexpr std::string_view type_name = "course.capacity_changed";
    std::string course_id;
    std::int64_t capacity = 0;
    bool operator==(const CourseCapacityChanged&) const = default;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {orchestrix::tag("course", course_id)}; }
};

struct StudentSubscribed {
    static constexpr std::string_view type_name = "course.student_subscribed";
    std::string student_id;
    std::string course_id;
    bool operator==(const StudentSubscribed&) const = default;
    [[nodiscard]] std::array<std::string, 2> tags() const {
        return {orchestrix::tag("student", student_id), orchestrix::tag("course", course_id)};
    }
};

struct UsernameClaimed {
    static constexpr std::string_view type_name = "user.username_claimed";
    std::string username;
    std::string user_id;
    bool operator==(const UsernameClaimed&) const = default;
    [[nodiscard]] std::array<std::string, 2> tags() const {
        return {orchestrix::tag("username", username), orchestrix::tag("user", user_id)};
    }
};

struct AnnouncementPosted {
    static constexpr std::string_view type_name = "announcement.posted";
    std::string text;
    bool operator==(const AnnouncementPosted&) const = default;
    [[nodiscard]] auto tags() const { return orchestrix::no_tags; }
};

// An event whose tag is whatever it was given: how the tests make malformed tags.
struct NoteTagged {
    static constexpr std::string_view type_name = "note.tagged";
    std::string raw_tag;
    bool operator==(const NoteTagged&) const = default;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {raw_tag}; }
};

using CourseEvent = std::variant<CourseDefined, CourseCapacityChanged, StudentSubscribed, UsernameClaimed,
                                 AnnouncementPosted, NoteTagged>;

} // namespace dcb_domain
