#pragma once

// `Completion<T>` to Asio completion tokens (standalone Asio 1.22 or later; target orchestrix::asio).

#include <orchestrix/async/completion.hpp>
#include <orchestrix/core/errors.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace orchestrix {

namespace detail::asio_adapter {

template <class T>
struct signature {
    using type = void(std::exception_ptr, T);
};
template <>
struct signature<void> {
    using type = void(std::exception_ptr);
};

// What a cancellation slot holds: any cancellation asks the operation's stop source to stop.
struct canceller {
    std::stop_source source;
    void operator()(::asio::cancellation_type_t type) {
        if (type != ::asio::cancellation_type::none) source.request_stop();
    }
};

// One adapted operation: the handler and its executor (kept busy until the handler has run), the completion,
// and the handler's cancellation slot.
template <class T, class Handler>
class operation : public std::enable_shared_from_this<operation<T, Handler>> {
public:
    using executor_type = ::asio::associated_executor_t<Handler>;
    using slot_type = ::asio::associated_cancellation_slot_t<Handler>;

    explicit operation(Handler handler)
        : work_(::asio::make_work_guard(::asio::get_associated_executor(handler))),
          slot_(::asio::get_associated_cancellation_slot(handler)), handler_(std::move(handler)) {}

    // Wires the handler's cancellation slot (if it has one) to a stop source; returns the token to hand to the
    // store (a token that cannot stop if there is no slot, or `cancellable` is false).
    std::stop_token connect_cancellation(bool cancellable) {
        if (!cancellable || !slot_.is_connected()) return {};
        std::stop_source source;
        slot_.template emplace<canceller>(canceller{source});
        return source.get_token();
    }

    // Waits (without blocking) for `completion`, then hands its outcome to the handler through its executor.
    void watch(Completion<T> completion) {
        completion_ = std::move(completion);
        auto self = this->shared_from_this();
        if (!completion_access::on_ready(completion_, [self] { self->finish(); })) finish();
    }

    // The operation could not even start: `error` goes to the handler.
    void fail(std::exception_ptr error) {
        error_ = std::move(error);
        post_handler();
    }

private:
    void finish() {
        try {
            if constexpr (std::is_void_v<T>) {
                completion_.get();
            } else {
                value_.emplace(completion_.get());
            }
        } catch (...) {
            error_ = std::current_exception();
        }
        post_handler();
    }

    // Never runs the handler here (the thread that completed the operation is the store's): posts it. The
    // operation's own work ends only once `post` has returned (the posted function is outstanding work by
    // then), so that the executor's `run()` cannot return, and its context go, while this thread is inside it.
    void post_handler() {
        auto self = this->shared_from_this();
        ::asio::executor_work_guard<executor_type> work(std::move(work_));
        ::asio::post(work.get_executor(), [self] { self->invoke(); });
        work.reset();
    }

    void invoke() {
        if (slot_.is_connected()) slot_.clear();
        Handler handler = std::move(handler_);
        if constexpr (std::is_void_v<T>) {
            std::move(handler)(error_);
        } else if (error_) {
            std::move(handler)(error_, T{});
        } else {
            std::move(handler)(std::exception_ptr(), std::move(*value_));
        }
    }

    ::asio::executor_work_guard<executor_type> work_;
    slot_type slot_;
    Handler handler_;
    Completion<T> completion_;
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value_;
    std::exception_ptr error_;
};

struct initiate_completion {
    template <class Handler, class Start>
    void operator()(Handler&& handler, Start start, bool cancellable) const {
        using value_type = typename std::invoke_result_t<Start&, std::stop_token>::value_type;
        auto op = std::make_shared<operation<value_type, std::decay_t<Handler>>>(std::forward<Handler>(handler));
        try {
            std::stop_token stop = op->connect_cancellation(cancellable);
            op->watch(start(std::move(stop)));
        } catch (...) {
            op->fail(std::current_exception());
        }
    }
};

} // namespace detail::asio_adapter

/// The Asio completion signature of an operation whose `Completion` holds a `T`: `void(std::exception_ptr, T)`
/// (`void(std::exception_ptr)` for `void`). The exception is null on success; on failure the value is `T{}`.
template <class T>
using asio_signature_t = typename detail::asio_adapter::signature<T>::type;

/// Runs an operation that returns a `Completion<T>` as an Asio asynchronous operation, completed through
/// `token`: a callback `void(std::exception_ptr, T)`, `asio::use_awaitable` (`co_await` returns the `T` or
/// rethrows the error), `asio::use_future` (a `std::future<T>`), `asio::experimental::deferred`, or any other
/// token.
///
///     std::size_t n = co_await orchestrix::async_completion(
///         [&](std::stop_token) { return bus.publish(UserCreated{...}); }, asio::use_awaitable);
///
/// - `start(std::stop_token)` returns the completion. It is called when the token initiates the operation (at
///   once for a callback or `use_future`; at the `co_await` for `use_awaitable`), so it must own what it uses.
/// - The handler runs through its associated executor (`asio::bind_executor`; the coroutine's executor for
///   `use_awaitable`; the system executor when it has none), posted there: never on the thread that completed
///   the operation, never inside this call. That executor counts the operation as outstanding work until then,
///   so its `io_context::run()` does not return before.
/// - With `cancellable` true and a handler that has a cancellation slot (`asio::bind_cancellation_slot`, a
///   coroutine's cancellation state), a cancellation signal of any type asks the stop token `start` received to
///   stop; what that does is the operation's business (for a store, `OperationCancelledError` or its result).
///   With `cancellable` false the slot is left alone, and a cancellation signal has no effect.
template <class Token, class Start>
auto async_completion(Start start, Token&& token, bool cancellable = true) {
    using value_type = typename std::invoke_result_t<Start&, std::stop_token>::value_type;
    return ::asio::async_initiate<Token, asio_signature_t<value_type>>(detail::asio_adapter::initiate_completion{},
                                                                       token, std::move(start), cancellable);
}

} // namespace orchestrix
