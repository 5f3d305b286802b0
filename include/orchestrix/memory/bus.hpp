#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>
#include <orchestrix/detail/chrono.hpp>
#include <orchestrix/detail/range.hpp>
#include <orchestrix/detail/type_traits.hpp>
#include <orchestrix/memory/bus_routing.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#if defined(__linux__) && __has_include(<linux/membarrier.h>)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define ORCHESTRIX_BUS_MEMBARRIER 1
#endif

namespace orchestrix {

namespace detail {

// One subscribed handler. `active` turns false when it is unsubscribed; a dispatch that already holds a
// list containing it checks the flag before each call.
template <class M>
struct bus_handler {
    bus_handler(std::uint64_t subscription_id, std::function<void(const M&)> fn)
        : id(subscription_id), handler(std::move(fn)) {}
    std::atomic<bool> active{true};
    std::uint64_t id;
    std::function<void(const M&)> handler;
};

template <class M>
using bus_handler_list = std::vector<std::shared_ptr<bus_handler<M>>>;

// The handlers of one message type: an immutable list, replaced as a whole (copy on write).
template <class M>
struct bus_slot {
    std::atomic<const bus_handler_list<M>*> current{nullptr}; // what publishers read; null = no handler
    std::shared_ptr<const bus_handler_list<M>> owner;         // keeps `current` alive; guarded by the write lock
};

// Publishing threads announce themselves in per-thread reader slots so that replaced handler lists are
// freed only when no publish can still hold them. A thread takes one of `bus_reader_slots` process-wide
// indexes the first time it publishes and gives it back when it exits; threads beyond that share one
// counter (two atomic read-modify-writes per publish instead of one store).
inline constexpr std::size_t bus_reader_slots = 32;
inline constexpr int bus_reader_shared = -2;                    // no free index: use the shared counter
inline std::atomic<std::uint32_t> bus_reader_free{0xFFFFFFFFU}; // bit i set: index i is free
inline thread_local int bus_reader_index = -1;                  // -1: not assigned yet

struct bus_reader_index_owner {
    int index = -1;
    bus_reader_index_owner() = default;
    bus_reader_index_owner(const bus_reader_index_owner&) = delete;
    bus_reader_index_owner& operator=(const bus_reader_index_owner&) = delete;
    ~bus_reader_index_owner() {
        if (index < 0) return;
        bus_reader_index = bus_reader_shared; // a later publish from this thread must not use the slot
        bus_reader_free.fetch_or(std::uint32_t{1} << index, std::memory_order_release);
    }
};
inline thread_local bus_reader_index_owner bus_reader_index_holder;

[[nodiscard]] inline int assign_bus_reader_index() noexcept {
    std::uint32_t free = bus_reader_free.load(std::memory_order_relaxed);
    while (free != 0) {
        const int index = std::countr_zero(free);
        if (bus_reader_free.compare_exchange_weak(free, free & ~(std::uint32_t{1} << index), std::memory_order_acquire,
                                                  std::memory_order_relaxed)) {
            bus_reader_index_holder.index = index;
            bus_reader_index = index;
            return index;
        }
    }
    bus_reader_index = bus_reader_shared;
    return bus_reader_shared;
}

// Readers may announce themselves with a plain store when writers can make every thread of the process
// execute a full memory barrier (Linux `membarrier`, private expedited): the writer's barrier then stands
// for the one each reader would need between its store and its load of the handler list. Registered once
// per process; false where it is unavailable, and readers then pay a seq_cst store.
[[nodiscard]] inline bool bus_light_readers() noexcept {
#ifdef ORCHESTRIX_BUS_MEMBARRIER
    static const bool registered = ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    return registered;
#else
    return false;
#endif
}

// The writer's half of the light readers' protocol: returns false if the barrier failed (then nothing
// retired may be freed).
[[nodiscard]] inline bool bus_barrier_for_light_readers() noexcept {
#ifdef ORCHESTRIX_BUS_MEMBARRIER
    return ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
}

// How many publishes one thread is running on one bus (more than one when a handler publishes); written
// only by that thread. On its own cache line so that threads publishing at once do not share one.
struct alignas(64) bus_reader_slot {
    std::atomic<std::uint32_t> depth{0};
};

template <class Events>
struct bus_slots;
template <class... Ts>
struct bus_slots<std::variant<Ts...>> {
    using type =
        std::tuple<bus_slot<Ts>..., bus_slot<std::variant<Ts...>>, bus_slot<RecordedEvent<std::variant<Ts...>>>>;
};

} // namespace detail

/// A synchronous, in-process message bus for the events of the variant `Events`.
///
///     orchestrix::InMemoryBus<UserEvent> bus;
///     auto s = bus.subscribe<UserCreated>([](const UserCreated& e) { std::cout << e.user_id << "\n"; });
///     bus.publish(UserCreated{"123", "John"});    // runs the handler before it returns
///
/// What a handler can subscribe to, and what reaches it:
///
/// | subscribe to                  | gets `publish(E)`     | gets `publish(Events)` | gets `publish(RecordedEvent)` |
/// |-------------------------------|-----------------------|------------------------|-------------------------------|
/// | an alternative `E`            | yes                   | if it holds an `E`     | if it holds an `E`            |
/// | `Events` (every event)        | yes (as a variant)    | yes                    | yes (its `event`)             |
/// | `RecordedEvent<Events>`       | no                    | no                     | yes                           |
///
/// Order: the handlers of the alternative run first, then those of `Events`, then those of
/// `RecordedEvent<Events>`; within each, in subscription order. All run on the caller's thread.
///
/// Re-entrancy: a handler may subscribe, unsubscribe and publish. A handler subscribed while an event is
/// being delivered does not see that event (each delivery works on the handler list as it was when it
/// started); a handler unsubscribed meanwhile is not called afterwards, not even by that delivery.
///
/// Failures: a handler that throws does not stop the others; after every handler ran, `publish` throws
/// one `HandlerError` with every failure (event name, subscription id, exception), in the order they ran.
///
/// Threads: `publish` may be called from any number of threads at once, and concurrently with
/// `subscribe` and `unsubscribe`. Publishing takes no lock and allocates nothing: it reads the handler
/// list through an atomic pointer after marking itself running in its thread's reader slot (one atomic
/// store), while `subscribe` and `unsubscribe` copy the list under a mutex, swap the pointer, and free
/// replaced lists once no reader slot shows a running publish. The bus does not serialise handlers: two threads
/// publishing at once run handlers at once. `unsubscribe` does not wait for a call that another thread already started.
///
/// Observability: with an `Observer` attached (`observe`), every message published is reported
/// (`on_publish`, bus "bus"), every handler that threw too (`on_handler_failure`), and the handlers run
/// inside a span "orchestrix.publish <type>" (docs/operations.md). Without one the bus reads no clock.
template <event_variant Events>
class InMemoryBus {
public:
    using event_type = Events;
    using recorded_type = RecordedEvent<Events>;

