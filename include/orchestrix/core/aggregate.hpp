#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/attributes.hpp>
#include <orchestrix/detail/type_traits.hpp>

#include <concepts>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

namespace diagnostic {

/// What an aggregate lacks (see namespace diagnostic in core/message.hpp). The `..._or_if_private_...` ones
/// are for an aggregate that has a member of that name, which may be one the library cannot call.
template <class Aggregate>
struct in_aggregate {
    template <class Command>
    struct write_handle_taking; // add `void handle(const Command&)` (any return type) to the aggregate
    template <class Command>
    struct write_handle_taking_or_if_private_add_friend_orchestrix_access; // friend orchestrix::access;
    template <class Event>
    struct write_void_apply_taking; // add `void apply(const Event&)` to the aggregate
    template <class Event>
    struct write_void_apply_taking_or_if_private_add_friend_orchestrix_access; // friend orchestrix::access;
    template <class Event>
    struct add_to_its_event_variant; // the aggregate raises an event its std::variant does not list
};

template <class...>
inline constexpr bool aggregate_can_handle = false;
template <class...>
inline constexpr bool aggregate_can_apply = false;
template <class...>
inline constexpr bool aggregate_event_is_listed = false;

} // namespace diagnostic

namespace detail {

// `Aggregate` declares a member named `handle` (resp. `apply`), whatever its access: a class that derives
// from it and from a class with a public `handle` finds the name twice, so `&probe::handle` is ambiguous.
// An aggregate declared `final` cannot be probed and counts as declaring both.
struct handle_probe_base {
    void handle() {}
};
struct apply_probe_base {
    void apply() {}
};
template <class Aggregate>
struct handle_probe : Aggregate, handle_probe_base {};
template <class Aggregate>
struct apply_probe : Aggregate, apply_probe_base {};
template <class Aggregate>
concept declares_handle = std::is_final_v<Aggregate> || !requires {
    &handle_probe<Aggregate>::handle;
};
template <class Aggregate>
concept declares_apply = std::is_final_v<Aggregate> || !requires {
    &apply_probe<Aggregate>::apply;
};

/// Calls `command.validate()` if the command declares one. A `validate()` that returns `bool` refuses the
/// command with `CommandRejectedError` when it returns false; one that returns a result with
/// `throw_if_invalid()` (an `orchestrix::ValidationResult`) throws what that throws (`ValidationError` with
/// every violation); one that returns void is expected to throw.
template <class Command>
void validate_if_declared(const Command& c);

} // namespace detail

namespace detail {
template <class Command>
void validate_if_declared(const Command& c) {
    if constexpr (requires {
                      { c.validate() } -> std::same_as<bool>;
                  }) {
        if (!c.validate()) throw CommandRejectedError("command refused: its validate() returned false");
    } else if constexpr (requires { c.validate().throw_if_invalid(); }) {
        c.validate().throw_if_invalid();
    } else if constexpr (requires { c.validate(); }) {
        c.validate();
    }
}

// The error of a replay whose event is not at the aggregate's next version (out of line: replay is hot).
[[noreturn]] ORCHESTRIX_COLD inline void throw_replay_gap(stream_version_t version, stream_version_t current) {
    throw HistoryError("cannot replay the event at version " + std::to_string(version) +
                       " onto an aggregate at version " + std::to_string(current) +
                       ": the history has a gap or is out of order");
}
} // namespace detail

/// What an aggregate befriends to keep its `handle` and `apply` members private:
///
///     class User : public orchestrix::AggregateRoot<User, UserEvent> {
///         friend orchestrix::access;
///         void handle(const RenameUser& c) { raise(UserRenamed{c.name}); }
///         void apply(const UserRenamed& e) { name = e.name; }
///     public:
///         std::string name;
///     };
///
/// Only `AggregateRoot` calls through it. Befriending the base instead
/// (`friend class orchestrix::AggregateRoot<User, UserEvent>;`) works as well.
class access {
    template <class, class>
    friend class AggregateRoot;

    template <class Aggregate, class Command>
    static auto handle(Aggregate& aggregate, const Command& command) -> decltype(aggregate.handle(command)) {
        return aggregate.handle(command);
    }
    template <class Aggregate, class Event>
    static auto apply(Aggregate& aggregate, const Event& event) -> decltype(aggregate.apply(event)) {
        return aggregate.apply(event);
    }
};

