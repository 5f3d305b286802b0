#pragma once

// The projection runner: reads every store's global order from a checkpoint, hands events to a handler
// and commits the handler's writes together with the checkpoint; catches up, then follows live.

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/lease.hpp>
#include <orchestrix/projection/options.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

namespace detail {

template <class Store>
concept notifying_store = requires(const Store& s, position_t p, std::chrono::milliseconds t, std::stop_token st) {
    { s.wait_for_position(p, t, st) } -> std::convertible_to<bool>;
};

template <class Store>
concept listening_store = requires(const Store& s, std::chrono::milliseconds t) {
    s.listen();
    s.listen().wait_for_notification(t);
};

/// Whether a checkpoint store's transactions roll back what the handler wrote (SQLite, PostgreSQL), so
/// that a failed batch can be replayed. Stores say so with `static constexpr bool rolls_back_writes`.
template <class C>
concept transactional_checkpoints = C::rolls_back_writes;

// A store that can hand out an event as it is stored, even one it cannot decode (the durable stores).
template <class Store>
concept raw_readable_store = requires(const Store& s, position_t p) {
    { s.read_raw(p) } -> std::same_as<std::optional<RawRecordedEvent>>;
};

inline std::string exception_message(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

// Calls `options.on_error(failure, action)`, if set; what it throws is swallowed (a reporting callback
// must not change the outcome).
inline void call_on_error(const ProjectionOptions& options, const EventFailure& failure, FailureAction action) {
    if (!options.on_error) return;
    try {
        options.on_error(failure, action);
    } catch (...) { // NOLINT(bugprone-empty-catch): see above
    }
}

// Waits `duration`, or until `stop` is requested.
inline void pause_for(std::mutex& mutex, std::condition_variable_any& wake, const std::stop_token& stop,
                      std::chrono::milliseconds duration) {
    if (duration.count() <= 0) return;
    std::unique_lock lock(mutex);
    wake.wait_for(lock, stop, duration, [] { return false; });
}

// The failure of the handler on event `e` after `attempts` attempts, the last of which threw `error`.
template <class Recorded>
EventFailure failure_of(const Recorded& e, std::exception_ptr error, std::uint32_t attempts) {
    EventFailure failure;
    failure.position = e.position;
    failure.stream_id = e.stream_id;
    failure.version = e.version;
    failure.type = std::string(e.type());
    failure.event_id = e.metadata.event_id;
    failure.error = exception_message(error);
    failure.attempts = attempts;
    failure.exception = std::move(error);
    return failure;
}

// The dead letter of a skipped event: what `failure` says, with the event as it is stored when the store
// can read it raw (only worked out for a checkpoint store that keeps dead letters).
template <class Checkpoints, class Store>
DeadLetter dead_letter_of(const Store& store, const EventFailure& failure) {
    DeadLetter letter;
    if constexpr (dead_letter_store<Checkpoints>) {
        letter.position = failure.position;
        letter.stream_id = failure.stream_id;
        letter.version = failure.version;
        if (!failure.event_id.is_nil()) letter.event_id = failure.event_id.to_string();
        letter.type = failure.type;
        letter.error = failure.error;
        letter.attempts = std::max<std::uint32_t>(failure.attempts, 1); // an undecodable event: one read
        letter.failed_at = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        std::optional<RawRecordedEvent> raw = failure.raw;
        if constexpr (raw_readable_store<Store>) {
            if (!raw) {
                try {
                    raw = store.read_raw(failure.position);
                } catch (...) { // NOLINT(bugprone-empty-catch): kept without its stored form
                }
            }
        }
        if (raw) {
            letter.event_id = raw->event_id;
            letter.type = raw->type;
            letter.schema_version = raw->schema_version;
            letter.payload = raw->payload;
            letter.metadata = raw->metadata;
        }
    } else {
        (void)store;
        (void)failure;
    }
    return letter;
}

} // namespace detail

/// Runs a projection: reads the store's events in global order after its checkpoint, calls the handler
/// for those the filter passes, and commits what the handler wrote through the transaction together with
/// the new checkpoint, one transaction per batch. After a crash it resumes at its checkpoint: with a
/// transactional checkpoint store (SQLite, PostgreSQL) every event's effect on the read model is committed
/// exactly once.
///
///     orchestrix::SqliteCheckpointStore read_model("bank.db");
///     orchestrix::Projection balances("balances", store, read_model,
///         [](orchestrix::SqliteTransaction& tx, const orchestrix::RecordedEvent<BankEvent>& e) { ... });
///     balances.start();                                   // catch up, then follow live, on its own thread
///     balances.wait_for(store.head_position(), 5s);       // read your own writes
///
/// - The handler is `handler(transaction_type&, const RecordedEvent<Events>&)` or
///   `handler(const RecordedEvent<Events>&)`.
/// - Driven by its own `std::jthread` (`start()` / `stop()`, stopped by the destructor), or by the caller
///   (`poll_once()`, `run_until_caught_up()`); not both at once.
/// - Caught up, it waits for new events: on the in-memory store's notification, on PostgreSQL's
///   LISTEN/NOTIFY (`listen()`), or by polling every `options.poll_interval` (SQLite).
/// - A handler that throws meets `options.on_failure`: retry with backoff, skip (kept in `skipped()`, and
///   as a dead letter by a `dead_letter_store`: `dead_letters()`, `retry_dead_letters()`), or
///   stop (`failure()`; `poll_once()` and `wait_for()` throw `ProjectionStoppedError`). A failed batch is
///   rolled back and replayed one event per transaction, so the events before the poison one commit.
/// - Thread-safe: the accessors may be called from any thread while it runs.
template <class Store, checkpoint_store Checkpoints>
class Projection {
    static_assert(event_store<Store>, "orchestrix::Projection<Store, Checkpoints>: Store must be an event store "
                                      "(orchestrix::event_store), e.g. InMemoryEventStore<Events>");

public:
    using event_type = typename Store::event_type;
    using recorded_type = RecordedEvent<event_type>;
    using transaction_type = typename Checkpoints::transaction_type;

