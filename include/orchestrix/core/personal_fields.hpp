#pragma once

// Finding the Personal<T> values inside an event and erasing those of one subject (the in-memory `forget`).

#include <orchestrix/core/personal.hpp>
#include <orchestrix/detail/fields.hpp>
#include <orchestrix/detail/type_traits.hpp>

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <variant>

namespace orchestrix {

namespace detail {

// Accepts anything: what `declares_personal_fields` calls `for_each_personal` with.
struct personal_field_probe {
    template <class T>
    void operator()(T&) const noexcept {}
};

} // namespace detail

/// A type that names its personal fields itself: a member `for_each_personal(f)` that calls `f(member)` for
/// each member that holds personal data (a `Personal<T>`, or a struct, optional, vector, array or variant
/// holding some). What a type that is not a plain aggregate (it has a constructor, a base class or private
/// members) writes so that `erase_subject` and `InMemoryEventStore::erase_personal_data` can search it:
///
///     class CustomerRegistered {
///     public:
///         CustomerRegistered(std::string id, orchestrix::Personal<std::string> name);
///         template <class F>
///         void for_each_personal(F&& f) { f(name_); }
///     private:
///         std::string id_;
///         orchestrix::Personal<std::string> name_;
///     };
template <class T>
concept declares_personal_fields = requires(T& value, const detail::personal_field_probe& probe) {
    value.for_each_personal(probe);
};

namespace detail {

template <class T>
struct is_personal_target : std::bool_constant<is_personal_v<T> || declares_personal_fields<T>> {};

template <class T>
constexpr bool hides_personal() noexcept;

template <class T>
struct hides_personal_in_arguments : std::false_type {};
template <template <class...> class Template, class... Args>
struct hides_personal_in_arguments<Template<Args...>>
    : std::bool_constant<((is_personal_v<Args> || reaches<is_personal_target, Args>() || hides_personal<Args>()) ||
                          ...)> {};

// Whether `T`, a type the walk does not enter, is a template over a type that holds personal data
// (`std::map<std::string, Personal<std::string>>`, `std::unique_ptr<Address>`): its values would be missed.
template <class T>
constexpr bool hides_personal() noexcept {
    if constexpr (is_personal_v<T>) {
        return false;
    } else {
        return hides_personal_in_arguments<T>::value;
    }
}

} // namespace detail

/// Whether a `T` can hold a `Personal<...>` that `erase_subject` finds, from its type alone: `T` is a
/// `Personal<U>`; declares its personal fields (`declares_personal_fields`); is a `std::optional`,
/// `std::vector`, `std::array` or `std::variant` of such a type; or is a plain aggregate (no constructor,
/// no base class, public fields) with a field of such a type, at any depth. Any other type is opaque: the
/// walk does not look inside it.
template <class T>
inline constexpr bool contains_personal_v = detail::reaches<detail::is_personal_target, T>();

/// Whether `erase_subject` can search a `T` as an event (each alternative, for a `std::variant`): a plain
/// aggregate, a type that declares its personal fields, or a `Personal<U>`.
template <class T>
inline constexpr bool personal_searchable_v =
    detail::walkable_aggregate<T> || declares_personal_fields<T> || is_personal_v<T>;
template <class... Ts>
inline constexpr bool personal_searchable_v<std::variant<Ts...>> = (personal_searchable_v<Ts> && ...);

namespace diagnostic {

/// A member type that holds Personal<T> values where the field walk does not go (see namespace diagnostic in
/// core/message.hpp).
template <class Member>
struct in_member_type {
    struct personal_data_out_of_reach_use_vector_optional_array_variant_or_write_for_each_personal;
};

/// An event type whose fields the walk cannot enter (a constructor, a base class or private fields).
template <class Event>
struct in_event_with_personal_data {
    struct write_for_each_personal; // template <class F> void for_each_personal(F&& f) { f(name_); }
    // a member keeps Personal<T> values in a type the walk does not enter (a std::map, a std::set, ...)
    struct keep_personal_values_in_vector_optional_array_variant_or_write_for_each_personal;
};

template <class...>
inline constexpr bool member_type_walkable = false;
template <class...>
inline constexpr bool event_fields_walkable = false;

} // namespace diagnostic

namespace detail {

// Erases the values of one subject wherever the walk finds them.
struct subject_eraser {
    std::string_view subject;
    std::uint64_t erased = 0;

    template <class T>
    static constexpr bool handles = is_personal_target<T>::value;

