#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/projection/options.hpp>

#include <string>
#include <utility>

namespace orchestrix {

/// A projection stopped on an event its handler could not process (failure policy `stop`). `failure()`
/// names the event and the error; fix the cause and start the projection again: it resumes at that event.
class ProjectionStoppedError : public Error {
public:
    ProjectionStoppedError(const std::string& projection, EventFailure failure)
        : Error("projection '" + projection + "' stopped: " + failure.describe()), projection_(projection),
          failure_(std::move(failure)) {}

    [[nodiscard]] const std::string& projection() const noexcept { return projection_; }
    [[nodiscard]] const EventFailure& failure() const noexcept { return failure_; }

private:
    std::string projection_;
    EventFailure failure_;
};

/// Another runner of the same projection moved its checkpoint first (two processes running one
/// projection). Nothing of this transaction was committed; the runner reloads the checkpoint and goes on.
class CheckpointConflictError : public Error {
public:
    CheckpointConflictError(const std::string& projection, position_t expected, position_t actual)
        : Error("checkpoint of projection '" + projection + "' is at " + std::to_string(actual) + ", not at " +
                std::to_string(expected) + " as this runner expected: another runner of the projection is active"),
          projection_(projection), expected_(expected), actual_(actual) {}

    [[nodiscard]] const std::string& projection() const noexcept { return projection_; }
    [[nodiscard]] position_t expected() const noexcept { return expected_; }
    [[nodiscard]] position_t actual() const noexcept { return actual_; }

private:
    std::string projection_;
    position_t expected_;
    position_t actual_;
};

} // namespace orchestrix
