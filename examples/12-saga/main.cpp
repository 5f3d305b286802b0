// 12-saga: workflows that span aggregates, with state, deadlines and compensation (docs/sagas.md).
//
//   1. A money transfer: debit one account, credit the other; when the credit is refused, refund the debit.
//   2. An order: reserve stock, take payment, ship; when the payment does not arrive within 15 minutes,
//      cancel the order and release the stock.
//
// Each saga instance keeps its state in a stream of its own ("transfer-<id>", "order-<id>"), is driven by
// the domain events it correlates with, sends commands through the command bus with ids derived from what it
// is handling (so a command sent again after a crash is recognised), and compensates its completed steps in
// reverse order when one fails. The clock is injected: this program moves it by hand instead of waiting.

#include <orchestrix/orchestrix.hpp>
#include <orchestrix/projection.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace shop {

// ---- domain events ---------------------------------------------------------------------------------------
struct AccountOpened {
    static constexpr std::string_view type_name = "bank.account_opened";
    std::string account;
    std::int64_t balance = 0;
    bool frozen = false;
    bool operator==(const AccountOpened&) const = default;
};
struct MoneyMoved { // a debit (negative) or a credit (positive), made by the command `command_id`
    static constexpr std::string_view type_name = "bank.money_moved";
    std::string account;
    std::int64_t amount = 0;
    std::string command_id;
    bool operator==(const MoneyMoved&) const = default;
};
struct TransferRequested {
    static constexpr std::string_view type_name = "bank.transfer_requested";
    std::string transfer, from, to;
    std::int64_t amount = 0;
    bool operator==(const TransferRequested&) const = default;
};
struct OrderPlaced {
    static constexpr std::string_view type_name = "shop.order_placed";
    std::string order, sku;
    int quantity = 0;
    bool operator==(const OrderPlaced&) const = default;
};
struct PaymentReceived {
    static constexpr std::string_view type_name = "shop.payment_received";
    std::string order;
    bool operator==(const PaymentReceived&) const = default;
};
struct StockChanged { // reserved (negative) or released (positive) by the command `command_id`
    static constexpr std::string_view type_name = "shop.stock_changed";
    std::string sku;
    int quantity = 0;
    std::string command_id;
    bool operator==(const StockChanged&) const = default;
};
struct OrderShipped {
    static constexpr std::string_view type_name = "shop.order_shipped";
    std::string order;
    bool operator==(const OrderShipped&) const = default;
};
struct OrderCancelled {
    static constexpr std::string_view type_name = "shop.order_cancelled";
    std::string order;
    bool operator==(const OrderCancelled&) const = default;
};
using Event = std::variant<AccountOpened, MoneyMoved, TransferRequested, OrderPlaced, PaymentReceived, StockChanged,
                           OrderShipped, OrderCancelled>;
using Store = orchestrix::InMemoryEventStore<Event>;

// ---- commands: each carries the id its sender derived, so a command sent twice takes effect once -----------
struct MoveMoney {
    std::string account;
    std::int64_t amount = 0;
    std::string command_id;
};
struct ChangeStock {
    std::string sku;
    int quantity = 0;
    std::string command_id;
};
struct Ship {
    std::string order;
};
struct Cancel {
    std::string order;
};

