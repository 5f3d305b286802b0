#pragma once

// Events that name their fields: `static constexpr std::array fields{"amount", "currency"};` in a plain struct
// gives the JSON codec its field names (<orchestrix/json/fields.hpp>) and the library a field-by-field
// equality, so the event needs neither a serialization macro nor an `operator==`.

#include <orchestrix/detail/fields.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace orchestrix {

namespace detail {

template <class E>
concept has_fields_member = requires {
    { std::size(E::fields) } -> std::convertible_to<std::size_t>;
    { E::fields[0] } -> std::convertible_to<std::string_view>;
};

template <class E>
constexpr bool distinct_field_names() {
    for (std::size_t i = 0; i < std::size(E::fields); ++i) {
        for (std::size_t j = i + 1; j < std::size(E::fields); ++j) {
            if (std::string_view(E::fields[i]) == std::string_view(E::fields[j])) return false;
        }
    }
    return true;
}

} // namespace detail

/// `E` is a plain struct (an aggregate without base classes, at most 32 fields) that names its fields, one name
/// per field in declaration order:
///
///     struct MoneyDeposited {
///         static constexpr std::string_view type_name = "account.deposited";
///         static constexpr std::array fields{"account_id", "amount"};
///         std::string account_id;
///         std::int64_t amount = 0;
///     };
///
/// `check_fields<E>()` refuses, at compile time, a list whose length is not the number of fields, an empty
/// name and a name given twice.
template <class E>
concept declares_fields = detail::has_fields_member<E> && detail::walkable_aggregate<E>;

/// Checks `E::fields` against `E` at compile time (a `static_assert` naming the rule that is broken). Returns
/// true, so it can sit in a `static_assert` or a constant.
template <declares_fields E>
constexpr bool check_fields() {
    static_assert(std::size(E::fields) == detail::field_count_v<E>,
                  "orchestrix: `static constexpr std::array fields{...}` must name every field of the event, in "
                  "declaration order: its length differs from the struct's number of fields");
    static_assert(detail::distinct_field_names<E>(),
                  "orchestrix: `static constexpr std::array fields{...}` names one field twice");
    return true;
}

/// The names of `E`'s fields, in declaration order.
template <declares_fields E>
constexpr std::array<std::string_view, detail::field_count_v<E>> field_names() {
    static_assert(check_fields<E>());
    std::array<std::string_view, detail::field_count_v<E>> names{};
    for (std::size_t i = 0; i < names.size(); ++i) names[i] = E::fields[i];
    return names;
}

/// Field-by-field equality of two `E` (each field compared with its `==`).
template <declares_fields E>
[[nodiscard]] constexpr bool fields_equal(const E& a, const E& b) {
    static_assert(check_fields<E>());
    return detail::tie_fields(a) == detail::tie_fields(b);
}

/// Whether `a` and `b` are the same event, as a store compares a retried event with the stored one: with the
/// type's `operator==` where it has one, otherwise field by field where it names its fields
/// (`declares_fields`).
template <class E>
requires std::equality_comparable<E> || declares_fields<E>
[[nodiscard]] constexpr bool same_event(const E& a, const E& b) {
    if constexpr (std::equality_comparable<E>) {
        return a == b;
    } else {
        return fields_equal(a, b);
    }
}

namespace detail {
template <class... Ts, std::size_t... I>
constexpr bool same_alternative(const std::variant<Ts...>& a, const std::variant<Ts...>& b, std::index_sequence<I...>) {
    bool equal = false;
    (void)((a.index() == I ? (equal = same_event(std::get<I>(a), std::get<I>(b)), true) : false) || ...);
    return equal;
}
} // namespace detail

/// Two variants of events are the same event when they hold the same alternative and `same_event` says so for
/// it (a `std::variant`'s own `==` needs `==` on every alternative).
template <class... Ts>
[[nodiscard]] constexpr bool same_event(const std::variant<Ts...>& a, const std::variant<Ts...>& b) {
    return a.index() == b.index() && !a.valueless_by_exception() &&
           detail::same_alternative(a, b, std::index_sequence_for<Ts...>{});
}

} // namespace orchestrix
