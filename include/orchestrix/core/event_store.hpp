#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/chrono.hpp>
#include <orchestrix/detail/utf8.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// The longest stream id (in bytes) any store accepts.
inline constexpr std::size_t max_stream_id_length = 1024;

/// Reads without a count limit.
inline constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

/// What a successful append reports.
struct AppendResult {
    /// The stream's version after the append: pass it as `ExpectedVersion::exact(...)` to append again.
    /// For an idempotent retry, the version of the batch's last event (the stream may have moved on since);
    /// for an empty batch, the stream's version now.
    stream_version_t stream_version = 0;
    /// Global positions of the first and last event of the batch, as stored (both 0 for an empty batch).
    /// A retry that re-sends several stored batches as one may span other streams' events between them.
    position_t first_position = 0;
    position_t last_position = 0;
    /// False when nothing was written: an empty batch, or an idempotent retry of a stored batch.
    bool written = false;

    friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

/// An event as a durable store holds it, before decoding: its columns, with the JSON texts as stored. A
/// reader can still see this much of an event it cannot decode (an unknown type, damaged JSON, a payload
/// over a limit): `read_raw(position)` and `read_all_raw` of the durable stores return it.
struct RawRecordedEvent {
    position_t position = 0;
    std::string stream_id{};
    /// The stream version (0 if the column is damaged).
    stream_version_t version = 0;
    /// The event id column as text.
    std::string event_id{};
    std::string type{};
    /// The schema version (0 if the column is damaged).
    std::uint32_t schema_version = 0;
    /// The payload's JSON text.
    std::string payload{};
    /// The metadata's JSON text: `{"event_id", "correlation_id", "causation_id"}`, and `"traceparent"` when
    /// the event carries a trace context.
    std::string metadata{};
    std::chrono::system_clock::time_point recorded_at{};

    friend bool operator==(const RawRecordedEvent&, const RawRecordedEvent&) = default;
};

/// `RawRecordedEvent` as a store hands it to a visitor: views of the row, valid during the call.
struct RawRecordedEventView {
    position_t position = 0;
    std::string_view stream_id{};
    stream_version_t version = 0;
    std::string_view event_id{};
    std::string_view type{};
    std::uint32_t schema_version = 0;
    std::string_view payload{};
    std::string_view metadata{};
    std::chrono::system_clock::time_point recorded_at{};

