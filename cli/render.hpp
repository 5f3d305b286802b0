#pragma once

// How the orchestrix inspector shows what it reads: the JSON documents of --json (stable keys) and the
// lines and tables of its human output.

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/durable/inspection.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/errors.hpp>
#include <orchestrix/json/rfc3339.hpp>
#ifdef ORCHESTRIX_CLI_COMPRESSION
#include <orchestrix/compression/payload.hpp>
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix_cli {

using json = nlohmann::ordered_json;
using orchestrix::position_t;

/// A stored JSON text as a JSON value: the parsed document if a reader of the store would accept it,
/// otherwise the text itself as a string, with the reason under `<key>_invalid` of `into`.
inline void put_stored_json(json& into, const std::string& key, std::string_view text) {
    try {
        into[key] = orchestrix::parse_json(text);
    } catch (const orchestrix::DecodeError& e) {
        into[key] = std::string(text);
        into[key + "_invalid"] = e.what();
    }
}

/// The JSON text a stored payload stands for: a compressed payload (`{"$zstd": ...}`, compression/payload.hpp)
/// decompressed when the inspector was built with the compression module, any other as stored. Throws
/// `DecodeError` for a compressed payload whose frame does not decompress.
inline std::string payload_text(std::string_view stored) {
#ifdef ORCHESTRIX_CLI_COMPRESSION
    if (std::optional<std::string> text = orchestrix::decompress_payload(stored)) return std::move(*text);
#endif
    return std::string(stored);
}

/// `payload_text`, or the payload as stored if it does not decompress.
inline std::string shown_payload(std::string_view stored) {
    try {
        return payload_text(stored);
    } catch (const orchestrix::DecodeError&) {
        return std::string(stored);
    }
}

/// A stored payload as a JSON value under `payload` of `into` (decompressed, see `payload_text`); a frame that
/// does not decompress is shown as stored, as a string, with the reason under `payload_invalid`.
inline void put_stored_payload(json& into, std::string_view stored) {
    std::string text;
    try {
        text = payload_text(stored);
    } catch (const orchestrix::DecodeError& e) {
        into["payload"] = std::string(stored);
        into["payload_invalid"] = e.what();
        return;
    }
    put_stored_json(into, "payload", text);
}

/// An event as stored: position, stream, version, type, schema version, id, recorded time, metadata, payload
/// (decompressed: `put_stored_payload`).
inline json event_json(const orchestrix::RawRecordedEventView& row) {
    json j = json::object();
    j["position"] = row.position;
    j["stream_id"] = std::string(row.stream_id);
    j["version"] = row.version;
    j["type"] = std::string(row.type);
    j["schema_version"] = row.schema_version;
    j["id"] = std::string(row.event_id);
    j["recorded_at"] = orchestrix::to_rfc3339(row.recorded_at);
    put_stored_json(j, "metadata", row.metadata);
    put_stored_payload(j, row.payload);
    return j;
}

inline orchestrix::RawRecordedEventView view_of(const orchestrix::RawRecordedEvent& e) {
    return orchestrix::RawRecordedEventView{e.position,       e.stream_id, e.version,  e.event_id,   e.type,
                                            e.schema_version, e.payload,   e.metadata, e.recorded_at};
}

/// One line for an event: "#5 acc-1 v3 account.deposited 2026-...Z {payload}".
inline std::string event_line(const orchestrix::RawRecordedEventView& row) {
    return "#" + std::to_string(row.position) + " " + std::string(row.stream_id) + " v" + std::to_string(row.version) +
           " " + std::string(row.type) + " " + orchestrix::to_rfc3339(row.recorded_at) + " " +
           shown_payload(row.payload);
}

inline json stream_json(const orchestrix::inspection::StreamSummary& s) {
    return json{{"stream_id", s.stream_id},
                {"version", s.version},
                {"events", s.event_count},
                {"first_position", s.first_position},
                {"last_position", s.last_position}};
}

inline json checkpoint_json(const orchestrix::inspection::CheckpointStatus& c) {
    json j = json::object();
    j["name"] = c.name;
    j["checkpoint"] = c.has_checkpoint ? json(c.position) : json(nullptr);
    j["head"] = c.head;
    j["lag"] = c.lag;
    j["dead_letters"] = c.dead_letters;
    return j;
}

inline json dead_letter_json(const orchestrix::inspection::DeadLetter& d) {
    json j = json::object();
    j["projection"] = d.projection;
    j["position"] = d.position;
    j["stream_id"] = d.stream_id;
    j["version"] = d.version;
    j["event_id"] = d.event_id;
    j["type"] = d.type;
    j["schema_version"] = d.schema_version ? json(*d.schema_version) : json(nullptr);
    j["error"] = d.error;
    j["attempts"] = d.attempts;
    j["failed_at"] = orchestrix::to_rfc3339(d.failed_at);
    j["retry_requested"] = d.retry_requested;
    j["payload"] = d.payload ? json(shown_payload(*d.payload)) : json(nullptr);
    j["metadata"] = d.metadata ? json(*d.metadata) : json(nullptr);
    return j;
}

inline json finding_json(const orchestrix::inspection::Finding& f) {
    return json{{"kind", std::string(orchestrix::inspection::to_string(f.kind))},
                {"stream_id", f.stream_id},
                {"position", f.position},
                {"version", f.version},
                {"message", f.message}};
}

inline json verify_json(const orchestrix::inspection::VerifyReport& r) {
    json findings = json::array();
    for (const auto& f : r.findings) findings.push_back(finding_json(f));
    return json{{"ok", r.ok()},   {"events", r.events},  {"streams", r.streams}, {"snapshots", r.snapshots},
                {"head", r.head}, {"findings", findings}};
}

/// A table with a header row, columns padded to their widest cell (numbers right-aligned).
class Table {
public:
    explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}

    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

    void print(std::ostream& out) const {
        std::vector<std::size_t> width;
        for (const auto& row : rows_) {
            width.resize(std::max(width.size(), row.size()));
            for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
        }
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            std::string line;
            for (std::size_t i = 0; i < rows_[r].size(); ++i) {
                const std::string& cell = rows_[r][i];
                const bool number = r > 0 && !cell.empty() && cell.find_first_not_of("0123456789") == std::string::npos;
                const std::string pad(width[i] - cell.size(), ' ');
                if (i > 0) line += "  ";
                line += number ? pad + cell : cell + (i + 1 < rows_[r].size() ? pad : "");
            }
            out << line << '\n';
        }
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

} // namespace orchestrix_cli
