#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/projection/options.hpp>

#include <cstdint>
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

/// A runner of a partitioned projection no longer holds the lease of a partition it was committing (the
/// lease expired and another runner claimed it, or it was released): the transaction was rolled back and
/// nothing of it was committed. The runner gives the partition up and goes on with the others.
class LeaseLostError : public Error {
public:
    LeaseLostError(const std::string& projection, std::uint32_t partition, const std::string& runner,
                   std::uint64_t token)
        : Error("runner '" + runner + "' no longer holds the lease of partition " + std::to_string(partition) +
                " of projection '" + projection + "' (token " + std::to_string(token) +
                "): it expired or another runner claimed it"),
          projection_(projection), runner_(runner), partition_(partition), token_(token) {}

    [[nodiscard]] const std::string& projection() const noexcept { return projection_; }
    [[nodiscard]] const std::string& runner() const noexcept { return runner_; }
    [[nodiscard]] std::uint32_t partition() const noexcept { return partition_; }
    [[nodiscard]] std::uint64_t token() const noexcept { return token_; }

private:
    std::string projection_;
    std::string runner_;
    std::uint32_t partition_;
    std::uint64_t token_;
};

/// A runner of a partitioned projection was started with another partition count than the one the
/// projection was created with (kept in the checkpoint store). Changing the count would move events to
/// other partitions: rebuild the projection under a new name instead.
class PartitionCountMismatchError : public Error {
public:
    PartitionCountMismatchError(const std::string& projection, std::uint32_t stored, std::uint32_t requested)
        : Error("partitioned projection '" + projection + "' has " + std::to_string(stored) +
                " partitions, but this runner was started with " + std::to_string(requested) +
                ": start every runner with the same count, or rebuild the projection under a new name"),
          projection_(projection), stored_(stored), requested_(requested) {}

    [[nodiscard]] const std::string& projection() const noexcept { return projection_; }
    /// The count the projection was created with.
    [[nodiscard]] std::uint32_t stored() const noexcept { return stored_; }
    /// The count this runner asked for.
    [[nodiscard]] std::uint32_t requested() const noexcept { return requested_; }

private:
    std::string projection_;
    std::uint32_t stored_;
    std::uint32_t requested_;
};

} // namespace orchestrix
