#pragma once

// CloudEvents 1.0 in the JSON event format: recorded events (typed, through a `JsonCodec`, or raw, as a durable
// store keeps them) to and from CloudEvents, and the export and import of stores as JSON Lines of CloudEvents.
// docs/operations.md ("CloudEvents") has the attribute table.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/detail/utf8.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/errors.hpp>
#include <orchestrix/json/field.hpp>
#include <orchestrix/json/rfc3339.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <istream>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// One CloudEvent (CloudEvents 1.0) as its JSON format carries it, before orchestrix reads any meaning into
/// it: what `decode_cloudevent` accepts from any producer. Optional attributes that are absent (or `null`,
/// which the JSON format treats as absent) are empty.
struct CloudEvent {
    std::string id{};
    std::string source{};
    std::string specversion{"1.0"};
    std::string type{};
    std::optional<std::string> datacontenttype{};
    std::optional<std::string> dataschema{};
    std::optional<std::string> subject{};
    /// As written (RFC 3339); orchestrix's own readers parse it.
    std::optional<std::string> time{};
    /// The `data` member: any JSON value (`null` included) when present.
    std::optional<nlohmann::json> data{};
    /// The `data_base64` member (binary data), as written.
    std::optional<std::string> data_base64{};
    /// The extension attributes that are set: a boolean, an integer or a string each.
    std::map<std::string, nlohmann::json> extensions{};

    friend bool operator==(const CloudEvent&, const CloudEvent&) = default;
};

/// How recorded events become CloudEvents.
struct CloudEventOptions {
    /// The `source` attribute (a URI-reference naming the producer): the application or the store.
    std::string source = "/orchestrix";
};

/// The names of the extension attributes orchestrix writes and reads.
namespace cloudevent_extension {
inline constexpr std::string_view stream_version = "streamversion";
inline constexpr std::string_view position = "position";
inline constexpr std::string_view schema_version = "schemaversion";
inline constexpr std::string_view correlation_id = "correlationid";
inline constexpr std::string_view causation_id = "causationid";
inline constexpr std::string_view traceparent = "traceparent"; // the CloudEvents distributed-tracing extension
} // namespace cloudevent_extension

namespace detail {

/// CloudEvents attribute names: lowercase ASCII letters and digits, at least one.
[[nodiscard]] inline bool is_cloudevent_attribute_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    for (const char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
    }
    return true;
}

[[noreturn]] inline void cloudevent_error(DecodeError::Kind kind, std::string_view attribute, const std::string& detail,
                                          std::string_view type = {}) {
    throw DecodeError(kind, std::string(type), pointer(attribute),
                      "the attribute \"" + std::string(attribute) + "\" " + detail);
}

// An optional String attribute: absent or null is unset.
inline std::optional<std::string> cloudevent_string(const nlohmann::json& value, std::string_view attribute) {
    if (value.is_null()) return std::nullopt;
    if (!value.is_string()) {
        cloudevent_error(DecodeError::Kind::wrong_type, attribute,
                         "must be a string, found " + std::string(json_type_name(value)));
    }
    return value.get<std::string>();
}

// A counter written as a CloudEvents Integer when it fits one (32 bits, signed), as a decimal String otherwise.
[[nodiscard]] inline nlohmann::json cloudevent_counter(std::uint64_t value) {
    if (value <= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) return value;
    return std::to_string(value);
}

// Reads a counter extension (an integer, or a string of decimal digits) between 1 and `max`.
inline std::uint64_t read_cloudevent_counter(const CloudEvent& event, std::string_view attribute, std::uint64_t max) {
    const auto found = event.extensions.find(std::string(attribute));
    if (found == event.extensions.end()) {
        cloudevent_error(DecodeError::Kind::missing_field, attribute, "is required and absent", event.type);
    }
    const nlohmann::json& value = found->second;
    std::uint64_t n = 0;
    if (value.is_number_unsigned()) {
        n = value.get<std::uint64_t>();
    } else if (value.is_string()) {
        const std::string& text = value.get_ref<const std::string&>();
        bool ok = !text.empty() && text.size() <= 19 && text[0] != '0';
        for (const char c : text) ok = ok && c >= '0' && c <= '9';
        if (!ok) {
            cloudevent_error(DecodeError::Kind::invalid_value, attribute,
                             "must be a positive integer (or its decimal digits), found \"" + text + "\"", event.type);
        }
        n = std::stoull(text);
    } else if (value.is_number_integer()) {
        const auto signed_value = value.get<std::int64_t>();
        n = signed_value < 0 ? 0 : static_cast<std::uint64_t>(signed_value);
    } else {
        cloudevent_error(DecodeError::Kind::wrong_type, attribute,
                         "must be an integer, found " + std::string(json_type_name(value)), event.type);
    }
    if (n == 0 || n > max) {
        cloudevent_error(DecodeError::Kind::out_of_range, attribute,
                         "must be between 1 and " + std::to_string(max) + ", found " + value.dump(), event.type);
    }
    return n;
}

