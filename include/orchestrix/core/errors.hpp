#pragma once

#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/uuid.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// The root of every exception orchestrix throws. Catch `orchestrix::Error` to handle them all.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// An argument was malformed: an empty or over-long stream id, a version out of range, and the like.
/// `argument()` names the parameter that was wrong. Nothing was written.
class InvalidArgumentError : public Error {
public:
    InvalidArgumentError(std::string argument, const std::string& message)
        : Error(message), argument_(std::move(argument)) {}

    [[nodiscard]] const std::string& argument() const noexcept { return argument_; }

private:
    std::string argument_;
};

[[nodiscard]] constexpr ExpectedVersion ExpectedVersion::exact(stream_version_t version) {
    if (version > max_version) {
        throw InvalidArgumentError("expected_version", "ExpectedVersion::exact(" + std::to_string(version) +
                                                           "): a stream version cannot exceed " +
                                                           std::to_string(max_version));
    }
    if (version == 0) return no_stream();
    return ExpectedVersion{Kind::exact, version};
}

/// What an error about one stored event that cannot be read says about where it is. The errors of the
/// durable stores implement it (`StoredEventDecodeError`) besides deriving from `Error`, so that readers that
/// do not know them (projections, subscriptions) can name the event and go past it deliberately:
///
///     catch (const orchestrix::Error& e) {
///         if (const auto* bad = dynamic_cast<const orchestrix::UnreadableEvent*>(&e)) skip(bad->position());
///     }
class UnreadableEvent {
public:
    UnreadableEvent() = default;
    UnreadableEvent(const UnreadableEvent&) = default;
    UnreadableEvent& operator=(const UnreadableEvent&) = default;
    virtual ~UnreadableEvent() = default;

    /// The global position of the stored event.
    [[nodiscard]] virtual position_t position() const noexcept = 0;
    /// Its stream id, as stored (may be empty if that column is damaged too).
    [[nodiscard]] virtual const std::string& stream_id() const noexcept = 0;
    /// Its stream version (0 if that column is damaged).
    [[nodiscard]] virtual stream_version_t version() const noexcept = 0;
};

/// An append's expected version did not match the stream. Nothing was written; reload and retry.
class ConcurrencyError : public Error {
public:
    ConcurrencyError(std::string stream, ExpectedVersion expected, stream_version_t actual)
        : Error("version conflict on stream '" + stream + "': expected " + orchestrix::to_string(expected) +
                ", but the stream is at version " + std::to_string(actual)),
          stream_(std::move(stream)), expected_(expected), actual_(actual) {}

    [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
    [[nodiscard]] ExpectedVersion expected() const noexcept { return expected_; }
    /// The stream's version when the append was refused (0 = the stream does not exist); for a re-sent
    /// stored batch whose expectation did not hold, too (not the version before the batch).
    [[nodiscard]] stream_version_t actual() const noexcept { return actual_; }

private:
    std::string stream_;
    ExpectedVersion expected_;
    stream_version_t actual_;
};

/// A conditional append (`append(stream, events, expected, AppendCondition)`) found an event matching the
/// condition's query stored after the condition's position: the decision was made on state that has changed
/// since. Nothing was written; read again, decide again, retry.
class AppendConditionError : public Error {
public:
    /// `position`: the first stored event after `after` that matches; `after`: the condition's position
    /// (nothing = the condition held for the whole store).
    AppendConditionError(std::string stream, position_t position, std::optional<position_t> after)
        : Error(
              "conditional append to stream '" + stream + "' refused: the event at position " +
              std::to_string(position) + " matches the condition's query and was appended after " +
              (after ? "position " + std::to_string(*after) : std::string("the decision's read (none was expected)"))),
          stream_(std::move(stream)), position_(position), after_(after) {}

    [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
    /// The global position of the first stored event after `after()` that matches the query.
    [[nodiscard]] position_t position() const noexcept { return position_; }
    /// The position the condition was made at (nothing: no matching event may exist at all).
    [[nodiscard]] std::optional<position_t> after() const noexcept { return after_; }

private:
    std::string stream_;
    position_t position_;
    std::optional<position_t> after_;
};

/// An append reused event ids in a way that is not an idempotent retry. Nothing was written.
class IdempotencyError : public Error {
public:
    enum class Reason : std::uint8_t {
        duplicate_in_batch, ///< the same event id appears twice in one batch
        partial_overlap,    ///< some ids of the batch are stored already, others are not
        different_payload,  ///< a stored id was sent again with another event
        different_stream,   ///< a stored id was sent again for another stream
        different_order,    ///< the stored ids were sent again, but not as consecutive versions in batch order
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
                           "stored events only)";
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

/// An append to a deleted stream, or a second deletion of a tombstoned one, was refused. Nothing changed.
class StreamDeletedError : public Error {
public:
    /// How the stream was deleted.
    enum class Reason : std::uint8_t {
        /// Soft-deleted with `Recreation::on_no_stream`: only an append expecting `no_stream` recreates it.
        deleted,
        /// Hard-deleted: a tombstone; the stream id can never be written again.
        tombstoned,
    };

