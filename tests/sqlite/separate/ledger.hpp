#pragma once

// A small application whose SQLite store is compiled once, in instance.cpp: this header declares it `extern`
// (ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE), so the files that include it (user.cpp) use the store without
// compiling its code. The test "sqlite separate
// compilation: the user's file compiles none of the store's code" checks user.cpp's object file for that.

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace ledger {

struct Opened {
    static constexpr std::string_view type_name = "ledger.opened";
    std::string owner;
    static constexpr std::array fields{"owner"};
};
struct Credited {
    static constexpr std::string_view type_name = "ledger.credited";
    std::int64_t amount = 0;
    static constexpr std::array fields{"amount"};
};
using Event = std::variant<Opened, Credited>;

struct Open {
    std::string owner;
};
struct Credit {
    std::int64_t amount = 0;
};

class Ledger : public orchestrix::AggregateRoot<Ledger, Event> {
public:
    void handle(const Open& c) {
        if (open_) throw std::runtime_error("the ledger is open already");
        raise(Opened{c.owner});
    }
    void handle(const Credit& c) {
        if (!open_) throw std::runtime_error("the ledger is not open");
        raise(Credited{c.amount});
    }
    void apply(const Opened&) { open_ = true; }
    void apply(const Credited& e) { balance_ += e.amount; }

    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    bool open_ = false;
    std::int64_t balance_ = 0;
};

using Store = orchestrix::SqliteEventStore<Event>;
using Ledgers = orchestrix::Repository<Ledger, Store>;

} // namespace ledger

ORCHESTRIX_EXTERN_JSON_CODEC(ledger::Event);
ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE(ledger::Event);
