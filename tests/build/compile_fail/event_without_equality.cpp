// An event variant whose alternative cannot be compared must not compile, and the first error names the event
// and says what to write.
// expect-error: bool operator==\(const Event&\) const = default;
// expect-first-error: in_event<Renamed>::write_bool_operator_equals_default_or_static_constexpr_std_array_fields
#include <orchestrix/core/aggregate.hpp>

#include <string>
#include <string_view>
#include <variant>

struct Created {
    static constexpr std::string_view type_name = "thing.created";
    bool operator==(const Created&) const = default;
};
struct Renamed {
    static constexpr std::string_view type_name = "thing.renamed";
    std::string name;
#ifndef ORCHESTRIX_EXPECT_ERROR
    bool operator==(const Renamed&) const = default;
#endif
};

class Thing : public orchestrix::AggregateRoot<Thing, std::variant<Created, Renamed>> {
public:
    void apply(const Created&) {}
    void apply(const Renamed& e) { name = e.name; }
    std::string name;
};

int main() {
    Thing thing;
    return static_cast<int>(thing.version());
}
