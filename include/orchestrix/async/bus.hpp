#pragma once

#include <orchestrix/async/completion.hpp>
#include <orchestrix/async/errors.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/detail/type_traits.hpp>
#include <orchestrix/memory/bus_routing.hpp>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

/// What `AsyncInMemoryBus::publish` does when the bus already holds `capacity` undelivered events.
enum class OverflowPolicy : std::uint8_t {
    block, ///< wait until an event has been delivered (or the bus shuts down: `BusClosedError`)
    fail,  ///< throw `QueueFullError` at once; the event is not accepted
};

/// How an `AsyncInMemoryBus` runs.
struct AsyncBusOptions {
    /// Worker threads that run handlers (at least 1).
    std::size_t workers = 2;
    /// Events accepted but not yet delivered to every subscriber, at most (at least 1).
    std::size_t capacity = 1024;
    /// What `publish` does when `capacity` is reached (each call may choose otherwise).
    OverflowPolicy overflow = OverflowPolicy::block;
};

namespace detail {
// The bus whose handler this thread is running, if any: lets `shutdown` refuse to wait for itself.
inline thread_local const void* running_async_bus = nullptr;
} // namespace detail

/// An asynchronous, in-process message bus for the events of the variant `Events`: `publish` returns at
/// once with a `Completion<void>`, and a pool of worker threads runs the handlers.
///
///     orchestrix::AsyncInMemoryBus<UserEvent> bus;            // 2 workers, room for 1024 events
///     auto s = bus.subscribe<UserCreated>([](const UserCreated& e) { ... });
///     co_await bus.publish(UserCreated{"123", "John"});       // or .wait() / .get() outside a coroutine
///
/// Subscribing works as for `InMemoryBus`: to an alternative, to `Events` (every event) or to
/// `RecordedEvent<Events>`. A handler returns `void`, or is a coroutine returning `Completion<void>` that
/// may `co_await` (for instance another bus's publish); its delivery ends when that completion is ready.
///
/// Guarantees:
/// - Order: each subscriber gets events one at a time, in the order they were published (the order in
///   which `publish` calls returned, when several threads publish). A handler never runs concurrently
///   with itself; different subscribers' handlers run in parallel on the workers.
/// - Completion: the completion of a publish becomes ready once every handler subscribed at that moment
///   has finished with the event (or was unsubscribed before it got it). If any threw, it holds one
///   `HandlerError` with every failure; a failing handler does not hold up the others or later events.
///   With no subscriber the completion is ready at once.
/// - Back-pressure: at most `capacity` events are in flight. A publish beyond that waits, or throws
///   `QueueFullError` (`OverflowPolicy::fail`); the event is then not accepted.
/// - Shutdown: `shutdown()` refuses new events (`BusClosedError`, also for publishers waiting for room),
///   waits until every accepted event has been delivered and its completion set, then stops the
///   workers. The destructor calls it.
/// - Unsubscribing drops the events the handler has not started; their completions do not wait for it.
///   It waits for a call the handler is running on another thread (not for the part of a coroutine
///   handler after its first suspension), so what the handler uses may be destroyed afterwards.
///
/// A coroutine awaiting a completion resumes on the thread that finished the event (a worker), so it
/// must not block there for long. Neither `shutdown` nor a blocking `publish` on a full bus may be called
/// from one of the bus's own handlers: the first throws `orchestrix::Error`, the second can deadlock.
///
/// Observability: with an `Observer` attached (`observe`), every event accepted is reported once its
/// completion is set (`on_publish`, bus "async_bus", timed from `publish` to then), every handler that threw
/// as it finishes (`on_handler_failure`), and the handlers run on the workers inside the event's span
/// "orchestrix.publish <type>", started by `publish` under the publisher's current trace (docs/operations.md).
template <event_variant Events>
class AsyncInMemoryBus {
public:
    using event_type = Events;
    using recorded_type = RecordedEvent<Events>;

