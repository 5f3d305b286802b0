#include <orchestrix/core/aggregate.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

using namespace test_domain;
using orchestrix::RecordedEvent;

TEST_CASE("aggregate: a command raises events that are applied and kept as uncommitted") {
    Account account;
    CHECK(account.version() == 0);
    account.execute(OpenAccount{"acc-1", "ann"});
    account.execute(Deposit{100});

    CHECK(account.is_open());
    CHECK(account.balance() == 100);
    CHECK(account.version() == 2);
    CHECK(account.committed_version() == 0);
    REQUIRE(account.uncommitted_events().size() == 2);
    CHECK(std::holds_alternative<AccountOpened>(account.uncommitted_events()[0].event));
    CHECK(std::get<MoneyDeposited>(account.uncommitted_events()[1].event).amount == 100);
    CHECK(account.uncommitted_events()[0].metadata.event_id != account.uncommitted_events()[1].metadata.event_id);

    account.mark_committed();
    CHECK(account.uncommitted_events().empty());
    CHECK(account.version() == 2);
    CHECK(account.committed_version() == 2);
}

TEST_CASE("aggregate: a variant of commands runs the handler of the alternative it holds") {
    Account account;
    const std::vector<AccountCommand> commands{OpenAccount{"acc-1", "ann"}, Deposit{30}, Withdraw{10}};
    for (const auto& command : commands) account.execute(command);
    CHECK(account.balance() == 20);
    CHECK(account.version() == 3);
}

TEST_CASE("aggregate: a handler that throws leaves state, version and uncommitted events as they were") {
    Account account;
    account.execute(OpenAccount{"acc-1", "ann"});
    account.execute(Deposit{50});
    const Account before = account;
    const auto uncommitted_before = account.uncommitted_events();

    // Withdraw raises first, then refuses: the raised event must be rolled back.
    CHECK_THROWS_AS(account.execute(Withdraw{80}), InsufficientFunds);
    CHECK(account == before);
    CHECK(account.balance() == 50);
    CHECK(account.version() == 2);
    CHECK(account.uncommitted_events() == uncommitted_before);

    // A handler that throws before raising changes nothing either.
    CHECK_THROWS_AS(account.execute(OpenAccount{"acc-1", "bob"}), std::logic_error);
    CHECK(account == before);

    // After committing, a failure keeps the committed version and an empty uncommitted list.
    account.mark_committed();
    CHECK_THROWS_AS(account.execute(Withdraw{1000}), InsufficientFunds);
    CHECK(account.uncommitted_events().empty());
    CHECK(account.committed_version() == 2);

    // And the aggregate still works afterwards.
    account.execute(Withdraw{20});
    CHECK(account.balance() == 30);
    CHECK(account.version() == 3);
}

TEST_CASE("aggregate: from_history rebuilds state and version") {
    std::vector<RecordedEvent<AccountEvent>> history{
        {"acc-1", 1, 10, AccountOpened{"acc-1", "ann"}, {}},
        {"acc-1", 2, 11, MoneyDeposited{"acc-1", 70}, {}},
        {"acc-1", 3, 15, MoneyWithdrawn{"acc-1", 20}, {}},
    };
    const Account account = Account::from_history(history);
    CHECK(account.owner() == "ann");
    CHECK(account.balance() == 50);
    CHECK(account.version() == 3);
    CHECK(account.committed_version() == 3);
    CHECK(account.uncommitted_events().empty());

    const std::vector<AccountEvent> plain{AccountOpened{"acc-2", "bob"}, MoneyDeposited{"acc-2", 5}};
    const Account from_plain = Account::from_history(plain);
    CHECK(from_plain.balance() == 5);
    CHECK(from_plain.version() == 2);
}

TEST_CASE("aggregate: a history with a gap or out of order is refused") {
    std::vector<RecordedEvent<AccountEvent>> gap{
        {"acc-1", 1, 1, AccountOpened{"acc-1", "ann"}, {}},
        {"acc-1", 3, 3, MoneyDeposited{"acc-1", 70}, {}},
    };
    try {
        (void)Account::from_history(gap);
        FAIL("a gap was accepted");
    } catch (const orchestrix::HistoryError& e) {
        CHECK(std::string(e.what()).find("version 3") != std::string::npos);
    }
    std::vector<RecordedEvent<AccountEvent>> starts_late{{"acc-1", 2, 2, MoneyDeposited{"acc-1", 70}, {}}};
    CHECK_THROWS_AS(Account::from_history(starts_late), orchestrix::HistoryError);
}

