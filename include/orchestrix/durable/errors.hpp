#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/json/errors.hpp>

#include <string>
#include <utility>

namespace orchestrix {

/// A stored event could not be read back: its row is damaged, or it was written by a program that knows
/// event types or schema versions this one does not. The store is unchanged; `position()`, `stream_id()`
/// and `version()` say which row, and the `DecodeError` part says what is wrong with it (`kind()`,
/// `event_type()`, `json_path()`).
class StoredEventDecodeError : public DecodeError, public UnreadableEvent {
public:
    StoredEventDecodeError(position_t position, std::string stream_id, stream_version_t version,
                           const DecodeError& cause)
        : DecodeError(cause.kind(), cause.event_type(), cause.json_path(), cause.detail()), position_(position),
          stream_id_(std::move(stream_id)), version_(version),
          message_("stored event at position " + std::to_string(position) + " (stream '" + stream_id_ + "', version " +
                   std::to_string(version) + ") cannot be decoded: " + cause.what()) {}

    /// The global position of the row.
    [[nodiscard]] position_t position() const noexcept override { return position_; }
    /// The row's stream id (as stored; may be empty if that column is damaged too).
    [[nodiscard]] const std::string& stream_id() const noexcept override { return stream_id_; }
    /// The row's stream version (0 if that column is damaged).
    [[nodiscard]] stream_version_t version() const noexcept override { return version_; }
    [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

private:
    position_t position_;
    std::string stream_id_;
    stream_version_t version_;
    std::string message_;
};

} // namespace orchestrix