inline std::string read_cloudevent_extension_string(const CloudEvent& event, std::string_view attribute) {
    const auto found = event.extensions.find(std::string(attribute));
    if (found == event.extensions.end()) return {};
    if (!found->second.is_string()) {
        cloudevent_error(DecodeError::Kind::wrong_type, attribute,
                         "must be a string, found " + std::string(json_type_name(found->second)), event.type);
    }
    return found->second.get<std::string>();
}

/// What orchestrix reads from a CloudEvent besides its data: the columns of a recorded event.
struct RecordedCloudEvent {
    Uuid id{};
    std::string stream_id{};
    stream_version_t version = 0;
    position_t position = 0;
    std::uint32_t schema_version = 0;
    std::chrono::system_clock::time_point time{};
    std::string correlation_id{};
    std::string causation_id{};
    TraceContext trace{}; // empty if absent
    const nlohmann::json* data = nullptr;
};

/// Reads the attributes of a recorded event; throws `DecodeError` naming the first one that is missing,
/// of the wrong type or refused.
inline RecordedCloudEvent read_recorded_cloudevent(const CloudEvent& event) {
    RecordedCloudEvent out;
    const auto id = Uuid::parse(event.id);
    if (!id || id->is_nil()) {
        cloudevent_error(DecodeError::Kind::invalid_value, "id",
                         "must be a non-nil UUID in its canonical 8-4-4-4-12 form (orchestrix event ids are "
                         "UUIDs), found \"" +
                             event.id + "\"",
                         event.type);
    }
    out.id = *id;
    if (!event.subject) {
        cloudevent_error(DecodeError::Kind::missing_field, "subject", "(the stream id) is required and absent",
                         event.type);
    }
    if (!is_valid_stream_id(*event.subject)) {
        cloudevent_error(DecodeError::Kind::invalid_value, "subject",
                         "(the stream id) must be 1 to " + std::to_string(max_stream_id_length) +
                             " bytes of UTF-8 without NUL",
                         event.type);
    }
    out.stream_id = *event.subject;
    if (!event.time) cloudevent_error(DecodeError::Kind::missing_field, "time", "is required and absent", event.type);
    const auto time = from_rfc3339(*event.time);
    if (!time) {
        cloudevent_error(DecodeError::Kind::invalid_value, "time",
                         "must be an RFC 3339 UTC time like 2024-05-01T12:34:56.123456Z, found \"" + *event.time + "\"",
                         event.type);
    }
    out.time = *time;
    if (event.datacontenttype && *event.datacontenttype != "application/json") {
        cloudevent_error(DecodeError::Kind::invalid_value, "datacontenttype",
                         R"(must be "application/json" (or absent), found ")" + *event.datacontenttype + "\"",
                         event.type);
    }
    if (event.data_base64) {
        cloudevent_error(DecodeError::Kind::invalid_value, "data_base64",
                         "is binary data; an orchestrix event's data is a JSON object in \"data\"", event.type);
    }
    if (!event.data) cloudevent_error(DecodeError::Kind::missing_field, "data", "is required and absent", event.type);
    if (!event.data->is_object()) {
        cloudevent_error(DecodeError::Kind::wrong_type, "data",
                         "must be a JSON object, found " + std::string(json_type_name(*event.data)), event.type);
    }
    out.data = &*event.data;
    out.version = read_cloudevent_counter(event, cloudevent_extension::stream_version, max_version);
    out.position = read_cloudevent_counter(event, cloudevent_extension::position, max_version);
    out.schema_version = static_cast<std::uint32_t>(read_cloudevent_counter(event, cloudevent_extension::schema_version,
                                                                            std::numeric_limits<std::uint32_t>::max()));
    out.correlation_id = read_cloudevent_extension_string(event, cloudevent_extension::correlation_id);
    out.causation_id = read_cloudevent_extension_string(event, cloudevent_extension::causation_id);
    const std::string traceparent = read_cloudevent_extension_string(event, cloudevent_extension::traceparent);
    if (!traceparent.empty()) {
        const auto trace = TraceContext::parse(traceparent);
        if (!trace) {
            cloudevent_error(DecodeError::Kind::invalid_value, cloudevent_extension::traceparent,
                             "must be a W3C traceparent (\"00-<32 hex>-<16 hex>-<2 hex>\", lowercase, non-zero ids), "
                             "found \"" +
                                 traceparent + "\"",
                             event.type);
        }
        out.trace = *trace;
    }
    return out;
}