    explicit AsyncInMemoryBus(AsyncBusOptions options = {}) : state_(std::make_shared<State>(options)) {
        if (options.workers == 0) throw InvalidArgumentError("workers", "AsyncInMemoryBus needs at least 1 worker");
        if (options.capacity == 0)
            throw InvalidArgumentError("capacity", "AsyncInMemoryBus needs a capacity of at least 1");
        workers_.reserve(options.workers);
        for (std::size_t i = 0; i < options.workers; ++i) {
            workers_.emplace_back([state = state_](std::stop_token stop) { state->work(stop); });
        }
    }

    AsyncInMemoryBus(const AsyncInMemoryBus&) = delete;
    AsyncInMemoryBus& operator=(const AsyncInMemoryBus&) = delete;

    ~AsyncInMemoryBus() {
        try {
            shutdown();
        } catch (...) { // only from a handler of this bus: workers are then left to finish on their own
            for (auto& worker : workers_) {
                worker.request_stop();
                worker.detach();
            }
        }
    }

    /// Subscribes `handler`, callable as `handler(const M&)` and returning `void` or `Completion<void>`,
    /// to messages of type `M`: an alternative of `Events`, `Events` itself, or `RecordedEvent<Events>`.
    template <class M, class Handler>
    [[nodiscard]] Subscription subscribe(Handler&& handler) {
        static_assert(routing::template accepts<M>,
                      "AsyncInMemoryBus<Events>::subscribe<M>: M must be an alternative of the bus's Events "
                      "variant, the Events variant itself (every event), or orchestrix::RecordedEvent<Events>");
        using H = std::decay_t<Handler>;
        static_assert(std::is_invocable_v<H&, const M&>,
                      "AsyncInMemoryBus<Events>::subscribe<M>(handler): the handler must be callable as "
                      "handler(const M&)");
        using R = std::invoke_result_t<H&, const M&>;
        static_assert(std::is_void_v<R> || std::is_same_v<R, Completion<void>>,
                      "AsyncInMemoryBus<Events>::subscribe<M>(handler): the handler must return void, or be a "
                      "coroutine returning orchestrix::Completion<void>");
        auto call = [fn = H(std::forward<Handler>(handler))](const Publication& p) mutable -> Completion<void> {
            if constexpr (std::is_void_v<R>) {
                std::invoke(fn, p.template as<M>());
                return Completion<void>{};
            } else {
                return std::invoke(fn, p.template as<M>());
            }
        };
        const std::uint64_t id = state_->add(slot_of<M>, std::move(call));
        return Subscription(state_, id, id);
    }

    /// Accepts `message` (an alternative of `Events`, an `Events` variant, a `RecordedEvent<Events>` or an
    /// `EventEnvelope<Events>`) for delivery and returns at once. See the class comment for what the
    /// completion reports, and for `QueueFullError` and `BusClosedError`, which this throws when the
    /// event is not accepted.
    template <class M>
    [[nodiscard]] Completion<void> publish(M&& message) {
        return publish(std::forward<M>(message), state_->options.overflow);
    }

    /// As `publish(message)`, with `overflow` deciding what happens if the bus is full.
    template <class M>
    [[nodiscard]] Completion<void> publish(M&& message, OverflowPolicy overflow) {
        using T = std::remove_cvref_t<M>;
        auto publication = std::make_shared<Publication>();
        if constexpr (alternative_of<T, Events> || std::is_same_v<T, Events>) {
            publication->payload.template emplace<0>(std::forward<M>(message));
        } else if constexpr (std::is_same_v<T, recorded_type>) {
            publication->payload.template emplace<1>(std::forward<M>(message));
        } else if constexpr (std::is_same_v<T, EventEnvelope<Events>>) {
            publication->payload.template emplace<0>(std::forward<M>(message).event);
        } else {
            static_assert(detail::always_false<T>,
                          "AsyncInMemoryBus<Events>::publish: this message type is not an alternative of the "
                          "bus's Events variant; publish one of its alternatives, an Events variant, or a "
                          "RecordedEvent<Events>");
        }
        publication->name = event_name_of(publication->event());
        if (observer_ != nullptr) [[unlikely]] {
            publication->observer = observer_;
            publication->started = detail::observer_clock::now();
            publication->span = detail::start_publish_span(*observer_, "async_bus", publication->name);
            publication->traced = publication->span.valid();
            try {
                return state_->publish(publication, overflow);
            } catch (...) { // not accepted (QueueFullError, BusClosedError): no on_publish, the span ends failed
                if (publication->traced) {
                    const std::string error = detail::bus_error_message(std::current_exception());
                    detail::end_publish_span(*observer_, publication->span, true, error);
                }
                throw;
            }
        }
        return state_->publish(std::move(publication), overflow);
    }

