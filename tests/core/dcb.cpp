#include <orchestrix/core/dcb.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"

#include <string>
#include <vector>

using orchestrix::Query;
using orchestrix::QueryItem;
using orchestrix::tag;

TEST_CASE("dcb: tag() joins a key and a value, and events declare their tags") {
    CHECK(tag("course", "c1") == "course:c1");
    const dcb_domain::StudentSubscribed e{"s1", "c1"};
    const auto& tags = orchestrix::tags_of(e);
    CHECK(std::vector<std::string>(tags.begin(), tags.end()) == std::vector<std::string>{"student:s1", "course:c1"});
    static_assert(orchestrix::tagged_event<dcb_domain::AnnouncementPosted>);
    static_assert(orchestrix::tagged_event_variant<dcb_domain::CourseEvent>);
    static_assert(!orchestrix::tagged_event_variant<std::variant<dcb_domain::CourseDefined, int>>);
}

namespace legacy {
struct Enrolled {
    static constexpr std::string_view type_name = "legacy.enrolled";
    std::string course;
    bool operator==(const Enrolled&) const = default;
};
} // namespace legacy

template <>
struct orchestrix::event_tags<legacy::Enrolled> {
    static std::array<std::string, 1> of(const legacy::Enrolled& e) { return {orchestrix::tag("course", e.course)}; }
};

TEST_CASE("dcb: event_tags gives tags to a type that cannot be changed") {
    static_assert(orchestrix::tagged_event<legacy::Enrolled>);
    CHECK(orchestrix::tags_of(legacy::Enrolled{"c7"})[0] == "course:c7");
}

TEST_CASE("dcb: query matching: types are OR'ed, tags AND'ed, items OR'ed") {
    const std::vector<std::string> both{"course:c1", "student:s1"};
    const std::vector<std::string> course{"course:c1"};
    const Query q = Query::of({QueryItem{{"a", "b"}, {"course:c1", "student:s1"}}, QueryItem{{"c"}, {}}});
    CHECK(q.matches("a", both));
    CHECK(q.matches("b", both));
    CHECK_FALSE(q.matches("a", course)); // lacks student:s1
    CHECK_FALSE(q.matches("d", both));
    CHECK(q.matches("c", std::vector<std::string>{}));
    CHECK(Query::all().matches("anything", std::vector<std::string>{}));
    CHECK(Query::all().matches_all());
    CHECK_FALSE(q.matches_all());
    CHECK(q.matches(dcb_domain::CourseEvent{dcb_domain::UsernameClaimed{"ada", "u1"}}) == false);
    CHECK(Query::of({QueryItem{{}, {"username:ada"}}})
              .matches(dcb_domain::CourseEvent{dcb_domain::UsernameClaimed{"ada", "u1"}}));
}

TEST_CASE("dcb: queries are normalised and malformed items refused with the argument named") {
    const Query q = Query::of({QueryItem{{"b", "a", "b"}, {"y", "x", "x"}}});
    CHECK(q.items()[0].types == std::vector<std::string>{"a", "b"});
    CHECK(q.items()[0].tags == std::vector<std::string>{"x", "y"});
    CHECK(q == Query::of({QueryItem{{"a", "b"}, {"x", "y"}}}));
    CHECK_FALSE(q == Query::all());
    const auto refused = [](std::vector<QueryItem> items) {
        try {
            (void)Query::of(std::move(items));
        } catch (const orchestrix::InvalidArgumentError& e) {
            return e.argument() == "query";
        }
        return false;
    };
    CHECK(refused({}));
    CHECK(refused({QueryItem{}}));
    CHECK(refused({QueryItem{{""}, {}}}));
    CHECK(refused({QueryItem{{"a"}, {""}}}));
    CHECK(refused({QueryItem{{"a"}, {std::string(orchestrix::max_tag_length + 1, 't')}}}));
    CHECK(refused({QueryItem{{"a"}, {"\xc3"}}}));
    CHECK_FALSE(refused({QueryItem{{"a"}, {std::string(orchestrix::max_tag_length, 't')}}}));
}

TEST_CASE("dcb: query_item names event types by their stable names") {
    const QueryItem item =
        orchestrix::query_item<dcb_domain::CourseDefined, dcb_domain::StudentSubscribed>({tag("course", "c")});
    CHECK(item.types == std::vector<std::string>{"course.defined", "course.student_subscribed"});
    CHECK(item.tags == std::vector<std::string>{"course:c"});
}

TEST_CASE("dcb: AppendConditionError names the stream, the conflicting position and the condition's") {
    const orchestrix::AppendConditionError e("course-c1", 42, 40);
    CHECK(e.stream() == "course-c1");
    CHECK(e.position() == 42);
    CHECK(e.after() == std::optional<orchestrix::position_t>(40));
    CHECK(std::string(e.what()) ==
          "conditional append to stream 'course-c1' refused: the event at position 42 matches the condition's query "
          "and was appended after position 40");
    const orchestrix::AppendConditionError none("s", 1, std::nullopt);
    CHECK(std::string(none.what()).find("none was expected") != std::string::npos);
}
