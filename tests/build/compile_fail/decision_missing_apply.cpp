// A decision projection without an apply() for one of its event types must not compile, and the error names
// the event type.
// expect-error: write_void_apply_taking<const CapacityChanged
// expect-first-error: in_decision_projection<Capacity>::write_void_apply_taking<const CapacityChanged ?&>
#include <orchestrix/core/decision.hpp>
#include <orchestrix/memory/event_store.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

struct CourseDefined {
    static constexpr std::string_view type_name = "course.defined";
    std::string course_id;
    std::int64_t capacity = 0;
    bool operator==(const CourseDefined&) const = default;
    auto tags() const { return std::array{orchestrix::tag("course", course_id)}; }
};
struct CapacityChanged {
    static constexpr std::string_view type_name = "course.capacity_changed";
    std::string course_id;
    std::int64_t capacity = 0;
    bool operator==(const CapacityChanged&) const = default;
    auto tags() const { return std::array{orchestrix::tag("course", course_id)}; }
};

struct Capacity {
    using event_types = std::variant<CourseDefined, CapacityChanged>;
    std::string course_id;
    std::int64_t capacity = 0;
    auto tags() const { return std::array{orchestrix::tag("course", course_id)}; }
    void apply(const CourseDefined& e) { capacity = e.capacity; }
#ifndef ORCHESTRIX_EXPECT_ERROR
    void apply(const CapacityChanged& e) { capacity = e.capacity; }
#endif
};

int main() {
    orchestrix::InMemoryEventStore<std::variant<CourseDefined, CapacityChanged>> store;
    orchestrix::DecisionRepository decisions(store);
    return static_cast<int>(std::get<0>(decisions.load(Capacity{"c1"}).state).capacity);
}