    /// Attaches `observer` (nullptr detaches): each event published from now on is reported to it. Attach
    /// before publishing; attaching is not synchronised with publishes running on other threads. The
    /// observer is called from the workers and must outlive the bus (or its last accepted event).
    void observe(Observer* observer) noexcept { observer_ = observer; }

    /// The attached observer, or nullptr.
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// Stops accepting events, waits until every accepted event has been delivered, then stops the
    /// workers. Idempotent. Throws `orchestrix::Error` if called from one of this bus's handlers.
    void shutdown() {
        if (detail::running_async_bus == state_.get()) {
            throw Error("AsyncInMemoryBus::shutdown was called from one of the bus's own handlers; it would wait "
                        "for itself");
        }
        std::lock_guard lock(shutdown_mutex_);
        state_->close_and_drain();
        for (auto& worker : workers_) worker.request_stop();
        state_->wake_workers();
        for (auto& worker : workers_)
            if (worker.joinable()) worker.join();
    }

    /// Whether `shutdown()` has begun: publishing now throws `BusClosedError`.
    [[nodiscard]] bool closed() const { return state_->is_closed(); }

    /// Events accepted and not yet delivered to every subscriber.
    [[nodiscard]] std::size_t in_flight() const { return state_->in_flight_count(); }

    /// The number of handlers subscribed to `M` (not counting those of `Events` or `RecordedEvent`).
    template <class M>
    [[nodiscard]] std::size_t handler_count() const {
        static_assert(routing::template accepts<M>,
                      "AsyncInMemoryBus<Events>::handler_count<M>: M is not a message of this bus");
        return state_->count(slot_of<M>);
    }

private:
    using routing = detail::bus_routing<Events>;
    template <class M>
    static constexpr std::size_t slot_of = routing::template slot_of<M>;

    // One published event on its way to its subscribers.
    struct Publication {
        std::variant<Events, recorded_type> payload;
        std::string_view name;
        std::size_t remaining = 0;            // subscribers still to finish; guarded by State::mutex_
        std::vector<HandlerFailure> failures; // guarded by State::mutex_
        std::size_t called = 0;               // handler calls finished; guarded by State::mutex_
        CompletionSource<void> done;
        // With an observer attached when it was published: the observer, the start and the span.
        Observer* observer = nullptr;
        detail::observer_clock::time_point started{};
        TraceContext span{};
        bool traced = false; // `span` was started

        [[nodiscard]] const Events& event() const noexcept {
            return payload.index() == 0 ? *std::get_if<0>(&payload) : std::get_if<1>(&payload)->event;
        }
        template <class M>
        [[nodiscard]] const M& as() const {
            if constexpr (std::is_same_v<M, Events>) {
                return event();
            } else if constexpr (std::is_same_v<M, recorded_type>) {
                return *std::get_if<1>(&payload);
            } else {
                return *std::get_if<M>(&event());
            }
        }
    };
    using publication_ptr = std::shared_ptr<Publication>;
    using handler_type = std::function<Completion<void>(const Publication&)>;

    // One subscribed handler and the events waiting for it: a serial queue (a strand).
    struct Subscriber {
        std::uint64_t id = 0;
        std::size_t slot = 0;
        handler_type handler;
        // Guarded by State::mutex_:
        std::deque<publication_ptr> pending;
        bool active = true;
        bool scheduled = false; // queued for a worker, or being delivered
        bool in_call = false;   // a worker is inside `handler`
        std::thread::id caller;
    };
    using subscriber_ptr = std::shared_ptr<Subscriber>;

    class State final : public detail::subscription_owner, public std::enable_shared_from_this<State> {
    public:
        explicit State(AsyncBusOptions o) : options(o) {}

        const AsyncBusOptions options;

