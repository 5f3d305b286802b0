// Executing a command the aggregate has no handle() for must not compile, and the error names the command.
// expect-error: has no `handle\(const Command&\)`
// expect-first-error: in_aggregate<User>::write_handle_taking_or_if_private_.*_orchestrix_access<const DeleteUser ?&>
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
struct DeleteUser {};

class User : public orchestrix::AggregateRoot<User, std::variant<UserCreated>> {
public:
    void handle(const CreateUser& c) { raise(UserCreated{c.name}); }
    void apply(const UserCreated& e) { name = e.name; }
    std::string name;
};

int main() {
    User user;
    user.execute(CreateUser{"ann"});
#ifdef ORCHESTRIX_EXPECT_ERROR
    user.execute(DeleteUser{});
#endif
    return 0;
}
