#pragma once

#include <orchestrix/core/event_fields.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/detail/chrono.hpp>
#include <orchestrix/detail/range.hpp>
#include <orchestrix/detail/type_traits.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

/// The stable name and schema version of an event type.
///
/// By default both come from the event itself:
///
///     struct UserCreated {
///         static constexpr std::string_view type_name = "user.created";
///         static constexpr std::uint32_t schema_version = 2;   // optional, default 1
///         ...
///     };
///
/// For a type you cannot change, specialise the trait instead:
///
///     template <> struct orchestrix::event_traits<legacy::Created> {
///         static constexpr std::string_view name = "legacy.created";
///         static constexpr std::uint32_t schema_version = 1;
///     };
///
/// The name is what durable stores persist: never derive it from the C++ type name, and never change it
/// once events of that type are stored.
template <class E>
struct event_traits;

namespace detail {

template <class E>
concept has_member_type_name = requires {
    { E::type_name } -> std::convertible_to<std::string_view>;
};

template <class E>
concept has_member_schema_version = requires {
    { E::schema_version } -> std::convertible_to<std::uint32_t>;
};

template <class E>
struct default_event_traits {};

template <has_member_type_name E>
struct default_event_traits<E> {
    static constexpr std::string_view name = E::type_name;
    static constexpr std::uint32_t schema_version = [] {
        if constexpr (has_member_schema_version<E>) {
            return static_cast<std::uint32_t>(E::schema_version);
        } else {
            return std::uint32_t{1};
        }
    }();
};

} // namespace detail

template <class E>
struct event_traits : detail::default_event_traits<E> {};

/// A type has a stable event name when `event_traits<E>::name` is a string view.
template <class E>
concept named_event = requires {
    { event_traits<E>::name } -> std::convertible_to<std::string_view>;
    { event_traits<E>::schema_version } -> std::convertible_to<std::uint32_t>;
};

/// An event: a plain, copyable struct with a stable name that can be compared with another of its type.
///
/// Comparison is required so that a store can tell an idempotent retry (same id, same event) from a reused
/// id (`same_event`): either `bool operator==(const E&) const = default;`, or the field names
/// (`static constexpr std::array fields{"a", "b"};`, see `declares_fields`), which give a field-by-field
/// equality and the JSON conversion too.
template <class E>
concept event = std::is_class_v<E> && !std::is_const_v<E> && !std::is_volatile_v<E> && std::copy_constructible<E> &&
                (std::equality_comparable<E> || declares_fields<E>)&&named_event<E>;

/// The stable name of event type `E`.
template <named_event E>
inline constexpr std::string_view event_name = event_traits<E>::name;

/// The current schema version of event type `E` (1 unless the event says otherwise).
template <named_event E>
inline constexpr std::uint32_t event_schema_version = event_traits<E>::schema_version;

/// Compile-time diagnostics. Each class in this namespace is declared and never defined: on a misuse the
/// library takes the `sizeof` of one, so that the compiler's first error line names it, and its name and
/// template arguments say what to write and where, e.g.
/// `orchestrix::diagnostic::in_event<UserRenamed>::write_static_constexpr_string_view_type_name`. A
/// `static_assert` with the whole explanation follows it.
namespace diagnostic {

/// What an event type lacks.
template <class Event>
struct in_event {
    struct write_static_constexpr_string_view_type_name; // static constexpr std::string_view type_name = "a.b";
    // bool operator==(const Event&) const = default;  or  static constexpr std::array fields{"a", "b"};
    struct write_bool_operator_equals_default_or_static_constexpr_std_array_fields;
    struct make_it_a_copyable_struct;                  // a copy-constructible, non-const class type
    struct make_it_model_the_orchestrix_event_concept; // see orchestrix::event
    struct write_auto_tags_const; // auto tags() const { return std::array{orchestrix::tag("k", id)}; }
};

/// What a list of events (the `Events` of an aggregate or a store) lacks.
template <class Events>
struct in_event_list {
    struct make_it_a_std_variant_of_event_structs; // std::variant<UserCreated, UserRenamed>
    struct list_at_least_one_event_and_give_each_its_own_type_name;
};

/// The conditions of the `static_assert`s that follow a diagnostic (false where they are reached).
template <class...>
inline constexpr bool is_an_event = false;
template <class...>
inline constexpr bool is_an_event_variant = false;
template <class...>
inline constexpr bool event_declares_tags = false;

} // namespace diagnostic

