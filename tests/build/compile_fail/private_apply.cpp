// An apply() left private, without `friend orchestrix::access;` (which lets the library call it), must not
// compile, and the first error names the aggregate, the event and the friend line to write.
// expect-error: add `friend orchestrix::access;` to the aggregate
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
#ifndef ORCHESTRIX_EXPECT_ERROR
    friend orchestrix::access;
#endif

public:
    void apply(const UserCreated& e) { name = e.name; }
    std::string name;

private:
    void apply(const UserRenamed& e) { name = e.name; }
};

int main() {
    User user;
    return static_cast<int>(user.version());
}
