#pragma once

// Compile-time reflection of plain aggregates: how many fields a struct has, the fields as a tuple of
// references, and a walk that goes into nested aggregates, std::optional, std::vector, std::array and
// std::variant. Standard library only; the rules are in docs/lifecycle.md.

#include <array>
#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix::detail {

/// The most fields `tie_fields` can see in one struct.
inline constexpr std::size_t max_walked_fields = 32;

/// Converts to any type: what aggregate initialisation is tried with to count a struct's fields. Never
/// called (only used in unevaluated operands).
struct any_field {
    template <class T>
    operator T() const noexcept; // NOLINT(google-explicit-constructor): the point of the type
};

template <std::size_t>
using any_field_at = any_field;

/// Converts only to a base class of `Derived`: `Derived{any_base<Derived>{}}` compiles only when the first
/// element of `Derived` is a base class.
template <class Derived>
struct any_base {
    template <class T>
    requires(std::is_base_of_v<T, Derived> && !std::is_same_v<T, Derived>)
    operator T() const noexcept; // NOLINT(google-explicit-constructor)
};

template <class T, std::size_t... I>
constexpr bool brace_initializable_with(std::index_sequence<I...>) noexcept {
    return requires { T{any_field_at<I>{}...}; };
}

// The number of initializers `T{...}` takes: its fields, for an aggregate without base classes and C arrays.
template <class T, std::size_t N = 0>
constexpr std::size_t count_fields() noexcept {
    if constexpr (N <= max_walked_fields && brace_initializable_with<T>(std::make_index_sequence<N + 1>{})) {
        return count_fields<T, N + 1>();
    } else {
        return N;
    }
}

/// Whether `T` is a struct whose fields can be walked: an aggregate class with no base class and at most
/// `max_walked_fields` fields. (A C array field or a bit-field is refused by the compiler where the fields
/// are bound: use std::array.)
template <class T>
concept walkable_aggregate = std::is_class_v<T> && std::is_aggregate_v<T> && !requires {
    T{any_base<T>{}};
}
&&(count_fields<T>() <= max_walked_fields);

/// The number of fields of a walkable aggregate.
template <walkable_aggregate T>
inline constexpr std::size_t field_count_v = count_fields<T>();

/// The fields of `value` as a tuple of references, in declaration order (const references for a const
/// `value`).
template <class T>
requires walkable_aggregate<std::remove_cv_t<T>>
auto tie_fields(T& value) noexcept {
    constexpr std::size_t n = field_count_v<std::remove_cv_t<T>>;
    if constexpr (n == 0) {
        (void)value;
        return std::tuple<>{};
    } else if constexpr (n == 1) {
        auto& [f1] = value;
        return std::tie(f1);
    } else if constexpr (n == 2) {
        auto& [f1, f2] = value;
        return std::tie(f1, f2);
    } else if constexpr (n == 3) {
        auto& [f1, f2, f3] = value;
        return std::tie(f1, f2, f3);
    } else if constexpr (n == 4) {
        auto& [f1, f2, f3, f4] = value;
        return std::tie(f1, f2, f3, f4);
    } else if constexpr (n == 5) {
        auto& [f1, f2, f3, f4, f5] = value;
        return std::tie(f1, f2, f3, f4, f5);
    } else if constexpr (n == 6) {
        auto& [f1, f2, f3, f4, f5, f6] = value;
        return std::tie(f1, f2, f3, f4, f5, f6);
    } else if constexpr (n == 7) {
        auto& [f1, f2, f3, f4, f5, f6, f7] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7);
    } else if constexpr (n == 8) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8);
    } else if constexpr (n == 9) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9);
    } else if constexpr (n == 10) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10);
    } else if constexpr (n == 11) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11);
    } else if constexpr (n == 12) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12);
    } else if constexpr (n == 13) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13);
    } else if constexpr (n == 14) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14);
    } else if constexpr (n == 15) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15);
    } else if constexpr (n == 16) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16);
    } else if constexpr (n == 17) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17);
    } else if constexpr (n == 18) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18);
    } else if constexpr (n == 19) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19);
    } else if constexpr (n == 20) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20);
    } else if constexpr (n == 21) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21);
    } else if constexpr (n == 22) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22] =
            value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22);
    } else if constexpr (n == 23) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22,
               f23] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23);
    } else if constexpr (n == 24) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24);
    } else if constexpr (n == 25) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25);
    } else if constexpr (n == 26) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25, f26] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25, f26);
    } else if constexpr (n == 27) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25, f26, f27] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25, f26, f27);
    } else if constexpr (n == 28) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25, f26, f27, f28] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25, f26, f27, f28);
    } else if constexpr (n == 29) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25, f26, f27, f28, f29] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25, f26, f27, f28, f29);
    } else if constexpr (n == 30) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25, f26, f27, f28, f29, f30] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25, f26, f27, f28, f29, f30);
    } else if constexpr (n == 31) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25, f26, f27, f28, f29, f30, f31] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25, f26, f27, f28, f29, f30, f31);
    } else if constexpr (n == 32) {
        auto& [f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
               f24, f25, f26, f27, f28, f29, f30, f31, f32] = value;
        return std::tie(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21,
                        f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32);
    }
}