    InMemoryBus() : state_(std::make_shared<State>()) {}
    InMemoryBus(const InMemoryBus&) = delete;
    InMemoryBus& operator=(const InMemoryBus&) = delete;
    ~InMemoryBus() = default;

    /// Subscribes `handler`, callable as `handler(const M&)`, to messages of type `M`: an alternative of
    /// `Events`, `Events` itself (every event), or `RecordedEvent<Events>` (events with their metadata).
    /// The handler stays subscribed as long as the returned `Subscription` lives.
    template <class M, class Handler>
    [[nodiscard]] Subscription subscribe(Handler&& handler) {
        static_assert(routing::template accepts<M>,
                      "InMemoryBus<Events>::subscribe<M>: M must be an alternative of the bus's Events variant, "
                      "the Events variant itself (every event), or orchestrix::RecordedEvent<Events>");
        static_assert(std::is_invocable_v<std::decay_t<Handler>&, const M&>,
                      "InMemoryBus<Events>::subscribe<M>(handler): the handler must be callable as "
                      "handler(const M&)");
        std::function<void(const M&)> fn(std::forward<Handler>(handler));
        if (!fn) throw InvalidArgumentError("handler", "InMemoryBus::subscribe: the handler is empty");
        const auto [key, id] = state_->template add<slot_of<M>>(std::move(fn));
        return Subscription(state_, key, id);
    }

    /// Runs the handlers for `message`, an alternative of `Events`, an `Events` variant (dispatched on
    /// the alternative it holds) or a `RecordedEvent<Events>`. Throws `HandlerError` after all handlers
    /// ran if any of them threw.
    template <class M>
    void publish(const M& message) {
        std::vector<HandlerFailure> failures;
        if (observer_ != nullptr) [[unlikely]] {
            deliver_observed(message, failures);
        } else {
            deliver(message, failures);
        }
        if (!failures.empty()) throw HandlerError(std::move(failures));
    }