    /// A projection named `name` (its checkpoint's key) over `store`, keeping its checkpoint in
    /// `checkpoints`. Loads the checkpoint; starts nothing.
    template <class Handler>
    Projection(std::string name, const Store& store, Checkpoints& checkpoints, Handler handler,
               ProjectionOptions options = {})
        : name_(std::move(name)), store_(&store), checkpoints_(&checkpoints), options_(std::move(options)),
          handler_(wrap(std::move(handler))) {
        if (name_.empty()) throw InvalidArgumentError("name", "a projection needs a non-empty name");
        if (name_.find(partition_separator) != std::string::npos) {
            throw InvalidArgumentError("name", "projection name '" + name_ + "' contains '" +
                                                   std::string(1, partition_separator) +
                                                   "', which only the checkpoints of partitioned projections use");
        }
        if (options_.batch_size == 0) options_.batch_size = 1;
        if (options_.observer != nullptr) span_name_ = "orchestrix.projection " + name_;
        checkpoint_ = checkpoints_->load(name_);
    }

    Projection(const Projection&) = delete;
    Projection& operator=(const Projection&) = delete;
    ~Projection() { stop(); }

    /// Reads one batch after the checkpoint and processes it. Returns the number of events read (0 when
    /// caught up). Throws `ProjectionStoppedError` if the projection is, or gets, stopped on a failure.
    std::uint64_t poll_once() { return step({}); }

    /// Calls `poll_once()` until it finds nothing new. Returns the number of events read.
    std::uint64_t run_until_caught_up() {
        std::uint64_t total = 0;
        while (const std::uint64_t n = poll_once()) total += n;
        return total;
    }

    /// Starts the projection's thread (if it is not running): catch up, then follow live. Clears a
    /// failure that stopped it, so it resumes at the failed event.
    void start() {
        std::lock_guard control(control_mutex_);
        if (thread_.joinable()) {
            if (running()) return;
            thread_.join();
        }
        {
            std::lock_guard lock(state_mutex_);
            failure_.reset();
            finished_ = false;
            started_ = true;
        }
        thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
    }

    /// Stops the projection's thread and waits for it; the batch in progress finishes or rolls back.
    void stop() {
        std::lock_guard control(control_mutex_);
        if (!thread_.joinable()) return;
        thread_.request_stop();
        thread_.join();
        std::lock_guard lock(state_mutex_);
        started_ = false;
    }

    /// Whether the projection's thread is running.
    [[nodiscard]] bool running() const {
        std::lock_guard lock(state_mutex_);
        return started_ && !finished_;
    }

