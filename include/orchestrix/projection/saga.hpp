#pragma once

// Sagas: long-running workflows with state, deadlines and compensation (docs/sagas.md).
//
// A saga instance per correlation key keeps its state event-sourced in a stream of its own; a `SagaRunner`
// follows the domain store like a projection, hands each event to the instance it belongs to, sends the
// commands the saga decides through the `CommandBus`, keeps its deadlines in a deadline store and, when a
// step fails, compensates the completed steps in reverse order.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/core/saga_events.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/detail/type_traits.hpp>
#include <orchestrix/memory/command_bus.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/process_manager.hpp>
#include <orchestrix/projection/projection.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

/// Where a saga instance stands.
enum class SagaStatus : std::uint8_t {
    not_started,     ///< no event recorded yet
    running,         ///< started, not ended
    completed,       ///< ended successfully (`complete()`)
    compensating,    ///< failed; compensations under way (only seen while a handling runs)
    compensated,     ///< failed, and every completed step was compensated
    needs_attention, ///< a compensation kept failing: `SagaRunner::retry_compensation` or a person must act
};

[[nodiscard]] constexpr std::string_view to_string(SagaStatus s) noexcept {
    switch (s) {
    case SagaStatus::not_started:
        return "not_started";
    case SagaStatus::running:
        return "running";
    case SagaStatus::completed:
        return "completed";
    case SagaStatus::compensating:
        return "compensating";
    case SagaStatus::compensated:
        return "compensated";
    case SagaStatus::needs_attention:
        return "needs_attention";
    }
    return "running";
}

/// A deadline of a saga instance, as a deadline store keeps it.
struct Deadline {
    std::string saga_type{};
    std::string saga_key{};
    std::string name{};
    std::chrono::system_clock::time_point due{};

    friend bool operator==(const Deadline&, const Deadline&) = default;
};

/// Where deadlines wait for their time (`InMemoryDeadlineStore`, `SqliteDeadlineStore`,
/// `PostgresDeadlineStore`):
///
/// - `schedule(d)`: keeps `d`, replacing the deadline of the same saga type, key and name;
/// - `cancel(type, key, name)`: forgets that deadline (nothing if there is none);
/// - `due(type, now, limit)`: at most `limit` deadlines of saga type `type` due at or before `now`, earliest
///   first;
/// - `remove(d)`: forgets `d` if it is still due at `d.due` (a deadline moved since is kept).
///
/// A deadline fires once even if several runners see it due at once: the saga's stream records it
/// (`SagaDeadlineReached`), and the append of that record is conditional on the stream's version.
template <class D>
concept deadline_store = requires(D& store, const Deadline& d, std::string_view s,
                                  std::chrono::system_clock::time_point t, std::size_t n) {
    store.schedule(d);
    store.cancel(s, s, s);
    { store.due(s, t, n) } -> std::same_as<std::vector<Deadline>>;
    store.remove(d);
};

/// Deadlines in memory, for tests and the in-memory setup. Thread-safe.
class InMemoryDeadlineStore {
public:
    void schedule(const Deadline& d) {
        std::lock_guard lock(mutex_);
        deadlines_.insert_or_assign(Key{d.saga_type, d.saga_key, d.name}, d.due);
    }

    void cancel(std::string_view saga_type, std::string_view saga_key, std::string_view name) {
        std::lock_guard lock(mutex_);
        deadlines_.erase(Key{std::string(saga_type), std::string(saga_key), std::string(name)});
    }

    [[nodiscard]] std::vector<Deadline> due(std::string_view saga_type, std::chrono::system_clock::time_point now,
                                            std::size_t limit) const {
        std::lock_guard lock(mutex_);
        std::vector<Deadline> out;
        for (const auto& [key, when] : deadlines_) {
            if (std::get<0>(key) == saga_type && when <= now) {
                out.push_back(Deadline{std::get<0>(key), std::get<1>(key), std::get<2>(key), when});
            }
        }
        std::stable_sort(out.begin(), out.end(), [](const Deadline& a, const Deadline& b) { return a.due < b.due; });
        if (out.size() > limit) out.resize(limit);
        return out;
    }

