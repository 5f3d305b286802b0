// A decision projection that reads an event type the store does not hold must not compile, and the error
// names the event type.
// expect-error: remove_from_event_types_or_add_to_store_variant<Cancelled
// expect-first-error: in_decision_projection<Capacity>::remove_from_event_types_.*<Cancelled, std::variant<CourseDef
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
struct Cancelled {
    static constexpr std::string_view type_name = "course.cancelled";
    std::string course_id;
    bool operator==(const Cancelled&) const = default;
    auto tags() const { return std::array{orchestrix::tag("course", course_id)}; }
};

struct Capacity {
#ifdef ORCHESTRIX_EXPECT_ERROR
    using event_types = std::variant<CourseDefined, Cancelled>;
#else
    using event_types = std::variant<CourseDefined>;
#endif
    std::string course_id;
    std::int64_t capacity = 0;
    auto tags() const { return std::array{orchestrix::tag("course", course_id)}; }
    void apply(const CourseDefined& e) { capacity = e.capacity; }
    void apply(const Cancelled&) { capacity = 0; }
};

int main() {
    orchestrix::InMemoryEventStore<std::variant<CourseDefined>> store;
    orchestrix::DecisionRepository decisions(store);
    return static_cast<int>(std::get<0>(decisions.load(Capacity{"c1"}).state).capacity);
}
