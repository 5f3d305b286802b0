#pragma once

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/detail/chrono.hpp>
#include <orchestrix/memory/bus_routing.hpp>
#include <orchestrix/memory/errors.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

namespace detail {

inline std::atomic<std::size_t> next_command_slot{0};

// A small number per command type, assigned on first use: the command bus's routing index.
template <class C>
std::size_t command_slot() {
    static const std::size_t slot = next_command_slot.fetch_add(1, std::memory_order_relaxed);
    return slot;
}

} // namespace detail

/// Routes each command to the one handler registered for its type, on the caller's thread.
///
///     orchestrix::CommandBus commands;
///     auto registration = commands.register_handler<CreateUser>([&](const CreateUser& c) { ... });
///     commands.dispatch(CreateUser{"John", "john@example.com"});
///
/// - Exactly one handler per command type: registering a second throws `HandlerAlreadyRegisteredError`,
///   dispatching a command without one throws `NoHandlerError`; both name the command type (its
///   `static constexpr std::string_view type_name` if it declares one).
/// - A command with a `validate()` is checked before its handler runs: `validate()` may throw, or return
///   `false`, which is refused with `CommandRejectedError`. The handler does not run then.
/// - The handler's exceptions propagate to the caller of `dispatch` unchanged.
/// - Routing is a vector index per command type (no hashing). Registering, unregistering and dispatching
///   are thread-safe; a handler may register, unregister and dispatch while it runs.
/// - With an `Observer` attached (`observe`), every dispatch is reported (`on_publish`, bus "command_bus",
///   with 1 handler called, or 0 when none is registered or validation refused the command), a handler
///   that threw too (`on_handler_failure`), and the handler runs inside a span "orchestrix.publish <type>"
///   (docs/operations.md).
class CommandBus {
public:
    CommandBus() : state_(std::make_shared<State>()) {}
    CommandBus(const CommandBus&) = delete;
    CommandBus& operator=(const CommandBus&) = delete;
    ~CommandBus() = default;

    /// Registers `handler`, callable as `handler(const C&)`, for commands of type `C`. The handler stays
    /// registered as long as the returned `Subscription` lives (`release()` it to keep it for good).
    template <class C, class Handler>
    [[nodiscard]] Subscription register_handler(Handler&& handler) {
        static_assert(command<C> && !variant_type<C> && std::is_same_v<C, std::remove_cvref_t<C>>,
                      "CommandBus::register_handler<C>: C must be a command struct (not an event, not a "
                      "std::variant, without const or &)");
        static_assert(std::is_invocable_v<std::decay_t<Handler>&, const C&>,
                      "CommandBus::register_handler<C>(handler): the handler must be callable as "
                      "handler(const C&)");
        auto entry = std::make_shared<Entry>();
        entry->call = [fn = std::decay_t<Handler>(std::forward<Handler>(handler))](const void* c) mutable {
            std::invoke(fn, *static_cast<const C*>(c));
        };
        const std::size_t slot = detail::command_slot<C>();
        std::unique_lock lock(state_->mutex);
        if (slot < state_->handlers.size() && state_->handlers[slot]) {
            throw HandlerAlreadyRegisteredError(detail::message_name<C>());
        }
        entry->id = ++state_->next_id;
        if (slot >= state_->handlers.size()) state_->handlers.resize(slot + 1);
        state_->handlers[slot] = entry;
        return Subscription(state_, entry->id, entry->id);
    }

    /// Validates `command` (if it declares `validate()`) and runs its handler. A `std::variant` of
    /// commands dispatches the alternative it holds.
    template <class C>
    void dispatch(const C& cmd) {
        if constexpr (variant_type<C>) {
            std::visit([this](const auto& alternative) { this->dispatch(alternative); }, cmd);
        } else {
            std::shared_ptr<Entry> entry = find(detail::command_slot<C>());
            if (observer_ != nullptr) [[unlikely]] {
                dispatch_observed(cmd, entry.get());
                return;
            }
            if (!entry) throw NoHandlerError(detail::message_name<C>());
            detail::validate_if_declared(cmd);
            entry->call(&cmd);
        }
    }

    /// Attaches `observer` (nullptr detaches): from now on each dispatch is reported to it. Attach before
    /// dispatching; attaching is not synchronised with dispatches running on other threads.
    void observe(Observer* observer) noexcept { observer_ = observer; }

    /// The attached observer, or nullptr.
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// Whether a handler is registered for `C`.
    template <class C>
    [[nodiscard]] bool has_handler() const {
        return find(detail::command_slot<C>()) != nullptr;
    }

private:
    struct Entry {
        std::uint64_t id = 0;
        std::function<void(const void*)> call;
    };

    struct State final : detail::subscription_owner {
        void unsubscribe(std::uint64_t key) noexcept override {
            std::shared_ptr<Entry> removed; // destroyed after the lock is released
            std::unique_lock lock(mutex);
            for (auto& entry : handlers) {
                if (entry && entry->id == key) {
                    removed = std::move(entry);
                    break;
                }
            }
            lock.unlock();
        }

        mutable std::shared_mutex mutex;
        std::vector<std::shared_ptr<Entry>> handlers; // index = detail::command_slot<C>()
        std::uint64_t next_id = 0;
    };

    [[nodiscard]] std::shared_ptr<Entry> find(std::size_t slot) const {
        std::shared_lock lock(state_->mutex);
        return slot < state_->handlers.size() ? state_->handlers[slot] : nullptr;
    }

    // `dispatch` of one command, timed, traced and reported to the observer; throws what it throws.
    template <class C>
    void dispatch_observed(const C& cmd, Entry* entry) {
        Observer& observer = *observer_;
        constexpr std::string_view type = detail::message_name<C>();
        const auto started = detail::observer_clock::now();
        const TraceContext span = detail::start_publish_span(observer, "command_bus", type);
        const bool traced = span.valid();
        std::size_t handlers = 0;
        try {
            if (entry == nullptr) throw NoHandlerError(type);
            detail::validate_if_declared(cmd);
            handlers = 1;
            std::optional<TraceScope> scope;
            if (traced) scope.emplace(span);
            entry->call(&cmd);
        } catch (...) {
            const std::string error = detail::bus_error_message(std::current_exception());
            if (handlers != 0) detail::report_handler_failure(observer, "command_bus", type, error);
            if (traced) detail::end_publish_span(observer, span, true, error);
            detail::report_publish(observer, "command_bus", type, handlers, handlers, started);
            throw;
        }
        if (traced) detail::end_publish_span(observer, span, false, {});
        detail::report_publish(observer, "command_bus", type, handlers, 0, started);
    }

    std::shared_ptr<State> state_;
    Observer* observer_ = nullptr;
};

} // namespace orchestrix