    void remove(const Deadline& d) {
        std::lock_guard lock(mutex_);
        auto found = deadlines_.find(Key{d.saga_type, d.saga_key, d.name});
        if (found != deadlines_.end() && found->second == d.due) deadlines_.erase(found);
    }

    /// How many deadlines wait.
    [[nodiscard]] std::size_t size() const {
        std::lock_guard lock(mutex_);
        return deadlines_.size();
    }

private:
    using Key = std::tuple<std::string, std::string, std::string>;
    mutable std::mutex mutex_;
    std::map<Key, std::chrono::system_clock::time_point> deadlines_;
};

namespace diagnostic {

/// What a saga lacks (see namespace diagnostic in core/message.hpp).
template <class Saga>
struct in_saga {
    template <class Event>
    struct write_void_apply_taking; // void apply(const Event&) { ... }, one per event of the saga's variant
};

template <class...>
inline constexpr bool saga_can_apply = false;

} // namespace diagnostic

namespace detail {

template <class V>
struct saga_event_variant;
template <class... Es>
struct saga_event_variant<std::variant<Es...>> {
    using type = saga_events<Es...>;
};

template <class E>
inline constexpr bool is_library_saga_event =
    std::is_same_v<E, SagaTriggered> || std::is_same_v<E, SagaStepCompleted> ||
    std::is_same_v<E, SagaCompensationStarted> || std::is_same_v<E, SagaStepCompensated> ||
    std::is_same_v<E, SagaNeedsAttention> || std::is_same_v<E, SagaDeadlineScheduled> ||
    std::is_same_v<E, SagaDeadlineCancelled> || std::is_same_v<E, SagaDeadlineReached> ||
    std::is_same_v<E, SagaCompleted>;

} // namespace detail

template <class SagaType, class Store, class SagaStore, checkpoint_store Checkpoints, deadline_store Deadlines>
class SagaRunner;

/// Base class of sagas (CRTP). `OwnEvents` is the `std::variant` of the saga's own events; its stream holds
/// those and the library's (`saga_events<...>`, its `event_type`).
///
///     class Transfer : public orchestrix::Saga<Transfer, std::variant<TransferStarted>> {
///     public:
///         static constexpr std::string_view saga_type = "transfer";                 // stream "transfer-<key>"
///         static std::optional<std::string> correlate(const BankEvent& e);          // the instance, or none
///         void handle(const TransferRequested& e) {                                // react to domain events
///             raise(TransferStarted{...});
///             if (step("debit", Withdraw{e.from, e.amount, command_id("debit")})) ...
///         }
///         void compensate(std::string_view step) { send(Deposit{from_, amount_, command_id("refund")}); }
///         void on_deadline(std::string_view name) { fail("no answer in time"); }
///         void apply(const TransferStarted& e) { ... }                             // one per own event
///     };
///
/// While it handles an event (or a deadline) a saga may:
/// - `raise(e)` one of its own events (applied at once, stored with the handling);
/// - `step(name, command)`: send a command through the `CommandBus`; if it is accepted the step is recorded
///   as completed (and will be compensated should the saga fail), if its handler throws the saga fails;
/// - `send(command)`: send a command that is not a step (its handler's exceptions propagate);
/// - `schedule(name, delay)` / `cancel(name)` a deadline, `fail(reason)`, `complete()`;
/// - `command_id(purpose)`: an id derived from the event being handled, the saga and `purpose`: the same each
///   time that event is handled, so a command sent again after a crash is recognised by its receiver.
template <class Derived, class OwnEvents>
class Saga {
    static_assert(variant_type<OwnEvents>, "orchestrix::Saga<Derived, OwnEvents>: OwnEvents must be a std::variant "
                                           "of the saga's own event structs");

public:
    using own_event_type = OwnEvents;
    using event_type = typename detail::saga_event_variant<OwnEvents>::type;
    using envelope_type = EventEnvelope<event_type>;

