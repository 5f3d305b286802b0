#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/detail/chrono.hpp>

#include <condition_variable>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

namespace orchestrix {

template <class T = void>
class Completion;

template <class T = void>
class CompletionSource;

namespace detail {

struct completion_access;

// The state a completion and its source share: the outcome, and at most one continuation that runs
// once when the outcome is set (on the thread that sets it, or at once if it is set already).
template <class T>
class CompletionState {
public:
    using value_holder = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

    template <class... Args>
    void set_value(Args&&... args) {
        std::unique_lock lock(mutex_);
        if (done_) throw Error("orchestrix::CompletionSource: the outcome was set already");
        if constexpr (std::is_void_v<T>) {
            static_assert(sizeof...(Args) == 0);
            value_ = true;
        } else {
            value_.emplace(std::forward<Args>(args)...);
        }
        finish(lock);
    }

    void set_exception(std::exception_ptr error) {
        std::unique_lock lock(mutex_);
        if (done_) throw Error("orchestrix::CompletionSource: the outcome was set already");
        error_ = std::move(error);
        finish(lock);
    }

    [[nodiscard]] bool ready() const {
        std::lock_guard lock(mutex_);
        return done_;
    }

    void wait() const {
        std::unique_lock lock(mutex_);
        done_changed_.wait(lock, [this] { return done_; });
    }

    template <class Rep, class Period>
    [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        std::unique_lock lock(mutex_);
        return done_changed_.wait_for(lock, timeout, [this] { return done_; });
    }

    // Runs `continuation` when the outcome is set; at once (on this thread) if it is set already.
    // Returns false in that case without running it, so an awaiter can resume without suspending.
    bool on_ready(std::function<void()> continuation) {
        std::lock_guard lock(mutex_);
        if (done_) return false;
        continuation_ = std::move(continuation);
        return true;
    }

    // Rethrows the failure or moves the value out. Call once, after the outcome is set.
    T take() {
        std::unique_lock lock(mutex_);
        done_changed_.wait(lock, [this] { return done_; });
        // Handed over, not copied: the thread that set it must not be the one to drop the last reference.
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
        if constexpr (!std::is_void_v<T>) return std::move(*value_);
    }

    [[nodiscard]] std::exception_ptr exception() const {
        std::lock_guard lock(mutex_);
        return error_;
    }

private:
    void finish(std::unique_lock<std::mutex>& lock) {
        done_ = true;
        std::function<void()> continuation = std::move(continuation_);
        continuation_ = nullptr;
        lock.unlock();
        done_changed_.notify_all();
        if (continuation) continuation();
    }

    mutable std::mutex mutex_;
    mutable std::condition_variable done_changed_;
    bool done_ = false;
    value_holder value_{};
    std::exception_ptr error_;
    std::function<void()> continuation_;
};

template <class T>
struct completion_promise_base {
    std::optional<T> value;
    template <class U>
    requires std::convertible_to<U, T>
    void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
};
template <>
struct completion_promise_base<void> {
    void return_void() noexcept {}
};

} // namespace detail

/// The eventual outcome of an asynchronous operation: a value of type `T` (nothing for `void`) or an
/// exception. Move-only, with a single consumer, like `std::future`, and awaitable from a C++20 coroutine:
///
///     orchestrix::Completion<void> done = bus.publish(UserCreated{...});
///     done.wait();                 // block until every handler ran
///     done.get();                  // rethrows a failure (for the bus: HandlerError)
///     co_await bus.publish(...);   // or, in a coroutine, suspend until then
///
/// A coroutine may also *return* a `Completion<T>`: it starts at once, runs until its first suspension,
/// and the completion becomes ready when it returns (or throws). When an awaited completion becomes ready,
/// the awaiting coroutine resumes on the thread that made it ready (for the async bus, a worker), or
/// without suspending if it was ready already.
template <class T>
class [[nodiscard]] Completion {
public:
    using value_type = T;

    /// An empty completion: `valid()` is false. Every other call throws `orchestrix::Error`.
    Completion() noexcept = default;
    Completion(Completion&&) noexcept = default;
    Completion& operator=(Completion&&) noexcept = default;
    Completion(const Completion&) = delete;
    Completion& operator=(const Completion&) = delete;
    ~Completion() = default;

    /// A completion that is ready with `value` (or, for `Completion<void>`, ready with nothing).
    template <class... Args>
    [[nodiscard]] static Completion ready_with(Args&&... args) {
        auto state = std::make_shared<detail::CompletionState<T>>();
        state->set_value(std::forward<Args>(args)...);
        return Completion(std::move(state));
    }

    /// A completion that is ready with the failure `error`.
    [[nodiscard]] static Completion failed_with(std::exception_ptr error) {
        auto state = std::make_shared<detail::CompletionState<T>>();
        state->set_exception(std::move(error));
        return Completion(std::move(state));
    }

