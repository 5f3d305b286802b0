#pragma once

#include <orchestrix/async/completion.hpp>
#include <orchestrix/async/errors.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

namespace orchestrix {

/// Sleeps for coroutines: `co_await timer.sleep_for(100ms);` suspends the calling coroutine, without blocking a
/// thread, until the delay has passed. One thread of its own waits for the earliest deadline; the awaiting
/// coroutine resumes on that thread (so it should hand long work on, or it delays the other sleeps of the
/// timer). Sleeps end in deadline order, those with the same deadline in the order they began.
///
/// `shutdown()` (and the destructor) cancels every pending sleep: each awaiting coroutine resumes at once, on
/// the thread calling `shutdown`, with `TimerCancelledError`; sleeps begun afterwards fail the same way.
class Timer {
public:
    using clock = std::chrono::steady_clock;

    Timer() : thread_([this](const std::stop_token& stop) { run(stop); }) {}

    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    ~Timer() { shutdown(); }

    /// A completion that becomes ready at `deadline` (at once if it has passed), or fails with
    /// `TimerCancelledError` if the timer is shut down before.
    [[nodiscard]] Completion<void> sleep_until(clock::time_point deadline) {
        CompletionSource<void> source;
        Completion<void> completion = source.completion();
        {
            std::lock_guard lock(mutex_);
            if (!closed_) {
                if (deadline <= clock::now()) {
                    source.set_value();
                } else {
                    pending_.emplace(deadline, std::move(source));
                    wake_.notify_all();
                }
                return completion;
            }
        }
        source.set_exception(std::make_exception_ptr(TimerCancelledError()));
        return completion;
    }

    /// A completion that becomes ready after `delay` (at once if it is not positive). See `sleep_until`.
    template <class Rep, class Period>
    [[nodiscard]] Completion<void> sleep_for(std::chrono::duration<Rep, Period> delay) {
        return sleep_until(clock::now() + std::chrono::ceil<clock::duration>(delay));
    }

    /// The same as `sleep_for(delay)`: `co_await timer.after(100ms);`.
    template <class Rep, class Period>
    [[nodiscard]] Completion<void> after(std::chrono::duration<Rep, Period> delay) {
        return sleep_for(delay);
    }

    /// Cancels every pending sleep (see the class comment), refuses new ones and stops the thread. Idempotent.
    /// Must not be called from a coroutine this timer resumed.
    void shutdown() {
        std::multimap<clock::time_point, CompletionSource<void>> cancelled;
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
            cancelled.swap(pending_);
        }
        thread_.request_stop();
        wake_.notify_all();
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
        for (auto& entry : cancelled) {
            entry.second.set_exception(std::make_exception_ptr(TimerCancelledError()));
        }
    }

    /// The sleeps begun and not yet ended.
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lock(mutex_);
        return pending_.size();
    }

private:
    void run(const std::stop_token& stop) {
        std::unique_lock lock(mutex_);
        while (!stop.stop_requested()) {
            if (pending_.empty()) {
                wake_.wait(lock, stop, [this] { return !pending_.empty(); });
                continue;
            }
            const clock::time_point deadline = pending_.begin()->first;
            if (clock::now() < deadline) {
                // Until the deadline, or until an earlier sleep begins.
                wake_.wait_until(lock, stop, deadline,
                                 [this, deadline] { return pending_.empty() || pending_.begin()->first < deadline; });
                continue;
            }
            std::vector<CompletionSource<void>> due;
            const clock::time_point now = clock::now();
            while (!pending_.empty() && pending_.begin()->first <= now) {
                due.push_back(std::move(pending_.begin()->second));
                pending_.erase(pending_.begin());
            }
            lock.unlock(); // the coroutines resume here, and may begin new sleeps
            for (auto& source : due) source.set_value();
            lock.lock();
        }
    }

    mutable std::mutex mutex_;
    std::condition_variable_any wake_;
    std::multimap<clock::time_point, CompletionSource<void>> pending_;
    bool closed_ = false;
    std::jthread thread_; // last: started after, and stopped before, what it uses
};

namespace detail {

/// The timer of `orchestrix::sleep_for` and `orchestrix::after`: made on first use, shut down when the program
/// exits (static destruction).
inline Timer& default_timer() {
    static Timer timer;
    return timer;
}

} // namespace detail

/// `co_await orchestrix::sleep_for(100ms);` in a coroutine (for instance a handler of `AsyncInMemoryBus`):
/// suspends it for `delay` on the process-wide timer, without blocking a worker. The coroutine resumes on the
/// timer's thread. See `Timer` for a timer of one's own, which can be shut down to cancel its sleeps.
template <class Rep, class Period>
[[nodiscard]] Completion<void> sleep_for(std::chrono::duration<Rep, Period> delay) {
    return detail::default_timer().sleep_for(delay);
}

/// The same as `orchestrix::sleep_for(delay)`.
template <class Rep, class Period>
[[nodiscard]] Completion<void> after(std::chrono::duration<Rep, Period> delay) {
    return detail::default_timer().sleep_for(delay);
}

} // namespace orchestrix