    /// The correlation key of this instance.
    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    [[nodiscard]] SagaStatus status() const noexcept { return status_; }
    /// The version of the saga's stream, counting the events of a handling under way.
    [[nodiscard]] stream_version_t version() const noexcept { return version_; }
    /// The steps that completed, in order (compensated ones included).
    [[nodiscard]] const std::vector<std::string>& completed_steps() const noexcept { return completed_; }
    /// The steps that were compensated, in the order they were.
    [[nodiscard]] const std::vector<std::string>& compensated_steps() const noexcept { return compensated_; }
    /// The deadlines set and not yet reached or cancelled, with their due times.
    [[nodiscard]] const std::map<std::string, std::chrono::system_clock::time_point, std::less<>>&
    deadlines() const noexcept {
        return deadlines_;
    }
    /// The global position of the last domain event the saga handled (0: none).
    [[nodiscard]] position_t last_trigger() const noexcept { return last_trigger_; }
    /// Why the saga failed (empty while it has not), and, when it needs attention, the failing compensation.
    [[nodiscard]] const std::string& failure() const noexcept { return failure_; }
    [[nodiscard]] bool ended() const noexcept {
        return status_ == SagaStatus::completed || status_ == SagaStatus::compensated ||
               status_ == SagaStatus::needs_attention;
    }

protected:
    Saga() noexcept { check_applies(static_cast<OwnEvents*>(nullptr)); }

    /// Records one of the saga's own events: applies it and stores it with the handling.
    template <class E>
    void raise(E&& e) {
        static_assert(alternative_of<E, OwnEvents>,
                      "orchestrix::Saga::raise: this event is not one of the saga's own events; add it to the "
                      "std::variant passed to Saga<Derived, OwnEvents>");
        record(event_type{std::forward<E>(e)});
    }

    /// Sends `command` as the step `name`. Returns true if its handler accepted it (the step is recorded as
    /// completed); false if it threw (the saga fails and compensates once the handling returns) or if the
    /// saga failed earlier in this handling (nothing is sent).
    template <class C>
    bool step(std::string_view name, const C& command) {
        Context& c = context();
        if (c.failed) return false;
        try {
            c.bus->dispatch(command);
        } catch (const std::exception& e) {
            fail("step '" + std::string(name) + "' was refused: " + e.what());
            return false;
        }
        record(event_type{SagaStepCompleted{std::string(name)}});
        return true;
    }

    /// Sends `command` through the command bus; its handler's exceptions propagate (the handling fails and
    /// is retried as the runner's failure policy says).
    template <class C>
    void send(const C& command) {
        context().bus->dispatch(command);
    }

    /// Fails the saga: once the handling returns, its completed steps are compensated in reverse order.
    void fail(std::string_view reason) {
        Context& c = context();
        if (c.failed) return;
        c.failed = true;
        c.reason = std::string(reason);
    }

    /// Ends the saga successfully; its pending deadlines are cancelled.
    void complete() {
        (void)context();
        cancel_all_deadlines();
        record(event_type{SagaCompleted{}});
    }

    /// Sets (or moves) the deadline `name` to `delay` from now (the runner's clock). When it passes, the
    /// runner calls `on_deadline(name)`, once.
    void schedule(std::string name, std::chrono::milliseconds delay) {
        Context& c = context();
        // Whole microseconds, as the saga's stream and the durable deadline stores keep it.
        const auto due =
            from_micros(durable_micros(c.now + std::chrono::duration_cast<std::chrono::system_clock::duration>(delay)));
        record(event_type{SagaDeadlineScheduled{name, durable_micros(due)}});
        c.deadline_ops.push_back(DeadlineOp{true, std::move(name), due});
    }

    /// Cancels the deadline `name` (nothing if it is not set).
    void cancel(std::string_view name) {
        if (!deadlines_.contains(name)) return;
        Context& c = context();
        record(event_type{SagaDeadlineCancelled{std::string(name)}});
        c.deadline_ops.push_back(DeadlineOp{false, std::string(name), {}});
    }

