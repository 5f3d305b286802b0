// Executing a command on an aggregate that has no handle() at all must not compile, and the first error
// names the aggregate and the handler to write.
// expect-error: has no `handle\(const Command&\)`
// expect-first-error: in_aggregate<Account>::write_handle_taking<const Open ?&>
#include <orchestrix/core/aggregate.hpp>

#include <string_view>
#include <variant>

struct Opened {
    static constexpr std::string_view type_name = "account.opened";
    bool operator==(const Opened&) const = default;
};
struct Open {};

class Account : public orchestrix::AggregateRoot<Account, std::variant<Opened>> {
public:
#ifndef ORCHESTRIX_EXPECT_ERROR
    void handle(const Open&) { raise(Opened{}); }
#endif
    void apply(const Opened&) { opened = true; }
    bool opened = false;
};

int main() {
    Account account;
    account.execute(Open{});
    return account.opened ? 0 : 1;
}
