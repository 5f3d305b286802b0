// 08-bank: a bank-account command line whose events survive the program. They go to an SQLite file
// (./orchestrix-bank.db, or --db PATH), so a second run continues where the first stopped; with
// --postgres URL they go to a PostgreSQL database shared by every process that uses it, and with --jetstream
// URL to a NATS JetStream stream (a single server, or a cluster's URLs, comma-separated).
//
//   example-08-bank                         a short demo (run it twice: the balance carries over)
//   example-08-bank open acc-1 Ada          open an account
//   example-08-bank deposit acc-1 100       deposit
//   example-08-bank withdraw acc-1 30       withdraw (refused beyond the balance)
//   example-08-bank balance acc-1           print the balance
//   example-08-bank history acc-1           print the stored events
//   options (before the command): --db PATH | --postgres URL | --jetstream URL [--jetstream-stream NAME]
//                                  | --reset (start from an empty SQLite file)

#include <orchestrix/json.hpp>
#include <orchestrix/orchestrix.hpp>
#include <orchestrix/sqlite/event_store.hpp>
#ifdef ORCHESTRIX_BANK_WITH_POSTGRES
#include <orchestrix/postgres/event_store.hpp>
#endif
#ifdef ORCHESTRIX_BANK_WITH_JETSTREAM
#include <orchestrix/jetstream/event_store.hpp>
#endif

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace bank {

// Events: plain structs with a stable name, converted to JSON for the durable store.
struct AccountOpened {
    static constexpr std::string_view type_name = "bank.account_opened";
    std::string owner;
    bool operator==(const AccountOpened&) const = default;
};
struct MoneyDeposited {
    static constexpr std::string_view type_name = "bank.money_deposited";
    std::int64_t amount = 0;
    bool operator==(const MoneyDeposited&) const = default;
};
struct MoneyWithdrawn {
    static constexpr std::string_view type_name = "bank.money_withdrawn";
    std::int64_t amount = 0;
    bool operator==(const MoneyWithdrawn&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, owner)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyWithdrawn, amount)
using BankEvent = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn>;

// Commands.
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
        if (c.owner.empty()) throw std::runtime_error("an account needs an owner");
        raise(AccountOpened{c.owner});
    }
    void handle(const Deposit& c) {
        require_open();
        if (c.amount <= 0) throw std::runtime_error("a deposit must be positive");
        raise(MoneyDeposited{c.amount});
    }
    void handle(const Withdraw& c) {
        require_open();
        if (c.amount <= 0) throw std::runtime_error("a withdrawal must be positive");
        if (c.amount > balance_) {
            throw std::runtime_error("insufficient funds: the balance is " + std::to_string(balance_));
        }
        raise(MoneyWithdrawn{c.amount});
    }

    void apply(const AccountOpened& e) {
        open_ = true;
        owner_ = e.owner;
    }
    void apply(const MoneyDeposited& e) { balance_ += e.amount; }
    void apply(const MoneyWithdrawn& e) { balance_ -= e.amount; }

    [[nodiscard]] const std::string& owner() const { return owner_; }
    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    void require_open() const {
        if (!open_) throw std::runtime_error("no such account: open it first");
    }
    bool open_ = false;
    std::string owner_;
    std::int64_t balance_ = 0;
};

std::int64_t parse_amount(std::string_view text) {
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        throw std::runtime_error("'" + std::string(text) + "' is not a whole amount");
    }
    return value;
}

std::string describe(const BankEvent& event) {
    return std::visit(
        [](const auto& e) -> std::string {
            using E = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<E, AccountOpened>) return "opened for " + e.owner;
            if constexpr (std::is_same_v<E, MoneyDeposited>) return "deposited " + std::to_string(e.amount);
            if constexpr (std::is_same_v<E, MoneyWithdrawn>) return "withdrew " + std::to_string(e.amount);
        },
        event);
}

// The commands of the command line, against any event store.
template <class Store>
class Teller {
public:
    explicit Teller(Store& store) : store_(store), accounts_(store, "account-") {
        accounts_.with_cache(cache_); // warm commands start from the cached account (docs/aggregates.md)
    }