/// The attributes orchestrix writes for a recorded event, `data` aside.
inline CloudEvent recorded_cloudevent(const CloudEventOptions& options, std::string_view id, std::string_view type,
                                      std::string_view stream_id, stream_version_t version, position_t position,
                                      std::uint32_t schema_version, std::chrono::system_clock::time_point time,
                                      std::string_view correlation_id, std::string_view causation_id,
                                      std::string_view traceparent) {
    if (options.source.empty() || !is_valid_utf8(options.source)) {
        throw InvalidArgumentError("options", "CloudEventOptions::source must be a non-empty URI-reference");
    }
    CloudEvent ce;
    ce.id = std::string(id);
    ce.source = options.source;
    ce.type = std::string(type);
    ce.subject = std::string(stream_id);
    ce.time = to_rfc3339(time);
    ce.datacontenttype = "application/json";
    ce.extensions.emplace(cloudevent_extension::stream_version, cloudevent_counter(version));
    ce.extensions.emplace(cloudevent_extension::position, cloudevent_counter(position));
    ce.extensions.emplace(cloudevent_extension::schema_version, cloudevent_counter(schema_version));
    if (!correlation_id.empty()) ce.extensions.emplace(cloudevent_extension::correlation_id, correlation_id);
    if (!causation_id.empty()) ce.extensions.emplace(cloudevent_extension::causation_id, causation_id);
    if (!traceparent.empty()) ce.extensions.emplace(cloudevent_extension::traceparent, traceparent);
    return ce;
}

} // namespace detail

/// The CloudEvent in the JSON event format: the attributes that are set, the extensions as top-level
/// members, `data` (or `data_base64`) when present. Throws `InvalidArgumentError` for an event that the
/// format cannot carry (an empty required attribute, an extension name that is not lowercase letters and
/// digits, an extension value that is not a boolean, an integer or a string).
[[nodiscard]] inline nlohmann::json encode_cloudevent(const CloudEvent& event) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, value] :
         std::initializer_list<std::pair<const char*, const std::string*>>{{"id", &event.id},
                                                                           {"source", &event.source},
                                                                           {"specversion", &event.specversion},
                                                                           {"type", &event.type}}) {
        if (value->empty()) {
            throw InvalidArgumentError("event", std::string("a CloudEvent's \"") + name + "\" must not be empty");
        }
        j[name] = *value;
    }
    if (event.datacontenttype) j["datacontenttype"] = *event.datacontenttype;
    if (event.dataschema) j["dataschema"] = *event.dataschema;
    if (event.subject) j["subject"] = *event.subject;
    if (event.time) j["time"] = *event.time;
    if (event.data && event.data_base64) {
        throw InvalidArgumentError("event", R"(a CloudEvent has "data" or "data_base64", not both)");
    }
    if (event.data) j["data"] = *event.data;
    if (event.data_base64) j["data_base64"] = *event.data_base64;
    for (const auto& [name, value] : event.extensions) {
        if (!detail::is_cloudevent_attribute_name(name) || j.contains(name) || name == "data") {
            throw InvalidArgumentError("event", "\"" + name + "\" cannot be a CloudEvents extension attribute name");
        }
        if (!value.is_boolean() && !value.is_number_integer() && !value.is_string()) {
            throw InvalidArgumentError("event", "the CloudEvents extension \"" + name +
                                                    "\" must be a boolean, an integer or a string");
        }
        j[name] = value;
    }
    return j;
}

