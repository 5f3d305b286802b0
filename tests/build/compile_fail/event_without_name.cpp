// An event variant whose alternative has no stable name must not compile, and the error says what to write.
// expect-error: static constexpr std::string_view type_name
// expect-first-error: in_event<Unnamed>::write_static_constexpr_string_view_type_name
#include <orchestrix/core/aggregate.hpp>

#include <string>
#include <string_view>
#include <variant>

struct Named {
    static constexpr std::string_view type_name = "named";
    bool operator==(const Named&) const = default;
};
struct Unnamed {
#ifndef ORCHESTRIX_EXPECT_ERROR
    static constexpr std::string_view type_name = "unnamed";
#endif
    bool operator==(const Unnamed&) const = default;
};

class Thing : public orchestrix::AggregateRoot<Thing, std::variant<Named, Unnamed>> {
public:
    void apply(const Named&) {}
    void apply(const Unnamed&) {}
};

int main() {
    Thing thing;
    return static_cast<int>(thing.version());
}