// The command side: each command appends one event whose id is the command's id, so a command sent again is an
// idempotent retry of the same append (orchestrix's contract), never a second movement.
void serve(orchestrix::CommandBus& bus, Store& store, std::map<std::string, std::int64_t>& balances,
           std::set<std::string>& frozen, std::map<std::string, int>& stock,
           std::vector<orchestrix::Subscription>& keep) {
    const auto once = [&store](const std::string& stream, Event e, const std::string& id) {
        store.append(stream,
                     {orchestrix::EventEnvelope<Event>{std::move(e), {*orchestrix::Uuid::parse(id), {}, {}, {}, {}}}},
                     orchestrix::ExpectedVersion::any());
    };
    keep.push_back(bus.register_handler<MoveMoney>([&, once](const MoveMoney& c) {
        if (c.amount > 0 && frozen.contains(c.account)) throw std::runtime_error("account " + c.account + " is frozen");
        if (c.amount < 0 && balances[c.account] + c.amount < 0) throw std::runtime_error("insufficient funds");
        if (store.read_stream("command-" + c.command_id).empty()) balances[c.account] += c.amount;
        once("command-" + c.command_id, MoneyMoved{c.account, c.amount, c.command_id}, c.command_id);
    }));
    keep.push_back(bus.register_handler<ChangeStock>([&, once](const ChangeStock& c) {
        if (stock[c.sku] + c.quantity < 0) throw std::runtime_error("out of stock");
        if (store.read_stream("command-" + c.command_id).empty()) stock[c.sku] += c.quantity;
        once("command-" + c.command_id, StockChanged{c.sku, c.quantity, c.command_id}, c.command_id);
    }));
    keep.push_back(bus.register_handler<Ship>([&store](const Ship& c) {
        store.append("order-" + c.order, {OrderShipped{c.order}}, orchestrix::ExpectedVersion::any());
    }));
    keep.push_back(bus.register_handler<Cancel>([&store](const Cancel& c) {
        store.append("order-" + c.order, {OrderCancelled{c.order}}, orchestrix::ExpectedVersion::any());
    }));
}

// ---- the transfer saga -----------------------------------------------------------------------------------
struct TransferStarted {
    static constexpr std::string_view type_name = "transfer.started";
    std::string from, to;
    std::int64_t amount = 0;
    bool operator==(const TransferStarted&) const = default;
};

class Transfer : public orchestrix::Saga<Transfer, std::variant<TransferStarted>> {
public:
    static constexpr std::string_view saga_type = "transfer";
    static std::optional<std::string> correlate(const Event& e) {
        if (const auto* r = std::get_if<TransferRequested>(&e)) return r->transfer;
        return std::nullopt;
    }

    void handle(const TransferRequested& e) {
        raise(TransferStarted{e.from, e.to, e.amount});
        if (step("debit", MoveMoney{from_, -amount_, command_id("debit").to_string()}) &&
            step("credit", MoveMoney{to_, amount_, command_id("credit").to_string()})) {
            complete();
        } // a refused step fails the saga: the completed ones are compensated, latest first
    }
    void compensate(std::string_view step_name) {
        if (step_name == "debit") send(MoveMoney{from_, amount_, command_id("refund").to_string()});
    }
    void apply(const TransferStarted& e) {
        from_ = e.from;
        to_ = e.to;
        amount_ = e.amount;
    }

private:
    std::string from_, to_;
    std::int64_t amount_ = 0;
};

// ---- the order saga ----------------------------------------------------------------------------------------
struct OrderAccepted {
    static constexpr std::string_view type_name = "order.accepted";
    std::string sku;
    int quantity = 0;
    bool operator==(const OrderAccepted&) const = default;
};

class Fulfilment : public orchestrix::Saga<Fulfilment, std::variant<OrderAccepted>> {
public:
    static constexpr std::string_view saga_type = "order";
    static std::optional<std::string> correlate(const Event& e) {
        if (const auto* p = std::get_if<OrderPlaced>(&e)) return p->order;
        if (const auto* p = std::get_if<PaymentReceived>(&e)) return p->order;
        return std::nullopt;
    }

