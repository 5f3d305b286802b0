#pragma once

// A shopping cart for the snapshot tests: its state converts to JSON with NLOHMANN_DEFINE_TYPE_INTRUSIVE.

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/memory/event_store.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace snapshot_domain {

struct ItemAdded {
    static constexpr std::string_view type_name = "cart.item_added";
    std::string sku;
    std::int32_t quantity = 0;
    std::int64_t price_cents = 0;
    bool operator==(const ItemAdded&) const = default;
};
struct ItemRemoved {
    static constexpr std::string_view type_name = "cart.item_removed";
    std::string sku;
    bool operator==(const ItemRemoved&) const = default;
};
struct CouponApplied {
    static constexpr std::string_view type_name = "cart.coupon_applied";
    std::string code;
    std::int32_t percent = 0;
    bool operator==(const CouponApplied&) const = default;
};
struct CartCheckedOut {
    static constexpr std::string_view type_name = "cart.checked_out";
    bool operator==(const CartCheckedOut&) const = default;
};
using CartEvent = std::variant<ItemAdded, ItemRemoved, CouponApplied, CartCheckedOut>;

struct AddItem {
    std::string sku;
    std::int32_t quantity = 1;
    std::int64_t price_cents = 0;
};
struct RemoveItem {
    std::string sku;
};
struct ApplyCoupon {
    std::string code;
    std::int32_t percent = 0;
};
struct CheckOut {};

class Cart : public orchestrix::AggregateRoot<Cart, CartEvent> {
public:
    static constexpr std::string_view aggregate_type_name = "cart";

    void handle(const AddItem& c) {
        if (checked_out_) throw std::logic_error("the cart is checked out");
        raise(ItemAdded{c.sku, c.quantity, c.price_cents});
    }
    void handle(const RemoveItem& c) {
        if (checked_out_) throw std::logic_error("the cart is checked out");
        if (items_.count(c.sku) == 0) return;
        raise(ItemRemoved{c.sku});
    }
    void handle(const ApplyCoupon& c) {
        if (checked_out_) throw std::logic_error("the cart is checked out");
        raise(CouponApplied{c.code, c.percent});
    }
    void handle(const CheckOut&) {
        if (checked_out_ || items_.empty()) return;
        raise(CartCheckedOut{});
    }

    void apply(const ItemAdded& e) {
        items_[e.sku] += e.quantity;
        total_cents_ += e.quantity * e.price_cents;
    }
    void apply(const ItemRemoved& e) { items_.erase(e.sku); }
    void apply(const CouponApplied& e) {
        coupons_.push_back(e.code);
        total_cents_ -= total_cents_ * e.percent / 100;
    }
    void apply(const CartCheckedOut&) { checked_out_ = true; }

    [[nodiscard]] const std::map<std::string, std::int32_t>& items() const { return items_; }
    [[nodiscard]] std::int64_t total_cents() const { return total_cents_; }
    [[nodiscard]] bool checked_out() const { return checked_out_; }

    friend bool operator==(const Cart& a, const Cart& b) {
        return a.items_ == b.items_ && a.coupons_ == b.coupons_ && a.checked_out_ == b.checked_out_ &&
               a.total_cents_ == b.total_cents_ && a.version() == b.version();
    }

    NLOHMANN_DEFINE_TYPE_INTRUSIVE(Cart, items_, coupons_, checked_out_, total_cents_)

private:
    std::map<std::string, std::int32_t> items_;
    std::vector<std::string> coupons_;
    bool checked_out_ = false;
    std::int64_t total_cents_ = 0;
};

// A store that counts the events loads read, to prove that a snapshot spares the replay.
class CountingStore {
public:
    using event_type = CartEvent;
    orchestrix::AppendResult append(std::string_view stream,
                                    std::span<const orchestrix::EventEnvelope<CartEvent>> events,
                                    orchestrix::ExpectedVersion expected) {
        return inner.append(stream, events, expected);
    }
    [[nodiscard]] std::vector<orchestrix::RecordedEvent<CartEvent>> read_stream(std::string_view s, std::uint64_t from,
                                                                                std::uint64_t max) const {
        auto events = inner.read_stream(s, from, max);
        events_read += events.size();
        return events;
    }
    [[nodiscard]] std::vector<orchestrix::RecordedEvent<CartEvent>> read_all(std::uint64_t from,
                                                                             std::uint64_t max) const {
        return inner.read_all(from, max);
    }
    [[nodiscard]] std::uint64_t stream_version(std::string_view s) const { return inner.stream_version(s); }

    orchestrix::InMemoryEventStore<CartEvent> inner;
    mutable std::uint64_t events_read = 0;
};

} // namespace snapshot_domain