    /// An id for a command sent while handling this event: derived from the event's id, the saga's stream,
    /// `purpose` and `index`, so the same each time the event is handled.
    [[nodiscard]] Uuid command_id(std::string_view purpose, std::uint64_t index = 0) const {
        const Context& c = context();
        return derived_id(c.trigger, c.stream + "/" + std::string(purpose), index);
    }

    /// The runner's clock when the handling started.
    [[nodiscard]] std::chrono::system_clock::time_point now() const { return context().now; }

private:
    template <class, class, class, checkpoint_store, deadline_store>
    friend class SagaRunner;

    struct DeadlineOp {
        bool schedule = true;
        std::string name;
        std::chrono::system_clock::time_point due;
    };

    // What a handling needs, set by the runner for its duration.
    struct Context {
        CommandBus* bus = nullptr;
        Uuid trigger{};
        std::string stream;
        std::chrono::system_clock::time_point now{};
        bool failed = false;
        std::string reason;
        std::vector<DeadlineOp> deadline_ops;
    };

    // Checks, where Derived is complete, that each of the saga's own events has an `apply`; the first one
    // without gets one error naming it. SagaRunner takes its address, so that the check runs near the call.
    template <class E>
    static constexpr bool applies = requires(Derived& d, const E& e) {
        d.apply(e);
    };
    template <class... Es>
    static void check_applies(std::variant<Es...>*) noexcept {
        constexpr bool has[] = {applies<Es>...};
        constexpr std::size_t first_missing = [&] {
            std::size_t i = 0;
            while (i < sizeof...(Es) && has[i]) ++i;
            return i;
        }();
        if constexpr (first_missing < sizeof...(Es)) {
            using E = std::variant_alternative_t<first_missing, std::variant<Es...>>;
            (void)sizeof(typename diagnostic::in_saga<Derived>::template write_void_apply_taking<const E&>);
            static_assert(diagnostic::saga_can_apply<Derived, E>,
                          "orchestrix::Saga: the saga has no `void apply(const Event&)` (public) for one of its own "
                          "event types: add one, or remove the event from the saga's std::variant");
        }
    }