    /// Waits until every event up to global position `position` is processed (committed), at most
    /// `timeout`. Returns whether it is. Without a running thread it processes events itself. Throws
    /// `ProjectionStoppedError` if the projection stops on a failure before.
    [[nodiscard]] bool wait_for(position_t position, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        if (!running()) {
            while (checkpoint() < position) {
                if (poll_once() == 0) {
                    const auto now = std::chrono::steady_clock::now();
                    if (now >= deadline) break;
                    std::this_thread::sleep_for(
                        std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(1)));
                }
            }
            return checkpoint() >= position;
        }
        std::unique_lock lock(state_mutex_);
        progressed_.wait_until(lock, deadline, [&] { return checkpoint_ >= position || finished_; });
        if (checkpoint_ < position && failure_) throw ProjectionStoppedError(name_, *failure_);
        return checkpoint_ >= position;
    }

    /// The global position of the last event processed (0 for none).
    [[nodiscard]] position_t checkpoint() const {
        std::lock_guard lock(state_mutex_);
        return checkpoint_;
    }

    /// The failure that stopped the projection, if any.
    [[nodiscard]] std::optional<EventFailure> failure() const {
        std::lock_guard lock(state_mutex_);
        return failure_;
    }

    /// Every event skipped after a failure (failure policy `skip`), in order.
    [[nodiscard]] std::vector<EventFailure> skipped() const {
        std::lock_guard lock(state_mutex_);
        return skipped_;
    }

    /// This projection's dead letters, in position order: the events it skipped, as the checkpoint store
    /// keeps them (a `dead_letter_store`: in memory, SQLite, PostgreSQL), each written in the transaction
    /// that moved the checkpoint past it. Unlike `skipped()`, they outlive the process on a durable store.
    [[nodiscard]] std::vector<DeadLetter> dead_letters() const requires dead_letter_store<Checkpoints> {
        return checkpoints_->dead_letters(name_);
    }

    /// Retries every dead letter through the handler, in position order, waiting for a batch in progress.
    /// Each is read back from the store and handled in one transaction with its removal; if the handler
    /// throws or the event cannot be decoded, the dead letter stays, with the new error, one more attempt
    /// and the time. One handler call per dead letter (the failure policy's retries do not apply). Throws
    /// if the store cannot be read.
    DeadLetterRetries retry_dead_letters() requires dead_letter_store<Checkpoints> {
        std::lock_guard run_lock(run_mutex_);
        DeadLetterRetries out;
        for (const DeadLetter& letter : checkpoints_->dead_letters(name_)) {
            const RetryOutcome outcome = retry_dead_letter(letter.position);
            if (outcome == RetryOutcome::succeeded) ++out.succeeded;
            if (outcome == RetryOutcome::failed) ++out.failed;
        }
        return out;
    }

    /// Removes the dead letter at `position` without handling it; returns whether there was one.
    bool discard_dead_letter(position_t position) requires dead_letter_store<Checkpoints> {
        bool removed = false;
        checkpoints_->transact(
            [&](transaction_type& tx) { removed = checkpoints_->remove_dead_letter(tx, name_, position); });
        if (removed && options_.observer != nullptr) observe_dead_letter(position, DeadLetterOutcome::discarded);
        return removed;
    }

    /// Removes every dead letter of this projection without handling them; returns how many there were.
    std::uint64_t discard_dead_letters() requires dead_letter_store<Checkpoints> {
        std::vector<DeadLetter> listed;
        if (options_.observer != nullptr) listed = checkpoints_->dead_letters(name_);
        std::uint64_t removed = 0;
        checkpoints_->transact([&](transaction_type& tx) { removed = checkpoints_->remove_dead_letters(tx, name_); });
        for (const DeadLetter& letter : listed) observe_dead_letter(letter.position, DeadLetterOutcome::discarded);
        return removed;
    }

    /// Lets a projection stopped on a failure run again from the failed event (`start()` does this too).
    void resume() {
        std::lock_guard lock(state_mutex_);
        failure_.reset();
    }

