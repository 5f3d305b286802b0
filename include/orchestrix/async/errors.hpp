#pragma once

#include <orchestrix/core/errors.hpp>

#include <cstddef>
#include <cstdint>
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

/// An asynchronous store operation was cancelled (a `std::stop_token` passed to it, or an Asio cancellation
/// slot, was triggered). `outcome()` says what happened to it:
///
/// - `Outcome::not_committed`: it did not take effect (it was not sent yet, or the server cancelled it);
/// - `Outcome::unknown`: it was sent and the connection broke before an answer, so it may have committed.
///   An append can be retried with the same event ids: a retry of a committed append is an idempotent success.
///
/// An operation that had committed before the cancellation arrived is not an error: it completes with its result.
class OperationCancelledError : public StoreError {
public:
    enum class Outcome : std::uint8_t { not_committed, unknown };

    OperationCancelledError(std::string_view operation, Outcome outcome)
        : StoreError("the " + std::string(operation) + " was cancelled " +
                     (outcome == Outcome::not_committed ? std::string("and did not take effect")
                                                        : std::string("after it was sent; whether it took effect is "
                                                                      "unknown (an append may be retried with the "
                                                                      "same event ids)"))),
          operation_(operation), outcome_(outcome) {}

    [[nodiscard]] const std::string& operation() const noexcept { return operation_; }
    [[nodiscard]] Outcome outcome() const noexcept { return outcome_; }
    /// Whether the operation certainly did not take effect.
    [[nodiscard]] bool not_committed() const noexcept { return outcome_ == Outcome::not_committed; }

private:
    std::string operation_;
    Outcome outcome_;
};

} // namespace orchestrix
