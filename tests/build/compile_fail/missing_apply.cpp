// An aggregate without an apply() for one of its events must not compile, and the error names the event.
// expect-error: has no `void apply\(const Event&\)`
// expect-first-error: in_aggregate<User>::write_void_apply_taking_or_if_private_.*_access<const UserRenamed ?&>
#include <orchestrix/core/aggregate.hpp>

#include <string>
#include <string_view>
#include <variant>

struct UserCreated {
    static constexpr std::string_view type_name = "user.created";
    std::string name;
    bool operator==(const UserCreated&) const = default;
};
struct UserRenamed {
    static constexpr std::string_view type_name = "user.renamed";
    std::string name;
    bool operator==(const UserRenamed&) const = default;
};

class User : public orchestrix::AggregateRoot<User, std::variant<UserCreated, UserRenamed>> {
public:
    void apply(const UserCreated& e) { name = e.name; }
#ifndef ORCHESTRIX_EXPECT_ERROR
    void apply(const UserRenamed& e) { name = e.name; }
#endif
    std::string name;
};

int main() {
    User user;
    return static_cast<int>(user.version());
}