/// Calls `f(field)` for each field of `value`, in declaration order.
template <class T, class F>
requires walkable_aggregate<std::remove_cv_t<T>>
void for_each_field(T& value, F&& f) {
    std::apply([&](auto&... field) { (f(field), ...); }, tie_fields(value));
}

template <class T>
inline constexpr bool is_std_optional_v = false;
template <class T>
inline constexpr bool is_std_optional_v<std::optional<T>> = true;

template <class T>
inline constexpr bool is_std_vector_v = false;
template <class T, class A>
inline constexpr bool is_std_vector_v<std::vector<T, A>> = !std::is_same_v<T, bool>; // vector<bool> has no T&

template <class T>
inline constexpr bool is_std_array_v = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array_v<std::array<T, N>> = true;

template <class T>
inline constexpr bool is_std_variant_v = false;
template <class... Ts>
inline constexpr bool is_std_variant_v<std::variant<Ts...>> = true;

/// Whether the nested walk goes into `T`: an optional, a vector, an array, a variant or a walkable aggregate.
template <class T>
inline constexpr bool is_walked_container_v =
    is_std_optional_v<T> || is_std_vector_v<T> || is_std_array_v<T> || is_std_variant_v<T>;

/// Walks everything reachable from `value`: for each `x` of a type `X` with `Walker::template handles<X>`,
/// calls `walker(x)` (and does not go further into it); goes into the value of an optional, the elements of
/// a vector or array, the alternative a variant holds and the fields of a walkable aggregate; calls
/// `walker.leaf(x)` for anything else.
template <class Walker, class T>
void walk_nested(T& value, Walker& walker) {
    using U = std::remove_cv_t<T>;
    if constexpr (Walker::template handles<U>) {
        walker(value);
    } else if constexpr (is_std_optional_v<U>) {
        if (value.has_value()) walk_nested(*value, walker);
    } else if constexpr (is_std_vector_v<U> || is_std_array_v<U>) {
        for (auto& element : value) walk_nested(element, walker);
    } else if constexpr (is_std_variant_v<U>) {
        std::visit([&](auto& alternative) { walk_nested(alternative, walker); }, value);
    } else if constexpr (walkable_aggregate<U>) {
        for_each_field(value, [&](auto& field) { walk_nested(field, walker); });
    } else {
        walker.leaf(value);
    }
}

template <template <class> class Target, class Tuple>
struct any_field_reaches;

/// Whether the walk of a `T` can reach a type `X` with `Target<X>::value` (checked at compile time, from
/// the types alone).
template <template <class> class Target, class T>
constexpr bool reaches() noexcept {
    using U = std::remove_cv_t<T>;
    if constexpr (Target<U>::value) {
        return true;
    } else if constexpr (is_std_optional_v<U> || is_std_vector_v<U> || is_std_array_v<U>) {
        return reaches<Target, typename U::value_type>();
    } else if constexpr (is_std_variant_v<U>) {
        return
            []<class... Ts>(std::variant<Ts...>*) { return (reaches<Target, Ts>() || ...); }(static_cast<U*>(nullptr));
    } else if constexpr (walkable_aggregate<U>) {
        return any_field_reaches<Target, decltype(tie_fields(std::declval<U&>()))>::value;
    } else {
        return false;
    }
}

template <template <class> class Target, class... Fields>
struct any_field_reaches<Target, std::tuple<Fields...>>
    : std::bool_constant<(reaches<Target, std::remove_reference_t<Fields>>() || ...)> {};

} // namespace orchestrix::detail
