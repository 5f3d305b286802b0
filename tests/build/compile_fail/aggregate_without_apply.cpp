// An aggregate that has no apply() at all must not compile, and the first error names the aggregate and the
// apply to write for its first event.
// expect-error: has no `void apply\(const Event&\)`
// expect-first-error: in_aggregate<Account>::write_void_apply_taking<const Opened ?&>
#include <orchestrix/core/aggregate.hpp>

#include <string_view>
#include <variant>

struct Opened {
    static constexpr std::string_view type_name = "account.opened";
    bool operator==(const Opened&) const = default;
};

class Account : public orchestrix::AggregateRoot<Account, std::variant<Opened>> {
public:
#ifndef ORCHESTRIX_EXPECT_ERROR
    void apply(const Opened&) { opened = true; }
#endif
    bool opened = false;
};

int main() {
    Account account;
    return static_cast<int>(account.version());
}