    StreamDeletedError(std::string stream, Reason reason)
        : Error("stream '" + stream + "' " +
                (reason == Reason::tombstoned
                     ? std::string("is hard-deleted (a tombstone): it can never be written again")
                     : std::string("is deleted: only an append expecting no_stream recreates it"))),
          stream_(std::move(stream)), reason_(reason) {}

    [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
    [[nodiscard]] Reason reason() const noexcept { return reason_; }

private:
    std::string stream_;
    Reason reason_;
};

/// A stream's early events were removed (truncation or retention) and nothing covers them: loading it needs
/// a snapshot at version `first_version() - 1` or later, and there is none.
class StreamTruncatedError : public Error {
public:
    StreamTruncatedError(std::string stream, std::uint64_t first_version, std::uint64_t needed_version)
        : Error("stream '" + stream + "' is truncated: its events start at version " + std::to_string(first_version) +
                " but replaying it needs version " + std::to_string(needed_version) + " (take a snapshot at version " +
                std::to_string(first_version == 0 ? 0 : first_version - 1) + " or later before truncating)"),
          stream_(std::move(stream)), first_version_(first_version), needed_version_(needed_version) {}

    [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
    /// The first version the store still holds.
    [[nodiscard]] std::uint64_t first_version() const noexcept { return first_version_; }
    /// The version the replay had to start at.
    [[nodiscard]] std::uint64_t needed_version() const noexcept { return needed_version_; }

private:
    std::string stream_;
    std::uint64_t first_version_;
    std::uint64_t needed_version_;
};

/// The value of a `Personal<T>` whose subject was forgotten was asked for: only the erased marker is left.
class ErasedDataError : public Error {
public:
    explicit ErasedDataError(std::string subject)
        : Error("the personal data of subject '" + subject + "' was erased (the subject was forgotten)"),
          subject_(std::move(subject)) {}

    [[nodiscard]] const std::string& subject() const noexcept { return subject_; }

private:
    std::string subject_;
};

/// Personal data was to be written for a subject that was forgotten: a forgotten subject gets no new key,
/// so nothing about it can be collected again by mistake. Nothing was written.
class SubjectForgottenError : public Error {
public:
    explicit SubjectForgottenError(std::string subject)
        : Error("subject '" + subject + "' was forgotten: no personal data can be written for it"),
          subject_(std::move(subject)) {}

    [[nodiscard]] const std::string& subject() const noexcept { return subject_; }

private:
    std::string subject_;
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

/// A command was refused by its own `validate()` before any handler ran. Nothing changed.
class CommandRejectedError : public Error {
public:
    using Error::Error;
};

/// One handler that threw while a bus delivered an event.
struct HandlerFailure {
    /// The stable name of the event the handler was given (e.g. "user.created").
    std::string event_type;
    /// The id of the handler's subscription (`Subscription::id()`).
    std::uint64_t subscription_id = 0;
    /// What the handler threw.
    std::exception_ptr error;
    /// `what()` of what it threw, or a note that it was not a `std::exception`.
    std::string message;
};

/// Handlers failed while a bus delivered events. Every other handler still ran; this reports all that
/// failed, in the order they ran.
class HandlerError : public Error {
public:
    explicit HandlerError(std::vector<HandlerFailure> failures)
        : Error(describe(failures)), failures_(std::move(failures)) {}

    /// The failures, at least one, in the order the handlers ran.
    [[nodiscard]] const std::vector<HandlerFailure>& failures() const noexcept { return failures_; }

private:
    static std::string describe(const std::vector<HandlerFailure>& failures) {
        std::string text = failures.size() == 1 ? "1 event handler failed: "
                                                : std::to_string(failures.size()) + " event handlers failed: ";
        for (std::size_t i = 0; i < failures.size(); ++i) {
            const HandlerFailure& f = failures[i];
            if (i > 0) text += "; ";
            text +=
                "subscription " + std::to_string(f.subscription_id) + " on '" + f.event_type + "' threw: " + f.message;
        }
        return text;
    }

    std::vector<HandlerFailure> failures_;
};

} // namespace orchestrix
