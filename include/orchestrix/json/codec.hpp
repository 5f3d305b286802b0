#pragma once

#include <orchestrix/core/event_fields.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/json/checked_conversion.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/field.hpp>
#include <orchestrix/json/fields.hpp>
#include <orchestrix/json/rfc3339.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

/// One event as a durable store keeps it: four columns. `payload` and `metadata` are JSON object texts
/// (`metadata` holds `event_id`, `correlation_id`, `causation_id`, and `traceparent` for an event recorded in a
/// trace); the same event always gives the same
/// bytes. The stream id, version, position and recording time are the store's own columns.
struct SerializedEvent {
    std::string type;
    std::uint32_t schema_version = 1;
    std::string payload;
    std::string metadata;

    friend bool operator==(const SerializedEvent&, const SerializedEvent&) = default;
};

/// The same four columns, borrowed (e.g. straight from a database row).
struct SerializedEventView {
    std::string_view type;
    std::uint32_t schema_version = 1;
    std::string_view payload;
    std::string_view metadata;

    SerializedEventView(std::string_view type_, std::uint32_t schema_version_, std::string_view payload_,
                        std::string_view metadata_) noexcept
        : type(type_), schema_version(schema_version_), payload(payload_), metadata(metadata_) {}
    SerializedEventView(const SerializedEvent& e) noexcept // NOLINT(google-explicit-constructor)
        : type(e.type), schema_version(e.schema_version), payload(e.payload), metadata(e.metadata) {}
};

/// Turns stored JSON of schema version `k` into version `k + 1`.
using Upcaster = std::function<nlohmann::json(nlohmann::json payload)>;

namespace detail {

template <class Events, std::size_t... I>
constexpr std::array<std::string_view, sizeof...(I)> variant_names(std::index_sequence<I...>) {
    return {event_name<std::variant_alternative_t<I, Events>>...};
}

template <class Events, std::size_t... I>
constexpr std::array<std::uint32_t, sizeof...(I)> variant_versions(std::index_sequence<I...>) {
    return {event_schema_version<std::variant_alternative_t<I, Events>>...};
}

template <class E>
concept json_convertible = requires(nlohmann::json& j, const nlohmann::json& cj, const E& e) {
    j = e;
    { cj.get<E>() } -> std::same_as<E>;
};

template <class V>
struct all_json_convertible;
template <class... Ts>
struct all_json_convertible<std::variant<Ts...>> : std::bool_constant<(json_convertible<Ts> && ...)> {};

/// The upcasters that turn JSON stored at schema version `stored` into version `current`, in order
/// (`chain[k - 1]` upcasts k to k + 1; events and snapshot states both keep them so). Throws the
/// `DecodeError` for version 0, for a version newer than `current`, and for a missing step, naming `type`.
inline std::vector<const Upcaster*> upcaster_steps(const std::vector<Upcaster>* chain, const std::string& type,
                                                   std::uint32_t stored, std::uint32_t current) {
    if (stored == 0) {
        throw DecodeError(DecodeError::Kind::invalid_value, type, "/schema_version",
                          "schema versions start at 1, found 0");
    }
    if (stored > current) {
        throw DecodeError(DecodeError::Kind::newer_schema_version, type, "/schema_version",
                          "stored with schema version " + std::to_string(stored) + ", but this program knows " +
                              std::to_string(current) + " at most; upgrade the program to read it");
    }
    std::vector<const Upcaster*> steps;
    for (std::uint32_t v = stored; v < current; ++v) {
        if (chain == nullptr || chain->size() < v || !(*chain)[v - 1]) {
            throw DecodeError(DecodeError::Kind::missing_upcaster, type, "/schema_version",
                              "stored with schema version " + std::to_string(stored) +
                                  ", and no upcaster from version " + std::to_string(v) + " to " +
                                  std::to_string(v + 1) + " is registered");
        }
        steps.push_back(&(*chain)[v - 1]);
    }
    return steps;
}

/// Runs `steps` (from `upcaster_steps`) on `value` in place, the JSON at `path` of a `type` stored at
/// version `stored`. An upcaster's `DecodeError` gets the path as context; any other exception becomes
/// `DecodeError{upcast_failed}` naming the step.
inline void run_upcasters(const std::vector<const Upcaster*>& steps, const std::string& type, std::string_view path,
                          std::uint32_t stored, nlohmann::json& value) {
    std::uint32_t v = stored;
    for (const Upcaster* step : steps) {
        try {
            value = (*step)(std::move(value));
        } catch (DecodeError& e) {
            e.add_context(path, type);
            throw;
        } catch (const std::exception& e) {
            throw DecodeError(DecodeError::Kind::upcast_failed, type, std::string(path),
                              "the upcaster from version " + std::to_string(v) + " threw: " + e.what());
        }
        ++v;
    }
}

} // namespace detail