TEST_CASE("aggregate: restore_version continues after a snapshot") {
    Account account;
    account.restore_version(40);
    account.replay(AccountEvent{AccountOpened{"acc-1", "ann"}}, 41);
    CHECK(account.version() == 41);
    account.execute(Deposit{1});
    CHECK(account.committed_version() == 41);
    CHECK_THROWS_AS(account.restore_version(3), orchestrix::HistoryError); // has uncommitted events
}

namespace {
struct Ping {
    bool valid = true;
    [[nodiscard]] bool validate() const { return valid; }
};
struct Checked {
    int value = 0;
    void validate() const {
        if (value < 0) throw std::invalid_argument("value must not be negative");
    }
};
struct PingTwice {};
struct Pinged {
    static constexpr std::string_view type_name = "pinged";
    bool operator==(const Pinged&) const = default;
};
class Pinger : public orchestrix::AggregateRoot<Pinger, std::variant<Pinged>> {
public:
    void handle(const Ping&) { raise(Pinged{}); }
    int handle(const Checked& c) {
        raise(Pinged{});
        return c.value * 2;
    }
    void apply(const Pinged&) { ++pings; }
    int pings = 0;
};

// An aggregate that keeps apply() private and befriends its base.
class Private : public orchestrix::AggregateRoot<Private, std::variant<Pinged>> {
    friend class orchestrix::AggregateRoot<Private, std::variant<Pinged>>;

public:
    void handle(const Ping&) { raise(Pinged{}); }
    [[nodiscard]] int count() const { return count_; }

private:
    void apply(const Pinged&) { ++count_; }
    int count_ = 0;
};

// An aggregate whose handlers and apply are all private: the documented friend line lets the library call them.
class Sealed : public orchestrix::AggregateRoot<Sealed, std::variant<Pinged>> {
    friend orchestrix::access;

public:
    [[nodiscard]] int count() const { return count_; }

private:
    void handle(const Ping&) { raise(Pinged{}); }
    void handle(const PingTwice&) {
        raise(std::variant<Pinged>{Pinged{}}); // the Events variant itself
        envelope_type envelope{Pinged{}};
        raise(envelope); // an lvalue envelope
    }
    int handle(const Checked& c) {
        raise(Pinged{});
        if (c.value == 0) throw std::runtime_error("refused after raising");
        return c.value + count_;
    }
    void apply(const Pinged&) { ++count_; }
    int count_ = 0;
};
} // namespace

TEST_CASE("aggregate: a command's validate() runs before its handler") {
    Pinger pinger;
    pinger.execute(Ping{true});
    CHECK(pinger.pings == 1);
    CHECK_THROWS_AS(pinger.execute(Ping{false}), orchestrix::CommandRejectedError);
    CHECK_THROWS_AS(pinger.execute(Checked{-1}), std::invalid_argument);
    CHECK(pinger.pings == 1);
    CHECK(pinger.version() == 1);
    CHECK(pinger.execute(Checked{21}) == 42); // a handler's result is returned
}

TEST_CASE("aggregate: handle and apply may be private when the aggregate befriends orchestrix::access") {
    Sealed sealed;
    sealed.execute(Ping{});
    CHECK(sealed.execute(Checked{10}) == 12); // the private handler ran after its own raise applied
    CHECK(sealed.count() == 2);
    CHECK_THROWS_AS(sealed.execute(Ping{false}), orchestrix::CommandRejectedError); // validate() still runs
    CHECK_THROWS_AS(sealed.execute(Checked{0}), std::runtime_error);
    CHECK(sealed.count() == 2); // a throwing private handler leaves the state as it was
    CHECK(sealed.version() == 2);
    CHECK(sealed.uncommitted_events().size() == 2);
    const auto rebuilt = Sealed::from_history(std::vector<std::variant<Pinged>>{Pinged{}, Pinged{}, Pinged{}});
    CHECK(rebuilt.count() == 3); // replay calls the private apply too
}

TEST_CASE("aggregate: raise takes an Events variant or an envelope as well as an event") {
    Sealed sealed;
    sealed.execute(PingTwice{});
    CHECK(sealed.count() == 2);
    CHECK(sealed.version() == 2);
    REQUIRE(sealed.uncommitted_events().size() == 2);
    CHECK(sealed.uncommitted_events()[0].metadata.event_id != sealed.uncommitted_events()[1].metadata.event_id);
}

TEST_CASE("aggregate: apply may be private when the aggregate befriends its base") {
    Private aggregate;
    aggregate.execute(Ping{});
    aggregate.execute(Ping{});
    CHECK(aggregate.count() == 2);
    CHECK(aggregate.version() == 2);
}
