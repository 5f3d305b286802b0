#pragma once

#include <orchestrix/core/errors.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace orchestrix {

/// An asynchronous bus refused an event because its queue was full and the caller asked not to wait.
/// The event was not accepted: no handler will see it.
class QueueFullError : public Error {
public:
    QueueFullError(std::string_view event_type, std::size_t capacity)
        : Error("the bus queue is full (" + std::to_string(capacity) + " events in flight); event '" +
                std::string(event_type) + "' was not accepted"),
          event_type_(event_type), capacity_(capacity) {}

    [[nodiscard]] const std::string& event_type() const noexcept { return event_type_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    std::string event_type_;
    std::size_t capacity_;
};

/// An event was published to a bus that has been shut down. The event was not accepted.
class BusClosedError : public Error {
public:
    explicit BusClosedError(std::string_view event_type)
        : Error("the bus has been shut down; event '" + std::string(event_type) + "' was not accepted"),
          event_type_(event_type) {}

    [[nodiscard]] const std::string& event_type() const noexcept { return event_type_; }

private:
    std::string event_type_;
};

/// A sleep (`Timer::sleep_for`, `orchestrix::sleep_for`) did not run to its end: its timer was shut down first,
/// or the sleep began after that. A coroutine awaiting it resumes with this exception.
class TimerCancelledError : public Error {
public:
    TimerCancelledError() : Error("the timer was shut down before the sleep ended") {}
};

} // namespace orchestrix