/// The JSON codec of an event variant: encodes and decodes events, envelopes and recorded events, and
/// upcasts stored JSON of old schema versions. See docs/serialization.md.
///
/// - The type registry comes from `Events`: each alternative's `event_name<E>` and `event_schema_version<E>`.
/// - Each event converts through nlohmann's `to_json`/`from_json` found for it: the field-name conversion of
///   <orchestrix/json/fields.hpp> for an event that declares `static constexpr std::array fields{...}`, or
///   ADL (`NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(E, field...)` next to the event, or hand-written functions). Hand-written
///   `from_json` can use `orchestrix::json_field<T>` for checked reads; generated ones are held to the same strictness
///   by the round-trip check (`DecodeOptions::verify_round_trip`).
/// - Decoding never yields a default-constructed event: any problem throws `DecodeError`.
/// - Register upcasters and renames before sharing the codec; after that it is read-only and safe to use
///   from many threads.
template <event_variant Events>
class JsonCodec {
    static_assert(detail::all_json_convertible<Events>::value,
                  "orchestrix::JsonCodec: every event type needs a JSON conversion. In each event add "
                  "`static constexpr std::array fields{\"field1\", \"field2\", ...}` (its field names, in order), "
                  "or next to it NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EventType, field1, field2, ...), or write "
                  "`void to_json(nlohmann::json&, const EventType&)` and "
                  "`void from_json(const nlohmann::json&, EventType&)` in the event's namespace");

    static constexpr std::size_t count = std::variant_size_v<Events>;
    static constexpr auto names = detail::variant_names<Events>(std::make_index_sequence<count>{});
    static constexpr auto versions = detail::variant_versions<Events>(std::make_index_sequence<count>{});

public:
    using event_type = Events;

    /// A codec that reads with `options` and lets durable stores write only what it can read: `write`'s
    /// limits (0: the read limit) must not exceed `options`' (`InvalidArgumentError` otherwise).
    explicit JsonCodec(DecodeOptions options = {}, EncodeOptions write = {})
        : options_(options), write_(resolve(write, options)) {
        for (std::size_t i = 0; i < count; ++i) index_.emplace(std::string(names[i]), i);
    }

    /// The read limits and strictness.
    [[nodiscard]] const DecodeOptions& options() const noexcept { return options_; }
    /// The write limits, resolved (no zeros): what `serialize` holds every event to.
    [[nodiscard]] const EncodeOptions& write_options() const noexcept { return write_; }

    /// Registers the upcaster of event type `type` from schema version `from_version` to `from_version + 1`.
    /// Throws `InvalidArgumentError` for an unknown type, a version that is not below the type's current
    /// one, or a second upcaster for the same step.
    JsonCodec& add_upcaster(std::string_view type, std::uint32_t from_version, Upcaster upcaster) {
        const std::size_t i = index_of(type, "add_upcaster");
        if (from_version == 0 || from_version >= versions[i]) {
            throw InvalidArgumentError("from_version",
                                       "add_upcaster('" + std::string(type) + "', " + std::to_string(from_version) +
                                           "): the version must be between 1 and " + std::to_string(versions[i] - 1) +
                                           ", the type's current schema version minus one");
        }
        if (!upcaster) throw InvalidArgumentError("upcaster", "add_upcaster: the upcaster is empty");
        auto& chain = upcasters_[i];
        chain.resize(versions[i] - 1);
        if (chain[from_version - 1]) {
            throw InvalidArgumentError("from_version", "add_upcaster('" + std::string(type) + "', " +
                                                           std::to_string(from_version) +
                                                           "): that step has an upcaster already");
        }
        chain[from_version - 1] = std::move(upcaster);
        return *this;
    }

