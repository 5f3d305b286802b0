#pragma once

// What the durable stores (SQLite, PostgreSQL) share: the error for a stored row that cannot be decoded,
// the codec requirements, and the idempotent-retry analysis that both run on the rows they look up.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/serialization/json.hpp>
#include <orchestrix/serialization/json_codec.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// A stored event could not be read back: its row is damaged, or it was written by a program that knows
/// event types or schema versions this one does not. The store is unchanged; `position()`, `stream_id()`
/// and `version()` say which row, and the `DecodeError` part says what is wrong with it (`kind()`,
/// `event_type()`, `json_path()`).
class StoredEventDecodeError : public DecodeError {
public:
    StoredEventDecodeError(position_t position, std::string stream_id, stream_version_t version,
                           const DecodeError& cause)
        : DecodeError(cause.kind(), cause.event_type(), cause.json_path(), cause.detail()), position_(position),
          stream_id_(std::move(stream_id)), version_(version),
          message_("stored event at position " + std::to_string(position) + " (stream '" + stream_id_ + "', version " +
                   std::to_string(version) + ") cannot be decoded: " + cause.what()) {}

    /// The global position of the row.
    [[nodiscard]] position_t position() const noexcept { return position_; }
    /// The row's stream id (as stored; may be empty if that column is damaged too).
    [[nodiscard]] const std::string& stream_id() const noexcept { return stream_id_; }
    /// The row's stream version (0 if that column is damaged).
    [[nodiscard]] stream_version_t version() const noexcept { return version_; }
    [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

private:
    position_t position_;
    std::string stream_id_;
    stream_version_t version_;
    std::string message_;
};

/// What a durable store needs of its codec: `JsonCodec<Events>` models it. `serialize` gives the type,
/// schema-version, payload and metadata columns (the same event always gives the same bytes); `deserialize`
/// turns a row back into a recorded event or throws `DecodeError`.
template <class C, class Events>
concept event_codec = requires(const C& codec, const Events& event, const Metadata& metadata,
                               const SerializedEventView& row, std::string stream, stream_version_t version,
                               position_t position, std::chrono::system_clock::time_point time, std::string_view type,
                               std::uint32_t schema_version) {
    { codec.serialize(event, metadata) } -> std::same_as<SerializedEvent>;
    { codec.deserialize(row, stream, version, position, time) } -> std::same_as<RecordedEvent<Events>>;
    { codec.deserialize_event(type, schema_version, type) } -> std::same_as<Events>;
};

namespace detail {

/// A stored event as the idempotency check needs it, looked up by event id.
struct StoredEventRow {
    std::string stream_id;
    stream_version_t version = 0;
    position_t position = 0;
    std::string type;
    std::uint32_t schema_version = 1;
    std::string payload;
};

/// Microseconds since the Unix epoch: how durable stores keep `recorded_at`.
[[nodiscard]] inline std::int64_t to_micros(std::chrono::system_clock::time_point time) noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
}

[[nodiscard]] inline std::chrono::system_clock::time_point from_micros(std::int64_t micros) noexcept {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::microseconds(micros)));
}

/// Serializes a batch, refusing (with `EncodeError`) anything JSON cannot carry before a store is touched.
template <class Events, class Codec>
[[nodiscard]] std::vector<SerializedEvent> serialize_batch(const Codec& codec,
                                                           std::span<const EventEnvelope<Events>> events) {
    std::vector<SerializedEvent> out;
    out.reserve(events.size());
    for (const auto& e : events) out.push_back(codec.serialize(e.event, e.metadata));
    return out;
}

/// Whether the stored row holds the same event as `event` (encoded as `encoded`): the same type and
/// payload bytes, or, for a row stored under an older schema version or type name, the same event once
/// decoded and upcast.
template <class Events, class Codec>
[[nodiscard]] bool same_event(const Codec& codec, const StoredEventRow& row, const Events& event,
                              const SerializedEvent& encoded) {
    if (row.type == encoded.type && row.schema_version == encoded.schema_version) {
        return row.payload == encoded.payload;
    }
    try {
        return codec.deserialize_event(row.type, row.schema_version, row.payload) == event;
    } catch (const Error&) {
        return false;
    }
}

