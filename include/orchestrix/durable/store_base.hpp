#pragma once

// What the durable stores (SQLite, PostgreSQL) share: the error for a stored row that cannot be decoded,
// the codec requirements, the idempotent-retry analysis that both run on the rows they look up, and the
// public calls written on top of each store's own row-level code (`DurableStoreBase`), and the
// building blocks (namespace `orchestrix::durable`) that a store for another database reuses.

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_fields.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/durable/errors.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/json/document.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
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
/// payload bytes, or else the same event once decoded and upcast (a row stored under an older schema version
/// or type name, or written by a codec configured otherwise, e.g. compressed at another level or not at all).
template <class Events, class Codec>
[[nodiscard]] bool same_event(const Codec& codec, const StoredEventRow& row, const Events& event,
                              const SerializedEvent& encoded) {
    if (row.type == encoded.type && row.schema_version == encoded.schema_version && row.payload == encoded.payload) {
        return true;
    }
    try {
        return orchestrix::same_event(codec.deserialize_event(row.type, row.schema_version, row.payload), event);
    } catch (const Error&) {
        return false;
    }
}

/// The idempotent-retry rule of `event_store` (`orchestrix::check_idempotent_retry`) on the stored rows of
/// the batch's ids (`stored[i]` is the row of `events[i]`, or nothing).
/// `start_of_life()`: the version the stream's current life starts at (see `orchestrix::check_idempotent_retry`),
/// asked only for a retry of a batch that may have recreated the stream.
template <class Events, class Codec, class StartOfLife>
[[nodiscard]] std::optional<AppendResult>
check_idempotent_retry(const Codec& codec, std::string_view stream, std::span<const EventEnvelope<Events>> events,
                       std::span<const SerializedEvent> encoded, std::span<const std::optional<StoredEventRow>> stored,
                       ExpectedVersion expected, stream_version_t current, StartOfLife&& start_of_life) {
    const auto locate = [&](std::size_t i) -> std::optional<StoredEventLocation> {
        if (!stored[i]) return std::nullopt;
        return StoredEventLocation{stored[i]->stream_id, stored[i]->version, stored[i]->position};
    };
    const auto same = [&](std::size_t i) { return same_event<Events>(codec, *stored[i], events[i].event, encoded[i]); };
    return orchestrix::check_idempotent_retry<Events>(stream, events, expected, current, locate, same,
                                                      std::forward<StartOfLife>(start_of_life));
}

template <class Events, class Codec>
[[nodiscard]] std::optional<AppendResult>
check_idempotent_retry(const Codec& codec, std::string_view stream, std::span<const EventEnvelope<Events>> events,
                       std::span<const SerializedEvent> encoded, std::span<const std::optional<StoredEventRow>> stored,
                       ExpectedVersion expected, stream_version_t current) {
    return check_idempotent_retry<Events>(codec, stream, events, encoded, stored, expected, current,
                                          [] { return stream_version_t{1}; });
}

/// Whether `text` is `id` in its canonical lower-case form (`Uuid::to_string`), compared without building it.
[[nodiscard]] inline bool is_canonical_text(const Uuid& id, std::string_view text) noexcept {
    constexpr std::string_view digits = "0123456789abcdef";
    if (text.size() != 36) return false;
    std::size_t at = 0;
    for (std::size_t i = 0; i < id.bytes().size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (text[at++] != '-') return false;
        }
        if (text[at++] != digits[id.bytes()[i] >> 4U] || text[at++] != digits[id.bytes()[i] & 0x0FU]) return false;
    }
    return true;
}