    /// Reads events stored under the old name `old_name` as the event type `new_name`; their schema
    /// versions continue in `new_name`'s upcaster chain.
    JsonCodec& add_rename(std::string_view old_name, std::string_view new_name) {
        const std::size_t i = index_of(new_name, "add_rename");
        if (index_.contains(old_name)) {
            throw InvalidArgumentError("old_name", "add_rename: '" + std::string(old_name) +
                                                       "' is the name of a current event type or renamed already");
        }
        index_.emplace(std::string(old_name), i);
        return *this;
    }

    // ---- events ----------------------------------------------------------------------------------------

    /// The event's payload as JSON (throws `EncodeError` for what JSON cannot carry).
    [[nodiscard]] nlohmann::json encode_payload(const Events& event) const {
        return std::visit(
            [](const auto& e) {
                using E = std::remove_cvref_t<decltype(e)>;
                return to_checked_json(e, event_name<E>);
            },
            event);
    }

    /// `{"type": ..., "schema_version": ..., "payload": {...}}`.
    [[nodiscard]] nlohmann::json encode(const Events& event) const {
        return nlohmann::json{{"type", event_name_of(event)},
                              {"schema_version", versions[event.index()]},
                              {"payload", encode_payload(event)}};
    }

    /// The event stored as `type` at `schema_version` with this payload, upcast to the current schema.
    [[nodiscard]] Events decode_payload(std::string_view type, std::uint32_t schema_version,
                                        nlohmann::json payload) const {
        const std::size_t i = resolve(type);
        detail::check_depth_located(payload, options_.max_depth, names[i], "/payload");
        payload = upcast(i, schema_version, std::move(payload));
        return decoders[i](payload, options_);
    }

    /// Decodes `{"type", "schema_version", "payload"}` (as made by `encode`).
    [[nodiscard]] Events decode(const nlohmann::json& document) const {
        detail::check_depth_located(document, options_.max_depth, {}, {});
        const auto fields = read_event_fields(document, {"type", "schema_version", "payload"});
        return decode_payload(fields.type, fields.schema_version, document.at("payload"));
    }

    /// Parses (strictly) and decodes an event document.
    [[nodiscard]] Events parse(std::string_view text) const { return decode(parse_json(text, options_)); }

    // ---- envelopes and recorded events ------------------------------------------------------------------

    /// `{"type", "schema_version", "payload", "metadata": {"event_id", "correlation_id", "causation_id"}}`
    /// (and `"traceparent"` in the metadata for an event with a valid `Metadata::trace`).
    [[nodiscard]] nlohmann::json encode(const EventEnvelope<Events>& envelope) const {
        nlohmann::json j = encode(envelope.event);
        j["metadata"] = encode_metadata(envelope.metadata);
        return j;
    }

    /// The recorded event with every field: stream id, version, position, `recorded_at` (RFC 3339, UTC,
    /// microseconds: finer digits are dropped), type, schema version, payload and metadata.
    [[nodiscard]] nlohmann::json encode(const RecordedEvent<Events>& recorded) const {
        nlohmann::json j = encode(recorded.event);
        j["metadata"] = encode_metadata(recorded.metadata);
        j["stream_id"] = recorded.stream_id;
        j["version"] = recorded.version;
        j["position"] = recorded.position;
        j["recorded_at"] = to_rfc3339(recorded.metadata.recorded_at);
        return j;
    }

    [[nodiscard]] EventEnvelope<Events> decode_envelope(const nlohmann::json& document) const {
        detail::check_depth_located(document, options_.max_depth, {}, {});
        const auto fields = read_event_fields(document, {"type", "schema_version", "payload", "metadata"});
        Events event = decode_payload(fields.type, fields.schema_version, document.at("payload"));
        return EventEnvelope<Events>{std::move(event), decode_metadata(field(document, "metadata"), fields.type)};
    }