namespace detail {

template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};

template <class T, class V>
struct is_alternative_of : std::false_type {};
template <class T, class... Ts>
struct is_alternative_of<T, std::variant<Ts...>> : std::bool_constant<(std::is_same_v<T, Ts> || ...)> {};

template <class... Ts>
consteval bool event_names_unique() {
    constexpr std::string_view names[] = {event_name<Ts>...};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i)
        for (std::size_t j = i + 1; j < sizeof...(Ts); ++j)
            if (names[i] == names[j]) return false;
    return true;
}

template <class V>
struct event_variant_check : std::false_type {};
template <class... Ts>
struct event_variant_check<std::variant<Ts...>> {
    static constexpr bool value = [] {
        if constexpr (sizeof...(Ts) > 0 && (event<Ts> && ...)) {
            return event_names_unique<Ts...>();
        } else {
            return false;
        }
    }();
};

// The diagnostic for an event alternative that is not an event. A function, so that its error leaves the
// class that asked for it intact (no follow-on errors), and its first error line names the event.
template <class E>
void explain_event() {
    if constexpr (!event<E>) {
        if constexpr (!std::is_class_v<E> || std::is_const_v<E> || std::is_volatile_v<E> ||
                      !std::copy_constructible<E>) {
            (void)sizeof(typename diagnostic::in_event<E>::make_it_a_copyable_struct);
        } else if constexpr (!named_event<E>) {
            (void)sizeof(typename diagnostic::in_event<E>::write_static_constexpr_string_view_type_name);
        } else if constexpr (!std::equality_comparable<E>) {
            (void)sizeof(typename diagnostic::in_event<
                         E>::write_bool_operator_equals_default_or_static_constexpr_std_array_fields);
        } else {
            (void)sizeof(typename diagnostic::in_event<E>::make_it_model_the_orchestrix_event_concept);
        }
        static_assert(diagnostic::is_an_event<E>,
                      "orchestrix: every event type needs `static constexpr std::string_view type_name = "
                      "\"context.something_happened\";` (or a specialisation of orchestrix::event_traits) and "
                      "`bool operator==(const Event&) const = default;` (or its field names: `static constexpr "
                      "std::array fields{\"a\", \"b\"};`), and must be a copyable struct");
    }
}
template <class... Ts>
void explain_event_alternatives(std::variant<Ts...>*) {
    (explain_event<Ts>(), ...);
}

template <class V>
inline constexpr bool alternatives_are_events = false;
template <class... Ts>
inline constexpr bool alternatives_are_events<std::variant<Ts...>> = sizeof...(Ts) > 0 && (event<Ts> && ...);

/// Explains why `V` is not an event_variant: one error for each alternative that is not an orchestrix::event,
/// naming it and what it lacks; or one naming `V` when it is no std::variant, or when its events are fine but
/// share a name (or there are none). Its address is what a `static_assert` takes to have it instantiated.
template <class V>
void explain_event_variant() {
    if constexpr (!is_variant<V>::value) {
        (void)sizeof(typename diagnostic::in_event_list<V>::make_it_a_std_variant_of_event_structs);
        static_assert(diagnostic::is_an_event_variant<V>,
                      "orchestrix: the events of an aggregate or a store are a std::variant of event structs, "
                      "e.g. AggregateRoot<User, std::variant<UserCreated, UserRenamed>>");
    } else if constexpr (alternatives_are_events<V> || std::variant_size_v<V> == 0) {
        (void)sizeof(typename diagnostic::in_event_list<V>::list_at_least_one_event_and_give_each_its_own_type_name);
        static_assert(diagnostic::is_an_event_variant<V>,
                      "orchestrix: the events of an aggregate or a store are at least one, and each has a "
                      "`type_name` of its own (names are unique within the variant)");
    } else {
        explain_event_alternatives(static_cast<V*>(nullptr));
    }
}