/// Reads a CloudEvent from its JSON format, strictly: a JSON object; `specversion` "1.0"; `id`, `source`
/// and `type` non-empty strings; the optional attributes strings or `null` (= absent); not both `data` and
/// `data_base64`; every other member an extension whose name is lowercase letters and digits and whose
/// value is a boolean, an integer, a string or `null` (= absent). Throws `DecodeError` whose `json_path()`
/// names the attribute. (Parse the text with `parse_json` first, or call `parse_cloudevent`.)
[[nodiscard]] inline CloudEvent decode_cloudevent(const nlohmann::json& document) {
    using detail::cloudevent_error;
    if (!document.is_object()) {
        throw DecodeError(DecodeError::Kind::wrong_type, {}, {},
                          "a CloudEvent must be a JSON object, found " + std::string(detail::json_type_name(document)));
    }
    CloudEvent out;
    out.specversion.clear();
    for (const auto& [key, value] : document.items()) {
        if (key == "specversion" || key == "id" || key == "source" || key == "type") {
            if (!value.is_string()) {
                cloudevent_error(value.is_null() ? DecodeError::Kind::missing_field : DecodeError::Kind::wrong_type,
                                 key, "must be a string, found " + std::string(detail::json_type_name(value)));
            }
            std::string text = value.get<std::string>();
            if (text.empty()) cloudevent_error(DecodeError::Kind::invalid_value, key, "must not be empty");
            std::string& target = key == "specversion" ? out.specversion
                                  : key == "id"        ? out.id
                                  : key == "source"    ? out.source
                                                       : out.type;
            target = std::move(text);
        } else if (key == "datacontenttype") {
            out.datacontenttype = detail::cloudevent_string(value, key);
        } else if (key == "dataschema") {
            out.dataschema = detail::cloudevent_string(value, key);
        } else if (key == "subject") {
            out.subject = detail::cloudevent_string(value, key);
        } else if (key == "time") {
            out.time = detail::cloudevent_string(value, key);
        } else if (key == "data") {
            out.data = value;
        } else if (key == "data_base64") {
            out.data_base64 = detail::cloudevent_string(value, key);
        } else {
            if (!detail::is_cloudevent_attribute_name(key)) {
                cloudevent_error(DecodeError::Kind::unknown_field, key,
                                 "is not a CloudEvents attribute name (lowercase letters and digits only)");
            }
            if (value.is_null()) continue;
            if (!value.is_boolean() && !value.is_number_integer() && !value.is_string()) {
                cloudevent_error(DecodeError::Kind::wrong_type, key,
                                 "(an extension) must be a boolean, an integer or a string, found " +
                                     std::string(detail::json_type_name(value)));
            }
            out.extensions.emplace(key, value);
        }
    }
    for (const auto* name : {"specversion", "id", "source", "type"}) {
        if (!document.contains(name))
            cloudevent_error(DecodeError::Kind::missing_field, name, "is required and absent");
    }
    if (out.specversion != "1.0") {
        cloudevent_error(DecodeError::Kind::invalid_value, "specversion",
                         R"(must be "1.0" (CloudEvents 1.0), found ")" + out.specversion + "\"");
    }
    if (out.data && out.data_base64) {
        cloudevent_error(DecodeError::Kind::invalid_value, "data_base64", "and \"data\" cannot both be present");
    }
    return out;
}

/// Parses (strictly: `parse_json` with `options`: size and depth limits, duplicate keys, UTF-8) and decodes
/// a CloudEvent.
[[nodiscard]] inline CloudEvent parse_cloudevent(std::string_view text, const DecodeOptions& options = {}) {
    return decode_cloudevent(parse_json(text, options));
}

// ---- typed: recorded events through a codec ----------------------------------------------------------------

/// The recorded event as a CloudEvent: `id` = the event id, `source` = `options.source`, `type` = the
/// event's stable name, `subject` = the stream id, `time` = the recording time (RFC 3339, UTC,
/// microseconds), `datacontenttype` = "application/json", `data` = the codec's payload JSON; extensions
/// `streamversion`, `position`, `schemaversion` (the event type's current one), `correlationid` and
/// `causationid` (when not empty) and `traceparent` (when the metadata carries a trace context). Throws
/// `EncodeError` for a payload JSON cannot carry.
template <event_variant Events>
[[nodiscard]] nlohmann::json to_cloudevent(const RecordedEvent<Events>& recorded, const JsonCodec<Events>& codec,
                                           const CloudEventOptions& options = {}) {
    nlohmann::json encoded = codec.encode(recorded.event);
    const std::string traceparent = recorded.metadata.trace.to_string();
    CloudEvent ce = detail::recorded_cloudevent(
        options, recorded.metadata.event_id.to_string(), recorded.type(), recorded.stream_id, recorded.version,
        recorded.position, encoded.at("schema_version").template get<std::uint32_t>(), recorded.metadata.recorded_at,
        recorded.metadata.correlation_id, recorded.metadata.causation_id, traceparent);
    ce.data = std::move(encoded.at("payload"));
    return encode_cloudevent(ce);
}