    static std::int64_t durable_micros(std::chrono::system_clock::time_point t) noexcept {
        return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    }
    static std::chrono::system_clock::time_point from_micros(std::int64_t micros) noexcept {
        return std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::microseconds(micros)));
    }

    Context& context() {
        if (context_ == nullptr) {
            throw Error("orchestrix::Saga: raise, step, send, schedule, fail and complete may only be called while "
                        "the saga handles an event or a deadline");
        }
        return *context_;
    }
    const Context& context() const {
        if (context_ == nullptr) {
            throw Error("orchestrix::Saga: command_id and now may only be called while the saga handles an event "
                        "or a deadline");
        }
        return *context_;
    }

    Derived& derived() noexcept { return static_cast<Derived&>(*this); }

    void record(event_type e) {
        apply_event(e);
        uncommitted_.push_back(std::move(e));
        ++version_;
    }

    void cancel_all_deadlines() {
        std::vector<std::string> names;
        for (const auto& entry : deadlines_) names.push_back(entry.first);
        for (const std::string& n : names) cancel(n);
    }

    // Replays one stored event.
    void replay(const event_type& e, stream_version_t version) {
        if (version != version_ + 1) {
            throw HistoryError("saga '" + key_ + "': cannot replay the event at version " + std::to_string(version) +
                               " onto version " + std::to_string(version_));
        }
        apply_event(e);
        version_ = version;
    }

    void apply_event(const event_type& e) {
        std::visit(
            [this](const auto& event) {
                using E = std::remove_cvref_t<decltype(event)>;
                if constexpr (detail::is_library_saga_event<E>) {
                    apply_library(event);
                } else if constexpr (requires(Derived & d) { d.apply(event); }) { // else: see check_applies
                    if (status_ == SagaStatus::not_started) status_ = SagaStatus::running;
                    derived().apply(event);
                }
            },
            e);
    }

    void apply_library(const SagaTriggered& e) {
        last_trigger_ = std::max(last_trigger_, e.position);
        if (status_ == SagaStatus::not_started) status_ = SagaStatus::running;
    }
    void apply_library(const SagaStepCompleted& e) { completed_.push_back(e.step); }
    void apply_library(const SagaCompensationStarted& e) {
        failure_ = e.reason;
        status_ = SagaStatus::compensating;
        settle_compensation();
    }
    void apply_library(const SagaStepCompensated& e) {
        compensated_.push_back(e.step);
        settle_compensation();
    }
    void apply_library(const SagaNeedsAttention& e) {
        status_ = SagaStatus::needs_attention;
        attention_ =
            "compensation of step '" + e.step + "' failed " + std::to_string(e.attempts) + " times: " + e.error;
    }
    void apply_library(const SagaDeadlineScheduled& e) {
        deadlines_.insert_or_assign(e.name, from_micros(e.due_micros));
    }
    void apply_library(const SagaDeadlineCancelled& e) {
        if (auto found = deadlines_.find(e.name); found != deadlines_.end()) deadlines_.erase(found);
    }
    void apply_library(const SagaDeadlineReached& e) {
        if (auto found = deadlines_.find(e.name); found != deadlines_.end()) deadlines_.erase(found);
    }
    void apply_library(const SagaCompleted&) { status_ = SagaStatus::completed; }

    // Compensating becomes compensated once every completed step is compensated.
    void settle_compensation() {
        if (status_ == SagaStatus::compensating && pending_compensation().empty()) status_ = SagaStatus::compensated;
    }

    // The completed steps not yet compensated, latest first.
    [[nodiscard]] std::vector<std::string> pending_compensation() const {
        std::vector<std::string> out;
        for (const std::string& step_name : completed_) {
            if (std::find(compensated_.begin(), compensated_.end(), step_name) == compensated_.end()) {
                out.push_back(step_name);
            }
        }
        std::reverse(out.begin(), out.end());
        return out;
    }

    // After a handling: a failure starts the compensation of the completed steps, latest first, each retried
    // as `retry` says; one that keeps failing leaves the saga needing attention.
    void settle(const RetryPolicy& retry, bool restart_compensation) {
        Context& c = context();
        if (c.failed && !ended() && status_ != SagaStatus::compensating) {
            record(event_type{SagaCompensationStarted{c.reason}});
        } else if (restart_compensation && status_ == SagaStatus::needs_attention) {
            record(event_type{SagaCompensationStarted{failure_}});
        }
        if (status_ != SagaStatus::compensating) return;
        const std::uint32_t attempts = retry.max_attempts == 0 ? 1 : retry.max_attempts;
        for (const std::string& step_name : pending_compensation()) {
            for (std::uint32_t attempt = 1;; ++attempt) {
                try {
                    if constexpr (requires(Derived & d, std::string_view s) { d.compensate(s); }) {
                        derived().compensate(step_name);
                    } else {
                        throw Error("the saga has completed steps but no `void compensate(std::string_view step)`");
                    }
                    record(event_type{SagaStepCompensated{step_name, attempt}});
                    break;
                } catch (const std::exception& e) {
                    if (attempt >= attempts) {
                        record(event_type{SagaNeedsAttention{step_name, e.what(), attempt}});
                        return;
                    }
                }
                retry.wait(retry.delay(attempt));
            }
        }
        cancel_all_deadlines();
    }

    std::string key_;
    SagaStatus status_ = SagaStatus::not_started;
    stream_version_t version_ = 0;
    position_t last_trigger_ = 0;
    std::vector<std::string> completed_;
    std::vector<std::string> compensated_;
    std::map<std::string, std::chrono::system_clock::time_point, std::less<>> deadlines_;
    std::string failure_;
    std::string attention_;
    std::vector<event_type> uncommitted_;
    Context* context_ = nullptr;
};