/// Base class of event-sourced aggregates (CRTP).
///
///     class User : public orchestrix::AggregateRoot<User, UserEvent> {
///     public:
///         void handle(const CreateUser& c) { raise(UserCreated{...}); }   // decide
///         void apply(const UserCreated& e) { ... }                         // evolve, one per event type
///     };
///
/// - `execute(cmd)` runs `Derived::handle(cmd)` (for a `std::variant` of commands, the handler of the
///   alternative it holds). If the command declares `validate()`, it runs first.
/// - `raise(e)` (from a handler) applies `e` through `Derived::apply` and records it as uncommitted.
/// - If a handler throws, state, version and uncommitted events are exactly as before the command:
///   `execute` works on the aggregate and restores a copy taken beforehand, so `Derived` must be copyable.
/// - Every alternative of `Events` needs an `apply` overload; a missing one is a compile error naming it.
/// - `handle` and `apply` may be private if the aggregate declares `friend orchestrix::access;`.
template <class Derived, class Events>
class AggregateRoot {
    // An Events that is not an event_variant gets an error naming it, or the alternatives that are not events
    // and what they lack (detail::explain_event_variant), and the class stays usable: no follow-on errors.
    static_assert(detail::event_variant_explained<Events>);

    // What the members below use: Events, or after the error above a stand-in that keeps the rest of the
    // class free of follow-on errors.
    struct invalid_event {
        static constexpr std::string_view type_name = "orchestrix.invalid";
        bool operator==(const invalid_event&) const = default;
    };
    using events_ = std::conditional_t<event_variant<Events>, Events, std::variant<invalid_event>>;

public:
    using event_type = Events;
    using envelope_type = EventEnvelope<events_>;

    /// The version the aggregate is at, counting uncommitted events (0 for a new aggregate).
    [[nodiscard]] stream_version_t version() const noexcept { return version_; }

    /// The version the store holds: `version()` minus the uncommitted events. A repository appends
    /// with this as the expected version.
    [[nodiscard]] stream_version_t committed_version() const noexcept {
        return version_ - static_cast<stream_version_t>(uncommitted_.size());
    }

    /// Events raised since the aggregate was loaded or last marked committed, oldest first.
    [[nodiscard]] const std::vector<envelope_type>& uncommitted_events() const noexcept { return uncommitted_; }

    /// Forget the uncommitted events: call after the store accepted them.
    void mark_committed() noexcept { uncommitted_.clear(); }

    /// Runs the handler for `command` (see the class comment). Returns what the handler returns.
    template <class Command>
    decltype(auto) execute(const Command& cmd) {
        if constexpr (variant_type<Command>) {
            return std::visit([this](const auto& alternative) -> decltype(auto) { return this->execute(alternative); },
                              cmd);
        } else {
            if constexpr (!handles<Command>) {
                if constexpr (!detail::declares_handle<Derived>) {
                    (void)sizeof(
                        typename diagnostic::in_aggregate<Derived>::template write_handle_taking<const Command&>);
                } else {
                    (void)sizeof(
                        typename diagnostic::in_aggregate<Derived>::
                            template write_handle_taking_or_if_private_add_friend_orchestrix_access<const Command&>);
                }
                static_assert(diagnostic::aggregate_can_handle<Derived, Command>,
                              "orchestrix::AggregateRoot::execute: the aggregate has no `handle(const Command&)` it "
                              "can call for this command: add one, or if it has one that is private, make it public "
                              "or add `friend orchestrix::access;` to the aggregate");
            } else {
                detail::validate_if_declared(cmd);
                return transactionally([&]() -> decltype(auto) { return call_handle(cmd); });
            }
        }
    }

    /// Applies one stored event (its version must be `version() + 1`): for rebuilding from a store.
    void replay(const RecordedEvent<events_>& recorded) { replay(recorded.event, recorded.version); }

    /// Applies one stored event whose stream version is `version` (it must be `version() + 1`).
    void replay(const events_& e, stream_version_t version) {
        if (version != version_ + 1) [[unlikely]]
            detail::throw_replay_gap(version, version_);
        apply_event(e);
        version_ = version;
    }

    /// Sets the version of an aggregate restored from a snapshot taken at `version`. Only valid on an
    /// aggregate with no uncommitted events.
    void restore_version(stream_version_t version) {
        if (!uncommitted_.empty()) {
            throw HistoryError("cannot restore the version of an aggregate that has uncommitted events");
        }
        version_ = version;
    }

    /// Applies an event of a history that carries no versions (each counts as the next version).
    void replay(const events_& e) {
        apply_event(e);
        ++version_;
    }

    /// Rebuilds an aggregate from its history: a range of `RecordedEvent<Events>` (versions checked, they
    /// must run 1, 2, 3, ...) or of `Events`.
    template <class History>
    requires requires(History& h) {
        std::begin(h);
        std::end(h);
    }
    [[nodiscard]] static Derived from_history(History&& history) {
        Derived aggregate{};
        for (const auto& e : history) aggregate.replay(e);
        return aggregate;
    }