/// The recorded event of a CloudEvent (as `to_cloudevent` writes it): `decode_cloudevent`, then the
/// attributes orchestrix needs, then the data through the codec (upcast from `schemaversion`). Throws
/// `DecodeError` naming the attribute: an `id` that is not a UUID, a missing `subject`, `time`, `data`,
/// `streamversion`, `position` or `schemaversion`, a `datacontenttype` other than "application/json", data
/// that is not a JSON object, an unknown type. Extensions orchestrix does not know are ignored.
template <event_variant Events>
[[nodiscard]] RecordedEvent<Events> from_cloudevent(const nlohmann::json& document, const JsonCodec<Events>& codec) {
    const CloudEvent ce = decode_cloudevent(document);
    const detail::RecordedCloudEvent attributes = detail::read_recorded_cloudevent(ce);
    Events event = [&] {
        try {
            return codec.decode_payload(ce.type, attributes.schema_version, *attributes.data);
        } catch (DecodeError& e) {
            // The codec names the payload `/payload`: here it is `/data`.
            const std::string& path = e.json_path();
            if (path.rfind("/payload", 0) == 0) {
                DecodeError renamed(e.kind(), e.event_type(), "/data" + path.substr(8), e.detail());
                throw renamed;
            }
            throw;
        }
    }();
    Metadata metadata;
    metadata.event_id = attributes.id;
    metadata.correlation_id = attributes.correlation_id;
    metadata.causation_id = attributes.causation_id;
    metadata.recorded_at = attributes.time;
    metadata.trace = attributes.trace;
    return RecordedEvent<Events>{attributes.stream_id, attributes.version, attributes.position, std::move(event),
                                 std::move(metadata)};
}

/// `from_cloudevent` of a text, parsed strictly with the codec's read options (its depth limit plus one
/// for the envelope around the data, `max_line_bytes` as the size limit).
template <event_variant Events>
[[nodiscard]] RecordedEvent<Events> parse_recorded_cloudevent(std::string_view text, const JsonCodec<Events>& codec,
                                                              std::size_t max_bytes = std::size_t{4} << 20U) {
    DecodeOptions options = codec.options();
    options.max_bytes = max_bytes;
    options.max_depth += 1;
    return from_cloudevent(parse_json(text, options), codec);
}

// ---- raw: events as a durable store keeps them ---------------------------------------------------------------

/// A stored row (`read_raw`, `read_all_raw` of the durable stores) as a CloudEvent, the same format as
/// `to_cloudevent` without compiled event types: `data` is the payload column parsed, the extensions come
/// from the row's columns and its metadata. Throws `DecodeError` (the row's `type` as `event_type()`) for a
/// row that cannot be one: payload or metadata text that `parse_json` refuses under `options`, a payload
/// that is not a JSON object, metadata with other fields than `event_id`, `correlation_id`,
/// `causation_id` (and `traceparent`), an `event_id` other than the row's, a damaged version or schema
/// version column (0).
[[nodiscard]] inline nlohmann::json to_cloudevent(const RawRecordedEvent& row, const CloudEventOptions& options = {},
                                                  const DecodeOptions& decode = {}) {
    const auto located = [&](std::string_view path, auto&& parse) {
        try {
            return parse();
        } catch (DecodeError& e) {
            e.add_context(path, row.type);
            throw;
        }
    };
    if (row.version == 0) {
        throw DecodeError(DecodeError::Kind::invalid_value, row.type, "/version", "the version column is damaged");
    }
    if (row.schema_version == 0) {
        throw DecodeError(DecodeError::Kind::invalid_value, row.type, "/schema_version",
                          "the schema_version column is damaged");
    }
    nlohmann::json payload = located("/payload", [&] { return parse_json(row.payload, decode); });
    if (!payload.is_object()) {
        throw DecodeError(DecodeError::Kind::wrong_type, row.type, "/payload",
                          "an event payload must be a JSON object, found " +
                              std::string(detail::json_type_name(payload)));
    }
    const nlohmann::json metadata = located("/metadata", [&] {
        nlohmann::json j = parse_json(row.metadata, decode);
        if (!j.is_object()) detail::wrong_type("an object", j);
        for (const auto& [key, value] : j.items()) {
            if (key != "event_id" && key != "correlation_id" && key != "causation_id" && key != "traceparent") {
                throw DecodeError(DecodeError::Kind::unknown_field, {}, detail::pointer(key),
                                  "metadata has no field \"" + key + "\"");
            }
        }
        return j;
    });
    const auto text = [&](std::string_view key) {
        return located("/metadata", [&] { return json_field_or<std::string>(metadata, key, {}); });
    };
    const auto id = Uuid::parse(text("event_id"));
    const auto column = Uuid::parse(row.event_id);
    if (!id || !column || *id != *column || id->is_nil()) {
        throw DecodeError(DecodeError::Kind::invalid_value, row.type, "/metadata/event_id",
                          "the metadata's event id \"" + text("event_id") + "\" is not the row's event id \"" +
                              row.event_id + "\"");
    }
    const std::string traceparent = text("traceparent");
    if (!traceparent.empty() && !TraceContext::parse(traceparent)) {
        throw DecodeError(DecodeError::Kind::invalid_value, row.type, "/metadata/traceparent",
                          "\"" + traceparent + "\" is not a W3C traceparent");
    }
    CloudEvent ce = detail::recorded_cloudevent(options, id->to_string(), row.type, row.stream_id, row.version,
                                                row.position, row.schema_version, row.recorded_at,
                                                text("correlation_id"), text("causation_id"), traceparent);
    ce.data = std::move(payload);
    return encode_cloudevent(ce);
}

