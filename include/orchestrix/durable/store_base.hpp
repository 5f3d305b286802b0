#pragma once

// What the durable stores (SQLite, PostgreSQL) share: the error for a stored row that cannot be decoded,
// the codec requirements, the idempotent-retry analysis that both run on the rows they look up, and the
// public calls written on top of each store's own row-level code (`DurableStoreBase`), and the
// building blocks (namespace `orchestrix::durable`) that a store for another database reuses.

#include <orchestrix/core/dcb.hpp>
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

/// A batch made ready for a store: its events encoded, and for a store of tagged events
/// (`tagged_event_variant`) each event's tags, distinct and checked (`tags[i]` are those of event `i`).
struct PreparedBatch {
    std::vector<SerializedEvent> encoded;
    std::vector<std::vector<std::string>> tags;
};

/// What every append does before it touches its database, for a store that may be read by query: checks
/// the stream id, the batch's event ids, the events' tags (`InvalidArgumentError("events")` naming the
/// event type) and the types the condition's query names (`InvalidArgumentError("query")`), then
/// serializes the batch. A store of untagged events has no tags to check and no condition.
template <class Events, class Codec>
[[nodiscard]] PreparedBatch prepare_append(const Codec& codec, std::string_view stream,
                                           std::span<const EventEnvelope<Events>> events,
                                           const AppendCondition* condition) {
    detail::validate_stream_id(stream);
    detail::validate_batch_ids<Events>(stream, events);
    PreparedBatch out;
    if constexpr (tagged_event_variant<Events>) {
        out.tags.reserve(events.size());
        for (const auto& e : events) out.tags.push_back(detail::checked_tags(e.event));
        if (condition != nullptr) detail::validate_query_types<Events>(condition->fail_if_events_match);
    }
    out.encoded = serialize_batch<Events>(codec, events);
    return out;
}