/// True; for a variant that is not an event_variant, taking `explain_event_variant`'s address has it emit its
/// errors (only then: a valid variant instantiates nothing).
template <class V, bool = event_variant_check<V>::value>
inline constexpr bool event_variant_explained = true;
template <class V>
inline constexpr bool event_variant_explained<V, false> = &explain_event_variant<V> != nullptr;

} // namespace detail

/// `T` is a `std::variant<...>`.
template <class T>
concept variant_type = detail::is_variant<std::remove_cvref_t<T>>::value;

/// `E` is one of the alternatives of the variant `V`.
template <class E, class V>
concept alternative_of = detail::is_alternative_of<std::remove_cvref_t<E>, V>::value;

/// A `std::variant` of events with distinct names: the event type of an aggregate or a store.
template <class V>
concept event_variant = detail::event_variant_check<V>::value;

/// The stable name of the event a variant currently holds.
template <event_variant V>
[[nodiscard]] constexpr std::string_view event_name_of(const V& event) noexcept {
    return std::visit([](const auto& e) { return event_name<std::remove_cvref_t<decltype(e)>>; }, event);
}

/// A command: a plain, movable struct. It may declare `validate()`, which runs before its handler.
template <class C>
concept command = std::is_class_v<std::remove_cvref_t<C>> && std::move_constructible<std::remove_cvref_t<C>> &&
    !event<std::remove_cvref_t<C>>;

/// What travels with an event besides its payload.
struct Metadata {
    /// Identifies the event; appending an id that is already stored is an idempotent retry.
    Uuid event_id{};
    /// The id of the request or workflow this event belongs to (empty if none).
    std::string correlation_id{};
    /// The id of the message (command or event) that caused this event (empty if none).
    std::string causation_id{};
    /// When the store recorded the event. Set by the store; ignored on append.
    std::chrono::system_clock::time_point recorded_at{};
    /// The trace the event was recorded in (W3C Trace Context; empty if none). A repository fills it in
    /// from the command's span or the thread's `current_trace()` when it is empty; durable stores keep it
    /// as the metadata's `traceparent`; a projection continues the trace from it (docs/operations.md).
    TraceContext trace{};

    friend bool operator==(const Metadata&, const Metadata&) = default;
};

/// An event on its way into a store: the payload and its metadata. Converts implicitly from any event
/// alternative, giving it a fresh id, so `store.append(stream, {UserCreated{...}}, ...)` reads naturally.
template <event_variant Events>
struct EventEnvelope {
    Events event;
    Metadata metadata;

    template <class E>
    requires alternative_of<E, Events> || std::same_as<std::remove_cvref_t<E>, Events>
    EventEnvelope(E&& e) // NOLINT(google-explicit-constructor): an event is naturally an envelope
        : event(std::forward<E>(e)), metadata{Uuid::generate(), {}, {}, {}, {}} {}

    EventEnvelope(Events e, Metadata m) : event(std::move(e)), metadata(std::move(m)) {}

    friend bool operator==(const EventEnvelope&, const EventEnvelope&) = default;
};

/// A sized range of plain events (not envelopes) for a store of `Events`: a `std::vector<UserRenamed>`, a
/// `std::vector<UserEvent>`, a `std::array` or a `std::span` of them. Every store's `append` takes one as it
/// takes a braced list, each event getting a fresh id and empty metadata.
template <class Range, class Events>
concept plain_event_range = detail::sized_iterable<const Range> && requires(const Range& r) {
    requires alternative_of<decltype(*std::ranges::begin(r)), Events> ||
        std::same_as<std::remove_cvref_t<decltype(*std::ranges::begin(r))>, Events>;
};

namespace detail {

/// The envelopes of a `plain_event_range`, each with a fresh id: what the stores' `append` of plain events
/// appends.
template <class Events, class Range>
[[nodiscard]] std::vector<EventEnvelope<Events>> to_envelopes(const Range& events) {
    std::vector<EventEnvelope<Events>> envelopes;
    envelopes.reserve(static_cast<std::size_t>(std::ranges::size(events)));
    for (const auto& event : events) {
        envelopes.emplace_back(event);
    }
    return envelopes;
}

} // namespace detail

/// An event as a store recorded it.
template <event_variant Events>
struct RecordedEvent {
    /// The stream the event belongs to.
    std::string stream_id;
    /// Its version within the stream: the first event of a stream has version 1.
    stream_version_t version = 0;
    /// Its position in the store's global order: the first event of the store has position 1.
    position_t position = 0;
    Events event;
    Metadata metadata;