    [[nodiscard]] RecordedEvent<Events> decode_recorded(const nlohmann::json& document) const {
        detail::check_depth_located(document, options_.max_depth, {}, {});
        const auto fields = read_event_fields(document, {"type", "schema_version", "payload", "metadata", "stream_id",
                                                         "version", "position", "recorded_at"});
        Events event = decode_payload(fields.type, fields.schema_version, document.at("payload"));
        Metadata metadata = decode_metadata(field(document, "metadata"), fields.type);
        metadata.recorded_at = read_time(document, "recorded_at", fields.type);
        return RecordedEvent<Events>{
            read_stream_id(document, fields.type), read_counter(document, "version", fields.type),
            read_counter(document, "position", fields.type), std::move(event), std::move(metadata)};
    }

    [[nodiscard]] EventEnvelope<Events> parse_envelope(std::string_view text) const {
        return decode_envelope(parse_json(text, options_));
    }
    [[nodiscard]] RecordedEvent<Events> parse_recorded(std::string_view text) const {
        return decode_recorded(parse_json(text, options_));
    }

    /// Any of the encodings above as compact text.
    template <class T>
    [[nodiscard]] std::string dump(const T& value) const {
        return encode(value).dump();
    }

    // ---- the durable-store API --------------------------------------------------------------------------

    /// The four columns a durable store writes for an envelope.
    [[nodiscard]] SerializedEvent serialize(const EventEnvelope<Events>& envelope) const {
        return serialize(envelope.event, envelope.metadata);
    }

    /// The four columns of an event, held to the write limits (`write_options()`): throws `EncodeError`
    /// naming the event, the field and the limit for a text over `max_bytes`, nesting over `max_depth`, or
    /// (with `verify_decodable`) an encoding that this codec would not decode back to the same event. What
    /// `serialize` returns, `deserialize` reads.
    [[nodiscard]] SerializedEvent serialize(const Events& event, const Metadata& metadata) const {
        const std::string_view name = event_name_of(event);
        const nlohmann::json payload = encode_payload(event);
        check_write_depth(payload, name, "/payload");
        SerializedEvent out{std::string(name), versions[event.index()], payload.dump(),
                            encode_metadata(metadata).dump()};
        check_write_size(out.payload, name, "/payload");
        check_write_size(out.metadata, name, "/metadata");
        if (write_.verify_decodable) verify_decodable(out, event, metadata);
        return out;
    }

    /// The event of a stored row: its columns plus the store's stream id, version, position and time.
    /// Parses both texts strictly and upcasts; throws `DecodeError` (paths `/payload/...`, `/metadata/...`).
    [[nodiscard]] RecordedEvent<Events> deserialize(const SerializedEventView& row, std::string stream_id,
                                                    stream_version_t version, position_t position,
                                                    std::chrono::system_clock::time_point recorded_at) const {
        Events event = deserialize_event(row.type, row.schema_version, row.payload);
        Metadata metadata = deserialize_metadata(row.metadata, row.type);
        metadata.recorded_at = recorded_at;
        return RecordedEvent<Events>{std::move(stream_id), version, position, std::move(event), std::move(metadata)};
    }

    /// The event alone, from the type, schema version and payload columns.
    [[nodiscard]] Events deserialize_event(std::string_view type, std::uint32_t schema_version,
                                           std::string_view payload) const {
        const std::size_t i = resolve(type);
        nlohmann::json j;
        try {
            j = parse_json(payload, options_);
        } catch (DecodeError& e) {
            e.add_context("/payload", names[i]);
            throw;
        }
        payload_must_be_object(j, names[i]);
        j = upcast(i, schema_version, std::move(j));
        return decoders[i](j, options_);
    }

    /// The metadata column (`recorded_at` is left unset: it is the store's own column).
    [[nodiscard]] Metadata deserialize_metadata(std::string_view metadata, std::string_view type = {}) const {
        if (auto plain = read_plain_metadata(metadata)) return std::move(*plain);
        nlohmann::json j;
        try {
            j = parse_json(metadata, options_);
        } catch (DecodeError& e) {
            e.add_context("/metadata", type);
            throw;
        }
        return decode_metadata(j, type);
    }

