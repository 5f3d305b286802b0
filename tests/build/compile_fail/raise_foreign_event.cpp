// Raising an event that is not in the aggregate's variant must not compile, and the error says so.
// expect-error: not an alternative of the aggregate's Events
// expect-first-error: in_aggregate<Account>::add_to_its_event_variant<Closed>
#include <orchestrix/core/aggregate.hpp>

#include <string_view>
#include <variant>

struct Opened {
    static constexpr std::string_view type_name = "account.opened";
    bool operator==(const Opened&) const = default;
};
struct Closed {
    static constexpr std::string_view type_name = "account.closed";
    bool operator==(const Closed&) const = default;
};
struct Open {};

class Account : public orchestrix::AggregateRoot<Account, std::variant<Opened>> {
public:
    void handle(const Open&) {
#ifdef ORCHESTRIX_EXPECT_ERROR
        raise(Closed{});
#else
        raise(Opened{});
#endif
    }
    void apply(const Opened&) {}
};

int main() {
    Account account;
    account.execute(Open{});
    return 0;
}
