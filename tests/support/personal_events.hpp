#pragma once

// A small customer domain whose events hold personal data (orchestrix::Personal<T>) at every depth the field
// walk enters: a field, a nested struct, an optional, a vector, an array, and an event with none.

#include <orchestrix/core/personal.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace personal_domain {

using orchestrix::Personal;

struct Address {
    Personal<std::string> street{};
    std::string city{}; // not personal: kept when the subject is forgotten
    bool operator==(const Address&) const = default;
};

struct CustomerRegistered {
    static constexpr std::string_view type_name = "customer.registered";
    std::string customer_id{};
    Personal<std::string> name{};
    Personal<std::string> email{};
    std::optional<Address> address{};
    bool operator==(const CustomerRegistered&) const = default;
};

struct CustomerMoved {
    static constexpr std::string_view type_name = "customer.moved";
    std::string customer_id{};
    Address address{};
    bool operator==(const CustomerMoved&) const = default;
};

// Personal data of several subjects in one event: the customer's contacts are people too.
struct ContactsShared {
    static constexpr std::string_view type_name = "customer.contacts_shared";
    std::string customer_id{};
    std::vector<Personal<std::string>> contact_names{};
    std::array<Personal<std::int64_t>, 2> emergency_phones{};
    bool operator==(const ContactsShared&) const = default;
};

struct OrderPlaced {
    static constexpr std::string_view type_name = "customer.order_placed";
    std::string customer_id{};
    std::int64_t amount = 0;
    bool operator==(const OrderPlaced&) const = default;
};

using CustomerEvent = std::variant<CustomerRegistered, CustomerMoved, ContactsShared, OrderPlaced>;

} // namespace personal_domain