    void handle(const OrderPlaced& e) {
        raise(OrderAccepted{e.sku, e.quantity});
        if (step("reserve", ChangeStock{sku_, -quantity_, command_id("reserve").to_string()})) {
            schedule("payment", std::chrono::minutes(15)); // no payment in 15 minutes: cancel
        }
    }
    void handle(const PaymentReceived&) {
        if (version() == 0) return; // a payment for an order this saga never saw
        cancel("payment");
        send(Ship{key()});
        complete();
    }
    void on_deadline(std::string_view) { fail("no payment within 15 minutes"); }
    void compensate(std::string_view step_name) {
        if (step_name == "reserve") {
            send(ChangeStock{sku_, quantity_, command_id("release").to_string()});
            send(Cancel{key()});
        }
    }
    void apply(const OrderAccepted& e) {
        sku_ = e.sku;
        quantity_ = e.quantity;
    }

private:
    std::string sku_;
    int quantity_ = 0;
};

} // namespace shop

int main() {
    using namespace shop;
    using orchestrix::ExpectedVersion;
    Store store;
    std::map<std::string, std::int64_t> balances{{"alice", 100}, {"bob", 0}, {"carol", 0}};
    std::set<std::string> frozen{"carol"};
    std::map<std::string, int> stock{{"mug", 3}};
    orchestrix::CommandBus bus;
    std::vector<orchestrix::Subscription> handlers;
    serve(bus, store, balances, frozen, stock, handlers);

    // The sagas' own streams, checkpoints and deadlines (SQLite or PostgreSQL ones in production).
    orchestrix::InMemoryEventStore<Transfer::event_type> transfers;
    orchestrix::InMemoryEventStore<Fulfilment::event_type> orders;
    orchestrix::InMemoryCheckpointStore checkpoints;
    orchestrix::InMemoryDeadlineStore deadlines;
    auto now = std::chrono::system_clock::now();
    orchestrix::SagaOptions options;
    options.clock = [&now] { return now; };
    auto transfer_runner =
        orchestrix::make_saga_runner<Transfer>(store, transfers, checkpoints, deadlines, bus, options);
    auto order_runner = orchestrix::make_saga_runner<Fulfilment>(store, orders, checkpoints, deadlines, bus, options);

    // 1. Two transfers: one goes through, one is refused by a frozen account and refunded.
    store.append("requests", {TransferRequested{"t1", "alice", "bob", 30}}, ExpectedVersion::any());
    store.append("requests", {TransferRequested{"t2", "alice", "carol", 50}}, ExpectedVersion::any());
    transfer_runner->run_until_caught_up();
    for (const char* id : {"t1", "t2"}) {
        const auto saga = transfer_runner->load(id);
        std::cout << "transfer " << id << ": " << orchestrix::to_string(saga->status())
                  << (saga->failure().empty() ? "" : " (" + saga->failure() + ")") << '\n';
    }
    std::cout << "balances: alice " << balances["alice"] << ", bob " << balances["bob"] << ", carol "
              << balances["carol"] << '\n';

    // 2. Two orders: one is paid and shipped, the other times out and is cancelled.
    store.append("order-o1", {OrderPlaced{"o1", "mug", 1}}, ExpectedVersion::any());
    store.append("order-o2", {OrderPlaced{"o2", "mug", 2}}, ExpectedVersion::any());
    order_runner->run_until_caught_up();
    std::cout << "mugs in stock after both reservations: " << stock["mug"] << '\n';
    store.append("payments", {PaymentReceived{"o1"}}, ExpectedVersion::any());
    order_runner->run_until_caught_up();
    now += std::chrono::minutes(16); // o2 is never paid
    order_runner->fire_deadlines();
    for (const char* id : {"o1", "o2"}) {
        const auto saga = order_runner->load(id);
        std::cout << "order " << id << ": " << orchestrix::to_string(saga->status())
                  << (saga->failure().empty() ? "" : " (" + saga->failure() + ")") << '\n';
    }
    std::cout << "mugs in stock: " << stock["mug"] << '\n';

    const bool ok = balances["alice"] == 70 && balances["bob"] == 30 && balances["carol"] == 0 && stock["mug"] == 2 &&
                    order_runner->load("o1")->status() == orchestrix::SagaStatus::completed &&
                    order_runner->load("o2")->status() == orchestrix::SagaStatus::compensated;
    return ok ? 0 : 1;
}
