// 10-process-manager: an order that reserves stock, then confirms. A process manager follows the event
// store; when an order is placed it sends ReserveStock, and when the stock is reserved it sends
// ConfirmOrder, through the command bus. Each command carries an id derived from the event that caused
// it, so the inventory recognises a command sent again after a crash and reserves only once.

#include <orchestrix/orchestrix.hpp>
#include <orchestrix/projection.hpp>

#include <iostream>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace shop {

// Events.
struct OrderPlaced {
    static constexpr std::string_view type_name = "shop.order_placed";
    std::string order_id, sku;
    int quantity = 0;
    bool operator==(const OrderPlaced&) const = default;
};
struct OrderConfirmed {
    static constexpr std::string_view type_name = "shop.order_confirmed";
    std::string order_id;
    bool operator==(const OrderConfirmed&) const = default;
};
struct StockReserved {
    static constexpr std::string_view type_name = "shop.stock_reserved";
    std::string reservation_id, order_id;
    int quantity = 0;
    bool operator==(const StockReserved&) const = default;
};
using OrderEvent = std::variant<OrderPlaced, OrderConfirmed>;
using InventoryEvent = std::variant<StockReserved>;
using ShopEvent = std::variant<OrderPlaced, OrderConfirmed, StockReserved>;

// Commands.
struct PlaceOrder {
    std::string order_id, sku;
    int quantity = 0;
};
struct ReserveStock {
    std::string reservation_id, order_id;
    int quantity = 0;
};
struct ConfirmOrder {
    std::string order_id;
};

class Order : public orchestrix::AggregateRoot<Order, OrderEvent> {
public:
    void handle(const PlaceOrder& c) { raise(OrderPlaced{c.order_id, c.sku, c.quantity}); }
    void handle(const ConfirmOrder& c) {
        if (!confirmed_) raise(OrderConfirmed{c.order_id});
    }
    void apply(const OrderPlaced&) {}
    void apply(const OrderConfirmed&) { confirmed_ = true; }

private:
    bool confirmed_ = false;
};

// One stock item. It remembers the reservations it made: a ReserveStock sent again is recognised.
class Stock : public orchestrix::AggregateRoot<Stock, InventoryEvent> {
public:
    void handle(const ReserveStock& c) {
        if (reservations_.contains(c.reservation_id)) return; // sent again after a crash: done already
        if (reserved_ + c.quantity > 10) throw std::runtime_error("out of stock");
        raise(StockReserved{c.reservation_id, c.order_id, c.quantity});
    }
    void apply(const StockReserved& e) {
        reservations_.insert(e.reservation_id);
        reserved_ += e.quantity;
    }
    [[nodiscard]] int reserved() const { return reserved_; }

private:
    std::set<std::string> reservations_;
    int reserved_ = 0;
};

} // namespace shop

int main() {
    using namespace shop;
    orchestrix::InMemoryEventStore<ShopEvent> store;
    orchestrix::Repository<Order, decltype(store)> orders(store, "order-");
    orchestrix::Repository<Stock, decltype(store)> stock(store, "stock-");

    orchestrix::CommandBus commands;
    int reserve_commands = 0;
    auto r1 = commands.register_handler<ReserveStock>([&](const ReserveStock& c) {
        ++reserve_commands;
        std::cout << "  inventory: reserve " << c.quantity << " for " << c.order_id << " (command "
                  << c.reservation_id.substr(0, 8) << "...)\n";
        (void)stock.execute("widget", c);
    });
    auto r2 = commands.register_handler<ConfirmOrder>([&](const ConfirmOrder& c) {
        std::cout << "  orders: confirm " << c.order_id << "\n";
        (void)orders.execute(c.order_id, c);
    });

    // The process manager. Its state (which orders wait for stock) lives next to its checkpoint; here
    // in memory, in SQLite or PostgreSQL a table written through step.transaction().
    orchestrix::InMemoryCheckpointStore checkpoints;
    using Manager = orchestrix::ProcessManager<decltype(store), orchestrix::InMemoryCheckpointStore>;
    std::set<std::string> waiting_for_stock;
    bool crash_once = true;
    auto fulfilment = [&](Manager::Step& step) {
        const auto& e = step.event().event;
        if (const auto* placed = std::get_if<OrderPlaced>(&e)) {
            waiting_for_stock.insert(placed->order_id);
            step.send(ReserveStock{step.command_id().to_string(), placed->order_id, placed->quantity});
            if (crash_once) { // the process dies after sending, before its checkpoint commits
                crash_once = false;
                throw std::runtime_error("crashed before the commit");
            }
        } else if (const auto* reserved = std::get_if<StockReserved>(&e)) {
            if (waiting_for_stock.erase(reserved->order_id) == 1) step.send(ConfirmOrder{reserved->order_id});
        }
    };
    const orchestrix::ProjectionOptions options{
        .on_failure = orchestrix::FailurePolicy::retry(3),
        .on_error = [](const orchestrix::EventFailure& f, orchestrix::FailureAction) {
            std::cout << "  process manager: " << f.describe() << "; handling it again\n";
        }};

    std::cout << "placing order-1 (3 widgets)\n";
    (void)orders.execute("order-1", PlaceOrder{"order-1", "widget", 3});
    {
        Manager manager("fulfilment", store, checkpoints, commands, fulfilment, options);
        manager.run_until_caught_up(); // the first attempt "crashes", the retry sends the same command again
        manager.run_until_caught_up(); // the events the commands caused: StockReserved, then OrderConfirmed
    }
    std::cout << "process manager stopped at checkpoint " << checkpoints.load("fulfilment") << "\n";

    std::cout << "placing order-2 (4 widgets) while it is down, then restarting it\n";
    (void)orders.execute("order-2", PlaceOrder{"order-2", "widget", 4});
    Manager restarted("fulfilment", store, checkpoints, commands, fulfilment, options);
    while (restarted.run_until_caught_up() != 0) {
    }

    const int reserved = stock.load("widget").reserved();
    std::cout << "ReserveStock sent " << reserve_commands << " times; widgets reserved: " << reserved << "\n";
    for (const auto& e : store.read_all())
        std::cout << "  " << e.position << " " << e.stream_id << " " << e.type() << "\n";
    return reserved == 7 && store.stream_version("order-order-1") == 2 && store.stream_version("order-order-2") == 2
               ? 0
               : 1;
}
