#pragma once

#include <orchestrix/core/error.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/uuid.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

/// An append's expected version did not match the stream. Nothing was written; reload and retry.
class ConcurrencyError : public Error {
public:
    ConcurrencyError(std::string stream, ExpectedVersion expected, stream_version_t actual)
        : Error("version conflict on stream '" + stream + "': expected " + orchestrix::to_string(expected) +
                ", but the stream is at version " + std::to_string(actual)),
          stream_(std::move(stream)), expected_(expected), actual_(actual) {}

    [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
    [[nodiscard]] ExpectedVersion expected() const noexcept { return expected_; }
    /// The stream's version when the append was refused (0 = the stream does not exist).
    [[nodiscard]] stream_version_t actual() const noexcept { return actual_; }

private:
    std::string stream_;
    ExpectedVersion expected_;
    stream_version_t actual_;
};

/// An append reused event ids in a way that is not an idempotent retry. Nothing was written.
class IdempotencyError : public Error {
public:
    enum class Reason : std::uint8_t {
        duplicate_in_batch, ///< the same event id appears twice in one batch
        partial_overlap,    ///< some ids of the batch are stored already, others are not
        different_payload,  ///< a stored id was sent again with another event
        different_stream,   ///< a stored id was sent again for another stream
        different_order,    ///< the stored ids were sent again in another order or grouping
    };

    IdempotencyError(Reason reason, std::string stream, Uuid event_id)
        : Error(describe(reason, stream, event_id)), reason_(reason), stream_(std::move(stream)), event_id_(event_id) {}

    [[nodiscard]] Reason reason() const noexcept { return reason_; }
    [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
    [[nodiscard]] const Uuid& event_id() const noexcept { return event_id_; }

private:
    static std::string describe(Reason reason, const std::string& stream, const Uuid& id) {
        std::string where = "append to stream '" + stream + "' refused: event id " + id.to_string();
        switch (reason) {
        case Reason::duplicate_in_batch:
            return where + " appears more than once in the batch";
        case Reason::partial_overlap:
            return where + " is already stored but other events of the batch are not (a retry must resend "
                           "exactly the same batch)";
        case Reason::different_payload:
            return where + " is already stored with a different event";
        case Reason::different_stream:
            return where + " is already stored in another stream";
        case Reason::different_order:
            return where + " is already stored, but the batch does not repeat the stored events in order";
        }
        return where;
    }

    Reason reason_;
    std::string stream_;
    Uuid event_id_;
};

/// A stream that had to exist has no events (for example `Repository::load` of an unknown id).
class StreamNotFoundError : public Error {
public:
    explicit StreamNotFoundError(std::string stream)
        : Error("stream '" + stream + "' does not exist"), stream_(std::move(stream)) {}

    [[nodiscard]] const std::string& stream() const noexcept { return stream_; }

private:
    std::string stream_;
};

/// A sequence of events cannot be replayed: a version is missing or out of order.
class HistoryError : public Error {
public:
    using Error::Error;
};

/// A store failed for a reason outside the caller's control (I/O, a lost connection, a full disk).
/// The append it interrupted either happened completely or not at all.
class StoreError : public Error {
public:
    using Error::Error;
};

} // namespace orchestrix