/// The row of a CloudEvent (as either `to_cloudevent` writes it), without compiled event types: `payload` is
/// `data` as compact JSON, `metadata` the metadata text a `JsonCodec` writes for those ids (the same bytes),
/// `event_id` the id in lowercase canonical form. Checked as `from_cloudevent` checks, except the data's
/// fields (no codec: any JSON object).
[[nodiscard]] inline RawRecordedEvent raw_from_cloudevent(const nlohmann::json& document) {
    const CloudEvent ce = decode_cloudevent(document);
    const detail::RecordedCloudEvent attributes = detail::read_recorded_cloudevent(ce);
    nlohmann::json metadata{{"event_id", attributes.id.to_string()},
                            {"correlation_id", attributes.correlation_id},
                            {"causation_id", attributes.causation_id}};
    if (attributes.trace.valid()) metadata["traceparent"] = attributes.trace.to_string();
    RawRecordedEvent row;
    row.position = attributes.position;
    row.stream_id = attributes.stream_id;
    row.version = attributes.version;
    row.event_id = attributes.id.to_string();
    row.type = ce.type;
    row.schema_version = attributes.schema_version;
    row.payload = attributes.data->dump();
    row.metadata = metadata.dump();
    row.recorded_at = attributes.time;
    return row;
}

// ---- JSON Lines: export and import ----------------------------------------------------------------------------

/// How `import_cloudevents` appends.
struct CloudEventImportOptions {
    /// Append each event at the stream version it carries (`streamversion`): each stream of the file must
    /// continue the target's stream (or start it), or the import stops with a `ConcurrencyError`. Off:
    /// events are appended at the end of their stream (`ExpectedVersion::any()`).
    bool keep_versions = true;
    /// The most events of one stream appended in one batch (consecutive lines of the same stream).
    std::size_t batch_size = 256;
    /// The longest line accepted, in bytes.
    std::size_t max_line_bytes = std::size_t{4} << 20U;
};

/// What an import did: events appended, and events whose ids were stored already (an idempotent retry
/// of the same events: nothing appended).
struct CloudEventImportResult {
    std::uint64_t imported = 0;
    std::uint64_t already_present = 0;

    friend bool operator==(const CloudEventImportResult&, const CloudEventImportResult&) = default;
};

/// An import stopped at a line: it could not be read as a CloudEvent of a recorded event, or its append
/// was refused. The lines before it that were imported stay imported; nothing after it was appended.
/// `line()` is 1-based; `done()` what was imported before it; `cause()` the original exception (a
/// `DecodeError`, `ConcurrencyError`, `IdempotencyError`, `EncodeError`, ...), for `std::rethrow_exception`.
class CloudEventImportError : public Error {
public:
    CloudEventImportError(std::uint64_t line, CloudEventImportResult done, std::exception_ptr cause,
                          const std::string& reason)
        : Error("CloudEvents import stopped at line " + std::to_string(line) + " (" + std::to_string(done.imported) +
                " events imported and " + std::to_string(done.already_present) +
                " already present before it): " + reason),
          line_(line), done_(done), cause_(std::move(cause)) {}

