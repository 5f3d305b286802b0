#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/type_traits.hpp>

#include <concepts>
#include <cstddef>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

namespace detail {

// Instantiated only when an aggregate lacks `apply` for `Event`; the compiler's note names both types.
template <class Aggregate, class Event>
struct missing_apply_overload {
    static_assert(always_false<Event>,
                  "orchestrix::AggregateRoot: the aggregate has no `void apply(const Event&)` for one of its "
                  "event types (named as 'Event' in the instantiation above). Add one to the aggregate, or "
                  "remove the event from its std::variant.");
};

// Instantiated only when an aggregate lacks `handle` for `Command`.
template <class Aggregate, class Command>
struct missing_handle_overload {
    static_assert(always_false<Command>,
                  "orchestrix::AggregateRoot::execute: the aggregate has no `handle(const Command&)` for this "
                  "command type (named as 'Command' in the instantiation above). Add one to the aggregate.");
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
} // namespace detail

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
template <class Derived, class Events>
class AggregateRoot {
    static_assert(variant_type<Events>,
                  "AggregateRoot<Derived, Events>: Events must be a std::variant of event structs, e.g. "
                  "AggregateRoot<User, std::variant<UserCreated, UserRenamed>>");
    static_assert(!variant_type<Events> || detail::explain_event_variant<Events>::value);
    static_assert(event_variant<Events>,
                  "AggregateRoot<Derived, Events>: every alternative of Events must be an orchestrix::event: a "
                  "copyable struct with `static constexpr std::string_view type_name = \"...\";` (names unique "
                  "within the variant) and `bool operator==(const T&) const = default;`");

public:
    using event_type = Events;
    using envelope_type = EventEnvelope<Events>;

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
            if constexpr (!requires(Derived & d, const Command& c) { d.handle(c); }) {
                (void)sizeof(detail::missing_handle_overload<Derived, Command>);
            } else {
                detail::validate_if_declared(cmd);
                return transactionally([&]() -> decltype(auto) { return derived().handle(cmd); });
            }
        }
    }

    /// Applies one stored event (its version must be `version() + 1`): for rebuilding from a store.
    void replay(const RecordedEvent<Events>& recorded) { replay(recorded.event, recorded.version); }

    /// Applies one stored event whose stream version is `version` (it must be `version() + 1`).
    void replay(const Events& e, stream_version_t version) {
        if (version != version_ + 1) {
            throw HistoryError("cannot replay the event at version " + std::to_string(version) +
                               " onto an aggregate at version " + std::to_string(version_) +
                               ": the history has a gap or is out of order");
        }
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
    void replay(const Events& e) {
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
        check_applies(static_cast<Events*>(nullptr));
    }

protected:
    /// Records a new event: applies it to the aggregate and appends it to the uncommitted events.
    template <class E>
    void raise(E&& e) {
        static_assert(alternative_of<E, Events>,
                      "AggregateRoot::raise: this event type is not an alternative of the aggregate's Events "
                      "variant; add it to the std::variant passed to AggregateRoot<Derived, Events>");
        raise(envelope_type{std::forward<E>(e)});
    }

    /// Records a new event with explicit metadata (a given event id, correlation and causation ids).
    void raise(envelope_type envelope) {
        apply_event(envelope.event);
        uncommitted_.push_back(std::move(envelope));
        ++version_;
    }

private:
    // Checks, where Derived is complete and with AggregateRoot's access (so a Derived that befriends its
    // base may keep `apply` private), that every event alternative has an `apply` overload.
    template <class... Ts>
    static constexpr void check_applies(std::variant<Ts...>*) noexcept {
        (check_apply<Ts>(), ...);
    }
    template <class E>
    static constexpr void check_apply() noexcept {
        if constexpr (!requires(Derived & d, const E& e) { d.apply(e); }) {
            (void)sizeof(detail::missing_apply_overload<Derived, E>);
        }
    }

    Derived& derived() noexcept { return static_cast<Derived&>(*this); }

    void apply_event(const Events& e) {
        std::visit([this](const auto& alternative) { derived().apply(alternative); }, e);
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
