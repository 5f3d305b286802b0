// Giving a fixture something that is not one of the aggregate's events must not compile, and the first error
// names the aggregate and what was passed.
// expect-error: each argument must be one of the aggregate's events
// expect-first-error: in_fixture_of<Account>::pass_one_of_its_events_not<(struct )?Closed>
#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/testing.hpp>

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
    void handle(const Open&) { raise(Opened{}); }
    void apply(const Opened&) {}
};

int main() {
    orchestrix::AggregateFixture<Account> fixture;
#ifdef ORCHESTRIX_EXPECT_ERROR
    fixture.given(Closed{});
#else
    fixture.given(Opened{});
#endif
    return 0;
}
