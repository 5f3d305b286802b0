#pragma once

// An observer that holds a store's thread inside its append hook: the append of one chosen stream, once it has
// run, waits there until the test opens the gate. It lets a test keep an asynchronous store's writer busy at a
// known point (the operation has run; its completion is not set yet) without sleeping.

#include <orchestrix/core/observer.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace test_support {

class GateObserver : public orchestrix::Observer {
public:
    explicit GateObserver(std::string stream) : stream_(std::move(stream)) {}

    void on_append(const orchestrix::AppendObservation& o) override {
        if (o.stream != stream_) return;
        std::unique_lock lock(mutex_);
        entered_ = true;
        changed_.notify_all();
        changed_.wait_for(lock, std::chrono::seconds(30), [this] { return open_; });
    }

    /// Waits until the gated append is held (up to `timeout`); false if it never got there.
    bool wait_entered(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [this] { return entered_; });
    }

    /// Lets the held append (and every later one) go on.
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }

private:
    std::string stream_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool entered_ = false;
    bool open_ = false;
};

} // namespace test_support