/// Decodes a stored row through the codec; any `DecodeError` (or a damaged column reported by the caller
/// as one) becomes a `StoredEventDecodeError` naming the row.
template <class Events, class Codec>
[[nodiscard]] RecordedEvent<Events>
decode_row(const Codec& codec, const SerializedEventView& row, std::string stream_id, stream_version_t version,
           position_t position, std::chrono::system_clock::time_point recorded_at, std::string_view event_id_column) {
    try {
        RecordedEvent<Events> recorded = codec.deserialize(row, stream_id, version, position, recorded_at);
        if (!is_canonical_text(recorded.metadata.event_id, event_id_column)) {
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

/// An event to append as a durable store keeps it, without compiled event types (`append_raw`): the event id
/// (a UUID, in its canonical 8-4-4-4-12 form, either case), the type and schema version columns, and the
/// payload and metadata JSON texts (`metadata` as a `JsonCodec` writes it: `event_id`, `correlation_id`,
/// `causation_id`, `traceparent`). `RawRecordedEvent` has the same columns as they were stored.
struct RawEventData {
    std::string event_id{};
    std::string type{};
    std::uint32_t schema_version = 1;
    std::string payload{};
    std::string metadata{};

    friend bool operator==(const RawEventData&, const RawEventData&) = default;
};

namespace durable {

/// What `append_raw` needs of a store's codec: its read and write limits and its strict reader of the
/// metadata column, the checks that stand in for serializing an event (`JsonCodec` has them).
template <class C>
concept raw_append_codec = requires(const C& codec, std::string_view text) {
    { codec.options() } -> std::convertible_to<DecodeOptions>;
    { codec.write_options() } -> std::convertible_to<EncodeOptions>;
    { codec.deserialize_metadata(text, text) } -> std::same_as<Metadata>;
};

/// A raw batch made ready for a store: the events' ids and their columns (no tags: a raw event has none).
struct PreparedRawBatch {
    std::vector<Uuid> ids;
    PreparedBatch batch;
};

/// What `append_raw` checks before it touches its database, so that what it writes, every reader with the
/// store's codec can read: a valid stream id, each event id a non-nil UUID, the type 1 to
/// `max_stream_id_length` bytes of UTF-8 without NUL, a schema version of at least 1, the payload a JSON
/// object and the metadata what the codec's `deserialize_metadata` accepts, both within the codec's read
/// limits (`InvalidArgumentError("events")` naming the event's index and type) and its write limits
/// (`EncodeError`, `too_large` or `too_deep`, as the typed `append`), the metadata's `event_id` the event's
/// id (`InvalidArgumentError`), and no id twice (`IdempotencyError{duplicate_in_batch}`). The columns are
/// kept as given.
template <raw_append_codec Codec>
[[nodiscard]] PreparedRawBatch prepare_raw_append(const Codec& codec, std::string_view stream,
                                                  std::span<const RawEventData> events) {
    detail::validate_stream_id(stream);
    const DecodeOptions read = codec.options();
    const EncodeOptions write = codec.write_options();
    PreparedRawBatch out;
    out.ids.reserve(events.size());
    out.batch.encoded.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
        const RawEventData& e = events[i];
        // Input is quoted only where it can be printed (it may be what is wrong).
        const auto printable = [](const std::string& text) {
            return text.size() <= 256 && text.find('\0') == std::string::npos && detail::is_valid_utf8(text);
        };
        const auto refused = [&](const std::string& why) {
            return InvalidArgumentError(
                "events", "append_raw to stream '" + std::string(stream) + "' refused: event " + std::to_string(i) +
                              (printable(e.type) ? " ('" + e.type + "')" : std::string()) + ": " + why);
        };
        const auto id = Uuid::parse(e.event_id);
        if (!id || id->is_nil()) {
            throw refused("its event_id" + (printable(e.event_id) ? " \"" + e.event_id + "\"" : std::string()) +
                          " is not a non-nil UUID in its canonical 8-4-4-4-12 form");
        }
        if (e.type.empty() || e.type.size() > max_stream_id_length || e.type.find('\0') != std::string::npos ||
            !detail::is_valid_utf8(e.type)) {
            throw refused("its type must be 1 to " + std::to_string(max_stream_id_length) +
                          " bytes of UTF-8 without NUL");
        }
        if (e.schema_version == 0) throw refused("schema versions start at 1, found 0");
        for (const auto& [text, path] : {std::pair{&e.payload, "/payload"}, std::pair{&e.metadata, "/metadata"}}) {
            if (text->size() > write.max_bytes) {
                throw EncodeError(e.type, path,
                                  "the text is " + std::to_string(text->size()) + " bytes long; the limit is " +
                                      std::to_string(write.max_bytes),
                                  EncodeError::Kind::too_large, write.max_bytes);
            }
        }
        nlohmann::json payload;
        try {
            payload = parse_json(e.payload, read);
        } catch (const DecodeError& error) {
            throw refused(std::string("its payload is not JSON the store's readers accept: ") + error.what());
        }
        if (!payload.is_object())
            throw refused("its payload must be a JSON object, found " + std::string(payload.type_name()));
        try {
            detail::check_depth(payload, write.max_depth);
        } catch (const DecodeError& error) {
            throw EncodeError(e.type, "/payload" + error.json_path(),
                              "nesting exceeds the limit of " + std::to_string(write.max_depth) + " levels",
                              EncodeError::Kind::too_deep, write.max_depth);
        }
        Metadata metadata;
        try {
            metadata = codec.deserialize_metadata(e.metadata, e.type);
        } catch (const DecodeError& error) {
            throw refused(std::string("its metadata is not what the store's readers accept: ") + error.what());
        }
        if (metadata.event_id != *id) {
            throw refused("its metadata's event_id " + metadata.event_id.to_string() + " is not its event_id " +
                          id->to_string());
        }
        out.ids.push_back(*id);
        out.batch.encoded.push_back(SerializedEvent{e.type, e.schema_version, e.payload, e.metadata});
    }
    std::vector<Uuid> sorted = out.ids;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i] == sorted[i - 1]) {
            throw IdempotencyError(IdempotencyError::Reason::duplicate_in_batch, std::string(stream), sorted[i]);
        }
    }
    return out;
}