    [[nodiscard]] std::uint64_t line() const noexcept { return line_; }
    [[nodiscard]] const CloudEventImportResult& done() const noexcept { return done_; }
    [[nodiscard]] const std::exception_ptr& cause() const noexcept { return cause_; }

private:
    std::uint64_t line_;
    CloudEventImportResult done_;
    std::exception_ptr cause_;
};

namespace detail {

inline constexpr std::uint64_t cloudevent_export_page = 1000;

inline void check_export_stream(const std::ostream& out) {
    if (!out) throw Error("CloudEvents export: writing to the output stream failed");
}

/// The JSON Lines import loop shared by the typed and raw imports. `decode(text)` reads one line as an
/// `Item` (with `stream_id` and `version`); `append(stream, span<const Item>, expected)` appends a batch.
template <class Item, class Decode, class Append>
CloudEventImportResult import_cloudevent_lines(std::istream& in, const CloudEventImportOptions& options,
                                               Decode&& decode, Append&& append) {
    if (options.batch_size == 0) throw InvalidArgumentError("options", "CloudEventImportOptions::batch_size is 0");
    CloudEventImportResult result;
    std::vector<Item> batch;
    std::vector<std::uint64_t> lines;
    const auto expected_for = [&](const Item& first) {
        return options.keep_versions ? ExpectedVersion::exact(first.version - 1) : ExpectedVersion::any();
    };
    const auto count = [&](const AppendResult& r, std::size_t n) {
        (r.written ? result.imported : result.already_present) += n;
    };
    const auto fail = [&](std::uint64_t line) {
        std::string reason = "unknown error";
        try {
            throw;
        } catch (const std::exception& e) {
            reason = e.what();
        } catch (...) {
        }
        throw CloudEventImportError(line, result, std::current_exception(), reason);
    };
    const auto flush = [&] {
        if (batch.empty()) return;
        const std::string stream = batch.front().stream_id;
        try {
            count(append(stream, std::span<const Item>(batch), expected_for(batch.front())), batch.size());
        } catch (const Error&) {
            // Nothing of the batch was written: append its events one by one, to import what can be and
            // name the line that cannot (or to sort out a batch that is partly stored already).
            for (std::size_t k = 0; k < batch.size(); ++k) {
                try {
                    count(append(stream, std::span<const Item>(&batch[k], 1), expected_for(batch[k])), 1);
                } catch (...) {
                    fail(lines[k]);
                }
            }
        }
        batch.clear();
        lines.clear();
    };
    std::string text;
    std::uint64_t line = 0;
    while (std::getline(in, text)) {
        ++line;
        if (!text.empty() && text.back() == '\r') text.pop_back();
        if (text.find_first_not_of(" \t") == std::string::npos) continue;
        std::optional<Item> item;
        try {
            if (text.size() > options.max_line_bytes) {
                throw DecodeError(DecodeError::Kind::too_large, {}, {},
                                  "the line is " + std::to_string(text.size()) + " bytes long; the limit is " +
                                      std::to_string(options.max_line_bytes));
            }
            item.emplace(decode(std::string_view(text)));
        } catch (...) {
            flush();
            fail(line);
        }
        const bool continues = !batch.empty() && item->stream_id == batch.back().stream_id &&
                               batch.size() < options.batch_size &&
                               (!options.keep_versions || item->version == batch.back().version + 1);
        if (!continues) flush();
        batch.push_back(std::move(*item));
        lines.push_back(line);
    }
    flush();
    if (in.bad()) throw Error("CloudEvents import: reading the input stream failed after line " + std::to_string(line));
    return result;
}

template <class S>
concept cloudevent_raw_source = requires(const S& store, position_t position, std::uint64_t count) {
    { store.read_all_raw(position, count) } -> std::same_as<std::vector<RawRecordedEvent>>;
};

template <class S>
concept cloudevent_raw_target = requires {
    typename S::raw_event_type;
}
&&requires(S& store, std::string_view stream, std::span<const typename S::raw_event_type> events,
           ExpectedVersion expected) {
    { store.append_raw(stream, events, expected) } -> std::same_as<AppendResult>;
};

} // namespace detail