    /// Whether this completion refers to an operation (false when default-constructed, moved from, or
    /// after `get()`).
    [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

    /// Whether the outcome is set: `get()` would not block.
    [[nodiscard]] bool ready() const { return checked().ready(); }

    /// Blocks until the outcome is set.
    void wait() const { checked().wait(); }

    /// Blocks until the outcome is set or `timeout` passed; returns `ready()`.
    template <class Rep, class Period>
    [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        return checked().wait_for(timeout);
    }

    /// Blocks until the outcome is set, then returns the value or rethrows the failure. Call once:
    /// afterwards the completion is empty.
    T get() {
        auto state = std::move(state_);
        if (!state) throw Error(empty_message);
        return state->take();
    }

    /// The failure, if the outcome is set and is one (without consuming the completion).
    [[nodiscard]] std::exception_ptr exception() const { return checked().exception(); }

    // --- co_await -------------------------------------------------------------------------------

    struct awaiter {
        std::shared_ptr<detail::CompletionState<T>> state;
        [[nodiscard]] bool await_ready() const { return state->ready(); }
        bool await_suspend(std::coroutine_handle<> waiting) {
            return state->on_ready([waiting] { waiting.resume(); });
        }
        T await_resume() { return state->take(); }
    };

    /// Suspends the calling coroutine until the outcome is set, then returns the value or rethrows the
    /// failure. Consumes the completion.
    awaiter operator co_await() && {
        auto state = std::move(state_);
        if (!state) throw Error(empty_message);
        return awaiter{std::move(state)};
    }
    awaiter operator co_await() & { return std::move(*this).operator co_await(); }

    // --- coroutine return type ------------------------------------------------------------------

    struct promise_type : detail::completion_promise_base<T> {
        std::shared_ptr<detail::CompletionState<T>> state = std::make_shared<detail::CompletionState<T>>();
        std::exception_ptr error;

        Completion get_return_object() { return Completion(state); }
        std::suspend_never initial_suspend() noexcept { return {}; }
        void unhandled_exception() noexcept { error = std::current_exception(); }

        // Destroys the coroutine frame before publishing the outcome, so a continuation never runs on
        // top of a frame that is still alive.
        struct final_awaiter {
            bool await_ready() const noexcept { return false; }
            void await_suspend(std::coroutine_handle<promise_type> self) noexcept {
                promise_type& p = self.promise();
                auto shared = std::move(p.state);
                std::exception_ptr failure = std::move(p.error);
                if constexpr (std::is_void_v<T>) {
                    self.destroy();
                    if (failure) {
                        shared->set_exception(std::move(failure));
                    } else {
                        shared->set_value();
                    }
                } else {
                    std::optional<T> value = std::move(p.value);
                    self.destroy();
                    if (failure) {
                        shared->set_exception(std::move(failure));
                    } else if (value) {
                        shared->set_value(std::move(*value));
                    } else {
                        shared->set_exception(std::make_exception_ptr(
                            Error("orchestrix::Completion: a coroutine finished without co_return of a value")));
                    }
                }
            }
            void await_resume() const noexcept {}
        };
        final_awaiter final_suspend() noexcept { return {}; }
    };

private:
    template <class>
    friend class CompletionSource;
    friend struct detail::completion_access;

    static constexpr const char* empty_message =
        "orchestrix::Completion: this completion is empty (default-constructed, moved from, or already consumed "
        "by get() or co_await)";

    explicit Completion(std::shared_ptr<detail::CompletionState<T>> state) noexcept : state_(std::move(state)) {}

    detail::CompletionState<T>& checked() const {
        if (!state_) throw Error(empty_message);
        return *state_;
    }

    std::shared_ptr<detail::CompletionState<T>> state_;
};

/// The producing side of a `Completion`: set its outcome once, from any thread.
template <class T>
class CompletionSource {
public:
    CompletionSource() : state_(std::make_shared<detail::CompletionState<T>>()) {}

    /// The completion this source sets. May be called once per source.
    [[nodiscard]] Completion<T> completion() {
        if (handed_out_) throw Error("orchestrix::CompletionSource: completion() may be called only once");
        handed_out_ = true;
        return Completion<T>(state_);
    }

    /// Makes the completion ready with a value (nothing for `void`). Throws `orchestrix::Error` if an
    /// outcome was set already.
    template <class... Args>
    void set_value(Args&&... args) {
        state_->set_value(std::forward<Args>(args)...);
    }

    /// Makes the completion ready with a failure.
    void set_exception(std::exception_ptr error) { state_->set_exception(std::move(error)); }

private:
    std::shared_ptr<detail::CompletionState<T>> state_;
    bool handed_out_ = false;
};

namespace detail {

// For the buses: run a callback when a completion becomes ready, without consuming it.
struct completion_access {
    template <class T>
    static bool on_ready(Completion<T>& c, std::function<void()> continuation) {
        return c.checked().on_ready(std::move(continuation));
    }
};

} // namespace detail

} // namespace orchestrix
