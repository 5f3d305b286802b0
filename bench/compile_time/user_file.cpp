// The file users write most, for the compile-time check of tools/bench.py: three events that name their
// fields, an aggregate with three commands, and a repository over the SQLite store with the JSON codec
// (ORCHESTRIX_COMPILE_TIME_SQLITE defined) or over the in-memory store (core only). With
// ORCHESTRIX_COMPILE_TIME_SEPARATE defined as well, the store is declared `extern` and compiled once, in
// instance.cpp (docs/stores.md, "Compiling a store once"). Compiled with g++ -O0 by the script; the
// benchmark build compiles every variant too, so they cannot rot.

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/repository.hpp>
#ifdef ORCHESTRIX_COMPILE_TIME_SQLITE
#include <orchestrix/sqlite/event_store.hpp>
#else
#include <orchestrix/memory/event_store.hpp>
#endif

#include <array>
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace bank {

struct AccountOpened {
    static constexpr std::string_view type_name = "bank.account_opened";
    std::string owner;
    static constexpr std::array fields{"owner"};
};
struct MoneyDeposited {
    static constexpr std::string_view type_name = "bank.money_deposited";
    std::int64_t amount = 0;
    static constexpr std::array fields{"amount"};
};
struct MoneyWithdrawn {
    static constexpr std::string_view type_name = "bank.money_withdrawn";
    std::int64_t amount = 0;
    static constexpr std::array fields{"amount"};
};
using BankEvent = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn>;

struct OpenAccount {
    std::string owner;
};
struct Deposit {
    std::int64_t amount = 0;
};
struct Withdraw {
    std::int64_t amount = 0;
};

class Account : public orchestrix::AggregateRoot<Account, BankEvent> {
public:
    void handle(const OpenAccount& c) {
        if (open_) throw std::runtime_error("the account is open already");
        raise(AccountOpened{c.owner});
    }
    void handle(const Deposit& c) {
        if (c.amount <= 0) throw std::runtime_error("a deposit must be positive");
        raise(MoneyDeposited{c.amount});
    }
    void handle(const Withdraw& c) {
        if (c.amount > balance_) throw std::runtime_error("insufficient funds");
        raise(MoneyWithdrawn{c.amount});
    }

    void apply(const AccountOpened&) { open_ = true; }
    void apply(const MoneyDeposited& e) { balance_ += e.amount; }
    void apply(const MoneyWithdrawn& e) { balance_ -= e.amount; }

    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    bool open_ = false;
    std::int64_t balance_ = 0;
};

} // namespace bank

#if defined(ORCHESTRIX_COMPILE_TIME_SQLITE) && defined(ORCHESTRIX_COMPILE_TIME_SEPARATE)
ORCHESTRIX_EXTERN_JSON_CODEC(bank::BankEvent);
ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE(bank::BankEvent);
#ifdef ORCHESTRIX_COMPILE_TIME_INSTANCE
ORCHESTRIX_INSTANTIATE_JSON_CODEC(bank::BankEvent);
ORCHESTRIX_INSTANTIATE_SQLITE_EVENT_STORE(bank::BankEvent);
#endif
#endif

#ifndef ORCHESTRIX_COMPILE_TIME_INSTANCE
int main(int argc, char** argv) {
#ifdef ORCHESTRIX_COMPILE_TIME_SQLITE
    using Store = orchestrix::SqliteEventStore<bank::BankEvent>;
    Store store(argc > 1 ? argv[1] : ":memory:");
#else
    using Store = orchestrix::InMemoryEventStore<bank::BankEvent>;
    Store store;
    (void)argc;
    (void)argv;
#endif
    orchestrix::Repository<bank::Account, Store> accounts(store);
    accounts.execute("acc-1", bank::OpenAccount{"Ada"});
    accounts.execute("acc-1", bank::Deposit{100});
    accounts.execute("acc-1", bank::Withdraw{30});
    std::cout << "balance " << accounts.load("acc-1").balance() << "\n";
    return 0;
}
#endif