/// The idempotent-retry rules of `event_store`, on the stored rows of the batch's ids (`stored[i]` is the
/// row of `events[i]`, or nothing). Returns the original append's result for an exact retry, throws
/// `IdempotencyError` or `ConcurrencyError` for any other reuse, and returns nothing if no id is stored.
template <class Events, class Codec>
[[nodiscard]] std::optional<AppendResult>
check_idempotent_retry(const Codec& codec, std::string_view stream, std::span<const EventEnvelope<Events>> events,
                       std::span<const SerializedEvent> encoded, std::span<const std::optional<StoredEventRow>> stored,
                       ExpectedVersion expected, stream_version_t current) {
    std::size_t count = 0;
    const Uuid* stored_id = nullptr;
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (stored[i]) {
            ++count;
            stored_id = &events[i].metadata.event_id;
        }
    }
    if (count == 0) return std::nullopt;
    if (count != events.size()) {
        throw IdempotencyError(IdempotencyError::Reason::partial_overlap, std::string(stream), *stored_id);
    }
    const stream_version_t first_version = stored[0]->version;
    for (std::size_t i = 0; i < events.size(); ++i) {
        const StoredEventRow& row = *stored[i];
        const Uuid& id = events[i].metadata.event_id;
        if (row.stream_id != stream) {
            throw IdempotencyError(IdempotencyError::Reason::different_stream, std::string(stream), id);
        }
        if (row.version != first_version + i) {
            throw IdempotencyError(IdempotencyError::Reason::different_order, std::string(stream), id);
        }
        if (!same_event<Events>(codec, row, events[i].event, encoded[i])) {
            throw IdempotencyError(IdempotencyError::Reason::different_payload, std::string(stream), id);
        }
    }
    const stream_version_t before = first_version - 1;
    const bool expectation_held = expected.kind() == ExpectedVersion::Kind::any ||
                                  expected.kind() == ExpectedVersion::Kind::stream_exists || expected.matches(before);
    if (!expectation_held) throw ConcurrencyError(std::string(stream), expected, current);
    return AppendResult{before + events.size(), stored.front()->position, stored.back()->position, false};
}

/// Decodes a stored row through the codec; any `DecodeError` (or a damaged column reported by the caller
/// as one) becomes a `StoredEventDecodeError` naming the row.
template <class Events, class Codec>
[[nodiscard]] RecordedEvent<Events>
decode_row(const Codec& codec, const SerializedEventView& row, std::string stream_id, stream_version_t version,
           position_t position, std::chrono::system_clock::time_point recorded_at, std::string_view event_id_column) {
    try {
        RecordedEvent<Events> recorded = codec.deserialize(row, stream_id, version, position, recorded_at);
        if (recorded.metadata.event_id.to_string() != event_id_column) {
            throw DecodeError(DecodeError::Kind::invalid_value, std::string(row.type), "/metadata/event_id",
                              "the metadata's event id differs from the row's event_id column '" +
                                  std::string(event_id_column) + "'");
        }
        return recorded;
    } catch (const StoredEventDecodeError&) {
        throw;
    } catch (const DecodeError& e) {
        throw StoredEventDecodeError(position, std::move(stream_id), version, e);
    } catch (const InvalidArgumentError& e) { // an unknown type name, reported by the codec's registry
        throw StoredEventDecodeError(
            position, std::move(stream_id), version,
            DecodeError(DecodeError::Kind::unknown_type, std::string(row.type), "/type", e.what()));
    }
}

/// Throws `StoredEventDecodeError` for a row whose own columns (not the JSON) are damaged.
[[noreturn]] inline void damaged_column(position_t position, std::string stream_id, stream_version_t version,
                                        std::string_view column, std::string_view problem) {
    throw StoredEventDecodeError(position, std::move(stream_id), version,
                                 DecodeError(DecodeError::Kind::invalid_value, {}, "/" + std::string(column),
                                             "the " + std::string(column) + " column " + std::string(problem)));
}

} // namespace detail

} // namespace orchestrix