/// Options of a `SagaRunner`.
struct SagaOptions {
    /// The clock deadlines are set and fired by (tests pass one they move by hand).
    std::function<std::chrono::system_clock::time_point()> clock = [] { return std::chrono::system_clock::now(); };
    /// How a failing compensation is retried before the saga needs attention.
    RetryPolicy compensation_retry = [] {
        RetryPolicy p;
        p.max_attempts = 5;
        p.initial_delay = std::chrono::milliseconds(10);
        p.max_delay = std::chrono::milliseconds(1000);
        return p;
    }();
    /// The most deadlines one `fire_deadlines()` call handles.
    std::size_t deadline_batch = 100;
    /// How often the runner's thread (`start()`) looks for new events and due deadlines when idle.
    std::chrono::milliseconds poll_interval{50};
    /// The options of the projection that follows the domain store (its name is "saga:" + saga_type).
    ProjectionOptions projection{};
};

/// Runs the sagas of type `SagaType` (`Saga<SagaType, ...>`): follows `store` (the domain events) like a
/// projection named "saga:<saga_type>", whose checkpoint is kept in `checkpoints`; keeps each instance's
/// stream in `sagas` (an event store of `SagaType::event_type`, stream "<saga_type>-<key>"), its deadlines
/// in `deadlines`, and sends commands through `bus`.
///
/// **Exactly once.** Handling a domain event stores the saga's new events in one append, conditional on the
/// stream's version, headed by `SagaTriggered{position}`; an event at or before the last recorded trigger is
/// never handled again, so a saga changes once per event even if the runner dies after that append and
/// before its checkpoint moved. Commands and deadline changes are made *before* that append: after a crash
/// between them the event is handled again on the same state, and makes the same commands with the same
/// ids (`command_id`), which the receivers recognise. Deadlines fire the same way: `SagaDeadlineReached` is
/// stored conditionally, then the deadline is removed; a second runner (or a restart) that fires it again
/// finds it reached.
template <class SagaType, class Store, class SagaStore, checkpoint_store Checkpoints,
          deadline_store Deadlines = InMemoryDeadlineStore>
class SagaRunner {
    static_assert(
        requires { SagaType::saga_type; },
        "orchestrix::SagaRunner: the saga needs a stable name: add `static constexpr std::string_view "
        "saga_type = \"transfer\";` to it");
    static_assert(
        requires(const typename Store::event_type& e) {
            { SagaType::correlate(e) } -> std::same_as<std::optional<std::string>>;
        },
        "orchestrix::SagaRunner: the saga must say which instance an event belongs to: add `static "
        "std::optional<std::string> correlate(const DomainEvent& e);` (DomainEvent: the store's event variant; "
        "nothing for an event that concerns no instance)");
    static_assert(std::is_same_v<typename SagaStore::event_type, typename SagaType::event_type>,
                  "orchestrix::SagaRunner: the saga store must hold the saga's events: an event store of "
                  "SagaType::event_type (e.g. InMemoryEventStore<Transfer::event_type>)");
    // Each of the saga's own events has an `apply` (an error naming the first without).
    static_assert(static_cast<void (*)(typename SagaType::own_event_type*) noexcept>(&SagaType::check_applies) !=
                  nullptr);

public:
    using saga_type = SagaType;
    using domain_event_type = typename Store::event_type;
    using recorded_type = RecordedEvent<domain_event_type>;
    using saga_event_type = typename SagaType::event_type;

    SagaRunner(const Store& store, SagaStore& sagas, Checkpoints& checkpoints, Deadlines& deadlines, CommandBus& bus,
               SagaOptions options = {})
        : sagas_(&sagas), deadlines_(&deadlines), bus_(&bus), options_(std::move(options)),
          projection_(
              "saga:" + std::string(SagaType::saga_type), store, checkpoints,
              [this](const recorded_type& e) { handle_event(e); }, options_.projection) {}

    SagaRunner(const SagaRunner&) = delete;
    SagaRunner& operator=(const SagaRunner&) = delete;
    ~SagaRunner() { stop(); }

    /// Handles one batch of domain events, then the due deadlines. Returns the number of events read.
    std::uint64_t poll_once() {
        const std::uint64_t read = projection_.poll_once();
        (void)fire_deadlines();
        return read;
    }

    /// Handles domain events until caught up, then the due deadlines. Returns the number of events read.
    std::uint64_t run_until_caught_up() {
        const std::uint64_t read = projection_.run_until_caught_up();
        (void)fire_deadlines();
        return read;
    }