    /// The metadata as JSON: `{"event_id": "<uuid>", "correlation_id": "...", "causation_id": "..."}`, and
    /// `"traceparent": "00-<trace id>-<span id>-<flags>"` when `metadata.trace` is valid (an empty or invalid
    /// trace context writes nothing, so untraced events keep the bytes they always had).
    [[nodiscard]] static nlohmann::json encode_metadata(const Metadata& metadata) {
        nlohmann::json j{{"event_id", metadata.event_id.to_string()},
                         {"correlation_id", metadata.correlation_id},
                         {"causation_id", metadata.causation_id}};
        if (metadata.trace.valid()) j["traceparent"] = metadata.trace.to_string();
        if (!detail::is_encodable(j)) {
            std::string path = "/metadata";
            detail::check_encodable(j, "metadata", path);
        }
        return j;
    }

private:
    static EncodeOptions resolve(EncodeOptions write, const DecodeOptions& read) {
        if (write.max_bytes == 0) write.max_bytes = read.max_bytes;
        if (write.max_depth == 0) write.max_depth = read.max_depth;
        if (write.max_bytes > read.max_bytes) {
            throw InvalidArgumentError("write",
                                       "JsonCodec: the write limit max_bytes (" + std::to_string(write.max_bytes) +
                                           ") is larger than the read limit (" + std::to_string(read.max_bytes) +
                                           "): events appended could not be read back");
        }
        if (write.max_depth > read.max_depth) {
            throw InvalidArgumentError("write",
                                       "JsonCodec: the write limit max_depth (" + std::to_string(write.max_depth) +
                                           ") is larger than the read limit (" + std::to_string(read.max_depth) +
                                           "): events appended could not be read back");
        }
        return write;
    }

    void check_write_size(const std::string& text, std::string_view name, const char* path) const {
        if (text.size() > write_.max_bytes) {
            throw EncodeError(std::string(name), path,
                              "the text is " + std::to_string(text.size()) + " bytes long; the limit is " +
                                  std::to_string(write_.max_bytes),
                              EncodeError::Kind::too_large, write_.max_bytes);
        }
    }

    void check_write_depth(const nlohmann::json& value, std::string_view name, const char* path) const {
        try {
            detail::check_depth(value, write_.max_depth);
        } catch (const DecodeError& e) {
            throw EncodeError(std::string(name), path + e.json_path(),
                              "nesting exceeds the limit of " + std::to_string(write_.max_depth) + " levels",
                              EncodeError::Kind::too_deep, write_.max_depth);
        }
    }

    void verify_decodable(const SerializedEvent& out, const Events& event, const Metadata& metadata) const {
        const std::string name = out.type;
        try {
            if (!orchestrix::same_event(deserialize_event(out.type, out.schema_version, out.payload), event)) {
                throw EncodeError(name, "/payload",
                                  "the payload decodes to a different event: its to_json and from_json disagree",
                                  EncodeError::Kind::not_decodable);
            }
            const Metadata back = deserialize_metadata(out.metadata, name);
            const TraceContext trace = metadata.trace.valid() ? metadata.trace : TraceContext{};
            if (back.event_id != metadata.event_id || back.correlation_id != metadata.correlation_id ||
                back.causation_id != metadata.causation_id || back.trace != trace) {
                throw EncodeError(name, "/metadata", "the metadata decodes to different ids",
                                  EncodeError::Kind::not_decodable);
            }
        } catch (const DecodeError& e) {
            throw EncodeError(name, e.json_path(), std::string("it could not be read back: ") + e.what(),
                              EncodeError::Kind::not_decodable);
        }
    }