/// Whether a stored row holds the raw event `encoded`: the same type and schema version, and the same payload
/// bytes (or, failing that, the same JSON value).
[[nodiscard]] inline bool same_raw_event(const StoredEventRow& row, const SerializedEvent& encoded) {
    if (row.type != encoded.type || row.schema_version != encoded.schema_version) return false;
    if (row.payload == encoded.payload) return true;
    try {
        return parse_json(row.payload) == parse_json(encoded.payload);
    } catch (const Error&) {
        return false;
    }
}

/// The idempotent-retry rule of `event_store` (`orchestrix::check_idempotent_retry`, the same cases and errors)
/// for a raw batch: `ids[i]` and `encoded[i]` are event `i`'s id and columns, `stored[i]` its stored row (or
/// nothing), compared with `same_raw_event`.
[[nodiscard]] inline std::optional<AppendResult> check_raw_retry(std::string_view stream, std::span<const Uuid> ids,
                                                                 std::span<const SerializedEvent> encoded,
                                                                 std::span<const std::optional<StoredEventRow>> stored,
                                                                 ExpectedVersion expected, stream_version_t current) {
    std::size_t count = 0;
    const Uuid* stored_id = nullptr;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (stored[i]) {
            ++count;
            if (stored_id == nullptr) stored_id = &ids[i];
        }
    }
    if (count == 0) return std::nullopt;
    if (count != ids.size()) {
        throw IdempotencyError(IdempotencyError::Reason::partial_overlap, std::string(stream), *stored_id);
    }
    const stream_version_t first_version = stored[0]->version;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (stored[i]->stream_id != stream) {
            throw IdempotencyError(IdempotencyError::Reason::different_stream, std::string(stream), ids[i]);
        }
        if (stored[i]->version != first_version + i) {
            throw IdempotencyError(IdempotencyError::Reason::different_order, std::string(stream), ids[i]);
        }
        if (!same_raw_event(*stored[i], encoded[i])) {
            throw IdempotencyError(IdempotencyError::Reason::different_payload, std::string(stream), ids[i]);
        }
    }
    const stream_version_t before = first_version - 1;
    const bool expectation_held = expected.kind() == ExpectedVersion::Kind::any ||
                                  expected.kind() == ExpectedVersion::Kind::stream_exists || expected.matches(before);
    if (!expectation_held) throw ConcurrencyError(std::string(stream), expected, current);
    return AppendResult{before + ids.size(), stored[0]->position, stored[ids.size() - 1]->position, false};
}

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
/// - for a store of tagged events (`tagged_event_variant<Events>`), a `durable::QueryRowsRead` returned by
///   `visit_query_rows(const Query& query, position_t after, std::uint64_t max_count, Visitor& visitor) const`,
///   which may be private: hands the first `max_count` events after `after` that match `query` to
///   `visit_row` in position order (never called with 0, nor with a query naming a type `Events` lacks),
///   and reports the store's head position in the same snapshot;
/// - for `append_raw` (only if it is called), `AppendResult write_batch(std::string_view stream,
///   std::span<const Uuid> ids, const durable::PreparedBatch& batch, ExpectedVersion expected, const
///   AppendCondition* condition, Retry&& retry)`, which may be private:
///   the insert that `append_batch` and `append_raw` share, of the checked batch (`ids[i]` the id of
///   `batch.encoded[i]`), calling `retry(std::span<const std::optional<durable::StoredEventRow>> stored,
///   stream_version_t current)` where a stored id may make the batch an idempotent retry (its result, or
///   nothing for a new append, or it throws).
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
    /// What `append_raw` appends.
    using raw_event_type = RawEventData;

    /// Reports every append (`on_append`) and read (`on_read`) to `observer` from now on, under the store's
    /// kind (`Derived::store_kind`: "sqlite", "postgres"; "durable" for a store that names none); nullptr
    /// detaches. Not synchronized: attach before the store is used. The observer must outlive its use.
    void observe(Observer* observer) noexcept { observer_ = observer; }
    /// The attached observer (nullptr if none).
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// Appends `events` to `stream` atomically if the stream matches `expected`. See `event_store`. Also
    /// throws `EncodeError` for an event JSON cannot carry, and the store's `StoreError` if the database
    /// fails; in every case nothing was written. For tagged events, stores each event's tags with it
    /// (`InvalidArgumentError("events")` for a malformed tag, before anything is written).
    AppendResult append(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected) {
        if (observer_ != nullptr) [[unlikely]] {
            return detail::observed_append(*observer_, kind(), stream, events.size(),
                                           [&] { return derived().append_batch(stream, events, expected, nullptr); });
        }
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
        if (observer_ != nullptr) [[unlikely]] {
            return detail::observed_append(*observer_, kind(), stream, events.size(), [&] {
                return derived().append_batch(stream, events, expected, &condition);
            });
        }
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
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            detail::validate_query_types<Events>(query);
            durable::QueryRowsRead read{0, after, after};
            if (max_count != 0) read = derived().visit_query_rows(query, after, max_count, visitor);
            detail::report_read(*observer_, kind(), ReadKind::query, {}, read.count, started);
            return max_count == 0 ? after : read.count == max_count ? read.last : read.head;
        }
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
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            const std::uint64_t visited = max_count == 0 || !detail::is_valid_stream_id(stream)
                                              ? 0
                                              : derived().visit_stream_rows(stream, from_version, max_count, visitor);
            detail::report_read(*observer_, kind(), ReadKind::stream, stream, visited, started);
            return visited;
        }
        if (max_count == 0 || !detail::is_valid_stream_id(stream)) return 0;
        return derived().visit_stream_rows(stream, from_version, max_count, visitor);
    }

    /// Decodes every event from `from_position` on in global order and hands each to `visitor`.
    template <class Visitor>
    std::uint64_t
    visit_all(position_t from_position, Visitor&& visitor,
              std::uint64_t max_count = unlimited) const requires std::invocable<Visitor&, const view_type&> {
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            const std::uint64_t visited =
                max_count == 0 ? 0 : derived().visit_all_rows(from_position, max_count, visitor);
            detail::report_read(*observer_, kind(), ReadKind::all, {}, visited, started);
            return visited;
        }
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

    /// Appends events as they are stored, without compiled event types (what a tool or an import of
    /// CloudEvents uses): the same atomic append, expected version and idempotent retry by event id as
    /// `append` (a stored id with the same type, schema version and payload is a retry that writes nothing;
    /// any other reuse throws `IdempotencyError`), after the checks of `durable::prepare_raw_append`, which
    /// stand in for the codec's, so that every reader can read what it writes. The event's payload is not
    /// decoded: a type this program does not know is stored as given. Events appended so carry no tags:
    /// reads by query match them only by type.
    AppendResult append_raw(std::string_view stream, std::span<const RawEventData> events,
                            ExpectedVersion expected) requires durable::raw_append_codec<Codec> {
        const durable::PreparedRawBatch prepared = durable::prepare_raw_append(derived().codec(), stream, events);
        const auto write = [&] {
            return derived().write_batch(
                stream, std::span<const Uuid>(prepared.ids), prepared.batch, expected, nullptr,
                [&](std::span<const std::optional<durable::StoredEventRow>> stored, stream_version_t current,
                    auto&&... /* the stream's start of life, where a store passes it */) {
                    return durable::check_raw_retry(stream, prepared.ids, prepared.batch.encoded, stored, expected,
                                                    current);
                });
        };
        if (observer_ != nullptr) [[unlikely]] {
            return detail::observed_append(*observer_, kind(), stream, events.size(), write);
        }
        return write();
    }

