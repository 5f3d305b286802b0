#pragma once

// The workload of examples/13-metrics: accounts in the in-memory store, commands through a repository, a
// balance projection that publishes each event it handles on a bus, every part reporting to one
// PrometheusObserver.

#include <orchestrix/orchestrix.hpp>
#include <orchestrix/projection.hpp>
#include <orchestrix/prometheus.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace metrics_example {

struct AccountOpened {
    static constexpr std::string_view type_name = "account.opened";
    std::string owner;
    bool operator==(const AccountOpened&) const = default;
};
struct Deposited {
    static constexpr std::string_view type_name = "account.deposited";
    std::int64_t amount = 0;
    bool operator==(const Deposited&) const = default;
};
struct Withdrawn {
    static constexpr std::string_view type_name = "account.withdrawn";
    std::int64_t amount = 0;
    bool operator==(const Withdrawn&) const = default;
};
using AccountEvent = std::variant<AccountOpened, Deposited, Withdrawn>;

struct Open {
    std::string owner;
};
struct Deposit {
    std::int64_t amount = 0;
};
struct Withdraw {
    std::int64_t amount = 0;
};

class Account : public orchestrix::AggregateRoot<Account, AccountEvent> {
public:
    static constexpr std::string_view aggregate_type_name = "account";

    void handle(const Open& c) {
        if (open_) throw std::invalid_argument("the account is open already");
        raise(AccountOpened{c.owner});
    }
    void handle(const Deposit& c) { raise(Deposited{c.amount}); }
    void handle(const Withdraw& c) {
        if (c.amount > balance_) throw std::invalid_argument("insufficient funds");
        raise(Withdrawn{c.amount});
    }
    void apply(const AccountOpened&) { open_ = true; }
    void apply(const Deposited& e) { balance_ += e.amount; }
    void apply(const Withdrawn& e) { balance_ -= e.amount; }

private:
    bool open_ = false;
    std::int64_t balance_ = 0;
};

using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Bus = orchestrix::InMemoryBus<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;

/// The store, a repository, a bus and the projection "balances", all observed by `observer`: the part of the
/// example a test reuses.
class Bank {
public:
    explicit Bank(orchestrix::PrometheusObserver& observer)
        : accounts_(store_), balances_(
                                 "balances", store_, checkpoints_, [this](const Recorded& e) { apply(e); },
                                 orchestrix::ProjectionOptions{.observer = &observer}),
          audit_(bus_.subscribe<AccountEvent>([this](const AccountEvent&) { audited_.fetch_add(1); })) {
        store_.observe(&observer);
        accounts_.observe(&observer);
        bus_.observe(&observer);
    }

    /// Executes `command` on the account `id`; false if the account refused it.
    template <class Command>
    bool execute(const std::string& id, const Command& command) {
        try {
            accounts_.execute(id, command);
            return true;
        } catch (const std::invalid_argument&) {
            return false;
        }
    }

    /// Brings the balances up to date, publishing each event it handles; returns the events it read.
    std::uint64_t update_balances() { return balances_.run_until_caught_up(); }

    [[nodiscard]] std::int64_t balance(const std::string& id) const {
        const std::lock_guard lock(mutex_);
        const auto found = balances_by_account_.find(id);
        return found == balances_by_account_.end() ? 0 : found->second;
    }
    [[nodiscard]] int audited() const noexcept { return audited_.load(); }

private:
    void apply(const Recorded& e) {
        {
            const std::lock_guard lock(mutex_);
            if (const auto* d = std::get_if<Deposited>(&e.event)) balances_by_account_[e.stream_id] += d->amount;
            if (const auto* w = std::get_if<Withdrawn>(&e.event)) balances_by_account_[e.stream_id] -= w->amount;
        }
        bus_.publish(e.event);
    }

    Store store_;
    orchestrix::Repository<Account, Store> accounts_;
    Bus bus_;
    orchestrix::InMemoryCheckpointStore checkpoints_;
    mutable std::mutex mutex_;
    std::map<std::string, std::int64_t> balances_by_account_;
    orchestrix::Projection<Store, orchestrix::InMemoryCheckpointStore> balances_;
    orchestrix::Subscription audit_;
    std::atomic<int> audited_{0};
};

/// The known workload: two accounts opened, three deposits, one withdrawal, one withdrawal refused (insufficient
/// funds) and one second opening refused; then the balances are brought up to date. It makes 8 commands (6
/// succeeded, 2 rejected), 6 appends of one event each, and the projection handles and publishes the 6 events.
inline void run_workload(Bank& bank) {
    bank.execute("alice", Open{"Alice"});
    bank.execute("bob", Open{"Bob"});
    bank.execute("alice", Deposit{100});
    bank.execute("alice", Deposit{20});
    bank.execute("bob", Deposit{5});
    bank.execute("alice", Withdraw{30});
    bank.execute("bob", Withdraw{50}); // refused: insufficient funds
    bank.execute("alice", Open{"Al"}); // refused: open already
    bank.update_balances();
}

} // namespace metrics_example