    [[nodiscard]] RawRecordedEvent to_owned() const {
        return RawRecordedEvent{position,
                                std::string(stream_id),
                                version,
                                std::string(event_id),
                                std::string(type),
                                schema_version,
                                std::string(payload),
                                std::string(metadata),
                                recorded_at};
    }
};

/// A store of event streams, the contract every orchestrix store honours (in memory, SQLite, PostgreSQL):
///
/// - `append(stream, events, expected)` writes the batch atomically after checking `expected`; a mismatch
///   throws `ConcurrencyError{stream, expected, actual}`. Re-appending stored event ids with a matching
///   expectation is an idempotent success that writes nothing; any other reuse throws `IdempotencyError`.
///   An empty batch is a no-op that checks nothing but the stream id. A malformed stream id throws
///   `InvalidArgumentError`.
/// - `read_stream(stream, from_version, max_count)` returns events of one stream in version order,
///   starting at `from_version` (versions start at 1; 0 reads from the start too).
/// - `read_all(from_position, max_count)` returns events of every stream in global order.
/// - `stream_version(stream)` is the stream's current version (0 if it does not exist).
/// - Reads never refuse their arguments: a malformed stream id, a start beyond the end (or beyond
///   `max_version`) or a `max_count` of 0 give nothing.
///
/// docs/event-stores.md ("Contract") states every case; tests/support/event_store_contract.hpp checks it.
template <class S>
concept event_store = requires(S& store, const S& const_store, std::string_view stream,
                               std::span<const EventEnvelope<typename S::event_type>> events, ExpectedVersion expected,
                               std::uint64_t number) {
    requires event_variant<typename S::event_type>;
    { store.append(stream, events, expected) } -> std::same_as<AppendResult>;
    {
        const_store.read_stream(stream, number, number)
        } -> std::same_as<std::vector<RecordedEvent<typename S::event_type>>>;
    { const_store.read_all(number, number) } -> std::same_as<std::vector<RecordedEvent<typename S::event_type>>>;
    { const_store.stream_version(stream) } -> std::same_as<stream_version_t>;
};

/// A store that can hand events to a callback in place, without copying them: how aggregates fold long
/// histories at full speed. The callback receives a `RecordedEventView<Events>`, valid during the call;
/// `visit_stream` returns the number of events visited.
template <class S>
concept visitable_event_store = event_store<S> &&
    requires(const S& store, std::string_view stream, std::uint64_t number,
             void (*visitor)(const RecordedEventView<typename S::event_type>&)) {
    { store.visit_stream(stream, number, visitor) } -> std::same_as<std::uint64_t>;
};

/// Where one event id of a batch is stored: what the idempotent-retry rule needs to know about it.
struct StoredEventLocation {
    std::string_view stream_id;
    stream_version_t version = 0;
    position_t position = 0;
};

/// The idempotent-retry rule of `event_store`, shared by every store (write a store of your own on it).
///
/// A batch whose ids are all stored is a retry when its events are stored in `stream` as consecutive
/// versions, in batch order, with the same events (metadata other than the id is not compared): the
/// whole original batch, a prefix, a slice or a tail of it, or several stored batches sent as one. Its
/// expectation is checked against the stream's version before its first event.
///
/// `locate(i)` says where the id of `events[i]` is stored (`std::optional<StoredEventLocation>`, nothing if it is
/// not stored); `same_event(i)` whether the stored event is `events[i].event`. `current` is the stream's
/// version now. Returns nothing when no id of the batch is stored (a new append), the original append's
/// result when the batch repeats stored events exactly (an idempotent retry that writes nothing), and throws
/// otherwise: `IdempotencyError` (`partial_overlap` naming the batch's first stored id, then event by
/// event in batch order `different_stream`, `different_order`, `different_payload`, naming that event's
/// id) or, for an exact repeat whose expectation did not hold before its first event, `ConcurrencyError`
/// with `actual()` = `current`.
///
/// `start_of_life()` (called only when needed) gives the version the stream's current life starts at
/// (`StreamInfo::start_version`, core/lifecycle.hpp; 1 for a store without lifecycle): a batch stored at that
/// version recreated a deleted stream, so its expectation held for version 0.
template <class Events, class Locate, class SameEvent, class StartOfLife>
[[nodiscard]] std::optional<AppendResult>
check_idempotent_retry(std::string_view stream, std::span<const EventEnvelope<Events>> events, ExpectedVersion expected,
                       stream_version_t current, Locate&& locate, SameEvent&& same_event, StartOfLife&& start_of_life) {
    std::size_t count = 0;
    const Uuid* stored_id = nullptr;
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (locate(i)) {
            ++count;
            if (stored_id == nullptr) stored_id = &events[i].metadata.event_id;
        }
    }
    if (count == 0) return std::nullopt;
    if (count != events.size()) {
        throw IdempotencyError(IdempotencyError::Reason::partial_overlap, std::string(stream), *stored_id);
    }
    stream_version_t first_version = 0;
    position_t first_position = 0;
    position_t last_position = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
        const std::optional<StoredEventLocation> where = locate(i);
        const Uuid& id = events[i].metadata.event_id;
        if (where->stream_id != stream) {
            throw IdempotencyError(IdempotencyError::Reason::different_stream, std::string(stream), id);
        }
        if (i == 0) {
            first_version = where->version;
            first_position = where->position;
        }
        if (where->version != first_version + i) {
            throw IdempotencyError(IdempotencyError::Reason::different_order, std::string(stream), id);
        }
        if (!same_event(i)) {
            throw IdempotencyError(IdempotencyError::Reason::different_payload, std::string(stream), id);
        }
        last_position = where->position;
    }
    const stream_version_t before = first_version - 1;
    bool expectation_held =
        expected.kind() == ExpectedVersion::Kind::any || expected.kind() == ExpectedVersion::Kind::stream_exists;
    if (!expectation_held) {
        // A batch that recreated a deleted stream was checked against version 0, not the version before it.
        const bool recreated = before > 0 && static_cast<stream_version_t>(start_of_life()) == first_version;
        expectation_held = expected.matches(recreated ? 0 : before);
    }
    if (!expectation_held) throw ConcurrencyError(std::string(stream), expected, current);
    return AppendResult{before + events.size(), first_position, last_position, false};
}