    /// Rebuilds the read model from position zero: stops the thread, runs `reset_read_model(tx)` (or
    /// `reset_read_model()`) and sets the checkpoint to 0 in one transaction (which also removes the
    /// projection's dead letters: their events are handled again), forgets failures and skips, and restarts
    /// the thread if it was running. Events are processed again by the thread or the next
    /// `poll_once()`.
    template <class Reset>
    void rebuild(Reset&& reset_read_model) {
        static_assert(std::is_invocable_v<Reset&, transaction_type&> || std::is_invocable_v<Reset&>,
                      "Projection::rebuild(reset): reset must be callable as reset(transaction&) or reset()");
        const bool was_running = running();
        stop();
        std::lock_guard run_lock(run_mutex_);
        checkpoints_->transact([&](transaction_type& tx) {
            if constexpr (std::is_invocable_v<Reset&, transaction_type&>) {
                std::invoke(reset_read_model, tx);
            } else {
                std::invoke(reset_read_model);
            }
            checkpoints_->reset(tx, name_);
            if constexpr (dead_letter_store<Checkpoints>) (void)checkpoints_->remove_dead_letters(tx, name_);
        });
        {
            std::lock_guard lock(state_mutex_);
            checkpoint_ = 0;
            failure_.reset();
            skipped_.clear();
            store_failures_ = 0;
        }
        if (was_running) start();
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const ProjectionOptions& options() const noexcept { return options_; }

private:
    using handler_type = std::function<void(transaction_type&, const recorded_type&)>;
    static constexpr std::size_t no_index = std::numeric_limits<std::size_t>::max();

    template <class Handler>
    static handler_type wrap(Handler handler) {
        if constexpr (std::is_invocable_v<Handler&, transaction_type&, const recorded_type&>) {
            return handler_type(std::move(handler));
        } else {
            static_assert(std::is_invocable_v<Handler&, const recorded_type&>,
                          "orchestrix::Projection: the handler must be callable as "
                          "handler(Checkpoints::transaction_type&, const RecordedEvent<Events>&) or "
                          "handler(const RecordedEvent<Events>&)");
            return [h = std::move(handler)](transaction_type&, const recorded_type& e) mutable { std::invoke(h, e); };
        }
    }

    void run(std::stop_token stop) {
        try {
            if constexpr (detail::listening_store<Store>) {
                std::optional<decltype(store_->listen())> listener;
                while (!stop.stop_requested()) {
                    if (!listener) {
                        try {
                            listener.emplace(store_->listen()); // before reading: no commit goes unnoticed
                        } catch (const std::exception&) {
                            pause(stop, options_.poll_interval);
                        }
                    }
                    if (step(stop) != 0 || stop.stop_requested()) continue;
                    if (!listener) continue;
                    try {
                        (void)listener->wait_for_notification(std::min<std::chrono::milliseconds>(
                            options_.poll_interval, std::chrono::milliseconds(200)));
                    } catch (const std::exception&) {
                        listener.reset(); // connection lost: reconnect, and poll meanwhile
                    }
                }
            } else {
                while (!stop.stop_requested()) {
                    if (step(stop) != 0 || stop.stop_requested()) continue;
                    if constexpr (detail::notifying_store<Store>) {
                        (void)store_->wait_for_position(checkpoint() + 1, options_.poll_interval, stop);
                    } else {
                        pause(stop, options_.poll_interval);
                    }
                }
            }
        } catch (const ProjectionStoppedError&) { // recorded in failure_; the thread ends
        }
        std::lock_guard lock(state_mutex_);
        finished_ = true;
        progressed_.notify_all();
    }

    void pause(const std::stop_token& stop, std::chrono::milliseconds duration) {
        detail::pause_for(pause_mutex_, pause_, stop, duration);
    }

    void advanced_to(position_t position) {
        std::lock_guard lock(state_mutex_);
        checkpoint_ = position;
        store_failures_ = 0;
        progressed_.notify_all();
    }

    void reload() {
        const position_t stored = checkpoints_->load(name_);
        std::lock_guard lock(state_mutex_);
        checkpoint_ = stored;
        progressed_.notify_all();
    }

    [[noreturn]] void stop_with(EventFailure failure) {
        report(failure, FailureAction::stop);
        std::lock_guard lock(state_mutex_);
        failure_ = failure;
        progressed_.notify_all();
        throw ProjectionStoppedError(name_, std::move(failure));
    }

    void report(const EventFailure& failure, FailureAction action) const {
        if (options_.observer != nullptr) [[unlikely]]
            observe_failure(failure, action);
        detail::call_on_error(options_, failure, action);
    }

    static EventFailure failure_of(const recorded_type& e, std::exception_ptr error, std::uint32_t attempts) {
        return detail::failure_of(e, std::move(error), attempts);
    }

    // The store or the checkpoint store failed (not the handler): retried with the policy's backoff, then
    // the projection stops, naming the first position it could not process.
    void store_failed(std::stop_token stop, position_t position, std::exception_ptr error) {
        std::uint32_t failures = 0;
        {
            std::lock_guard lock(state_mutex_);
            failures = ++store_failures_;
        }
        EventFailure failure{position, {}, 0, {}, {}, detail::exception_message(error), failures, error};
        const std::uint32_t allowed = std::max<std::uint32_t>(options_.on_failure.max_attempts, 1);
        if (failures >= allowed) {
            {
                std::lock_guard lock(state_mutex_);
                store_failures_ = 0;
            }
            stop_with(std::move(failure));
        }
        report(failure, FailureAction::retry);
        const FailurePolicy backoff = FailurePolicy::retry(allowed, options_.on_failure.initial_backoff);
        pause(stop, backoff.backoff_before(failures + 1));
    }

    std::uint64_t step(std::stop_token stop) {
        std::lock_guard run_lock(run_mutex_);
        std::vector<recorded_type> events;
        if (options_.observer != nullptr) [[unlikely]]
            return observed_step(stop, events);
        return read_and_handle(stop, events);
    }

    // Reads the batch after the checkpoint into `events` and handles it; returns the number of events read.
    std::uint64_t read_and_handle(std::stop_token stop, std::vector<recorded_type>& events) {
        position_t from = 0;
        {
            std::lock_guard lock(state_mutex_);
            if (failure_) throw ProjectionStoppedError(name_, *failure_);
            from = checkpoint_;
        }
        if constexpr (dead_letter_store<Checkpoints>) {
            if (!retry_requested_dead_letters(stop, from)) return 0;
        }
        try {
            events = store_->read_all(from + 1, options_.batch_size);
        } catch (const Error& e) {
            const auto* unreadable = dynamic_cast<const UnreadableEvent*>(&e);
            if (unreadable == nullptr || unreadable->position() <= from) {
                store_failed(stop, from + 1, std::current_exception());
                return 0;
            }
            if (unreadable->position() == from + 1) return pass_unreadable(*unreadable, std::current_exception());
            // Handle the events before it first; the unreadable one is then the next to read.
            try {
                events = store_->read_all(from + 1, unreadable->position() - from - 1);
            } catch (...) {
                store_failed(stop, from + 1, std::current_exception());
                return 0;
            }
        } catch (...) {
            store_failed(stop, from + 1, std::current_exception());
            return 0;
        }
        if (events.empty()) return 0;
        if constexpr (!detail::transactional_checkpoints<Checkpoints>) {
            // Nothing rolls the read model back: commit event by event, so none is handled twice.
            for (std::size_t i = 0; i < events.size(); ++i) {
                if (!process_one(stop, events[i], 1, nullptr)) return i + 1;
            }
            return events.size();
        }

        std::size_t at = no_index;
        try {
            checkpoints_->transact([&](transaction_type& tx) {
                for (std::size_t i = 0; i < events.size(); ++i) {
                    if (!options_.filter.matches(events[i].type(), events[i].stream_id)) continue;
                    at = i;
                    handle(tx, events[i]);
                }
                at = no_index;
                checkpoints_->advance(tx, name_, from, events.back().position);
            });
            advanced_to(events.back().position);
            return events.size();
        } catch (const CheckpointConflictError&) {
            reload();
            return events.size();
        } catch (...) {
            if (at == no_index) {
                store_failed(stop, from + 1, std::current_exception());
                return 0;
            }
            std::exception_ptr first_error = std::current_exception();
            // The batch rolled back: commit the events before the poison one, then deal with it alone.
            for (std::size_t i = 0; i < at; ++i) {
                if (!process_one(stop, events[i], 1, nullptr)) return i + 1;
            }
            process_one(stop, events[at], 2, std::move(first_error));
            return at + 1;
        }
    }

    // The store cannot decode the next event: hand it to the failure policy. Retrying cannot help (the
    // stored row does not change), so the policy's final action applies at once: `stop` names it, `skip`
    // records it (with its stored form, where the store can read it raw) and moves the checkpoint past it.
    std::uint64_t pass_unreadable(const UnreadableEvent& unreadable, std::exception_ptr error) {
        EventFailure failure{unreadable.position(),
                             unreadable.stream_id(),
                             unreadable.version(),
                             {},
                             {},
                             detail::exception_message(error),
                             0,
                             error};
        if constexpr (detail::raw_readable_store<Store>) {
            try {
                failure.raw = store_->read_raw(unreadable.position());
            } catch (...) { // NOLINT(bugprone-empty-catch): the failure is reported without its stored form
            }
            if (failure.raw) {
                failure.type = failure.raw->type;
                if (auto id = Uuid::parse(failure.raw->event_id)) failure.event_id = *id;
            }
        }
        if (options_.on_failure.final_action() != FailureAction::skip) stop_with(std::move(failure));
        return skip(std::move(failure)) ? 1 : 0;
    }

    // Records `failure` as skipped and moves the checkpoint past its event, keeping it as a dead letter in
    // the same transaction where the checkpoint store keeps them. Returns false if another runner moved the
    // checkpoint first.
    bool skip(EventFailure failure) {
        const position_t from = checkpoint();
        [[maybe_unused]] const DeadLetter letter = dead_letter_of(failure);
        try {
            checkpoints_->transact([&](transaction_type& tx) {
                checkpoints_->advance(tx, name_, from, failure.position);
                if constexpr (dead_letter_store<Checkpoints>) checkpoints_->add_dead_letter(tx, name_, letter);
            });
        } catch (const CheckpointConflictError&) {
            reload();
            return false;
        } catch (...) {
            EventFailure stopped = failure;
            stopped.error = detail::exception_message(std::current_exception());
            stopped.exception = std::current_exception();
            stop_with(std::move(stopped));
        }
        report(failure, FailureAction::skip);
        const position_t position = failure.position;
        {
            std::lock_guard lock(state_mutex_);
            skipped_.push_back(std::move(failure));
        }
        advanced_to(position);
        if (options_.observer != nullptr) [[unlikely]]
            observe_dead_letter(position, DeadLetterOutcome::added);
        return true;
    }

    // The dead letter of a skipped event (see `detail::dead_letter_of`).
    DeadLetter dead_letter_of(const EventFailure& failure) const {
        return detail::dead_letter_of<Checkpoints>(*store_, failure);
    }

    enum class RetryOutcome : std::uint8_t { succeeded, failed, gone };

    // Retries the dead letter at `position` (the caller holds run_mutex_): reads its event back and, in one
    // transaction, removes it and hands the event to the handler; if that fails, records the failure.
    // `gone` if there is no such dead letter (any more). Throws if the store cannot be read.
    RetryOutcome retry_dead_letter(position_t position) {
        std::optional<recorded_type> event;
        std::string error;
        try {
            auto events = store_->read_all(position, 1);
            if (!events.empty() && events.front().position == position) {
                event = std::move(events.front());
            } else {
                error = "the store has no event at position " + std::to_string(position);
            }
        } catch (const Error& e) {
            const auto* unreadable = dynamic_cast<const UnreadableEvent*>(&e);
            if (unreadable == nullptr || unreadable->position() != position) throw;
            error = e.what();
        }
        if (event) {
            bool gone = false;
            try {
                checkpoints_->transact([&](transaction_type& tx) {
                    gone = !checkpoints_->remove_dead_letter(tx, name_, position);
                    if (!gone && options_.filter.matches(event->type(), event->stream_id)) handle(tx, *event);
                });
                if (gone) return RetryOutcome::gone;
                if (options_.observer != nullptr) observe_dead_letter(position, DeadLetterOutcome::retried);
                return RetryOutcome::succeeded;
            } catch (...) {
                error = detail::exception_message(std::current_exception());
            }
        }
        bool found = false;
        const std::chrono::system_clock::time_point now =
            std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        checkpoints_->transact(
            [&](transaction_type& tx) { found = checkpoints_->update_dead_letter(tx, name_, position, error, now); });
        if (!found) return RetryOutcome::gone;
        if (options_.observer != nullptr) observe_dead_letter(position, DeadLetterOutcome::failed);
        return RetryOutcome::failed;
    }

    // Retries the dead letters a tool asked to retry (`retry_requested`), before new events are read.
    // Returns false if the store or the checkpoint store failed (handled as a store failure).
    bool retry_requested_dead_letters(std::stop_token stop, position_t from) {
        try {
            for (const position_t position : checkpoints_->dead_letter_retries_requested(name_))
                (void)retry_dead_letter(position);
            return true;
        } catch (...) {
            store_failed(stop, from + 1, std::current_exception());
            return false;
        }
    }

    // Processes one event in a transaction of its own, starting at attempt `attempt` (the previous
    // attempt failed with `error`). Returns false if stopped before it was done.
    bool process_one(std::stop_token stop, const recorded_type& e, std::uint32_t attempt, std::exception_ptr error) {
        const FailurePolicy& policy = options_.on_failure;
        const bool wanted = options_.filter.matches(e.type(), e.stream_id);
        for (; attempt <= policy.attempts(); ++attempt) {
            if (attempt > 1) {
                report(failure_of(e, error, attempt - 1), FailureAction::retry);
                pause(stop, policy.backoff_before(attempt));
                if (stop.stop_requested()) return false;
            }
            const position_t from = checkpoint();
            try {
                checkpoints_->transact([&](transaction_type& tx) {
                    if (wanted) handle(tx, e);
                    checkpoints_->advance(tx, name_, from, e.position);
                });
                advanced_to(e.position);
                return true;
            } catch (const CheckpointConflictError&) {
                reload();
                return false;
            } catch (...) {
                error = std::current_exception();
            }
        }
        EventFailure failure = failure_of(e, error, attempt - 1);
        if (policy.final_action() != FailureAction::skip) stop_with(std::move(failure));
        return skip(std::move(failure));
    }

    // Calls the handler for `e`; with an observer, inside the event's span (see `handle_traced`).
    void handle(transaction_type& tx, const recorded_type& e) {
        if (options_.observer != nullptr) [[unlikely]] {
            handle_traced(tx, e);
            return;
        }
        handler_(tx, e);
    }

    // Runs the handler inside the span "orchestrix.projection <name>" (consumer) whose parent is the trace
    // the event was recorded in; the span's context (or, when no span was started, the event's own trace)
    // is the thread's current trace meanwhile, so what the handler does continues the event's trace.
    void handle_traced(transaction_type& tx, const recorded_type& e) {
        Observer& observer = *options_.observer;
        const TraceContext& parent = e.metadata.trace;
        const std::array<SpanAttribute, 3> attributes{
            SpanAttribute{"orchestrix.stream", e.stream_id, 0, false},
            SpanAttribute{"orchestrix.position", {}, static_cast<std::int64_t>(e.position), true},
            SpanAttribute{"orchestrix.event_type", e.type(), 0, false}};
        const TraceContext span =
            detail::start_span(observer, SpanStart{span_name_, SpanKind::consumer, parent, attributes});
        const bool traced = span.valid();
        std::optional<TraceScope> scope;
        if (traced) {
            scope.emplace(span);
        } else if (parent.valid()) {
            scope.emplace(parent);
        }
        try {
            handler_(tx, e);
        } catch (...) {
            if (traced) {
                detail::call_hook([&] {
                    const std::string error = detail::exception_message(std::current_exception());
                    observer.end_span(span, SpanEnd{true, error, {}});
                });
            }
            throw;
        }
        if (traced) detail::call_hook([&] { observer.end_span(span, SpanEnd{false, {}, {}}); });
    }

    // `step` with an observer: reports the projection's progress after the batch (`on_projection`).
    std::uint64_t observed_step(std::stop_token stop, std::vector<recorded_type>& events) {
        const auto started = detail::observer_clock::now();
        std::uint32_t failures_before = 0;
        {
            std::lock_guard lock(state_mutex_);
            failures_before = store_failures_;
        }
        const std::uint64_t read = read_and_handle(stop, events); // a stopped projection reports its failure only
        {
            std::lock_guard lock(state_mutex_);
            if (store_failures_ > failures_before) return read; // the store failed: reported as a failure
        }
        observe_progress(events, read, detail::elapsed_since(started));
        return read;
    }

    // Reports where the projection is after a batch of `read` events (`events`: those read, if any), or
    // that it is caught up (`read` = 0).
    void observe_progress(const std::vector<recorded_type>& events, std::uint64_t read,
                          std::chrono::nanoseconds duration) noexcept {
        try {
            ProjectionObservation progress{name_, checkpoint(), 0, 0, {}, read, duration};
            progress.head = progress.checkpoint;
            if constexpr (requires(const Store& s) {
                              { s.head_position() } -> std::convertible_to<position_t>;
                          }) {
                progress.head = std::max<position_t>(store_->head_position(), progress.checkpoint);
            }
            progress.lag_events = progress.head - progress.checkpoint;
            if (read != 0 && progress.lag_events != 0 && progress.checkpoint != 0) {
                std::optional<std::chrono::system_clock::time_point> recorded;
                for (auto it = events.rbegin(); it != events.rend() && !recorded; ++it)
                    if (it->position == progress.checkpoint) recorded = it->metadata.recorded_at;
                if (!recorded) { // the checkpoint is not in the batch (another runner moved it)
                    const auto at = store_->read_all(progress.checkpoint, 1);
                    if (!at.empty() && at.front().position == progress.checkpoint)
                        recorded = at.front().metadata.recorded_at;
                }
                if (recorded) {
                    progress.lag_time =
                        std::max(std::chrono::nanoseconds(0), std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                                  std::chrono::system_clock::now() - *recorded));
                }
            }
            options_.observer->on_projection(progress);
        } catch (...) { // NOLINT(bugprone-empty-catch): an observer (or reading the head) must not stop the projection
        }
    }

