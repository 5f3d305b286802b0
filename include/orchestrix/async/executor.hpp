#pragma once

#include <orchestrix/async/completion.hpp>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix::detail {

/// A small pool of `std::jthread`s that start tasks in submission order (with one thread, each task
/// finishes before the next starts). Each task's result or exception reaches the `Completion` that
/// `submit` returns.
class Executor {
public:
    explicit Executor(std::size_t threads) {
        threads_.reserve(threads);
        for (std::size_t i = 0; i < threads; ++i) {
            threads_.emplace_back([this](const std::stop_token& stop) { run(stop); });
        }
    }

    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    ~Executor() { shutdown(); }

    /// Queues `task`. If the executor is shut down, the task does not run and the completion holds the
    /// exception `make_refusal()` returns.
    template <class Task, class Refusal>
    Completion<std::invoke_result_t<Task&>> submit(Task task, Refusal make_refusal) {
        using R = std::invoke_result_t<Task&>;
        auto source = std::make_shared<CompletionSource<R>>();
        Completion<R> completion = source->completion();
        {
            std::lock_guard lock(mutex_);
            if (!closing_) {
                queue_.emplace_back([source, task = std::move(task)]() mutable {
                    // The failure is published after its catch block has ended, so that this thread holds
                    // no reference to the exception once the waiting thread can have it.
                    std::exception_ptr failure;
                    try {
                        if constexpr (std::is_void_v<R>) {
                            task();
                            source->set_value();
                        } else {
                            source->set_value(task());
                        }
                        return;
                    } catch (...) {
                        failure = std::current_exception();
                    }
                    source->set_exception(std::move(failure));
                });
                ready_.notify_one();
                return completion;
            }
        }
        source->set_exception(std::make_exception_ptr(make_refusal()));
        return completion;
    }

    /// Refuses new tasks, runs every queued one, then stops the threads. Idempotent.
    void shutdown() {
        {
            std::lock_guard lock(mutex_);
            closing_ = true;
        }
        for (auto& thread : threads_) thread.request_stop();
        ready_.notify_all();
        for (auto& thread : threads_)
            if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
    }

    [[nodiscard]] bool closed() const {
        std::lock_guard lock(mutex_);
        return closing_;
    }

private:
    void run(const std::stop_token& stop) {
        std::unique_lock lock(mutex_);
        while (true) {
            ready_.wait(lock, stop, [this] { return !queue_.empty(); });
            if (queue_.empty()) return; // stop requested and nothing left to run
            std::function<void()> task = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            task();
            lock.lock();
        }
    }

    mutable std::mutex mutex_;
    std::condition_variable_any ready_;
    std::deque<std::function<void()>> queue_;
    bool closing_ = false;
    std::vector<std::jthread> threads_; // last: stopped and joined before the queue goes
};

} // namespace orchestrix::detail