    // The metadata column in the form `encode_metadata` writes (a flat object of the known fields, each a
    // string without escapes), read without a JSON DOM; nothing for any other text, valid or not, which
    // `deserialize_metadata` then parses strictly (and refuses with its typed error).
    std::optional<Metadata> read_plain_metadata(std::string_view text) const {
        if (text.size() > options_.max_bytes || options_.max_depth == 0) return std::nullopt;
        std::array<detail::PlainStringMember, 4> members{};
        const auto found = detail::scan_plain_string_object(text, members);
        if (!found) return std::nullopt;
        constexpr std::array<std::string_view, 4> keys{"event_id", "correlation_id", "causation_id", "traceparent"};
        std::array<std::string_view, 4> values{};
        std::array<bool, 4> seen{};
        for (std::size_t m = 0; m < *found; ++m) {
            std::size_t k = 0;
            while (k < keys.size() && keys[k] != members[m].key) ++k;
            if (k == keys.size() || seen[k]) return std::nullopt; // unknown or twice: the strict path says which
            seen[k] = true;
            values[k] = members[m].value;
        }
        const auto id = Uuid::parse(values[0]);
        if (!seen[0] || !id || id->is_nil()) return std::nullopt;
        Metadata metadata;
        metadata.event_id = *id;
        metadata.correlation_id = values[1];
        metadata.causation_id = values[2];
        if (seen[3]) {
            const auto trace = TraceContext::parse(values[3]);
            if (!trace) return std::nullopt;
            metadata.trace = *trace;
        }
        return metadata;
    }

    struct EventFields {
        std::string type;
        std::uint32_t schema_version = 0;
    };

    using decoder = Events (*)(const nlohmann::json&, const DecodeOptions&);

    template <std::size_t I>
    static Events decode_alternative(const nlohmann::json& payload, const DecodeOptions& options) {
        using E = std::variant_alternative_t<I, Events>;
        payload_must_be_object(payload, event_name<E>);
        return Events{std::in_place_index<I>, from_checked_json<E>(payload, event_name<E>, "/payload", options)};
    }

    template <std::size_t... I>
    static constexpr std::array<decoder, count> make_decoders(std::index_sequence<I...>) {
        return {&decode_alternative<I>...};
    }
    static constexpr std::array<decoder, count> decoders = make_decoders(std::make_index_sequence<count>{});

    static void payload_must_be_object(const nlohmann::json& payload, std::string_view type) {
        if (!payload.is_object()) {
            throw DecodeError(DecodeError::Kind::wrong_type, std::string(type), "/payload",
                              "an event payload must be a JSON object, found " +
                                  std::string(detail::json_type_name(payload)));
        }
    }

    std::size_t index_of(std::string_view type, std::string_view operation) const {
        const auto found = index_.find(type);
        if (found == index_.end() || names[found->second] != type) {
            throw InvalidArgumentError("type", std::string(operation) + ": '" + std::string(type) +
                                                   "' is not the name of an event type of this codec");
        }
        return found->second;
    }

    std::size_t resolve(std::string_view type) const {
        const auto found = index_.find(type);
        if (found == index_.end()) {
            std::string known;
            for (auto name : names) known += (known.empty() ? "" : ", ") + std::string(name);
            throw DecodeError(DecodeError::Kind::unknown_type, std::string(type), "/type",
                              "no event type of this name; the codec knows " + known);
        }
        return found->second;
    }

    nlohmann::json upcast(std::size_t i, std::uint32_t stored, nlohmann::json payload) const {
        if (stored == versions[i] && stored != 0) return payload; // current already: nothing to run
        const std::string type(names[i]);
        const auto chain = upcasters_.find(i);
        const auto steps =
            detail::upcaster_steps(chain == upcasters_.end() ? nullptr : &chain->second, type, stored, versions[i]);
        detail::run_upcasters(steps, type, "/payload", stored, payload);
        return payload;
    }

    static const nlohmann::json& field(const nlohmann::json& document, std::string_view key) {
        return document.at(std::string(key));
    }

    EventFields read_event_fields(const nlohmann::json& document,
                                  std::initializer_list<std::string_view> allowed) const {
        if (!document.is_object()) {
            throw DecodeError(DecodeError::Kind::wrong_type, {}, {},
                              "expected an object, found " + std::string(detail::json_type_name(document)));
        }
        for (const auto& [key, value] : document.items()) {
            bool known = false;
            for (auto name : allowed) known = known || name == key;
            if (!known) {
                throw DecodeError(DecodeError::Kind::unknown_field, {}, detail::pointer(key),
                                  "an event document has no field \"" + key + "\"");
            }
        }
        for (auto name : allowed) {
            if (!document.contains(std::string(name))) {
                throw DecodeError(DecodeError::Kind::missing_field, {}, detail::pointer(name),
                                  "the required field \"" + std::string(name) + "\" is absent");
            }
        }
        EventFields fields{json_field<std::string>(document, "type"), 0};
        try {
            fields.schema_version = json_field<std::uint32_t>(document, "schema_version");
        } catch (DecodeError& e) {
            e.add_context({}, fields.type);
            throw;
        }
        return fields;
    }