/// `check_idempotent_retry` for a store whose streams are never recreated (every life starts at version 1).
template <class Events, class Locate, class SameEvent>
[[nodiscard]] std::optional<AppendResult>
check_idempotent_retry(std::string_view stream, std::span<const EventEnvelope<Events>> events, ExpectedVersion expected,
                       stream_version_t current, Locate&& locate, SameEvent&& same_event) {
    return check_idempotent_retry<Events>(stream, events, expected, current, std::forward<Locate>(locate),
                                          std::forward<SameEvent>(same_event), [] { return stream_version_t{1}; });
}

namespace detail {

/// Whether `stream` is a usable stream id (what `validate_stream_id` accepts): no store holds any other.
[[nodiscard]] constexpr bool is_valid_stream_id(std::string_view stream) noexcept {
    return !stream.empty() && stream.size() <= max_stream_id_length && stream.find('\0') == std::string_view::npos &&
           is_valid_utf8(stream);
}

/// Throws `InvalidArgumentError` unless `stream` is a usable stream id: 1 to `max_stream_id_length`
/// bytes of valid UTF-8 without NUL characters. Any other character (quotes, `%`, `*`, spaces) is fine:
/// stores keep ids byte for byte.
inline void validate_stream_id(std::string_view stream) {
    if (stream.empty()) throw InvalidArgumentError("stream", "stream id must not be empty");
    if (stream.size() > max_stream_id_length) {
        throw InvalidArgumentError("stream", "stream id is " + std::to_string(stream.size()) +
                                                 " bytes long; the limit is " + std::to_string(max_stream_id_length));
    }
    if (stream.find('\0') != std::string_view::npos) {
        throw InvalidArgumentError("stream", "stream id must not contain a NUL character");
    }
    if (!is_valid_utf8(stream)) throw InvalidArgumentError("stream", "stream id is not valid UTF-8");
}

/// Throws `IdempotencyError{duplicate_in_batch}` if two envelopes of the batch share an event id, and
/// `InvalidArgumentError` if an id is nil. Quadratic for tiny batches, sorted otherwise.
template <class Events>
void validate_batch_ids(std::string_view stream, std::span<const EventEnvelope<Events>> events) {
    for (const auto& e : events) {
        if (e.metadata.event_id.is_nil()) {
            throw InvalidArgumentError("events", "append to stream '" + std::string(stream) +
                                                     "' refused: an event has the nil UUID as its id");
        }
    }
    // Strictly increasing ids (what one thread's Uuid::generate makes) cannot repeat.
    bool increasing = true;
    for (std::size_t i = 1; i < events.size() && increasing; ++i)
        increasing = events[i - 1].metadata.event_id < events[i].metadata.event_id;
    if (increasing) return;
    if (events.size() <= 16) {
        for (std::size_t i = 0; i < events.size(); ++i)
            for (std::size_t j = i + 1; j < events.size(); ++j)
                if (events[i].metadata.event_id == events[j].metadata.event_id)
                    throw IdempotencyError(IdempotencyError::Reason::duplicate_in_batch, std::string(stream),
                                           events[i].metadata.event_id);
        return;
    }
    std::vector<Uuid> ids;
    ids.reserve(events.size());
    for (const auto& e : events) ids.push_back(e.metadata.event_id);
    std::sort(ids.begin(), ids.end());
    for (std::size_t i = 1; i < ids.size(); ++i)
        if (ids[i] == ids[i - 1])
            throw IdempotencyError(IdempotencyError::Reason::duplicate_in_batch, std::string(stream), ids[i]);
}

/// Throws `InvalidArgumentError` if appending `count` events to a stream at `current` would pass
/// `max_version`, or push the store's global position past it.
inline void validate_growth(std::string_view stream, stream_version_t current, position_t head, std::size_t count) {
    if (count > max_version - current || count > max_version - head) {
        throw InvalidArgumentError("events", "append to stream '" + std::string(stream) + "' of " +
                                                 std::to_string(count) +
                                                 " events would overflow the largest stream version or position");
    }
}

} // namespace detail

} // namespace orchestrix