    void observe_failure(const EventFailure& failure, FailureAction action) const noexcept {
        const FailureOutcome outcome = action == FailureAction::retry  ? FailureOutcome::retried
                                       : action == FailureAction::skip ? FailureOutcome::skipped
                                                                       : FailureOutcome::stopped;
        detail::call_hook([&] {
            options_.observer->on_projection_failure(ProjectionFailureObservation{
                name_, failure.position, failure.stream_id, failure.type, failure.error, failure.attempts, outcome});
        });
    }

    void observe_dead_letter(position_t position, DeadLetterOutcome outcome) const noexcept {
        detail::call_hook([&] { options_.observer->on_dead_letter(DeadLetterObservation{name_, position, outcome}); });
    }

    std::string name_;
    const Store* store_;
    Checkpoints* checkpoints_;
    ProjectionOptions options_;
    handler_type handler_;
    std::string span_name_; // "orchestrix.projection <name>", with an observer

    mutable std::mutex state_mutex_; // guards what follows, up to the thread
    std::condition_variable_any progressed_;
    position_t checkpoint_ = 0;
    std::optional<EventFailure> failure_;
    std::vector<EventFailure> skipped_;
    std::uint32_t store_failures_ = 0;
    bool started_ = false;  // a thread was started and not yet joined
    bool finished_ = false; // that thread has returned