    template <class T>
    void operator()(Personal<T>& field) noexcept {
        if (!field.is_erased() && field.subject() == subject) {
            field.erase();
            ++erased;
        }
    }
    template <class T>
    requires(!is_personal_v<T> && declares_personal_fields<T>) void operator()(T& value) {
        value.for_each_personal([this](auto& member) { walk_nested(member, *this); });
    }
    template <class T>
    void operator()(const T&) noexcept {
        static_assert(always_false<T>, "orchestrix::erase_subject: a const Personal<T> cannot be erased in place");
    }

    template <class T>
    static void leaf(const T&) noexcept {
        if constexpr (hides_personal<T>()) {
            (void)sizeof(typename diagnostic::in_member_type<
                         T>::personal_data_out_of_reach_use_vector_optional_array_variant_or_write_for_each_personal);
            static_assert(diagnostic::member_type_walkable<T>,
                          "orchestrix::erase_subject / erase_personal_data: this member type holds Personal<T> values "
                          "inside a type the walk does not enter (it goes into plain structs, std::optional, "
                          "std::vector, std::array and std::variant only): use one of those, or give the enclosing "
                          "type a member `template <class F> void for_each_personal(F&& f)` calling f on its "
                          "personal members");
        }
    }
};

// A type the walk does not enter that hides personal data (what `subject_eraser::leaf` refuses).
template <class T>
struct is_hiding_leaf : std::bool_constant<!is_personal_target<T>::value && !is_walked_container_v<T> &&
                                           !walkable_aggregate<T> && hides_personal<T>()> {};

// Whether erasing in a `T` must walk it: it may hold personal data, or hides some (which the walk refuses at
// compile time, naming the member type).
template <class T>
inline constexpr bool personal_walk_needed_v = contains_personal_v<T> || reaches<is_hiding_leaf, T>();

// Reports each event type `erase_subject` cannot search (each alternative of a variant).
template <class Event>
void check_personal_searchable() noexcept {
    if constexpr (is_std_variant_v<Event>) {
        []<class... Ts>(std::variant<Ts...>*) { (check_personal_searchable<Ts>(), ...); }(static_cast<Event*>(nullptr));
    } else if constexpr (!personal_searchable_v<Event>) {
        (void)sizeof(typename diagnostic::in_event_with_personal_data<Event>::write_for_each_personal);
        static_assert(diagnostic::event_fields_walkable<Event>,
                      "orchestrix::erase_subject / erase_personal_data: this event type is not a plain aggregate (it "
                      "has a constructor, a base class or private fields), so its fields cannot be walked to find "
                      "Personal<T> values: give it a member `template <class F> void for_each_personal(F&& f) { "
                      "f(field_a); f(field_b); }` calling f on every member that holds personal data (an empty "
                      "body if it holds none)");
    }
}

// `erase_subject` without checking `subject` (the caller has).
template <class T>
std::uint64_t erase_subject_unchecked(T& value, std::string_view subject) {
    check_personal_searchable<std::remove_cv_t<T>>();
    if constexpr (reaches<is_hiding_leaf, std::remove_cv_t<T>>()) {
        // Refused here, naming the event, rather than deep in the walk.
        (void)sizeof(
            typename diagnostic::in_event_with_personal_data<
                std::remove_cv_t<T>>::keep_personal_values_in_vector_optional_array_variant_or_write_for_each_personal);
        static_assert(diagnostic::member_type_walkable<T>,
                      "orchestrix::erase_subject / erase_personal_data: a member of this event type holds "
                      "Personal<T> values inside a type the walk does not enter (it goes into plain structs, "
                      "std::optional, std::vector, std::array and std::variant only; not std::map or std::set): use "
                      "one of those, or give the event a member `template <class F> void for_each_personal(F&& f)` "
                      "calling f on its personal members");
        return 0;
    } else if constexpr (!personal_walk_needed_v<std::remove_cv_t<T>>) {
        (void)value;
        (void)subject;
        return 0;
    } else {
        subject_eraser eraser{subject, 0};
        walk_nested(value, eraser);
        return eraser.erased;
    }
}

} // namespace detail

/// Erases in place (`Personal<T>::erase()`) every `Personal<T>` of `subject` in `value`, and returns how many
/// values it erased (values erased already are not counted again). `T` is an event, or a `std::variant` of
/// events: a plain aggregate (its fields are walked, into nested structs, `std::optional`, `std::vector`,
/// `std::array` and `std::variant`) or a type that declares its personal fields (`declares_personal_fields`);
/// any other event type is refused at compile time with a message saying what to write. Throws
/// `InvalidArgumentError("subject")` for a malformed subject id.
template <class T>
std::uint64_t erase_subject(T& value, std::string_view subject) {
    detail::validate_subject(subject);
    return detail::erase_subject_unchecked(value, subject);
}

} // namespace orchestrix