    /// Publishes each message of `messages` in order, then throws one `HandlerError` with the failures of
    /// all of them, if any.
    template <detail::iterable Messages>
    void publish_all(Messages&& messages) {
        std::vector<HandlerFailure> failures;
        for (const auto& message : messages) {
            if (observer_ != nullptr) [[unlikely]] {
                deliver_observed(message, failures);
            } else {
                deliver(message, failures);
            }
        }
        if (!failures.empty()) throw HandlerError(std::move(failures));
    }

    /// Attaches `observer` (nullptr detaches): from now on each message published is reported to it.
    /// Attach before publishing; attaching is not synchronised with publishes running on other threads.
    void observe(Observer* observer) noexcept { observer_ = observer; }

    /// The attached observer, or nullptr.
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// The number of handlers subscribed to `M` (not counting those of `Events` or `RecordedEvent`).
    template <class M>
    [[nodiscard]] std::size_t handler_count() const {
        static_assert(routing::template accepts<M>,
                      "InMemoryBus<Events>::handler_count<M>: M is not a message of this bus");
        return state_->template count<slot_of<M>>();
    }

private:
    using routing = detail::bus_routing<Events>;
    template <class M>
    static constexpr std::size_t slot_of = routing::template slot_of<M>;

    class State final : public detail::subscription_owner {
    public:
        template <std::size_t I, class M>
        std::pair<std::uint64_t, std::uint64_t> add(std::function<void(const M&)> fn) {
            std::unique_lock lock(write_mutex_);
            const std::uint64_t id = ++next_id_;
            auto& slot = std::get<I>(slots_);
            auto list = slot.owner ? std::make_shared<detail::bus_handler_list<M>>(*slot.owner)
                                   : std::make_shared<detail::bus_handler_list<M>>();
            list->push_back(std::make_shared<detail::bus_handler<M>>(id, std::move(fn)));
            auto garbage = replace(slot, std::move(list));
            lock.unlock();
            return {(id << key_slot_bits) | I, id};
        }

        void unsubscribe(std::uint64_t key) noexcept override {
            const std::size_t slot = static_cast<std::size_t>(key & ((std::uint64_t{1} << key_slot_bits) - 1));
            const std::uint64_t id = key >> key_slot_bits;
            [&]<std::size_t... I>(std::index_sequence<I...>) { ((I == slot ? remove<I>(id) : void()), ...); }
            (std::make_index_sequence<routing::slot_count>{});
        }

        template <std::size_t I>
        [[nodiscard]] std::size_t count() const {
            std::lock_guard lock(write_mutex_);
            const auto& owner = std::get<I>(slots_).owner;
            return owner ? owner->size() : 0;
        }

        template <std::size_t I, class M>
        void dispatch(const M& message, std::string_view name, std::vector<HandlerFailure>& failures) {
            const auto* list = std::get<I>(slots_).current.load(std::memory_order_seq_cst);
            if (list == nullptr) return;
            for (const auto& entry : *list) {
                if (!entry->active.load(std::memory_order_acquire)) continue;
                try {
                    entry->handler(message);
                } catch (...) {
                    failures.push_back(detail::describe_failure(name, entry->id, std::current_exception()));
                }
            }
        }

        template <std::size_t I>
        [[nodiscard]] bool has_handlers() const noexcept {
            return std::get<I>(slots_).current.load(std::memory_order_seq_cst) != nullptr;
        }

        // Marks a running publish in the thread's reader slot; replaced handler lists are freed only while
        // no slot shows one. A writer that swapped a list and then finds the slot empty must be sure that
        // this publish will read the new list: the store on entry must be ordered before the load of the
        // list pointer. Either the store is seq_cst (paired with the seq_cst loads of the pointer and of
        // the slots), or, with light readers, the writer forces a barrier on every thread between its swap
        // and its scan (`bus_barrier_for_light_readers`), and the store only has to stay before the load in
        // program order.
        class PublishScope {
        public:
            explicit PublishScope(State& state) noexcept : state_(state) {
                int index = detail::bus_reader_index;
                if (index == -1) index = detail::assign_bus_reader_index();
                if (index >= 0) {
                    slot_ = &state_.readers_[static_cast<std::size_t>(index)].depth;
                    depth_ = slot_->load(std::memory_order_relaxed);
                    if (depth_ == 0 && state_.light_readers_) {
                        slot_->store(1, std::memory_order_relaxed);
                        std::atomic_signal_fence(std::memory_order_seq_cst);
                    } else if (depth_ == 0) {
                        slot_->store(1, std::memory_order_seq_cst);
                    } else {
                        slot_->store(depth_ + 1, std::memory_order_relaxed); // already announced
                    }
                } else {
                    state_.shared_readers_.fetch_add(1, std::memory_order_seq_cst);
                }
            }
            PublishScope(const PublishScope&) = delete;
            PublishScope& operator=(const PublishScope&) = delete;
            ~PublishScope() {
                if (slot_ != nullptr) {
                    slot_->store(depth_, std::memory_order_release);
                    if (depth_ != 0) return;
                } else {
                    state_.shared_readers_.fetch_sub(1, std::memory_order_seq_cst);
                }
                if (state_.has_retired_.load(std::memory_order_relaxed)) state_.try_reclaim();
            }