    void open(const std::string& id, const std::string& owner) {
        const auto r = accounts_.execute(id, OpenAccount{owner}, {1});
        std::cout << "opened " << id << " for " << owner << " (event at position " << r.append.last_position << ")\n";
    }
    void deposit(const std::string& id, std::int64_t amount) {
        accounts_.execute(id, Deposit{amount});
        std::cout << "deposited " << amount << " to " << id << "\n";
    }
    void withdraw(const std::string& id, std::int64_t amount) {
        accounts_.execute(id, Withdraw{amount});
        std::cout << "withdrew " << amount << " from " << id << "\n";
    }
    void balance(const std::string& id) const {
        const auto account = accounts_.find(id);
        if (!account) throw std::runtime_error("no such account: " + id);
        std::cout << id << " (" << account->owner() << "): balance " << account->balance() << " after "
                  << account->version() << " events\n";
    }
    void history(const std::string& id) const {
        const auto events = store_.read_stream(accounts_.stream_id(id));
        if (events.empty()) throw std::runtime_error("no such account: " + id);
        for (const auto& e : events) {
            std::cout << "  #" << e.version << " (position " << e.position << ") " << describe(e.event) << "\n";
        }
    }
    [[nodiscard]] bool exists(const std::string& id) const { return accounts_.find(id).has_value(); }

private:
    Store& store_;
    orchestrix::AggregateCache<Account> cache_{1000};
    orchestrix::Repository<Account, Store> accounts_;
};

template <class Store>
int run(Store& store, const std::vector<std::string>& args) {
    Teller<Store> teller(store);
    if (args.empty()) { // the demo: each run continues from the last one
        if (!teller.exists("demo")) teller.open("demo", "Ada Lovelace");
        teller.deposit("demo", 100);
        teller.withdraw("demo", 30);
        try {
            teller.withdraw("demo", 1'000'000);
        } catch (const std::runtime_error& e) {
            std::cout << "refused a withdrawal of 1000000: " << e.what() << "\n";
        }
        teller.balance("demo");
        teller.history("demo");
        return 0;
    }
    const std::string& command = args[0];
    auto need = [&](std::size_t count) {
        if (args.size() != count + 1)
            throw std::runtime_error(command + " takes " + std::to_string(count) + " arguments");
    };
    if (command == "open") {
        need(2);
        teller.open(args[1], args[2]);
    } else if (command == "deposit") {
        need(2);
        teller.deposit(args[1], parse_amount(args[2]));
    } else if (command == "withdraw") {
        need(2);
        teller.withdraw(args[1], parse_amount(args[2]));
    } else if (command == "balance") {
        need(1);
        teller.balance(args[1]);
    } else if (command == "history") {
        need(1);
        teller.history(args[1]);
    } else {
        throw std::runtime_error("unknown command '" + command + "' (open, deposit, withdraw, balance, history)");
    }
    return 0;
}

} // namespace bank

int main(int argc, char** argv) {
    std::string db = "orchestrix-bank.db";
    std::string postgres;
    std::string jetstream;
    std::string jetstream_stream = "bank";
    bool reset = false;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--db" && i + 1 < argc) {
            db = argv[++i];
        } else if (arg == "--postgres" && i + 1 < argc) {
            postgres = argv[++i];
        } else if (arg == "--jetstream" && i + 1 < argc) {
            jetstream = argv[++i];
        } else if (arg == "--jetstream-stream" && i + 1 < argc) {
            jetstream_stream = argv[++i];
        } else if (arg == "--reset") {
            reset = true;
        } else {
            args.push_back(arg);
        }
    }
    try {
        if (!postgres.empty()) {
#ifdef ORCHESTRIX_BANK_WITH_POSTGRES
            orchestrix::PostgresEventStore<bank::BankEvent> store(postgres);
            std::cout << "events in PostgreSQL\n";
            return bank::run(store, args);
#else
            std::cerr << "this build has no PostgreSQL support (libpq was not found)\n";
            return 2;
#endif
        }
        if (!jetstream.empty()) {
#ifdef ORCHESTRIX_BANK_WITH_JETSTREAM
            orchestrix::JetStreamOptions options;
            options.url = jetstream;
            options.stream = jetstream_stream;
            options.subject_prefix = jetstream_stream;
            orchestrix::JetStreamEventStore<bank::BankEvent> store(options);
            std::cout << "events in the JetStream stream '" << jetstream_stream << "'\n";
            return bank::run(store, args);
#else
            std::cerr << "this build has no JetStream support (libnats was not found)\n";
            return 2;
#endif
        }
        if (reset) {
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
        }
        orchestrix::SqliteEventStore<bank::BankEvent> store(db);
        std::cout << "events in " << db << "\n";
        return bank::run(store, args);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
