// 14-forget: an account holder asks the bank to forget them (crypto-shredding, docs/lifecycle.md).
//
// The holder's name and e-mail are personal data: the event type says so (`orchestrix::Personal<T>`), and the
// SQLite store writes them encrypted with a key of their own (`orchestrix::ShreddingCodec`, keys in the same
// file). Forgetting the customer destroys that key: the events stay, the amounts and the history stay, and
// every read, every projection and every rebuild sees the holder erased. After `compact()` neither the name nor
// the key is anywhere in the file.
//
//   example-14-forget [--db PATH]      (default ./orchestrix-forget.db, recreated at each run)

#include <orchestrix/crypto.hpp>
#include <orchestrix/json.hpp>
#include <orchestrix/orchestrix.hpp>
#include <orchestrix/sqlite.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <variant>

namespace bank {

// The personal part of an account, kept together: the whole struct is one Personal<HolderDetails>.
struct HolderDetails {
    std::string name;
    std::string email;
    bool operator==(const HolderDetails&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(HolderDetails, name, email)

struct AccountOpened {
    static constexpr std::string_view type_name = "bank.account_opened";
    std::string account_id;
    orchestrix::Personal<HolderDetails> holder; // the data subject is the customer id
    bool operator==(const AccountOpened&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, account_id, holder)

struct MoneyDeposited {
    static constexpr std::string_view type_name = "bank.money_deposited";
    std::int64_t amount = 0;
    bool operator==(const MoneyDeposited&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, amount)

using Event = std::variant<AccountOpened, MoneyDeposited>;

struct OpenAccount {
    std::string account_id;
    std::string customer_id;
    HolderDetails holder;
};
struct Deposit {
    std::int64_t amount = 0;
};

// The aggregate decides on what it needs, and that is not the holder's name.
class Account : public orchestrix::AggregateRoot<Account, Event> {
public:
    void handle(const OpenAccount& c) {
        if (open_) throw std::logic_error("account already open");
        raise(AccountOpened{c.account_id, orchestrix::Personal{c.customer_id, c.holder}});
    }
    void handle(const Deposit& c) {
        if (!open_) throw std::logic_error("account not open");
        raise(MoneyDeposited{c.amount});
    }
    void apply(const AccountOpened&) { open_ = true; }
    void apply(const MoneyDeposited& e) { balance_ += e.amount; }
    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    bool open_ = false;
    std::int64_t balance_ = 0;
};

// A read model: each account's holder and balance, rebuilt from every stored event.
struct Statement {
    std::string holder;
    std::int64_t balance = 0;
};

template <class Store>
std::map<std::string, Statement> statements(const Store& store) {
    std::map<std::string, Statement> out;
    for (const auto& e : store.read_all()) {
        Statement& s = out[e.stream_id];
        if (const auto* opened = std::get_if<AccountOpened>(&e.event)) {
            // What a projection should store: the value, or a marker once the holder was forgotten.
            s.holder = opened->holder.is_erased()
                           ? "[erased]"
                           : opened->holder.value().name + " <" + opened->holder.value().email + ">";
        } else if (const auto* deposited = std::get_if<MoneyDeposited>(&e.event)) {
            s.balance += deposited->amount;
        }
    }
    return out;
}

void print(const std::map<std::string, Statement>& all) {
    for (const auto& [account, s] : all) std::cout << "  " << account << ": " << s.holder << ", " << s.balance << "\n";
}

bool file_contains(const std::string& path, std::string_view text) {
    for (const char* suffix : {"", "-wal"}) {
        std::ifstream in(path + suffix, std::ios::binary);
        const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        if (bytes.find(text) != std::string::npos) return true;
    }
    return false;
}

} // namespace bank

int main(int argc, char** argv) {
    using namespace bank;
    std::string path = "orchestrix-forget.db";
    if (argc == 3 && std::string_view(argv[1]) == "--db") path = argv[2];
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);

    using Codec = orchestrix::ShreddingCodec<Event, orchestrix::SqliteKeyStore>;
    orchestrix::SqliteKeyStore keys(path);
    orchestrix::SqliteEventStore<Event, Codec> store(path, {}, Codec(keys));
    orchestrix::Repository<Account, orchestrix::SqliteEventStore<Event, Codec>> accounts(store, "account-");

    accounts.execute("1", OpenAccount{"1", "customer-7", {"Ada Lovelace", "ada@example.com"}});
    accounts.execute("1", Deposit{100});
    accounts.execute("1", Deposit{50});
    accounts.execute("2", OpenAccount{"2", "customer-8", {"Grace Hopper", "grace@example.com"}});
    accounts.execute("2", Deposit{70});
    std::cout << "statements:\n";
    print(statements(store));
    // Encrypted from the start: the name was never written in clear.
    const bool clear_before = file_contains(path, "Ada Lovelace");

    std::cout << "customer-7 asks to be forgotten\n";
    store.codec().forget("customer-7"); // destroys every key version of customer-7
    keys.compact();                     // and the key's bytes leave the file
    const auto after = statements(store);
    std::cout << "statements rebuilt:\n";
    print(after);
    std::cout << "account-1 balance, from the aggregate: " << accounts.load("1").balance() << "\n";

    bool refused = false;
    try {
        accounts.execute("3", OpenAccount{"3", "customer-7", {"Ada Lovelace", "ada@example.com"}});
    } catch (const orchestrix::SubjectForgottenError& e) {
        refused = true;
        std::cout << "opening another account for them: " << e.what() << "\n";
    }

    const bool ok = !clear_before && !file_contains(path, "Ada Lovelace") &&
                    after.at("account-1").holder == "[erased]" && after.at("account-1").balance == 150 &&
                    after.at("account-2").holder == "Grace Hopper <grace@example.com>" && refused &&
                    accounts.load("1").balance() == 150;
    std::cout << (ok ? "forgotten: the history stays, the person does not\n" : "UNEXPECTED RESULT\n");
    return ok ? 0 : 1;
}
