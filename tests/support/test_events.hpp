#pragma once

// A small bank-account domain shared by the tests: three events, commands and an aggregate.

#include <orchestrix/core/aggregate.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace test_domain {

struct AccountOpened {
    static constexpr std::string_view type_name = "account.opened";
    std::string account_id;
    std::string owner;
    bool operator==(const AccountOpened&) const = default;
};

struct MoneyDeposited {
    static constexpr std::string_view type_name = "account.deposited";
    std::string account_id;
    std::int64_t amount = 0;
    bool operator==(const MoneyDeposited&) const = default;
};

struct MoneyWithdrawn {
    static constexpr std::string_view type_name = "account.withdrawn";
    std::string account_id;
    std::int64_t amount = 0;
    bool operator==(const MoneyWithdrawn&) const = default;
};

using AccountEvent = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn>;

struct OpenAccount {
    std::string account_id;
    std::string owner;
};
struct Deposit {
    std::int64_t amount = 0;
};
struct Withdraw {
    std::int64_t amount = 0;
};
using AccountCommand = std::variant<OpenAccount, Deposit, Withdraw>;

class InsufficientFunds : public std::runtime_error {
public:
    InsufficientFunds() : std::runtime_error("insufficient funds") {}
};

class Account : public orchestrix::AggregateRoot<Account, AccountEvent> {
public:
    void handle(const OpenAccount& c) {
        if (open_) throw std::logic_error("account already open");
        raise(AccountOpened{c.account_id, c.owner});
    }
    void handle(const Deposit& c) {
        if (!open_) throw std::logic_error("account not open");
        raise(MoneyDeposited{id_, c.amount});
    }
    // Raises the withdrawal first and checks afterwards, so a refusal must roll back a raised event.
    void handle(const Withdraw& c) {
        raise(MoneyWithdrawn{id_, c.amount});
        if (balance_ < 0) throw InsufficientFunds{};
    }

    void apply(const AccountOpened& e) {
        open_ = true;
        id_ = e.account_id;
        owner_ = e.owner;
    }
    void apply(const MoneyDeposited& e) { balance_ += e.amount; }
    void apply(const MoneyWithdrawn& e) { balance_ -= e.amount; }

    [[nodiscard]] bool is_open() const { return open_; }
    [[nodiscard]] const std::string& id() const { return id_; }
    [[nodiscard]] const std::string& owner() const { return owner_; }
    [[nodiscard]] std::int64_t balance() const { return balance_; }

    friend bool operator==(const Account& a, const Account& b) {
        return a.open_ == b.open_ && a.id_ == b.id_ && a.owner_ == b.owner_ && a.balance_ == b.balance_ &&
               a.version() == b.version();
    }

private:
    bool open_ = false;
    std::string id_;
    std::string owner_;
    std::int64_t balance_ = 0;
};

} // namespace test_domain