    /// The event's stable name, e.g. "user.created".
    [[nodiscard]] std::string_view type() const noexcept { return event_name_of(event); }

    friend bool operator==(const RecordedEvent&, const RecordedEvent&) = default;
};

/// A stored event seen in place, without copying it: what `visit_stream` / `visit_all` hand to their
/// callback. It refers into the store and is valid only during the callback; `to_owned()` copies it.
///
/// A store hands it either the event's whole `Metadata` (durable stores, which decode a row into one) or,
/// as the in-memory store does, the id and recording time it keeps per event and the `Extras` it keeps
/// apart for the events that carry a correlation id, a causation id or a trace; `metadata()` then builds
/// the `Metadata` from them.
template <event_variant Events>
class RecordedEventView {
public:
    /// What a store may keep apart from an event's id and recording time: the rest of its `Metadata`,
    /// for the events that carry any of it.
    struct Extras {
        std::string correlation_id{};
        std::string causation_id{};
        TraceContext trace{};

        /// Whether `metadata` carries any of it (a store keeps no `Extras` for an event that carries none).
        [[nodiscard]] static bool carried_by(const Metadata& metadata) noexcept {
            return !metadata.correlation_id.empty() || !metadata.causation_id.empty() ||
                   metadata.trace != TraceContext{};
        }
    };

    /// A view of an event whose whole metadata the store holds (`*position` and `*metadata` are read when
    /// asked for).
    RecordedEventView(std::string_view stream_id, stream_version_t version, const position_t* position,
                      const Events* event, const Metadata* metadata) noexcept
        : stream_id_(stream_id), version_(version), position_(*position), event_(event), metadata_(metadata),
          event_id_(&metadata->event_id) {}

    /// A view of an event whose store keeps its id and recording time, and its `Extras` apart (nullptr when
    /// the event carries none).
    RecordedEventView(std::string_view stream_id, stream_version_t version, position_t position, const Events* event,
                      const Uuid* event_id, std::chrono::system_clock::time_point recorded_at,
                      const Extras* extras) noexcept
        : stream_id_(stream_id), version_(version), position_(position), event_(event), event_id_(event_id),
          recorded_at_(recorded_at), extras_(extras) {}

    [[nodiscard]] std::string_view stream_id() const noexcept { return stream_id_; }
    [[nodiscard]] stream_version_t version() const noexcept { return version_; }
    [[nodiscard]] position_t position() const noexcept { return position_; }
    [[nodiscard]] const Events& event() const noexcept { return *event_; }
    [[nodiscard]] std::string_view type() const noexcept { return event_name_of(*event_); }
    /// The event's id, without building its `Metadata`.
    [[nodiscard]] const Uuid& event_id() const noexcept { return *event_id_; }
    /// When the store recorded the event, without building its `Metadata`.
    [[nodiscard]] std::chrono::system_clock::time_point recorded_at() const noexcept {
        return metadata_ != nullptr ? metadata_->recorded_at : recorded_at_;
    }
    /// The event's metadata, by value (`const auto& m = e.metadata();` keeps it for the enclosing scope).
    [[nodiscard]] Metadata metadata() const {
        if (metadata_ != nullptr) return *metadata_;
        Metadata out;
        out.event_id = *event_id_;
        out.recorded_at = recorded_at_;
        if (extras_ != nullptr) {
            out.correlation_id = extras_->correlation_id;
            out.causation_id = extras_->causation_id;
            out.trace = extras_->trace;
        }
        return out;
    }

    [[nodiscard]] RecordedEvent<Events> to_owned() const {
        return RecordedEvent<Events>{std::string(stream_id_), version_, position_, *event_, metadata()};
    }

private:
    std::string_view stream_id_{};
    stream_version_t version_ = 0;
    position_t position_ = 0;
    const Events* event_ = nullptr;
    const Metadata* metadata_ = nullptr; // the whole metadata, or nullptr: the three members below
    const Uuid* event_id_ = nullptr;
    std::chrono::system_clock::time_point recorded_at_{};
    const Extras* extras_ = nullptr;
};

} // namespace orchestrix