        private:
            State& state_;
            std::atomic<std::uint32_t>* slot_ = nullptr;
            std::uint32_t depth_ = 0;
        };

    private:
        static constexpr unsigned key_slot_bits = 16;
        static_assert(routing::slot_count < (std::size_t{1} << key_slot_bits),
                      "InMemoryBus: the event variant has too many alternatives");

        template <std::size_t I>
        void remove(std::uint64_t id) noexcept {
            auto& slot = std::get<I>(slots_);
            using list_type = typename std::remove_cvref_t<decltype(*slot.owner)>;
            std::unique_lock lock(write_mutex_);
            if (!slot.owner) return;
            auto found = std::find_if(slot.owner->begin(), slot.owner->end(),
                                      [id](const auto& entry) { return entry->id == id; });
            if (found == slot.owner->end()) return;
            (*found)->active.store(false, std::memory_order_release);
            std::shared_ptr<void> garbage;
            try {
                auto list = std::make_shared<list_type>();
                list->reserve(slot.owner->size() - 1);
                for (const auto& entry : *slot.owner)
                    if (entry->id != id) list->push_back(entry);
                garbage = replace(slot, std::move(list));
            } catch (...) {
                // Out of memory: the handler stays in the list but, inactive, is never called again.
            }
            lock.unlock();
        }

        // Installs `list` (write lock held) and retires the list it replaces. Returns what can be freed
        // now, so that the caller frees it (running handler destructors) after releasing the lock.
        template <class M>
        std::shared_ptr<void> replace(detail::bus_slot<M>& slot, std::shared_ptr<detail::bus_handler_list<M>> list) {
            std::shared_ptr<const detail::bus_handler_list<M>> old = std::move(slot.owner);
            slot.owner = std::move(list);
            slot.current.store(slot.owner->empty() ? nullptr : slot.owner.get(), std::memory_order_seq_cst);
            if (old) {
                retired_.push_back(std::move(old));
                has_retired_.store(true, std::memory_order_relaxed);
            }
            if (light_readers_) {
                // A barrier covers every swap before it; without one, retired lists wait for the next.
                barrier_failed_ = !detail::bus_barrier_for_light_readers();
                if (barrier_failed_) return nullptr;
            }
            if (!no_readers()) return nullptr;
            return take_retired();
        }

        std::shared_ptr<void> take_retired() {
            auto garbage = std::make_shared<std::vector<std::shared_ptr<const void>>>(std::move(retired_));
            retired_.clear();
            has_retired_.store(false, std::memory_order_relaxed);
            return garbage;
        }

        void try_reclaim() noexcept {
            std::unique_lock lock(write_mutex_, std::try_to_lock);
            if (!lock.owns_lock() || barrier_failed_ || !no_readers()) return;
            std::vector<std::shared_ptr<const void>> garbage = std::move(retired_);
            retired_.clear();
            has_retired_.store(false, std::memory_order_relaxed);
            lock.unlock();
        }

        // Whether no publish is running on any thread (write lock held, after the list pointer was swapped).
        [[nodiscard]] bool no_readers() const noexcept {
            for (const auto& reader : readers_)
                if (reader.depth.load(std::memory_order_seq_cst) != 0) return false;
            return shared_readers_.load(std::memory_order_seq_cst) == 0;
        }

        typename detail::bus_slots<Events>::type slots_;
        mutable std::mutex write_mutex_;
        std::uint64_t next_id_ = 0;
        std::array<detail::bus_reader_slot, detail::bus_reader_slots> readers_{};
        std::atomic<std::size_t> shared_readers_{0};
        const bool light_readers_ = detail::bus_light_readers();
        bool barrier_failed_ = false; // guarded by the write lock
        std::atomic<bool> has_retired_{false};
        std::vector<std::shared_ptr<const void>> retired_;
    };