    // Public so that an aggregate with public members stays an aggregate type: `Derived{}` initialises the
    // base from `{}`, which a protected constructor would refuse.
    AggregateRoot() noexcept {
        static_assert(std::is_base_of_v<AggregateRoot, Derived>,
                      "AggregateRoot<Derived, Events>: Derived must be the class that inherits from it (CRTP)");
        if constexpr (event_variant<Events>) check_applies(static_cast<Events*>(nullptr));
    }

protected:
    /// Records a new event: applies it to the aggregate and appends it to the uncommitted events. `e` is one
    /// of the event types, or an `Events` variant holding one.
    template <class E>
    void raise(E&& e) {
        if constexpr (std::is_same_v<std::remove_cvref_t<E>, envelope_type>) {
            raise(envelope_type(std::forward<E>(e)));
        } else if constexpr (!alternative_of<E, Events> && !std::is_same_v<std::remove_cvref_t<E>, Events>) {
            (void)sizeof(
                typename diagnostic::in_aggregate<Derived>::template add_to_its_event_variant<std::remove_cvref_t<E>>);
            static_assert(diagnostic::aggregate_event_is_listed<Derived, E>,
                          "AggregateRoot::raise: this event type is not an alternative of the aggregate's Events "
                          "variant; add it to the std::variant passed to AggregateRoot<Derived, Events>");
        } else if constexpr (event_variant<Events>) {
            raise(envelope_type{std::forward<E>(e)});
        }
    }

    /// Records a new event with explicit metadata (a given event id, correlation and causation ids).
    void raise(envelope_type envelope) {
        apply_event(envelope.event);
        uncommitted_.push_back(std::move(envelope));
        ++version_;
    }

private:
    // Checks, where Derived is complete, that every event alternative has an `apply` overload this class can
    // call (public, or private to a Derived that befriends orchestrix::access or this base).
    template <class... Ts>
    static constexpr void check_applies(std::variant<Ts...>*) noexcept {
        (check_apply<Ts>(), ...);
    }
    template <class E>
    static constexpr void check_apply() noexcept {
        if constexpr (!applies<E>) {
            if constexpr (!detail::declares_apply<Derived>) {
                (void)sizeof(typename diagnostic::in_aggregate<Derived>::template write_void_apply_taking<const E&>);
            } else {
                (void)sizeof(typename diagnostic::in_aggregate<Derived>::
                                 template write_void_apply_taking_or_if_private_add_friend_orchestrix_access<const E&>);
            }
            static_assert(diagnostic::aggregate_can_apply<Derived, E>,
                          "orchestrix::AggregateRoot: the aggregate has no `void apply(const Event&)` it can call "
                          "for one of its event types: add one (or remove the event from its std::variant), or if "
                          "it has one that is private, make it public or add `friend orchestrix::access;` to the "
                          "aggregate");
        }
    }

    // Whether Derived's handle / apply can be called: directly (public, or Derived befriends this base) or
    // through orchestrix::access (Derived befriends it).
    template <class C>
    static constexpr bool handles_directly = requires(Derived& d, const C& c) {
        d.handle(c);
    };
    template <class C>
    static constexpr bool handles = handles_directly<C> || requires(Derived& d, const C& c) {
        access::handle(d, c);
    };
    template <class E>
    static constexpr bool applies_directly = requires(Derived& d, const E& e) {
        d.apply(e);
    };
    template <class E>
    static constexpr bool applies = applies_directly<E> || requires(Derived& d, const E& e) {
        access::apply(d, e);
    };

    template <class C>
    decltype(auto) call_handle(const C& command) {
        if constexpr (handles_directly<C>) {
            return derived().handle(command);
        } else {
            return access::handle(derived(), command);
        }
    }
    template <class E>
    void call_apply(const E& event) {
        if constexpr (applies_directly<E>) {
            derived().apply(event);
        } else {
            access::apply(derived(), event);
        }
    }

    Derived& derived() noexcept { return static_cast<Derived&>(*this); }

    void apply_event(const events_& e) {
        if constexpr (event_variant<Events>) {
            std::visit([this](const auto& alternative) { this->call_apply(alternative); }, e);
        }
    }

    // Runs `body` with the strong exception guarantee: on a throw the aggregate is restored to a copy
    // taken before. Uncommitted events are set aside while copying, so the cost is the state alone.
    template <class Body>
    decltype(auto) transactionally(Body&& body) {
        static_assert(std::is_copy_constructible_v<Derived> && std::is_move_assignable_v<Derived>,
                      "AggregateRoot::execute restores the aggregate if a handler throws, so the aggregate must "
                      "be copy-constructible and move-assignable");
        const std::size_t pending = uncommitted_.size();
        std::vector<envelope_type> kept = std::move(uncommitted_);
        uncommitted_.clear();
        Derived backup(derived());
        uncommitted_ = std::move(kept);
        try {
            return std::forward<Body>(body)();
        } catch (...) {
            std::vector<envelope_type> restored = std::move(uncommitted_);
            restored.erase(restored.begin() + static_cast<std::ptrdiff_t>(pending), restored.end());
            derived() = std::move(backup);
            uncommitted_ = std::move(restored);
            throw;
        }
    }

    stream_version_t version_ = 0;
    std::vector<envelope_type> uncommitted_;
};

} // namespace orchestrix
