#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <orchestrix/testing/aggregate_fixture.hpp>
#include <orchestrix/validation/rules.hpp>

#include <nlohmann/json.hpp>

#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace test_domain {
// JSON for the failure messages: the fixture shows payloads through to_json when an event has one.
inline void to_json(nlohmann::json& j, const AccountOpened& e) {
    j = {{"account_id", e.account_id}, {"owner", e.owner}};
}
inline void to_json(nlohmann::json& j, const MoneyDeposited& e) { j = {{"amount", e.amount}}; }
inline void to_json(nlohmann::json& j, const MoneyWithdrawn& e) { j = {{"amount", e.amount}}; }
} // namespace test_domain

namespace {

using orchestrix::AggregateFixture;
using orchestrix::FixtureFailure;
using test_domain::Account;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using test_domain::MoneyWithdrawn;

// Runs `check` and returns the message of the FixtureFailure it must throw.
template <class Check>
std::string failure_of(Check&& check) {
    try {
        check();
    } catch (const FixtureFailure& e) {
        return e.what();
    }
    FAIL("the fixture accepted a wrong outcome");
    return {};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A command that raises two events, so that their order matters.
struct OpenWithDeposit {
    std::string account_id;
    std::int64_t amount = 0;
};

class Wallet : public orchestrix::AggregateRoot<Wallet, test_domain::AccountEvent> {
public:
    void handle(const OpenWithDeposit& c) {
        raise(AccountOpened{c.account_id, "owner"});
        raise(MoneyDeposited{c.account_id, c.amount});
    }
    void handle(const test_domain::Withdraw& c) {
        if (c.amount > balance_) throw test_domain::InsufficientFunds{};
        raise(MoneyWithdrawn{id_, c.amount});
    }
    void apply(const AccountOpened& e) { id_ = e.account_id; }
    void apply(const MoneyDeposited& e) { balance_ += e.amount; }
    void apply(const MoneyWithdrawn& e) { balance_ -= e.amount; }
    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    std::string id_;
    std::int64_t balance_ = 0;
};

} // namespace

TEST_CASE("fixture: a command that raises the expected events passes", "[fixture]") {
    AggregateFixture<Account> fixture;
    REQUIRE_NOTHROW(fixture.given(AccountOpened{"acc", "Ann"}, MoneyDeposited{"acc", 10})
                        .when(test_domain::Withdraw{4})
                        .then(MoneyWithdrawn{"acc", 4})
                        .then_state("balance is 6", [](const Account& a) { return a.balance() == 6; }));
    CHECK(fixture.aggregate().version() == 3);
    CHECK(fixture.raised_events().size() == 1);

    // History as a vector of variants, expectations as a vector too.
    const std::vector<test_domain::AccountEvent> history{AccountOpened{"acc", "Ann"}};
    const std::vector<test_domain::AccountEvent> expected{MoneyDeposited{"acc", 3}};
    REQUIRE_NOTHROW(AggregateFixture<Account>{}.given(history).when(test_domain::Deposit{3}).then(expected));
    REQUIRE_NOTHROW(AggregateFixture<Wallet>{}
                        .given()
                        .when(OpenWithDeposit{"w", 5})
                        .then(AccountOpened{"w", "owner"}, MoneyDeposited{"w", 5}));
}

TEST_CASE("fixture: a wrong event is shown next to the expected one", "[fixture]") {
    const std::string message = failure_of([] {
        AggregateFixture<Account>{}
            .given(AccountOpened{"acc", "Ann"})
            .when(test_domain::Deposit{7})
            .then(MoneyDeposited{"acc", 5});
    });
    INFO(message);
    CHECK(contains(message, "AggregateFixture<test_domain::Account>::then() failed: the command raised other "
                            "events than expected"));
    CHECK(contains(message, "  given: 1 event\n    account.opened {\"account_id\":\"acc\",\"owner\":\"Ann\"}\n"));
    CHECK(contains(message, "  when:  test_domain::Deposit\n"));
    CHECK(contains(message, "     #  expected                       | actual\n"));
    CHECK(contains(message, "  *  1  account.deposited {\"amount\":5} | account.deposited {\"amount\":7}"));
}

TEST_CASE("fixture: events in the wrong order are called out as such", "[fixture]") {
    const std::string message = failure_of([] {
        AggregateFixture<Wallet>{}
            .when(OpenWithDeposit{"w", 5})
            .then(MoneyDeposited{"w", 5}, AccountOpened{"w", "owner"});
    });
    INFO(message);
    CHECK(contains(message, "then() failed: the command raised the expected events, but in another order"));
    CHECK(contains(message, "  given: no events\n"));
    CHECK(contains(message, "  *  1  account.deposited {\"amount\":5}"));
    CHECK(contains(message, "| account.opened {\"account_id\":\"w\",\"owner\":\"owner\"}"));
    CHECK(contains(message, "  *  2  account.opened"));
}

TEST_CASE("fixture: a missing or an extra event is shown against (none)", "[fixture]") {
    const std::string missing = failure_of([] {
        AggregateFixture<Wallet>{}.when(OpenWithDeposit{"w", 5}).then(AccountOpened{"w", "owner"});
    });
    INFO(missing);
    CHECK(contains(missing, "expected 1 event, but the command raised 2"));
    CHECK(contains(missing, "     1  account.opened")); // equal row: no marker
    CHECK(contains(missing, "  *  2  (none)"));
    CHECK(contains(missing, "| account.deposited {\"amount\":5}"));
}

TEST_CASE("fixture: an unexpected error names the exception and its message", "[fixture]") {
    const std::string message = failure_of([] {
        AggregateFixture<Wallet>{}
            .given(AccountOpened{"w", "owner"}, MoneyDeposited{"w", 5})
            .when(test_domain::Withdraw{50})
            .then(MoneyWithdrawn{"w", 50});
    });
    INFO(message);
    CHECK(contains(message, "then() failed: expected 1 event, but the command threw test_domain::InsufficientFunds: "
                            "insufficient funds"));
    CHECK(contains(message, "  given: 2 events\n"));
    CHECK(contains(message, "account.withdrawn {\"amount\":50} | -"));
    CHECK(contains(message, "  threw: test_domain::InsufficientFunds: insufficient funds"));
}

TEST_CASE("fixture: then_error checks the type and the message of the exception", "[fixture]") {
    AggregateFixture<Wallet> fixture;
    fixture.given(AccountOpened{"w", "owner"}).when(test_domain::Withdraw{1});
    REQUIRE_NOTHROW(fixture.then_error<test_domain::InsufficientFunds>());
    REQUIRE_NOTHROW(fixture.then_error<std::runtime_error>("insufficient"));
    REQUIRE_NOTHROW(fixture.then_error());
    CHECK(fixture.aggregate().balance() == 0);
    CHECK(fixture.aggregate().version() == 1);

    const std::string wrong_type = failure_of([&] { fixture.then_error<std::logic_error>(); });
    CHECK(contains(wrong_type, "then_error<std::logic_error>() failed: expected the command to throw "
                               "std::logic_error, but it threw test_domain::InsufficientFunds: insufficient funds"));
    const std::string wrong_text = failure_of([&] { fixture.then_error<std::runtime_error>("overdrawn"); });
    CHECK(
        contains(wrong_text, "expected a message containing \"overdrawn\", but the message is \"insufficient funds\""));

    const std::string succeeded = failure_of([] {
        AggregateFixture<Account>{}.given(AccountOpened{"acc", "Ann"}).when(test_domain::Deposit{1}).then_error();
    });
    INFO(succeeded);
    CHECK(contains(succeeded, "expected the command to throw std::exception, but it succeeded"));
    CHECK(contains(succeeded, "  *  1  (none)   | account.deposited {\"amount\":1}"));
}

TEST_CASE("fixture: a validation error is an error like any other", "[fixture]") {
    struct Named {
        std::string name;
        orchestrix::ValidationResult validate() const {
            using namespace orchestrix::rules;
            return orchestrix::validate(*this, field("name", &Named::name, not_blank()));
        }
    };
    struct Greeter : orchestrix::AggregateRoot<Greeter, std::variant<AccountOpened>> {
        void handle(const Named& n) { raise(AccountOpened{"g", n.name}); }
        void apply(const AccountOpened&) {}
    };
    REQUIRE_NOTHROW(AggregateFixture<Greeter>{}
                        .when(Named{" "})
                        .then_error<orchestrix::ValidationError>("name: must not be blank (not_blank)"));
    REQUIRE_NOTHROW(AggregateFixture<Greeter>{}.when(Named{"Ann"}).then(AccountOpened{"g", "Ann"}));
}

TEST_CASE("fixture: then_nothing passes only when nothing happened", "[fixture]") {
    REQUIRE_NOTHROW(AggregateFixture<Account>{}
                        .given(AccountOpened{"acc", "Ann"})
                        .when(test_domain::Deposit{0})
                        .then(MoneyDeposited{"acc", 0}));
    const std::string raised = failure_of([] {
        AggregateFixture<Account>{}.given(AccountOpened{"acc", "Ann"}).when(test_domain::Deposit{2}).then_nothing();
    });
    INFO(raised);
    CHECK(contains(raised, "then_nothing() failed: expected no events, but the command raised 1"));
    CHECK(contains(raised, "(none)"));
    CHECK(contains(raised, "account.deposited {\"amount\":2}"));

    const std::string threw =
        failure_of([] { AggregateFixture<Account>{}.when(test_domain::Deposit{2}).then_nothing(); });
    CHECK(contains(threw, "expected no events, but the command threw std::logic_error: account not open"));

    struct Noop {};
    struct Quiet : orchestrix::AggregateRoot<Quiet, std::variant<AccountOpened>> {
        void handle(const Noop&) {}
        void apply(const AccountOpened&) {}
    };
    REQUIRE_NOTHROW(AggregateFixture<Quiet>{}.when(Noop{}).then_nothing().then());
}

TEST_CASE("fixture: misuse is reported, not ignored", "[fixture]") {
    CHECK(contains(failure_of([] { AggregateFixture<Account>{}.then(); }),
                   "then() needs a command: call when(command) first"));
    CHECK(contains(failure_of([] { AggregateFixture<Account>{}.then_nothing(); }), "call when(command) first"));
    CHECK(contains(
        failure_of([] {
            AggregateFixture<Account>{}.when(test_domain::OpenAccount{"a", "b"}).given(AccountOpened{"a", "b"});
        }),
        "given() after when()"));
    CHECK(
        contains(failure_of([] {
                     AggregateFixture<Account>{}.when(test_domain::OpenAccount{"a", "b"}).when(test_domain::Deposit{1});
                 }),
                 "when() after when()"));
    // A history the aggregate refuses, and an earlier command that fails.
    CHECK(contains(failure_of([] { AggregateFixture<Account>{}.given_commands(test_domain::Deposit{1}); }),
                   "given_commands(): test_domain::Deposit threw std::logic_error: account not open"));
    const std::string state = failure_of([] {
        AggregateFixture<Account>{}
            .given_commands(test_domain::OpenAccount{"a", "b"})
            .when(test_domain::Deposit{1})
            .then_state("balance is 2", [](const Account& a) { return a.balance() == 2; });
    });
    CHECK(contains(state, "then_state() failed: expected the aggregate to satisfy \"balance is 2\", but it does not"));
    CHECK(contains(state, "given: 1 event\n    account.opened"));
}

namespace {
struct Pinged {
    static constexpr std::string_view type_name = "ping.pinged";
    int n = 0;
    bool operator==(const Pinged&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Pinged& p) { return os << "#" << p.n; }
struct Silent {
    static constexpr std::string_view type_name = "ping.silent";
    bool operator==(const Silent&) const = default;
};
struct Ping {
    int n = 0;
};
struct Pinger : orchestrix::AggregateRoot<Pinger, std::variant<Pinged, Silent>> {
    void handle(const Ping& p) { raise(Pinged{p.n}); }
    void apply(const Pinged&) {}
    void apply(const Silent&) {}
};
} // namespace

TEST_CASE("fixture: events are described by operator<<, by name alone, or by a custom printer", "[fixture]") {
    const std::string streamed = failure_of([] { AggregateFixture<Pinger>{}.when(Ping{2}).then(Pinged{3}); });
    CHECK(contains(streamed, "ping.pinged #3 | ping.pinged #2"));
    const std::string bare = failure_of([] { AggregateFixture<Pinger>{}.when(Ping{2}).then(Silent{}); });
    CHECK(contains(bare, "ping.silent | ping.pinged #2"));
    const std::string custom = failure_of([] {
        AggregateFixture<Pinger>{}
            .describe_events_with([](const std::variant<Pinged, Silent>& e) {
                return std::holds_alternative<Pinged>(e) ? "PING " + std::to_string(std::get<Pinged>(e).n) : "SILENCE";
            })
            .when(Ping{2})
            .then(Silent{});
    });
    CHECK(contains(custom, "SILENCE  | PING 2"));
}
