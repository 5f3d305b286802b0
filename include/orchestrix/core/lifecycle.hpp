#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/chrono.hpp>

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace orchestrix {

/// Where a stream is in its life (`StreamInfo::status`).
enum class StreamStatus : std::uint8_t {
    /// Written to (or never written): appends go on.
    active,
    /// Soft-deleted: reads find nothing and `stream_version` is 0 until an append recreates it.
    deleted,
    /// Hard-deleted: a tombstone. Reads find nothing and every append throws `StreamDeletedError`.
    tombstoned,
};

/// How `delete_stream` deletes.
enum class DeleteMode : std::uint8_t {
    /// The events are removed; the stream reads as not found and may be recreated (see `Recreation`).
    soft,
    /// The events are removed and the stream id is kept as a tombstone: it can never be written again.
    hard,
};

/// Which appends recreate a soft-deleted stream.
enum class Recreation : std::uint8_t {
    /// Any append whose expectation holds for a stream at version 0 (`any`, `no_stream`, `exact(0)`), as in
    /// KurrentDB.
    on_append,
    /// Only an append expecting `ExpectedVersion::no_stream()`, a deliberate recreation; every other append
    /// throws `StreamDeletedError` (reason `deleted`).
    on_no_stream,
};

/// Options of `delete_stream`.
struct DeleteOptions {
    DeleteMode mode = DeleteMode::soft;
    /// For a soft delete: which appends recreate the stream.
    Recreation recreation = Recreation::on_append;
};

/// A stream's life as a store keeps it (`stream_info`).
///
/// A stream's versions never repeat: a recreated stream goes on from the version it was deleted at, and
/// positions are never renumbered, so readers see the removed events' positions skipped.
struct StreamInfo {
    /// The last version ever written, kept through deletion and truncation (0: never written).
    stream_version_t version = 0;
    /// The first version of the stream's current life: 1, or the version after a soft delete for a recreated
    /// stream. Its history starts here: events from here on belong to the current aggregate.
    stream_version_t start_version = 1;
    /// The first version the store still holds (`version + 1` when it holds none). Above `start_version`
    /// after a truncation or retention: replaying the stream then needs a snapshot at `first_version - 1`.
    stream_version_t first_version = 1;
    StreamStatus status = StreamStatus::active;
    /// For a deleted stream, which appends recreate it.
    Recreation recreation = Recreation::on_append;

    friend bool operator==(const StreamInfo&, const StreamInfo&) = default;
};

/// What `delete_stream` and `truncate_stream` report.
struct RemovalResult {
    /// The events removed (0 for a repeated deletion or a truncation that had nothing to remove).
    std::uint64_t events_removed = 0;
    /// The stream's last version written (`StreamInfo::version`).
    stream_version_t version = 0;

    friend bool operator==(const RemovalResult&, const RemovalResult&) = default;
};

/// One retention rule: applied by `apply_retention` to every active stream whose id starts with
/// `stream_prefix` ("" matches every stream). A rule with neither limit removes nothing.
struct RetentionRule {
    std::string stream_prefix{};
    /// Keep at most this many of the stream's latest events (0 removes them all; the version is kept).
    std::optional<std::uint64_t> max_count{};
    /// Remove the events recorded before `now - max_age`, oldest first: a stream's events are removed as a
    /// prefix (up to its first event recorded at or after the cutoff), so its versions stay contiguous.
    std::optional<std::chrono::seconds> max_age{};
};

/// What `apply_retention` did.
struct RetentionReport {
    /// Streams that lost at least one event.
    std::uint64_t streams_truncated = 0;
    std::uint64_t events_removed = 0;

    friend bool operator==(const RetentionReport&, const RetentionReport&) = default;
};

/// A store that can delete, truncate and retain (docs/lifecycle.md): the in-memory, SQLite and PostgreSQL
/// stores. Removed events are gone from every read at once (`read_stream`, `read_all`, `visit_*`, reads by
/// query); the durable stores delete their rows in the same transaction (see docs/lifecycle.md for when the
/// bytes leave the file).
///
/// - `delete_stream(stream, expected, options)` checks `expected` against `stream_version(stream)` as an
///   append does (`ConcurrencyError`), removes every event of the stream, and marks it deleted (soft) or
///   tombstoned (hard). A stream never written can be deleted too (a hard delete reserves its id). Deleting a
///   deleted stream again removes nothing; hard-deleting a soft-deleted stream tombstones it; hard-deleting a
///   tombstoned stream is a no-op; soft-deleting a tombstoned stream throws `StreamDeletedError`.
/// - After a soft delete `stream_version` is 0 and reads find nothing. An append the `Recreation` policy
///   allows recreates the stream; its events get versions from `StreamInfo::version + 1` on, and the
///   `AppendResult` reports those versions. Any other append throws `StreamDeletedError{deleted}`; every
///   append to a tombstoned stream throws `StreamDeletedError{tombstoned}`. Re-appending a removed event's id
///   is a new append (the retry rule sees only stored events).
/// - `truncate_stream(stream, before)` removes the events with versions below `before` ("closing the books"
///   after a snapshot); `stream_version` is unchanged. `before` up to `first_version` removes nothing; above
///   `version + 1` throws `InvalidArgumentError("before")`. A tombstoned stream throws `StreamDeletedError`, a
///   deleted one removes nothing.
/// - `apply_retention(rules, now)` applies each matching rule to each active stream (the rule removing most
///   wins); never implicitly, only when called.
/// - `stream_info(stream)` tells the stream's life; a malformed stream id gives the default (never written).
template <class S>
concept lifecycle_event_store = event_store<S> &&
    requires(S& store, const S& const_store, std::string_view stream, ExpectedVersion expected, DeleteOptions options,
             stream_version_t version, std::span<const RetentionRule> rules,
             std::chrono::system_clock::time_point now) {
    { store.delete_stream(stream, expected, options) } -> std::same_as<RemovalResult>;
    { store.truncate_stream(stream, version) } -> std::same_as<RemovalResult>;
    { store.apply_retention(rules, now) } -> std::same_as<RetentionReport>;
    { const_store.stream_info(stream) } -> std::same_as<StreamInfo>;
};

namespace detail {

/// Whether `stream` falls under `rule`.
[[nodiscard]] inline bool retention_matches(const RetentionRule& rule, std::string_view stream) noexcept {
    return stream.substr(0, rule.stream_prefix.size()) == rule.stream_prefix;
}

/// Throws `InvalidArgumentError("rules")` for a rule whose `max_age` is negative.
inline void validate_retention_rules(std::span<const RetentionRule> rules) {
    for (const RetentionRule& rule : rules) {
        if (rule.max_age && rule.max_age->count() < 0) {
            throw InvalidArgumentError("rules",
                                       "retention rule for prefix '" + rule.stream_prefix + "' has a negative max_age");
        }
    }
}

/// The version before which `max_count` keeps a stream at `version`: events below it are removed.
[[nodiscard]] constexpr stream_version_t retention_count_bound(stream_version_t version,
                                                               std::uint64_t max_count) noexcept {
    return version >= max_count ? version - max_count + 1 : 1;
}

/// The expectation check of a deletion or a lifecycle-aware append against `current` (0 for a deleted
/// stream): `ConcurrencyError` if it does not hold.
inline void check_expected(std::string_view stream, ExpectedVersion expected, stream_version_t current) {
    if (!expected.matches(current)) throw ConcurrencyError(std::string(stream), expected, current);
}

/// What an append to a stream in `info`'s state may do: throws `StreamDeletedError` when the stream's state
/// refuses `expected`; otherwise returns the version the append's expectation is checked against (0 for a
/// deleted stream, which the append recreates).
[[nodiscard]] inline stream_version_t admit_append(std::string_view stream, const StreamInfo& info,
                                                   ExpectedVersion expected) {
    switch (info.status) {
    case StreamStatus::active:
        return info.version;
    case StreamStatus::tombstoned:
        throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
    case StreamStatus::deleted:
        if (info.recreation == Recreation::on_no_stream && expected.kind() != ExpectedVersion::Kind::no_stream) {
            throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::deleted);
        }
        return 0;
    }
    return info.version;
}

} // namespace detail

} // namespace orchestrix