/// What a store's read by query reports besides the rows it handed over.
struct QueryRowsRead {
    /// The rows visited.
    std::uint64_t count = 0;
    /// The store's head position, read in the same snapshot as the rows.
    position_t head = 0;
    /// The position of the last row visited (0 if none).
    position_t last = 0;
};

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
/// - `AppendResult append_batch(std::string_view stream, std::span<const EventEnvelope<Events>> events,
///   ExpectedVersion expected, const AppendCondition* condition)`, which may be private (this class is a
///   friend): the append of `event_store` and, when `condition` is set (only for tagged events), the
///   conditional append of `dcb_event_store`; this class's `append` overloads all end there;
/// - `const Codec& codec() const`, public;
/// - `std::uint64_t visit_stream_rows(std::string_view stream, stream_version_t from_version,
///   std::uint64_t max_count, Visitor& visitor) const` and `std::uint64_t visit_all_rows(position_t
///   from_position, std::uint64_t max_count, Visitor& visitor) const`, which may be private (this class is
///   a friend): each reads at most `max_count` rows (never called with 0, nor `visit_stream_rows` with a
///   malformed stream id), hands each to `visit_row`, and returns the number visited;
/// - for a store of tagged events (`tagged_event_variant<Events>`), `durable::QueryRowsRead
///   visit_query_rows(const Query& query, position_t after, std::uint64_t max_count, Visitor& visitor)
///   const`, which may be private: hands the first `max_count` events after `after` that match `query` to
///   `visit_row` in position order (never called with 0, nor with a query naming a type `Events` lacks),
///   and reports the store's head position in the same snapshot.
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

    /// Appends `events` to `stream` atomically if the stream matches `expected`. See `event_store`. Also
    /// throws `EncodeError` for an event JSON cannot carry, and the store's `StoreError` if the database
    /// fails; in every case nothing was written. For tagged events, stores each event's tags with it
    /// (`InvalidArgumentError("events")` for a malformed tag, before anything is written).
    AppendResult append(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected) {
        return derived().append_batch(stream, events, expected, nullptr);
    }

    /// As `append(stream, events, expected)`, and refused with `AppendConditionError` (nothing written) if an
    /// event matching `condition.fail_if_events_match` is stored after `condition.after` (at all, if nothing):
    /// checked in the append's transaction, under the lock that orders appends, after the expected version
    /// and the idempotent retry (a retry of a stored batch returns the original result without checking the
    /// condition). Throws `InvalidArgumentError("query")` if the query names a type that is not one of
    /// `Events`. An empty batch writes nothing and checks nothing.
    AppendResult append(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected,
                        const AppendCondition& condition) requires tagged_event_variant<Events> {
        return derived().append_batch(stream, events, expected, &condition);
    }

    // A store of untagged events has no conditional append: this says why at compile time (a template, so
    // that an explicit instantiation of the store does not instantiate it).
    template <std::same_as<AppendCondition> Condition>
    AppendResult append(std::string_view, std::span<const envelope_type>, ExpectedVersion,
                        const Condition&) requires(!tagged_event_variant<Events>) {
        untagged_events<Condition>();
        return {};
    }

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

    /// As `append(stream, std::span<const EventEnvelope<Events>>, expected, condition)`, for a braced list of
    /// envelopes.
    AppendResult append(std::string_view stream, std::initializer_list<envelope_type> events, ExpectedVersion expected,
                        const AppendCondition& condition) {
        return derived().append(stream, std::span<const envelope_type>(events.begin(), events.size()), expected,
                                condition);
    }

    /// A conditional append of plain events, not envelopes: each gets a fresh id and empty metadata.
    template <plain_event_range<Events> Range>
    AppendResult append(std::string_view stream, const Range& events, ExpectedVersion expected,
                        const AppendCondition& condition) {
        const std::vector<envelope_type> envelopes = detail::to_envelopes<Events>(events);
        return derived().append(stream, std::span<const envelope_type>(envelopes), expected, condition);
    }

    /// The events after position `after` that match `query`, in global order, at most `max_count`, and
    /// the position the read covers: the store's head when it was read (in the same snapshot as the
    /// events), or the last returned event's position when `max_count` events came back (more may
    /// match after it). `max_count` 0 reads nothing and covers `after`. Pass the position on as a
    /// conditional append's `AppendCondition::after`. Throws `InvalidArgumentError("query")` if the query
    /// names a type that is not one of `Events`. Needs every event type to declare tags
    /// (`tagged_event_variant`); events stored before they had tags (or before the store kept tags)
    /// match only items without tags.
    [[nodiscard]] QueryResult<Events>
    read(const Query& query, position_t after = 0,
         std::uint64_t max_count = unlimited) const requires tagged_event_variant<Events> {
        QueryResult<Events> out;
        out.position = visit(
            query, after, [&](const view_type& e) { out.events.push_back(e.to_owned()); }, max_count);
        return out;
    }

    /// As `read(query, after, max_count)`, handing each event to `visitor` (`const
    /// RecordedEventView<Events>&`) in place instead of collecting them; returns the position the read
    /// covers. The visitor runs while the store reads: it must not call the store.
    template <class Visitor>
    position_t visit(const Query& query, position_t after, Visitor&& visitor, std::uint64_t max_count = unlimited)
        const requires tagged_event_variant<Events> && std::invocable<Visitor&, const view_type&> {
        detail::validate_query_types<Events>(query);
        if (max_count == 0) return after;
        const durable::QueryRowsRead read = derived().visit_query_rows(query, after, max_count, visitor);
        return read.count == max_count ? read.last : read.head;
    }

    // A store of events that do not all declare tags cannot be read by query: these say why at compile time
    // (templates, so that an explicit instantiation of the store does not instantiate them).
    template <std::same_as<Query> Q>
    QueryResult<Events> read(const Q&, position_t = 0, std::uint64_t = unlimited) const
        requires(!tagged_event_variant<Events>) {
        untagged_events<Q>();
        return {};
    }
    template <std::same_as<Query> Q, class Visitor>
    position_t visit(const Q&, position_t, Visitor&&, std::uint64_t = unlimited) const
        requires(!tagged_event_variant<Events>) {
        untagged_events<Q>();
        return 0;
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

    /// Fails to compile, naming the event type without tags: what the DCB calls of a store of untagged
    /// events instantiate (`Dependent`: any type, so that it is instantiated only when called).
    template <class Dependent>
    static void untagged_events() {
        detail::explain_tagged_variant<Events>::check();
        static_assert(tagged_event_variant<Events> && sizeof(Dependent) != 0,
                      "orchestrix: read(query), visit(query, ...) and append(..., condition) need a store whose event "
                      "types all declare tags (orchestrix::tagged_event_variant): give each a `tags() const`");
    }

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