    template <class M>
    void deliver(const M& message, std::vector<HandlerFailure>& failures) {
        State& state = *state_;
        if constexpr (alternative_of<M, Events>) {
            typename State::PublishScope scope(state);
            constexpr std::string_view name = event_name<M>;
            state.template dispatch<slot_of<M>>(message, name, failures);
            if (state.template has_handlers<routing::all_slot>()) {
                const Events wrapped{message};
                state.template dispatch<routing::all_slot>(wrapped, name, failures);
            }
        } else if constexpr (std::is_same_v<M, Events>) {
            typename State::PublishScope scope(state);
            deliver_alternative(state, message, failures);
            state.template dispatch<routing::all_slot>(message, event_name_of(message), failures);
        } else if constexpr (std::is_same_v<M, recorded_type>) {
            typename State::PublishScope scope(state);
            deliver_alternative(state, message.event, failures);
            const std::string_view name = event_name_of(message.event);
            state.template dispatch<routing::all_slot>(message.event, name, failures);
            state.template dispatch<routing::recorded_slot>(message, name, failures);
        } else if constexpr (std::is_same_v<M, EventEnvelope<Events>>) {
            deliver(message.event, failures);
        } else {
            static_assert(detail::always_false<M>,
                          "InMemoryBus<Events>::publish: this message type is not an alternative of the bus's "
                          "Events variant; publish one of its alternatives, an Events variant, or a "
                          "RecordedEvent<Events>");
        }
    }

    static void deliver_alternative(State& state, const Events& event, std::vector<HandlerFailure>& failures) {
        std::visit(
            [&](const auto& alternative) {
                using A = std::remove_cvref_t<decltype(alternative)>;
                state.template dispatch<slot_of<A>>(alternative, event_name<A>, failures);
            },
            event);
    }

    // The handlers subscribed to what `message` reaches (its alternative, `Events`, `RecordedEvent`): what
    // the observer is told a publish called. Counted apart from the delivery, on the observed path only, so
    // that the path without an observer does exactly what it did before observers existed.
    template <class M>
    [[nodiscard]] std::size_t handlers_reached(const M& message) const {
        State& state = *state_;
        if constexpr (alternative_of<M, Events>) {
            return state.template count<slot_of<M>>() + state.template count<routing::all_slot>();
        } else if constexpr (std::is_same_v<M, Events>) {
            return std::visit([&](const auto& a) { return handlers_reached(a); }, message);
        } else if constexpr (std::is_same_v<M, recorded_type>) {
            return handlers_reached(message.event) + state.template count<routing::recorded_slot>();
        } else if constexpr (std::is_same_v<M, EventEnvelope<Events>>) {
            return handlers_reached(message.event);
        } else {
            return 0;
        }
    }

    // `deliver`, timed, traced and reported to the observer.
    template <class M>
    ORCHESTRIX_OBSERVED_PATH void deliver_observed(const M& message, std::vector<HandlerFailure>& failures) {
        Observer& observer = *observer_;
        const std::string_view type = type_of(message);
        const auto started = detail::observer_clock::now();
        const std::size_t before = failures.size();
        const TraceContext span = detail::start_publish_span(observer, "bus", type);
        const bool traced = span.valid();
        std::size_t called = 0;
        try {
            std::optional<TraceScope> scope;
            if (traced) scope.emplace(span);
            called = handlers_reached(message);
            deliver(message, failures);
        } catch (...) { // out of memory while collecting failures
            if (traced) detail::end_publish_span(observer, span, true, "the bus could not deliver the message");
            throw;
        }
        for (std::size_t i = before; i < failures.size(); ++i)
            detail::report_handler_failure(observer, "bus", type, failures[i].message);
        const bool failed = failures.size() > before;
        if (traced)
            detail::end_publish_span(observer, span, failed, failed ? failures[before].message : std::string_view{});
        detail::report_publish(observer, "bus", type, called, failures.size() - before, started);
    }

    // The stable type name of a message `publish` takes.
    template <class M>
    [[nodiscard]] static std::string_view type_of(const M& message) noexcept {
        if constexpr (alternative_of<M, Events>) {
            return event_name<M>;
        } else if constexpr (std::is_same_v<M, Events>) {
            return event_name_of(message);
        } else if constexpr (std::is_same_v<M, recorded_type> || std::is_same_v<M, EventEnvelope<Events>>) {
            return event_name_of(message.event);
        } else {
            return {};
        }
    }

    std::shared_ptr<State> state_;
    Observer* observer_ = nullptr;
};

} // namespace orchestrix