        std::uint64_t add(std::size_t slot, handler_type handler) {
            auto subscriber = std::make_shared<Subscriber>();
            subscriber->slot = slot;
            subscriber->handler = std::move(handler);
            std::lock_guard lock(mutex_);
            subscriber->id = ++next_id_;
            slots_[slot].push_back(subscriber);
            by_id_.emplace(subscriber->id, subscriber);
            return subscriber->id;
        }

        void unsubscribe(std::uint64_t id) noexcept override {
            std::vector<publication_ptr> finished;
            subscriber_ptr subscriber;
            {
                std::unique_lock lock(mutex_);
                auto found = by_id_.find(id);
                if (found == by_id_.end()) return;
                subscriber = std::move(found->second);
                by_id_.erase(found);
                auto& list = slots_[subscriber->slot];
                std::erase(list, subscriber);
                subscriber->active = false;
                for (auto& publication : subscriber->pending)
                    if (--publication->remaining == 0) finished.push_back(std::move(publication));
                subscriber->pending.clear();
            }
            for (auto& publication : finished) complete(publication);
            std::unique_lock lock(mutex_);
            if (subscriber->in_call && subscriber->caller != std::this_thread::get_id()) {
                call_ended_.wait(lock, [&] { return !subscriber->in_call; });
            }
        }

        Completion<void> publish(publication_ptr publication, OverflowPolicy overflow) {
            Completion<void> completion = publication->done.completion();
            std::size_t woken = 0;
            {
                std::unique_lock lock(mutex_);
                if (closing_) throw BusClosedError(publication->name);
                if (in_flight_ >= options.capacity) {
                    if (overflow == OverflowPolicy::fail) throw QueueFullError(publication->name, options.capacity);
                    room_.wait(lock, [&] { return in_flight_ < options.capacity || closing_; });
                    if (closing_) throw BusClosedError(publication->name);
                }
                const auto enqueue = [&](std::vector<subscriber_ptr>& list) {
                    for (const subscriber_ptr& subscriber : list) {
                        subscriber->pending.push_back(publication);
                        ++publication->remaining;
                        if (!subscriber->scheduled) {
                            subscriber->scheduled = true;
                            ready_.push_back(subscriber);
                            ++woken;
                        }
                    }
                };
                enqueue(slots_[publication->event().index()]);
                enqueue(slots_[routing::all_slot]);
                if (publication->payload.index() == 1) enqueue(slots_[routing::recorded_slot]);
                if (publication->remaining == 0) {
                    lock.unlock();
                    if (publication->observer != nullptr) [[unlikely]]
                        report(*publication, 0, 0, {});
                    publication->done.set_value();
                    return completion;
                }
                ++in_flight_;
            }
            if (woken == 1) {
                work_.notify_one();
            } else if (woken > 1) {
                work_.notify_all();
            }
            return completion;
        }

        void work(std::stop_token stop) {
            detail::running_async_bus = this;
            std::unique_lock lock(mutex_);
            while (work_.wait(lock, stop, [this] { return !ready_.empty(); })) {
                subscriber_ptr subscriber = std::move(ready_.front());
                ready_.pop_front();
                if (!subscriber->active || subscriber->pending.empty()) {
                    subscriber->scheduled = false;
                    continue;
                }
                publication_ptr publication = std::move(subscriber->pending.front());
                subscriber->pending.pop_front();
                subscriber->in_call = true;
                subscriber->caller = std::this_thread::get_id();
                lock.unlock();
                deliver(subscriber, publication);
                lock.lock();
            }
        }

        void close_and_drain() {
            std::unique_lock lock(mutex_);
            closing_ = true;
            room_.notify_all();
            drained_.wait(lock, [this] { return in_flight_ == 0 && completing_ == 0; });
        }

        void wake_workers() { work_.notify_all(); }

        [[nodiscard]] bool is_closed() const {
            std::lock_guard lock(mutex_);
            return closing_;
        }
        [[nodiscard]] std::size_t in_flight_count() const {
            std::lock_guard lock(mutex_);
            return in_flight_;
        }
        [[nodiscard]] std::size_t count(std::size_t slot) const {
            std::lock_guard lock(mutex_);
            return slots_[slot].size();
        }