    /// Fires the deadlines due by the clock: each saga's `on_deadline(name)`, once. Returns how many fired.
    std::size_t fire_deadlines() {
        std::size_t fired = 0;
        const auto now = options_.clock();
        for (const Deadline& d : deadlines_->due(SagaType::saga_type, now, options_.deadline_batch)) {
            if (fire(d, now)) ++fired;
        }
        return fired;
    }

    /// Resumes the compensation of a saga that needs attention (after the cause was repaired). Returns its
    /// status afterwards.
    SagaStatus retry_compensation(const std::string& key) {
        const Uuid trigger = derived_id(Uuid{}, stream_of(key) + "/retry", sagas_->stream_version(stream_of(key)));
        return run(
            key, trigger, 0, options_.clock(), [](SagaType&) { return true; }, true);
    }

    /// The saga instance `key` as stored, or nothing if it has no event.
    [[nodiscard]] std::optional<SagaType> load(const std::string& key) const {
        SagaType saga = rebuild(key);
        if (saga.version() == 0) return std::nullopt;
        return saga;
    }

    /// Runs `poll_once()` on a thread of its own until `stop()`, waiting `options.poll_interval` when idle.
    /// A handling that fails stops the thread as the projection's failure policy says (`failure()`).
    void start() {
        if (thread_.joinable()) return;
        thread_ = std::jthread([this](std::stop_token stop) {
            while (!stop.stop_requested()) {
                std::uint64_t read = 0;
                try {
                    read = poll_once();
                } catch (...) {
                    std::lock_guard lock(mutex_);
                    failure_ = std::current_exception();
                    return;
                }
                if (read == 0) {
                    std::unique_lock lock(mutex_);
                    wake_.wait_for(lock, stop, options_.poll_interval, [] { return false; });
                }
            }
        });
    }

    /// Stops the thread of `start()` and waits for it.
    void stop() {
        if (!thread_.joinable()) return;
        thread_.request_stop();
        thread_.join();
    }

    /// What stopped the thread of `start()`, if something did.
    [[nodiscard]] std::exception_ptr failure() const {
        std::lock_guard lock(mutex_);
        return failure_;
    }

    /// The checkpoint: the position of the last domain event handled.
    [[nodiscard]] position_t checkpoint() const { return projection_.checkpoint(); }

    [[nodiscard]] static std::string stream_of(const std::string& key) {
        return std::string(SagaType::saga_type) + "-" + key;
    }

private:
    SagaType rebuild(const std::string& key) const {
        SagaType saga{};
        saga.key_ = key;
        sagas_->visit_stream(stream_of(key), 1,
                             [&](const RecordedEventView<saga_event_type>& e) { saga.replay(e.event(), e.version()); });
        return saga;
    }

    void handle_event(const recorded_type& e) {
        const std::optional<std::string> key = SagaType::correlate(e.event);
        if (!key) return;
        (void)run(
            *key, e.metadata.event_id, e.position, options_.clock(),
            [&](SagaType& saga) {
                if (e.position <= saga.last_trigger() || saga.ended()) return false;
                return std::visit(
                    [&](const auto& event) {
                        if constexpr (requires { saga.handle(event); }) {
                            saga.handle(event);
                            return true;
                        } else {
                            return false;
                        }
                    },
                    e.event);
            },
            false);
    }

    bool fire(const Deadline& d, std::chrono::system_clock::time_point now) {
        const Uuid trigger = derived_id(Uuid{}, stream_of(d.saga_key) + "/deadline/" + d.name,
                                        static_cast<std::uint64_t>(SagaType::durable_micros(d.due)));
        bool fired = false;
        (void)run(
            d.saga_key, trigger, 0, now,
            [&](SagaType& saga) {
                const auto pending = saga.deadlines_.find(d.name);
                if (saga.ended() || pending == saga.deadlines_.end() || pending->second != d.due) return false;
                saga.record(saga_event_type{SagaDeadlineReached{d.name}});
                if constexpr (requires { saga.on_deadline(std::string_view(d.name)); }) {
                    saga.on_deadline(std::string_view(d.name));
                }
                return true;
            },
            false, &fired);
        deadlines_->remove(d);
        return fired;
    }