/// Writes every event of `store` from `from_position` on, in global order, to `out` as JSON Lines of
/// CloudEvents (`to_cloudevent`, one compact JSON object and a newline per event), reading `read_all` a
/// page at a time. Returns the number of events written. Throws `Error` if `out` fails, and what
/// `read_all` throws.
template <event_store Store>
std::uint64_t export_cloudevents(const Store& store, std::ostream& out,
                                 const JsonCodec<typename Store::event_type>& codec,
                                 const CloudEventOptions& options = {}, position_t from_position = 1) {
    std::uint64_t count = 0;
    position_t next = from_position == 0 ? 1 : from_position;
    for (;;) {
        const auto events = store.read_all(next, detail::cloudevent_export_page);
        for (const auto& e : events) {
            out << to_cloudevent(e, codec, options).dump() << '\n';
            next = e.position + 1;
            ++count;
        }
        detail::check_export_stream(out);
        if (events.size() < detail::cloudevent_export_page) break;
    }
    out.flush();
    detail::check_export_stream(out);
    return count;
}

/// As `export_cloudevents`, without compiled event types: the stored rows of a durable store
/// (`read_all_raw`), each through `to_cloudevent(const RawRecordedEvent&)` (with `decode` as the limits
/// its payload and metadata texts are parsed with).
template <detail::cloudevent_raw_source Store>
std::uint64_t export_cloudevents_raw(const Store& store, std::ostream& out, const CloudEventOptions& options = {},
                                     position_t from_position = 1, const DecodeOptions& decode = {}) {
    std::uint64_t count = 0;
    position_t next = from_position == 0 ? 1 : from_position;
    for (;;) {
        const std::vector<RawRecordedEvent> rows = store.read_all_raw(next, detail::cloudevent_export_page);
        for (const auto& row : rows) {
            out << to_cloudevent(row, options, decode).dump() << '\n';
            next = row.position + 1;
            ++count;
        }
        detail::check_export_stream(out);
        if (rows.size() < detail::cloudevent_export_page) break;
    }
    out.flush();
    detail::check_export_stream(out);
    return count;
}

/// Appends the events of a JSON Lines file of CloudEvents (as `export_cloudevents` writes) to `store`, in
/// file order, each through the codec (`parse_recorded_cloudevent`) and the store's typed `append`, keeping
/// event ids and metadata; consecutive lines of one stream go in one batch. The ids make it idempotent:
/// importing the same file again appends nothing (`already_present` counts those events). The store's
/// recording time and global positions are its own; stream versions are kept (`options.keep_versions`).
/// Blank lines are skipped. Stops at the first line that cannot be read or appended with
/// `CloudEventImportError` naming it: what was appended before it stays.
template <event_store Store>
CloudEventImportResult import_cloudevents(Store& store, std::istream& in,
                                          const JsonCodec<typename Store::event_type>& codec,
                                          const CloudEventImportOptions& options = {}) {
    using Events = typename Store::event_type;
    using Item = RecordedEvent<Events>;
    return detail::import_cloudevent_lines<Item>(
        in, options,
        [&](std::string_view text) { return parse_recorded_cloudevent(text, codec, options.max_line_bytes); },
        [&](const std::string& stream, std::span<const Item> items, ExpectedVersion expected) {
            std::vector<EventEnvelope<Events>> envelopes;
            envelopes.reserve(items.size());
            for (const Item& item : items) envelopes.emplace_back(item.event, item.metadata);
            return store.append(stream, std::span<const EventEnvelope<Events>>(envelopes), expected);
        });
}

/// As `import_cloudevents`, without compiled event types: each line through `raw_from_cloudevent` and the
/// durable store's `append_raw` (whose checks stand in for the codec's: see its documentation). Events
/// appended so carry no tags for reads by query; `import_cloudevents` of a store of tagged events does
/// store their tags. Lines are parsed with `decode`'s depth limit plus one and `options.max_line_bytes`.
template <detail::cloudevent_raw_target Store>
CloudEventImportResult import_cloudevents_raw(Store& store, std::istream& in,
                                              const CloudEventImportOptions& options = {},
                                              const DecodeOptions& decode = {}) {
    using Raw = typename Store::raw_event_type;
    DecodeOptions line_options = decode;
    line_options.max_bytes = options.max_line_bytes;
    line_options.max_depth += 1;
    return detail::import_cloudevent_lines<RawRecordedEvent>(
        in, options, [&](std::string_view text) { return raw_from_cloudevent(parse_json(text, line_options)); },
        [&](const std::string& stream, std::span<const RawRecordedEvent> items, ExpectedVersion expected) {
            std::vector<Raw> events;
            events.reserve(items.size());
            for (const RawRecordedEvent& item : items) {
                events.push_back(Raw{item.event_id, item.type, item.schema_version, item.payload, item.metadata});
            }
            return store.append_raw(stream, std::span<const Raw>(events), expected);
        });
}

} // namespace orchestrix