protected:
    DurableStoreBase() = default;
    ~DurableStoreBase() = default;

    /// Fails to compile, naming the event type without tags: what the DCB calls of a store of untagged
    /// events instantiate (`Dependent`: any type, so that it is instantiated only when called).
    template <class Dependent>
    static void untagged_events() {
        // One error per event type without tags, naming it and saying what to write.
        detail::explain_tagged_variant<Events>::check();
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

    // The kind reported to the observer: `Derived::store_kind`, or "durable".
    static constexpr std::string_view kind() noexcept {
        if constexpr (requires { std::string_view(Derived::store_kind); }) {
            return Derived::store_kind;
        } else {
            return "durable";
        }
    }

    Observer* observer_ = nullptr; // see observe()
};

} // namespace orchestrix

/// The explicit instantiation of a durable store with its default codec (`JsonCodec`): `prefix` is `extern`
/// (a declaration, for a header) or nothing (the definition, in one source file). Used by
/// `ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE` and its kin; `...` is the event variant (commas allowed).
#define ORCHESTRIX_DETAIL_DURABLE_STORE_INSTANCE(prefix, store, ...)                                                   \
    prefix template class orchestrix::store<__VA_ARGS__>

/// Compiles `JsonCodec<Events>` once, with a store compiled once (docs/stores.md, "Compiling a store once"):
/// `ORCHESTRIX_EXTERN_JSON_CODEC(Events);` beside `ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE(Events);` in your
/// header, and `ORCHESTRIX_INSTANTIATE_JSON_CODEC(Events);` in the one source file, once per event variant
/// even when a SQLite and a PostgreSQL store share it.
#define ORCHESTRIX_EXTERN_JSON_CODEC(...) extern template class orchestrix::JsonCodec<__VA_ARGS__>
/// See `ORCHESTRIX_EXTERN_JSON_CODEC`: in exactly one source file of the program.
#define ORCHESTRIX_INSTANTIATE_JSON_CODEC(...) template class orchestrix::JsonCodec<__VA_ARGS__>
