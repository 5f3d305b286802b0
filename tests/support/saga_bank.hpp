#pragma once

// A bank for the saga tests: accounts (aggregates that recognise a command sent twice by its id), transfers
// requested as events, and the transfer saga: debit, credit, refund the debit if the credit is refused or
// the transfer is not approved in time.

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/core/saga_events.hpp>
#include <orchestrix/memory/command_bus.hpp>
#include <orchestrix/projection/saga.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace saga_bank {

// Domain events.
struct AccountOpened {
    static constexpr std::string_view type_name = "bank.account_opened";
    std::string account{};
    std::int64_t balance = 0;
    bool frozen = false;
    bool operator==(const AccountOpened&) const = default;
};
struct Withdrawn {
    static constexpr std::string_view type_name = "bank.withdrawn";
    std::string account{};
    std::int64_t amount = 0;
    std::string command_id{};
    bool operator==(const Withdrawn&) const = default;
};
struct Deposited {
    static constexpr std::string_view type_name = "bank.deposited";
    std::string account{};
    std::int64_t amount = 0;
    std::string command_id{};
    bool operator==(const Deposited&) const = default;
};
struct TransferRequested {
    static constexpr std::string_view type_name = "bank.transfer_requested";
    std::string transfer{};
    std::string from{};
    std::string to{};
    std::int64_t amount = 0;
    bool needs_approval = false;
    bool operator==(const TransferRequested&) const = default;
};
struct TransferApproved {
    static constexpr std::string_view type_name = "bank.transfer_approved";
    std::string transfer{};
    bool operator==(const TransferApproved&) const = default;
};
using BankEvent = std::variant<AccountOpened, Withdrawn, Deposited, TransferRequested, TransferApproved>;

// Commands: each carries the id of the step that sent it.
struct Withdraw {
    std::string account;
    std::int64_t amount = 0;
    std::string command_id;
};
struct Deposit {
    std::string account;
    std::int64_t amount = 0;
    std::string command_id;
};

struct Refused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Account : public orchestrix::AggregateRoot<Account, std::variant<AccountOpened, Withdrawn, Deposited>> {
public:
    void handle(const Withdraw& c) {
        if (handled_.contains(c.command_id)) return; // sent again: done already
        if (balance_ < c.amount) throw Refused("insufficient funds");
        raise(Withdrawn{c.account, c.amount, c.command_id});
    }
    void handle(const Deposit& c) {
        if (handled_.contains(c.command_id)) return;
        if (frozen_) throw Refused("account " + c.account + " is frozen");
        raise(Deposited{c.account, c.amount, c.command_id});
    }
    void apply(const AccountOpened& e) {
        balance_ = e.balance;
        frozen_ = e.frozen;
    }
    void apply(const Withdrawn& e) {
        balance_ -= e.amount;
        handled_.insert(e.command_id);
    }
    void apply(const Deposited& e) {
        balance_ += e.amount;
        handled_.insert(e.command_id);
    }
    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    std::int64_t balance_ = 0;
    bool frozen_ = false;
    std::set<std::string> handled_;
};

// The saga's own events.
struct TransferStarted {
    static constexpr std::string_view type_name = "transfer.started";
    std::string from{};
    std::string to{};
    std::int64_t amount = 0;
    bool operator==(const TransferStarted&) const = default;
};
struct TransferCredited {
    static constexpr std::string_view type_name = "transfer.credited";
    bool operator==(const TransferCredited&) const = default;
};

inline constexpr std::chrono::minutes approval_time{15};

class Transfer : public orchestrix::Saga<Transfer, std::variant<TransferStarted, TransferCredited>> {
public:
    static constexpr std::string_view saga_type = "transfer";

    static std::optional<std::string> correlate(const BankEvent& e) {
        if (const auto* r = std::get_if<TransferRequested>(&e)) return r->transfer;
        if (const auto* a = std::get_if<TransferApproved>(&e)) return a->transfer;
        return std::nullopt;
    }

    void handle(const TransferRequested& e) {
        raise(TransferStarted{e.from, e.to, e.amount});
        if (!step("debit", Withdraw{from_, amount_, command_id("debit").to_string()})) return;
        if (e.needs_approval) {
            schedule("approval", approval_time);
            return;
        }
        credit();
    }

    void handle(const TransferApproved&) {
        if (!started_ || credited_) return;
        cancel("approval");
        credit();
    }

    void on_deadline(std::string_view) { fail("not approved in time"); }

    void compensate(std::string_view step_name) {
        if (step_name == "debit") send(Deposit{from_, amount_, command_id("refund").to_string()});
    }

    void apply(const TransferStarted& e) {
        from_ = e.from;
        to_ = e.to;
        amount_ = e.amount;
        started_ = true;
    }
    void apply(const TransferCredited&) { credited_ = true; }

    [[nodiscard]] bool credited() const { return credited_; }

private:
    void credit() {
        if (!step("credit", Deposit{to_, amount_, command_id("credit").to_string()})) return;
        raise(TransferCredited{});
        complete();
    }

    std::string from_;
    std::string to_;
    std::int64_t amount_ = 0;
    bool started_ = false;
    bool credited_ = false;
};

// Registers the account commands on `bus`, executed through `accounts`; keep the result while they serve.
template <class Repo>
[[nodiscard]] std::pair<orchestrix::Subscription, orchestrix::Subscription> serve_accounts(orchestrix::CommandBus& bus,
                                                                                           Repo& accounts) {
    return {bus.register_handler<Withdraw>([&accounts](const Withdraw& c) { (void)accounts.execute(c.account, c); }),
            bus.register_handler<Deposit>([&accounts](const Deposit& c) { (void)accounts.execute(c.account, c); })};
}

} // namespace saga_bank