    private:
        void deliver(const subscriber_ptr& subscriber, const publication_ptr& publication) {
            Completion<void> result;
            std::exception_ptr error;
            try {
                std::optional<TraceScope> scope;
                if (publication->traced) [[unlikely]]
                    scope.emplace(publication->span);
                result = subscriber->handler(*publication);
            } catch (...) {
                error = std::current_exception();
            }
            if (!result.valid() || error) {
                finish(subscriber, publication, std::move(error), true);
                return;
            }
            // A coroutine handler: its delivery ends when its completion is ready.
            {
                std::lock_guard lock(mutex_);
                subscriber->in_call = false;
            }
            call_ended_.notify_all();
            auto pending = std::make_shared<Completion<void>>(std::move(result));
            auto self = this->shared_from_this();
            const bool suspended =
                detail::completion_access::on_ready(*pending, [self, subscriber, publication, pending] {
                    self->finish(subscriber, publication, pending->exception(), false);
                });
            if (!suspended) finish(subscriber, publication, pending->exception(), false);
        }

        void finish(const subscriber_ptr& subscriber, const publication_ptr& publication, std::exception_ptr error,
                    bool ended_call) {
            std::optional<HandlerFailure> failure;
            if (error) failure = detail::describe_failure(publication->name, subscriber->id, std::move(error));
            if (failure && publication->observer != nullptr) [[unlikely]]
                detail::report_handler_failure(*publication->observer, "async_bus", publication->name,
                                               failure->message);
            bool last = false;
            bool rescheduled = false;
            {
                std::lock_guard lock(mutex_);
                ++publication->called;
                if (failure) publication->failures.push_back(std::move(*failure));
                if (ended_call) subscriber->in_call = false;
                if (subscriber->active && !subscriber->pending.empty()) {
                    ready_.push_back(subscriber);
                    rescheduled = true;
                } else {
                    subscriber->scheduled = false;
                }
                last = --publication->remaining == 0;
            }
            if (ended_call) call_ended_.notify_all();
            if (rescheduled) work_.notify_one();
            if (last) complete(publication);
        }

        // Sets the completion of a publication every subscriber has finished with, and frees its room.
        void complete(const publication_ptr& publication) {
            std::vector<HandlerFailure> failures;
            std::size_t called = 0;
            {
                std::lock_guard lock(mutex_);
                failures = std::move(publication->failures);
                called = publication->called;
                --in_flight_;
                ++completing_;
            }
            room_.notify_one();
            if (publication->observer != nullptr) [[unlikely]] {
                report(*publication, called, failures.size(),
                       failures.empty() ? std::string_view{} : std::string_view(failures.front().message));
            }
            if (failures.empty()) {
                publication->done.set_value();
            } else {
                publication->done.set_exception(std::make_exception_ptr(HandlerError(std::move(failures))));
            }
            bool drained = false;
            {
                std::lock_guard lock(mutex_);
                --completing_;
                drained = closing_ && in_flight_ == 0 && completing_ == 0;
            }
            if (drained) drained_.notify_all();
        }

        // Ends the publication's span and reports it (`on_publish`), before its completion is set.
        static void report(const Publication& publication, std::size_t called, std::size_t failures,
                           std::string_view first_error) noexcept {
            if (publication.traced)
                detail::end_publish_span(*publication.observer, publication.span, failures != 0, first_error);
            detail::report_publish(*publication.observer, "async_bus", publication.name, called, failures,
                                   publication.started);
        }

        mutable std::mutex mutex_;
        std::condition_variable_any work_;   // a subscriber became ready
        std::condition_variable room_;       // in_flight_ dropped, or closing
        std::condition_variable drained_;    // nothing in flight any more
        std::condition_variable call_ended_; // a handler call returned
        std::array<std::vector<subscriber_ptr>, routing::slot_count> slots_;
        std::unordered_map<std::uint64_t, subscriber_ptr> by_id_;
        std::deque<subscriber_ptr> ready_;
        std::uint64_t next_id_ = 0;
        std::size_t in_flight_ = 0;
        std::size_t completing_ = 0;
        bool closing_ = false;
    };

    std::shared_ptr<State> state_;
    Observer* observer_ = nullptr;
    std::mutex shutdown_mutex_;
    std::vector<std::jthread> workers_;
};

} // namespace orchestrix
