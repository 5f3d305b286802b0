// Forgetting a subject in a store one of whose event types is not a plain aggregate and does not name its
// personal fields must not compile, and the error names the event type and says what to write.
// expect-error: give it a member `template <class F> void for_each_personal
// expect-first-error: in_event_with_personal_data<CustomerRegistered>::write_for_each_personal
#include <orchestrix/memory/event_store.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <variant>

struct OrderPlaced {
    static constexpr std::string_view type_name = "customer.order_placed";
    std::string customer_id;
    bool operator==(const OrderPlaced&) const = default;
};
class CustomerRegistered {
public:
    static constexpr std::string_view type_name = "customer.registered";
    CustomerRegistered() = default;
    CustomerRegistered(std::string id, orchestrix::Personal<std::string> name)
        : id_(std::move(id)), name_(std::move(name)) {}
#ifndef ORCHESTRIX_EXPECT_ERROR
    template <class F>
    void for_each_personal(F&& f) {
        f(name_);
    }
#endif
    bool operator==(const CustomerRegistered&) const = default;

private:
    std::string id_;
    orchestrix::Personal<std::string> name_;
};

int main() {
    orchestrix::InMemoryEventStore<std::variant<OrderPlaced, CustomerRegistered>> store;
    return static_cast<int>(store.erase_personal_data("c-1"));
}