    static Metadata decode_metadata(const nlohmann::json& j, std::string_view type) {
        try {
            if (!j.is_object()) detail::wrong_type("an object", j);
            for (const auto& [key, value] : j.items()) {
                if (key != "event_id" && key != "correlation_id" && key != "causation_id" && key != "traceparent") {
                    throw DecodeError(DecodeError::Kind::unknown_field, {}, detail::pointer(key),
                                      "metadata has no field \"" + key + "\"");
                }
            }
            Metadata metadata;
            const auto id_text = json_field<std::string>(j, "event_id");
            const auto id = Uuid::parse(id_text);
            if (!id || id->is_nil()) {
                throw DecodeError(DecodeError::Kind::invalid_value, {}, "/event_id",
                                  "\"" + id_text + "\" is not a non-nil UUID in its canonical 8-4-4-4-12 form");
            }
            metadata.event_id = *id;
            metadata.correlation_id = json_field_or<std::string>(j, "correlation_id", {});
            metadata.causation_id = json_field_or<std::string>(j, "causation_id", {});
            if (j.contains("traceparent")) {
                const auto text = json_field<std::string>(j, "traceparent");
                const auto trace = TraceContext::parse(text);
                if (!trace) {
                    throw DecodeError(DecodeError::Kind::invalid_value, {}, "/traceparent",
                                      "\"" + text +
                                          "\" is not a W3C traceparent (\"00-<32 hex>-<16 hex>-<2 hex>\", lowercase, "
                                          "with non-zero ids)");
                }
                metadata.trace = *trace;
            }
            return metadata;
        } catch (DecodeError& e) {
            e.add_context("/metadata", type);
            throw;
        }
    }

    static std::string read_stream_id(const nlohmann::json& document, std::string_view type) {
        try {
            auto stream = json_field<std::string>(document, "stream_id");
            detail::validate_stream_id(stream);
            return stream;
        } catch (DecodeError& e) {
            e.add_context({}, type);
            throw;
        } catch (const InvalidArgumentError& e) {
            throw DecodeError(DecodeError::Kind::invalid_value, std::string(type), "/stream_id", e.what());
        }
    }

    static std::uint64_t read_counter(const nlohmann::json& document, std::string_view key, std::string_view type) {
        std::uint64_t value = 0;
        try {
            value = json_field<std::uint64_t>(document, key);
        } catch (DecodeError& e) {
            e.add_context({}, type);
            throw;
        }
        if (value == 0 || value > max_version) {
            throw DecodeError(DecodeError::Kind::out_of_range, std::string(type), detail::pointer(key),
                              std::to_string(value) + " is not between 1 and " + std::to_string(max_version));
        }
        return value;
    }

    static std::chrono::system_clock::time_point read_time(const nlohmann::json& document, std::string_view key,
                                                           std::string_view type) {
        std::string text;
        try {
            text = json_field<std::string>(document, key);
        } catch (DecodeError& e) {
            e.add_context({}, type);
            throw;
        }
        const auto time = from_rfc3339(text);
        if (!time) {
            throw DecodeError(DecodeError::Kind::invalid_value, std::string(type), detail::pointer(key),
                              "\"" + text + "\" is not an RFC 3339 UTC time like 2024-05-01T12:34:56.123456Z");
        }
        return *time;
    }

    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    DecodeOptions options_;
    EncodeOptions write_;
    std::unordered_map<std::string, std::size_t, name_hash, std::equal_to<>>
        index_;                                                        // name (or old name) -> alternative
    std::unordered_map<std::size_t, std::vector<Upcaster>> upcasters_; // alternative -> step k at [k - 1]
};

} // namespace orchestrix