    std::mutex run_mutex_;     // one step at a time
    std::mutex control_mutex_; // start / stop
    std::mutex pause_mutex_;
    std::condition_variable_any pause_;
    std::jthread thread_; // last: stopped and joined before the rest is destroyed
};

/// The controls of a projection, forwarded to the `Projection` that a wrapper holds as `projection_`:
/// `CatchUpSubscription` and `ProcessManager` offer exactly these (see `Projection` for each).
template <class Derived>
class ProjectionControls {
public:
    /// Handles one batch; returns the number of events read (0 when caught up).
    std::uint64_t poll_once() { return runner().poll_once(); }
    /// Handles batches until caught up; returns the number of events read.
    std::uint64_t run_until_caught_up() { return runner().run_until_caught_up(); }
    /// Starts the runner's thread: catch up, then follow live.
    void start() { runner().start(); }
    /// Stops the thread and waits for it.
    void stop() { runner().stop(); }
    [[nodiscard]] bool running() const { return runner().running(); }
    /// Waits until every event up to `position` has been handled (or passed over by the filter).
    [[nodiscard]] bool wait_for(position_t position, std::chrono::milliseconds timeout) {
        return runner().wait_for(position, timeout);
    }
    /// The position of the last event handled or passed over.
    [[nodiscard]] position_t checkpoint() const { return runner().checkpoint(); }
    [[nodiscard]] std::optional<EventFailure> failure() const { return runner().failure(); }
    [[nodiscard]] std::vector<EventFailure> skipped() const { return runner().skipped(); }
    /// The dead letters, in position order (see `Projection::dead_letters`).
    [[nodiscard]] std::vector<DeadLetter> dead_letters() const { return runner().dead_letters(); }
    /// Retries every dead letter through the handler (see `Projection::retry_dead_letters`).
    DeadLetterRetries retry_dead_letters() { return runner().retry_dead_letters(); }
    /// Removes one dead letter without handling it; returns whether there was one.
    bool discard_dead_letter(position_t position) { return runner().discard_dead_letter(position); }
    /// Removes every dead letter without handling them; returns how many there were.
    std::uint64_t discard_dead_letters() { return runner().discard_dead_letters(); }
    void resume() { runner().resume(); }

protected:
    ProjectionControls() = default;
    ~ProjectionControls() = default;

private:
    [[nodiscard]] auto& runner() noexcept { return static_cast<Derived&>(*this).projection_; }
    [[nodiscard]] const auto& runner() const noexcept { return static_cast<const Derived&>(*this).projection_; }
};

} // namespace orchestrix
