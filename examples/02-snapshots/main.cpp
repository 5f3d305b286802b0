// 02-snapshots: a repository with a snapshot store and a snapshot policy.
// A repository takes a snapshot of the aggregate every 100 events (and whenever an account is frozen),
// then loads it from the latest snapshot plus the events after it. A snapshot written by the previous build
// (an older schema version of the state) is upcast and used; one that does not fit (here: from a newer build)
// is ignored and reported, and the aggregate is rebuilt from all events.

#include <orchestrix/json.hpp>
#include <orchestrix/orchestrix.hpp>

#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <variant>

struct Deposit {
    std::int64_t amount = 0;
};
struct Freeze {};

struct MoneyDeposited {
    static constexpr std::string_view type_name = "account.deposited";
    std::int64_t amount = 0;
    bool operator==(const MoneyDeposited&) const = default;
};
struct AccountFrozen {
    static constexpr std::string_view type_name = "account.frozen";
    bool operator==(const AccountFrozen&) const = default;
};
using AccountEvent = std::variant<MoneyDeposited, AccountFrozen>;

class Account : public orchestrix::AggregateRoot<Account, AccountEvent> {
public:
    // A stable name for the snapshot store, and the version of the state's JSON shape: 2 since "frozen"
    // became "frozen_".
    static constexpr std::string_view aggregate_type_name = "account";
    static constexpr std::uint32_t snapshot_schema_version = 2;

    void handle(const Deposit& c) {
        if (frozen_) throw std::logic_error("account is frozen");
        raise(MoneyDeposited{c.amount});
    }
    void handle(const Freeze&) { raise(AccountFrozen{}); }

    void apply(const MoneyDeposited& e) {
        balance_ += e.amount;
        ++deposits_;
    }
    void apply(const AccountFrozen&) { frozen_ = true; }

    [[nodiscard]] std::int64_t balance() const { return balance_; }
    [[nodiscard]] std::int64_t deposits() const { return deposits_; }

    // The snapshot state: the aggregate's members, through nlohmann_json.
    NLOHMANN_DEFINE_TYPE_INTRUSIVE(Account, balance_, deposits_, frozen_)

private:
    std::int64_t balance_ = 0;
    std::int64_t deposits_ = 0;
    bool frozen_ = false;
};

int main() {
    orchestrix::InMemoryEventStore<AccountEvent> events;
    orchestrix::InMemorySnapshotStore snapshots;

    // The state's JSON through nlohmann_json; snapshots of schema version 1 are upcast to version 2.
    const auto state_codec = orchestrix::json_state_codec<Account>().upcast(1, [](nlohmann::json& state) {
        state["frozen_"] = state.at("frozen");
        state.erase("frozen");
    });
    orchestrix::SnapshotSettings<Account> settings{
        .policy = orchestrix::snapshot_every(100) || orchestrix::snapshot_on<AccountFrozen>(),
        .state = state_codec,
        .on_issue =
            [](const orchestrix::SnapshotIssue& issue) {
                std::cout << "  snapshot ignored: " << issue.message << "\n";
            },
    };
    orchestrix::Repository accounts(events, snapshots, settings, "account-");

    for (int i = 1; i <= 250; ++i) (void)accounts.execute("42", Deposit{10});
    auto snapshot = snapshots.latest("account-42");
    std::cout << "after 250 deposits: snapshot at version " << snapshot->version << ", state " << snapshot->state
              << "\n";

    const Account loaded = accounts.load("42");
    std::cout << "loaded from the snapshot + " << loaded.version() - snapshot->version << " newer events: balance "
              << loaded.balance() << " at version " << loaded.version() << "\n";

    (void)accounts.execute("42", Freeze{});
    std::cout << "freezing the account took a snapshot at version " << snapshots.latest("account-42")->version << "\n";

    // A snapshot written by the previous build (schema version 1) is upcast and used.
    snapshot = snapshots.latest("account-42");
    auto old_state = nlohmann::json::parse(snapshot->state);
    old_state["frozen"] = old_state.at("frozen_");
    old_state.erase("frozen_");
    (void)snapshots.erase("account-42");
    snapshots.save({snapshot->aggregate_id, "account", snapshot->version, 1, old_state.dump(), {}});
    const Account upcast = accounts.load("42");
    std::cout << "loaded from a schema version 1 snapshot: balance " << upcast.balance() << "\n";

    // One written by a newer build (schema version 3) cannot be understood: it is ignored.
    (void)snapshots.erase("account-42");
    snapshots.save({snapshot->aggregate_id, "account", snapshot->version, 3, snapshot->state, {}});
    const Account replayed = accounts.load("42");
    std::cout << "rebuilt from all " << replayed.version() << " events: balance " << replayed.balance() << "\n";

    const Account full = Account::from_history(events.read_stream("account-42"));
    const bool same = full.balance() == replayed.balance() && full.balance() == loaded.balance() &&
                      full.balance() == upcast.balance() && full.deposits() == 250 && snapshot->version == 251;
    std::cout << (same ? "snapshot + tail and full replay agree\n" : "MISMATCH\n");
    return same ? 0 : 1;
}
