#pragma once

// What the durable stores (SQLite, PostgreSQL) share: the error for a stored row that cannot be decoded,
// the codec requirements, the idempotent-retry analysis that both run on the rows they look up, and the
// public calls written on top of each store's own row-level code (`DurableStoreBase`), and the
// building blocks (namespace `orchestrix::durable`) that a store for another database reuses.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/durable/errors.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/json/document.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

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

/// The building blocks of a durable store, public so that a store for another database can reuse them.
namespace durable {

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

/// What every append does before it touches its database: checks the stream id and the batch's event ids
/// (`InvalidArgumentError`), then serializes the batch (`serialize_batch`).
template <class Events, class Codec>
[[nodiscard]] std::vector<SerializedEvent> prepare_append(const Codec& codec, std::string_view stream,
                                                          std::span<const EventEnvelope<Events>> events) {
    detail::validate_stream_id(stream);
    detail::validate_batch_ids<Events>(stream, events);
    return serialize_batch<Events>(codec, events);
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

/// The idempotent-retry rule of `event_store` (`orchestrix::check_idempotent_retry`) on the stored rows of
/// the batch's ids (`stored[i]` is the row of `events[i]`, or nothing).
template <class Events, class Codec>
[[nodiscard]] std::optional<AppendResult>
check_idempotent_retry(const Codec& codec, std::string_view stream, std::span<const EventEnvelope<Events>> events,
                       std::span<const SerializedEvent> encoded, std::span<const std::optional<StoredEventRow>> stored,
                       ExpectedVersion expected, stream_version_t current) {
    const auto locate = [&](std::size_t i) -> std::optional<StoredEventLocation> {
        if (!stored[i]) return std::nullopt;
        return StoredEventLocation{stored[i]->stream_id, stored[i]->version, stored[i]->position};
    };
    const auto same = [&](std::size_t i) { return same_event<Events>(codec, *stored[i], events[i].event, encoded[i]); };
    return orchestrix::check_idempotent_retry<Events>(stream, events, expected, current, locate, same);
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

/// A column of a stored row that cannot be what it claims (a version that is not a positive integer, ...).
struct ColumnDamage {
    std::string_view column;
    std::string_view problem;
};

/// Wraps a callback that takes rows as they are stored (`const RawRecordedEventView&`): `visit_row` then hands
/// it the row instead of decoding it.
template <class F>
struct RawVisitor {
    F visit;
};
template <class F>
RawVisitor(F) -> RawVisitor<F>;

template <class V>
struct is_raw_visitor : std::false_type {};
template <class F>
struct is_raw_visitor<RawVisitor<F>> : std::true_type {};

} // namespace durable

/// The public calls of a durable event store that do not touch its database, written once on top of what
/// `Derived` (`SqliteEventStore`, `PostgresEventStore`) implements:
///
/// - `AppendResult append(std::string_view, std::span<const EventEnvelope<Events>>, ExpectedVersion)`,
///   public (the derived class brings this class's other `append` in with a using-declaration);
/// - `const Codec& codec() const`, public;
/// - `std::uint64_t visit_stream_rows(std::string_view stream, stream_version_t from_version,
///   std::uint64_t max_count, Visitor& visitor) const` and `std::uint64_t visit_all_rows(position_t
///   from_position, std::uint64_t max_count, Visitor& visitor) const`, which may be private (this class is
///   a friend): each reads at most `max_count` rows (never called with 0, nor `visit_stream_rows` with a
///   malformed stream id), hands each to `visit_row`, and returns the number visited.
template <class Derived, class Events, class Codec>
class DurableStoreBase {
    static_assert(event_codec<Codec, Events>,
                  "orchestrix: a durable store's Codec must provide serialize(event, metadata) -> SerializedEvent, "
                  "deserialize(row, stream, version, position, time) -> RecordedEvent and deserialize_event(type, "
                  "schema_version, payload) -> Events, as JsonCodec<Events> does");

public:
    using event_type = Events;
    using codec_type = Codec;
    using envelope_type = EventEnvelope<Events>;
    using recorded_type = RecordedEvent<Events>;
    using view_type = RecordedEventView<Events>;

    /// As `append(stream, std::span<const EventEnvelope<Events>>, expected)`, for a braced list of envelopes.
    AppendResult append(std::string_view stream, std::initializer_list<envelope_type> events,
                        ExpectedVersion expected) {
        return derived().append(stream, std::span<const envelope_type>(events.begin(), events.size()), expected);
    }

    /// Appends plain events, not envelopes (a `std::vector<UserRenamed>`, a `std::vector<Events>`, an array):
    /// each gets a fresh id and empty metadata, as in a braced list.
    template <plain_event_range<Events> Range>
    AppendResult append(std::string_view stream, const Range& events, ExpectedVersion expected) {
        const std::vector<envelope_type> envelopes = detail::to_envelopes<Events>(events);
        return derived().append(stream, std::span<const envelope_type>(envelopes), expected);
    }

    /// Events of `stream` from `from_version` on (0 and 1 both mean the first), at most `max_count`.
    [[nodiscard]] std::vector<recorded_type> read_stream(std::string_view stream, stream_version_t from_version = 1,
                                                         std::uint64_t max_count = unlimited) const {
        std::vector<recorded_type> out;
        visit_stream(
            stream, from_version, [&](const view_type& e) { out.push_back(e.to_owned()); }, max_count);
        return out;
    }

    /// Events of every stream in global order from `from_position` on, at most `max_count`.
    [[nodiscard]] std::vector<recorded_type> read_all(position_t from_position = 1,
                                                      std::uint64_t max_count = unlimited) const {
        std::vector<recorded_type> out;
        visit_all(
            from_position, [&](const view_type& e) { out.push_back(e.to_owned()); }, max_count);
        return out;
    }

    /// Decodes the events of `stream` from `from_version` on one at a time and hands each to `visitor`
    /// (`const RecordedEventView<Events>&`). Returns the number visited: 0 for a malformed stream id, which
    /// no store holds (asking the database could fail on it: PostgreSQL refuses NUL and invalid UTF-8).
    template <class Visitor>
    std::uint64_t
    visit_stream(std::string_view stream, stream_version_t from_version, Visitor&& visitor,
                 std::uint64_t max_count = unlimited) const requires std::invocable<Visitor&, const view_type&> {
        if (max_count == 0 || !detail::is_valid_stream_id(stream)) return 0;
        return derived().visit_stream_rows(stream, from_version, max_count, visitor);
    }

    /// Decodes every event from `from_position` on in global order and hands each to `visitor`.
    template <class Visitor>
    std::uint64_t
    visit_all(position_t from_position, Visitor&& visitor,
              std::uint64_t max_count = unlimited) const requires std::invocable<Visitor&, const view_type&> {
        if (max_count == 0) return 0;
        return derived().visit_all_rows(from_position, max_count, visitor);
    }

    /// The event at `position` as it is stored, whether it can be decoded or not; nothing if no event has
    /// that position. How a reader looks at an event that `read_all` refuses (`StoredEventDecodeError`).
    [[nodiscard]] std::optional<RawRecordedEvent> read_raw(position_t position) const {
        std::optional<RawRecordedEvent> out;
        if (position == 0) return out;
        durable::RawVisitor visitor{[&](const RawRecordedEventView& row) {
            if (row.position == position) out = row.to_owned();
        }};
        (void)derived().visit_all_rows(position, 1, visitor);
        return out;
    }

    /// Events of every stream in global order from `from_position` on, at most `max_count`, as they are
    /// stored: nothing is decoded, so nothing is refused.
    [[nodiscard]] std::vector<RawRecordedEvent> read_all_raw(position_t from_position = 1,
                                                             std::uint64_t max_count = unlimited) const {
        std::vector<RawRecordedEvent> out;
        if (max_count == 0) return out;
        durable::RawVisitor visitor{[&](const RawRecordedEventView& row) { out.push_back(row.to_owned()); }};
        (void)derived().visit_all_rows(from_position, max_count, visitor);
        return out;
    }

protected:
    DurableStoreBase() = default;
    ~DurableStoreBase() = default;

    /// Hands one stored row to `visitor`: as it is stored for the raw readers (`read_raw`, `read_all_raw`),
    /// otherwise decoded through the store's codec (`decode_row`), a damaged column (`damage`) or an
    /// undecodable row throwing `StoredEventDecodeError`.
    template <class Visitor>
    void visit_row(Visitor& visitor, const RawRecordedEventView& row,
                   const durable::ColumnDamage* damage = nullptr) const {
        if constexpr (durable::is_raw_visitor<Visitor>::value) {
            visitor.visit(row);
        } else {
            if (damage != nullptr) {
                durable::damaged_column(row.position, std::string(row.stream_id), row.version, damage->column,
                                        damage->problem);
            }
            const recorded_type e = durable::decode_row<Events>(
                derived().codec(), SerializedEventView(row.type, row.schema_version, row.payload, row.metadata),
                std::string(row.stream_id), row.version, row.position, row.recorded_at, row.event_id);
            std::invoke(visitor, view_type{e.stream_id, e.version, &e.position, &e.event, &e.metadata});
        }
    }

private:
    [[nodiscard]] Derived& derived() noexcept { return static_cast<Derived&>(*this); }
    [[nodiscard]] const Derived& derived() const noexcept { return static_cast<const Derived&>(*this); }
};

} // namespace orchestrix