    // Loads the saga `key`, lets `body` act on it in a handling context and stores what it recorded, headed
    // by SagaTriggered when `position` is set; on a version conflict (another runner), starts over.
    template <class Body>
    SagaStatus run(const std::string& key, const Uuid& trigger, position_t position,
                   std::chrono::system_clock::time_point now, Body&& body, bool restart_compensation,
                   bool* stored = nullptr) {
        if (stored != nullptr) *stored = false;
        int idempotency_conflicts = 0;
        for (;;) {
            SagaType saga = rebuild(key);
            const stream_version_t loaded = saga.version();
            typename SagaType::Context context;
            context.bus = bus_;
            context.trigger = trigger;
            context.stream = stream_of(key);
            context.now = now;
            saga.context_ = &context;
            struct Leave {
                SagaType& s;
                ~Leave() { s.context_ = nullptr; }
            } leave{saga};
            if (!body(saga)) return saga.status();
            saga.settle(options_.compensation_retry, restart_compensation);
            if (saga.uncommitted_.empty()) return saga.status();

            std::vector<EventEnvelope<saga_event_type>> batch;
            batch.reserve(saga.uncommitted_.size() + 1);
            const auto next_id = [&] { return derived_id(trigger, context.stream, batch.size()); };
            if (position != 0) {
                batch.emplace_back(saga_event_type{SagaTriggered{position, trigger.to_string()}},
                                   Metadata{next_id(), {}, trigger.to_string(), {}, {}});
            }
            for (auto& event : saga.uncommitted_) {
                batch.emplace_back(std::move(event), Metadata{next_id(), {}, trigger.to_string(), {}, {}});
            }
            for (const auto& op : context.deadline_ops) {
                if (op.schedule) {
                    deadlines_->schedule(Deadline{std::string(SagaType::saga_type), key, op.name, op.due});
                } else {
                    deadlines_->cancel(SagaType::saga_type, key, op.name);
                }
            }
            const ExpectedVersion expected =
                loaded == 0 ? ExpectedVersion::no_stream() : ExpectedVersion::exact(loaded);
            try {
                const AppendResult result =
                    sagas_->append(context.stream, std::span<const EventEnvelope<saga_event_type>>(batch), expected);
                // Not written: another runner stored this very handling first (the same ids): not ours.
                if (stored != nullptr) *stored = result.written;
            } catch (const ConcurrencyError&) {
                continue; // another runner stored this saga meanwhile: decide again on its state
            } catch (const IdempotencyError&) {
                // Another runner stored this handling first, with other details (its clock, its retries): the
                // state reloaded shows it handled. Anything else would repeat: give up after a few.
                if (++idempotency_conflicts > 3) throw;
                continue;
            }
            return saga.status();
        }
    }

    SagaStore* sagas_;
    Deadlines* deadlines_;
    CommandBus* bus_;
    SagaOptions options_;
    Projection<Store, Checkpoints> projection_;
    mutable std::mutex mutex_;
    std::condition_variable_any wake_;
    std::exception_ptr failure_;
    std::jthread thread_;
};

/// A `SagaRunner` for sagas of type `SagaType`, its other types deduced from the arguments:
///
///     auto transfers = orchestrix::make_saga_runner<Transfer>(store, saga_store, checkpoints, deadlines, bus);
template <class SagaType, class Store, class SagaStore, checkpoint_store Checkpoints, deadline_store Deadlines>
[[nodiscard]] std::unique_ptr<SagaRunner<SagaType, Store, SagaStore, Checkpoints, Deadlines>>
make_saga_runner(const Store& store, SagaStore& sagas, Checkpoints& checkpoints, Deadlines& deadlines, CommandBus& bus,
                 SagaOptions options = {}) {
    return std::make_unique<SagaRunner<SagaType, Store, SagaStore, Checkpoints, Deadlines>>(
        store, sagas, checkpoints, deadlines, bus, std::move(options));
}

} // namespace orchestrix
