// An aggregate whose events share a type_name must not compile, and the first error names its event variant
// and says what to write.
// expect-error: each has a `type_name` of its own
// expect-first-error: in_event_list<std::variant<Created, CreatedAgain> ?>::list_at_least_one_event_and_give_each
#include <orchestrix/core/aggregate.hpp>

#include <string_view>
#include <variant>

struct Created {
    static constexpr std::string_view type_name = "thing.created";
    bool operator==(const Created&) const = default;
};
struct CreatedAgain {
#ifdef ORCHESTRIX_EXPECT_ERROR
    static constexpr std::string_view type_name = "thing.created";
#else
    static constexpr std::string_view type_name = "thing.created_again";
#endif
    bool operator==(const CreatedAgain&) const = default;
};

class Thing : public orchestrix::AggregateRoot<Thing, std::variant<Created, CreatedAgain>> {
public:
    void apply(const Created&) {}
    void apply(const CreatedAgain&) {}
};

int main() {
    Thing thing;
    return static_cast<int>(thing.version());
}
