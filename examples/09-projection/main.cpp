// 09-projection: an account-balance read model in SQLite, kept up to date by a projection. The events and
// the read model share one file; each batch of events updates the balances table and the projection's
// checkpoint in one transaction, so a crash never loses or double-counts a deposit.
//
// It shows the three phases of a projection's life: catch-up over stored events, live delivery of new
// ones, and a rebuild from position zero after the read model changed shape.

#include <orchestrix/json.hpp>
#include <orchestrix/orchestrix.hpp>
#include <orchestrix/projection.hpp>
#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>
#include <variant>

namespace bank {

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
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyWithdrawn, amount)
using BankEvent = std::variant<MoneyDeposited, MoneyWithdrawn>;

} // namespace bank

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::SqliteTransaction;
using Recorded = orchestrix::RecordedEvent<bank::BankEvent>;

void print_balances(orchestrix::SqliteCheckpointStore& read_model, std::string_view when) {
    std::cout << when << ":\n";
    read_model.read([](SqliteTransaction& tx) {
        tx.for_each("SELECT account, balance, movements FROM balances ORDER BY account", [](const auto& row) {
            std::cout << "  " << row.text(0) << "  balance " << row.int64(1) << "  (" << row.int64(2)
                      << " movements)\n";
        });
    });
}

} // namespace

int main() {
    using namespace std::chrono_literals;
    const std::string path = "09-projection.db";
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");

    orchestrix::SqliteEventStore<bank::BankEvent> store(path);
    store.append("account-ada", {bank::MoneyDeposited{100}, bank::MoneyWithdrawn{30}}, ExpectedVersion::no_stream());
    store.append("account-bob", {bank::MoneyDeposited{50}}, ExpectedVersion::no_stream());
    store.append("audit-1", {bank::MoneyDeposited{999}}, ExpectedVersion::no_stream()); // not an account

    // The read model: a table in the same file, written only through the projection's transaction.
    orchestrix::SqliteCheckpointStore read_model(path);
    read_model.transact([](SqliteTransaction& tx) {
        tx.exec("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL, "
                "movements INTEGER NOT NULL)");
    });

    orchestrix::Projection balances(
        "balances", store, read_model,
        [](SqliteTransaction& tx, const Recorded& e) {
            const std::int64_t delta = std::visit(
                [](const auto& event) {
                    return std::is_same_v<std::decay_t<decltype(event)>, bank::MoneyDeposited> ? event.amount
                                                                                               : -event.amount;
                },
                e.event);
            tx.run("INSERT INTO balances (account, balance, movements) VALUES (?1, ?2, 1) ON CONFLICT (account) "
                   "DO UPDATE SET balance = balance + excluded.balance, movements = movements + 1",
                   e.stream_id, delta);
        },
        {.filter = orchestrix::EventFilter::stream_prefix("account-"), .poll_interval = 5ms});

    // 1. Catch-up: the events stored before the projection started.
    const auto caught_up = balances.run_until_caught_up();
    std::cout << "caught up over " << caught_up << " stored events, checkpoint " << balances.checkpoint() << "\n";
    print_balances(read_model, "after catch-up");

    // 2. Live: the projection runs on its own thread and picks up new events as they are committed.
    balances.start();
    store.append("account-bob", {bank::MoneyDeposited{25}}, ExpectedVersion::exact(1));
    const auto written = store.append("account-cyd", {bank::MoneyDeposited{10}}, ExpectedVersion::no_stream());
    if (!balances.wait_for(written.last_position, 10s)) { // read your own writes
        std::cerr << "the projection did not catch up\n";
        return 1;
    }
    print_balances(read_model, "live, after two more deposits");

    // 3. Rebuild: empty the read model and the checkpoint in one transaction, then replay from zero.
    balances.rebuild([](SqliteTransaction& tx) { tx.exec("DELETE FROM balances"); });
    if (!balances.wait_for(store.head_position(), 10s)) return 1;
    balances.stop();
    print_balances(read_model, "after a rebuild from position zero");

    const auto ada = read_model.read([](SqliteTransaction& tx) {
        return tx.query_int64("SELECT balance FROM balances WHERE account = ?1", "account-ada");
    });
    std::cout << "account-ada holds " << ada.value_or(0) << " (the audit stream was filtered out)\n";
    return ada == 70 ? 0 : 1;
}
