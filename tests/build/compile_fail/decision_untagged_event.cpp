// Deciding over a store one of whose event types declares no tags must not compile, and the error names the
// event type and says what to write.
// expect-error: need a store whose event types all declare tags
// expect-first-error: in_event<Renamed>::write_auto_tags_const
#include <orchestrix/core/decision.hpp>
#include <orchestrix/memory/event_store.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

struct Defined {
    static constexpr std::string_view type_name = "course.defined";
    std::string course_id;
    bool operator==(const Defined&) const = default;
    auto tags() const { return std::array{orchestrix::tag("course", course_id)}; }
};
struct Renamed {
    static constexpr std::string_view type_name = "course.renamed";
    std::string course_id;
    bool operator==(const Renamed&) const = default;
#ifndef ORCHESTRIX_EXPECT_ERROR
    auto tags() const { return orchestrix::no_tags; }
#endif
};

struct Count {
    using event_types = std::variant<Defined>;
    int count = 0;
    void apply(const Defined&) { ++count; }
};

int main() {
    orchestrix::InMemoryEventStore<std::variant<Defined, Renamed>> store;
    orchestrix::DecisionRepository decisions(store);
    return std::get<0>(decisions.load(Count{}).state).count;
}
