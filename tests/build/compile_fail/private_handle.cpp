// A handle() left private, without `friend orchestrix::access;` (which lets the library call it), must not
// compile, and the first error names the aggregate, the command and the friend line to write.
// expect-error: add `friend orchestrix::access;` to the aggregate
// expect-first-error: in_aggregate<User>::write_handle_taking_or_if_private_.*_orchestrix_access<const CreateUser ?&>
#include <orchestrix/core/aggregate.hpp>

#include <string>
#include <string_view>
#include <variant>

struct UserCreated {
    static constexpr std::string_view type_name = "user.created";
    std::string name;
    bool operator==(const UserCreated&) const = default;
};
struct CreateUser {
    std::string name;
};

class User : public orchestrix::AggregateRoot<User, std::variant<UserCreated>> {
#ifndef ORCHESTRIX_EXPECT_ERROR
    friend orchestrix::access;
#endif

public:
    void apply(const UserCreated& e) { name = e.name; }
    std::string name;

private:
    void handle(const CreateUser& c) { raise(UserCreated{c.name}); }
};

int main() {
    User user;
    user.execute(CreateUser{"ann"});
    return user.name == "ann" ? 0 : 1;
}
