#pragma once

// What the store inspectors (sqlite/inspector.hpp, postgres/inspector.hpp) report, whatever the database:
// streams, checkpoints, dead letters, snapshots, the findings of a consistency check (`verify`), and
// `InspectionError` for a store that cannot be inspected. Nothing here needs the stored events' C++ types.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/errors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace orchestrix {

/// A store that cannot be inspected: the file is missing or is not a database, the database holds no
/// orchestrix store (or one of a layout this program does not know), it is locked, or its address is
/// malformed or unreachable. `kind()` says which, `store()` names the file or address.
class InspectionError : public StoreError {
public:
    enum class Kind : std::uint8_t {
        store_not_found, ///< no file at the path (an inspector never creates one)
        not_a_database,  ///< the file is not an SQLite database
        foreign_schema,  ///< no orchestrix events table, or a layout this program does not know
        locked,          ///< another connection holds a lock the inspector waited for in vain
        bad_address,     ///< a malformed PostgreSQL URL or connection string
        unreachable,     ///< the database server refused or did not answer the connection
    };

    InspectionError(Kind kind, std::string store, const std::string& message)
        : StoreError(message), kind_(kind), store_(std::move(store)) {}

    [[nodiscard]] Kind kind() const noexcept { return kind_; }
    /// The file or address of the store.
    [[nodiscard]] const std::string& store() const noexcept { return store_; }

private:
    Kind kind_;
    std::string store_;
};

namespace inspection {

/// Whether `address` names a PostgreSQL database rather than a file: a `postgresql://` or `postgres://` URL,
/// or a libpq connection string (`host=... dbname=...`: it opens with a lowercase keyword and `=`).
[[nodiscard]] constexpr bool is_postgres_address(std::string_view address) noexcept {
    if (address.starts_with("postgresql://") || address.starts_with("postgres://")) return true;
    const auto equals = address.find('=');
    if (equals == std::string_view::npos) return false;
    std::string_view key = address.substr(0, equals);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    return !key.empty() && key.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string_view::npos;
}

/// One stream: its current version, how many events it holds and where they lie in the global order.
struct StreamSummary {
    std::string stream_id{};
    stream_version_t version = 0;
    std::uint64_t event_count = 0;
    position_t first_position = 0;
    position_t last_position = 0;
};

/// A page of streams in byte order of their ids; `next_after` is what to pass as `after` for the next page
/// (nothing on the last page).
struct StreamPage {
    std::vector<StreamSummary> streams{};
    std::optional<std::string> next_after{};
};

/// A projection's checkpoint against the store's head: `lag` is the number of events stored after it.
struct CheckpointStatus {
    std::string name{};
    position_t position = 0;
    position_t head = 0;
    std::uint64_t lag = 0;
    /// The projection's dead letters (events its handler gave up on).
    std::uint64_t dead_letters = 0;
    /// Whether the projection has a checkpoint (a projection with dead letters but no checkpoint has none).
    bool has_checkpoint = true;
};

/// A row of `orchestrix_dead_letters`: an event a projection's handler failed on and skipped.
struct DeadLetter {
    std::string projection{};
    position_t position = 0;
    std::string stream_id{};
    stream_version_t version = 0;
    /// The event id ("" if unknown).
    std::string event_id{};
    /// The event type ("" if unknown).
    std::string type{};
    std::optional<std::uint32_t> schema_version{};
    std::optional<std::string> payload{};
    std::optional<std::string> metadata{};
    std::string error{};
    std::uint64_t attempts = 0;
    std::chrono::system_clock::time_point failed_at{};
    /// Set by `retry`: the running projection hands the event to its handler again.
    bool retry_requested = false;
};

/// A stored snapshot, as it is stored.
struct SnapshotRow {
    std::string aggregate_id{};
    std::string aggregate_type{};
    stream_version_t version = 0;
    std::uint32_t schema_version = 0;
    std::string state{};
};

/// A stream's lifecycle record as a store keeps it (a row of `orchestrix_streams`): only streams a lifecycle
/// operation (core/lifecycle.hpp) touched have one. What `verify` needs to tell removed events from lost rows.
struct StreamRecord {
    std::string stream_id{};
    /// The last version written when the record was last changed (the stream may have grown since).
    stream_version_t version = 0;
    /// The first version the store holds of the stream (`StreamInfo::first_version`): its stored events start
    /// here instead of at 1 (`version + 1` when it holds none).
    stream_version_t first_version = 1;
    /// The events lifecycle operations removed from the stream, in total.
    std::uint64_t removed = 0;
};

/// What `verify` can find wrong with a store.
enum class FindingKind : std::uint8_t {
    position_gap,      ///< global positions do not run 1, 2, 3, ... (a row is missing), beyond the removals
                       ///< the store recorded
    version_gap,       ///< a stream's versions do not run 1, 2, 3, ... in position order
    damaged_column,    ///< a column holds what its type forbids (a version that is not a positive integer, ...)
    invalid_payload,   ///< the payload is not JSON the store's readers accept
    invalid_metadata,  ///< the metadata is not a JSON object the store's readers accept
    event_id_mismatch, ///< the metadata's event_id differs from the row's event id
    snapshot_ahead,    ///< a snapshot's version is beyond its stream's version
    invalid_snapshot,  ///< a snapshot's state is empty, or JSON that is not valid
};

/// The name of a finding kind, as the inspector prints it ("version_gap", ...).
[[nodiscard]] constexpr std::string_view to_string(FindingKind kind) noexcept {
    switch (kind) {
    case FindingKind::position_gap:
        return "position_gap";
    case FindingKind::version_gap:
        return "version_gap";
    case FindingKind::damaged_column:
        return "damaged_column";
    case FindingKind::invalid_payload:
        return "invalid_payload";
    case FindingKind::invalid_metadata:
        return "invalid_metadata";
    case FindingKind::event_id_mismatch:
        return "event_id_mismatch";
    case FindingKind::snapshot_ahead:
        return "snapshot_ahead";
    case FindingKind::invalid_snapshot:
        return "invalid_snapshot";
    }
    return "unknown";
}

/// One problem `verify` found, naming the row: the event's stream, position and version, or for a
/// snapshot its aggregate id (`stream_id`) and version, with position 0.
struct Finding {
    FindingKind kind = FindingKind::position_gap;
    std::string stream_id{};
    position_t position = 0;
    stream_version_t version = 0;
    std::string message{};
};

/// The finding as one line: "position 7, stream 'acc-1', version 3: version_gap: ...", or "position 9:
/// position_gap: ..." for one about positions and no row (missing positions after the last event).
[[nodiscard]] inline std::string describe(const Finding& finding) {
    std::string out;
    if (finding.position != 0 && finding.stream_id.empty()) {
        out = "position " + std::to_string(finding.position);
    } else if (finding.position != 0) {
        out = "position " + std::to_string(finding.position) + ", stream '" + finding.stream_id + "', version " +
              std::to_string(finding.version);
    } else {
        out = "snapshot of '" + finding.stream_id + "', version " + std::to_string(finding.version);
    }
    out += ": ";
    out += to_string(finding.kind);
    out += ": ";
    out += finding.message;
    return out;
}

/// The outcome of `verify`: what was read, and every finding in the order found.
struct VerifyReport {
    std::uint64_t events = 0;
    std::uint64_t streams = 0;
    std::uint64_t snapshots = 0;
    position_t head = 0;
    std::vector<Finding> findings{};

    [[nodiscard]] bool ok() const noexcept { return findings.empty(); }
};

/// Checks stored rows one at a time against what the durable stores promise (docs/stores.md): positions
/// 1, 2, 3, ... without gaps; each stream's versions 1, 2, 3, ... in position order; payload and metadata
/// JSON that a reader with `options` accepts (`parse_json`), the metadata an object whose `event_id` is the
/// row's event id; and, once every event was seen, each snapshot at most at its stream's version with a
/// non-empty state that, where it is JSON, is valid.
///
/// Removals (docs/lifecycle.md) are told to it first, one `expect(record)` per lifecycle record: a stream with
/// a record starts at the record's `first_version`, and `finish(head)` accepts the position gaps (those
/// between rows and those after the last row up to `head`) if their total is the removed events the records
/// count, and reports them all otherwise.
class Verifier {
public:
    explicit Verifier(DecodeOptions options = {}) : options_(options) {}

    /// Tells the verifier a stream's lifecycle record, before the first `check_event`.
    void expect(const StreamRecord& record) {
        Expected& expected = expected_[record.stream_id];
        expected.first_version = record.first_version;
        expected.version = record.version;
        removed_ += record.removed;
        recorded_ = true;
    }

    /// Checks the next event, in position order.
    void check_event(const RawRecordedEventView& row) {
        ++report_.events;
        report_.head = row.position;
        const std::string stream(row.stream_id);
        const auto add = [&](FindingKind kind, std::string message) {
            report_.findings.push_back(Finding{kind, stream, row.position, row.version, std::move(message)});
        };
        if (row.position != last_position_ + 1) {
            if (row.position <= last_position_) {
                add(FindingKind::position_gap,
                    "position " + std::to_string(row.position) + " follows position " + std::to_string(last_position_));
            } else {
                missing(row.position - last_position_ - 1);
                if (row.position == last_position_ + 2) {
                    add(FindingKind::position_gap, "position " + std::to_string(last_position_ + 1) + " is missing");
                } else {
                    add(FindingKind::position_gap, "positions " + std::to_string(last_position_ + 1) + " to " +
                                                       std::to_string(row.position - 1) + " are missing");
                }
                gaps_.push_back(report_.findings.size() - 1);
            }
        }
        if (row.position > last_position_) last_position_ = row.position;

        if (row.version == 0) {
            add(FindingKind::damaged_column, "the version column is not a positive integer");
        } else {
            stream_version_t& last = versions_[stream];
            if (last == 0) {
                const auto expected = expected_.find(stream);
                const stream_version_t first = expected == expected_.end() ? 1 : expected->second.first_version;
                if (row.version != first) {
                    add(FindingKind::version_gap, "the stream's first event has version " +
                                                      std::to_string(row.version) + ", not " + std::to_string(first) +
                                                      (first == 1 ? "" : " (the first version its record keeps)"));
                }
            } else if (row.version != last + 1) {
                add(FindingKind::version_gap,
                    "version " + std::to_string(row.version) + " follows version " + std::to_string(last) +
                        (row.version > last + 1 ? "" : " (versions must increase along positions)"));
            }
            if (row.version > last) last = row.version;
        }
        if (row.schema_version == 0) {
            add(FindingKind::damaged_column, "the schema_version column is not a positive 32-bit integer");
        }

        if (auto problem = json_problem(row.payload)) add(FindingKind::invalid_payload, "payload: " + *problem);
        nlohmann::json metadata;
        try {
            metadata = parse_json(row.metadata, options_);
        } catch (const DecodeError& e) {
            add(FindingKind::invalid_metadata, std::string("metadata: ") + e.what());
            return;
        }
        if (!metadata.is_object()) {
            add(FindingKind::invalid_metadata, "metadata: not a JSON object");
            return;
        }
        const auto id = metadata.find("event_id");
        if (id == metadata.end() || !id->is_string()) {
            add(FindingKind::invalid_metadata, "metadata: no event_id string");
        } else if (id->get_ref<const std::string&>() != row.event_id) {
            add(FindingKind::event_id_mismatch, "the metadata's event_id '" + id->get_ref<const std::string&>() +
                                                    "' differs from the row's event id '" + std::string(row.event_id) +
                                                    "'");
        }
    }

    /// Checks a snapshot against the versions of the events seen so far (call after the last event).
    void check_snapshot(const SnapshotRow& snapshot) {
        ++report_.snapshots;
        const auto add = [&](FindingKind kind, std::string message) {
            report_.findings.push_back(Finding{kind, snapshot.aggregate_id, 0, snapshot.version, std::move(message)});
        };
        const auto it = versions_.find(snapshot.aggregate_id);
        stream_version_t stream_version = it == versions_.end() ? 0 : it->second;
        if (const auto expected = expected_.find(snapshot.aggregate_id); expected != expected_.end()) {
            stream_version = std::max(stream_version, expected->second.version);
        }
        if (snapshot.version == 0) {
            add(FindingKind::damaged_column, "the snapshot's version is not a positive integer");
        } else if (snapshot.version > stream_version) {
            add(FindingKind::snapshot_ahead, "the snapshot is at version " + std::to_string(snapshot.version) +
                                                 ", but the stream is at version " + std::to_string(stream_version));
        }
        if (snapshot.state.empty()) {
            add(FindingKind::invalid_snapshot, "the state is empty");
        } else if (looks_like_json(snapshot.state)) {
            if (auto problem = json_problem(snapshot.state)) add(FindingKind::invalid_snapshot, "state: " + *problem);
        }
    }

    /// Ends the check of the events, given the store's head (the highest position it ever gave): the positions
    /// after the last event up to `head` are missing too. If the positions missing in all are the events the
    /// records count as removed, the position gaps were those removals and are no findings; otherwise they stay,
    /// and if removals were recorded, one more finding says how many positions are missing against how many
    /// removed. Call it once, after the last `check_event`.
    void finish(position_t head) {
        if (head > last_position_) {
            missing(head - last_position_);
            report_.findings.push_back(
                Finding{FindingKind::position_gap,
                        {},
                        head,
                        0,
                        head == last_position_ + 1
                            ? "position " + std::to_string(head) + " (the head) is missing after the last event"
                            : "positions " + std::to_string(last_position_ + 1) + " to " + std::to_string(head) +
                                  " (the head) are missing after the last event"});
            gaps_.push_back(report_.findings.size() - 1);
            report_.head = head;
        }
        if (missing_ == removed_) {
            for (std::size_t i = gaps_.size(); i-- > 0;) { // the last first: earlier indexes stay valid
                report_.findings.erase(report_.findings.begin() + static_cast<std::ptrdiff_t>(gaps_[i]));
            }
        } else if (recorded_) {
            report_.findings.push_back(
                Finding{FindingKind::position_gap,
                        {},
                        report_.head,
                        0,
                        std::to_string(missing_) + " position" + (missing_ == 1 ? " is" : "s are") +
                            " missing, but the store records " + std::to_string(removed_) + " event" +
                            (removed_ == 1 ? "" : "s") + " removed: rows were lost or added"});
        }
        gaps_.clear();
    }

    /// The report so far; `streams` counts the streams seen.
    [[nodiscard]] const VerifyReport& report() noexcept {
        report_.streams = versions_.size();
        return report_;
    }

private:
    // What a lifecycle record says of a stream.
    struct Expected {
        stream_version_t first_version = 1;
        stream_version_t version = 0;
    };

    // Counts `count` missing positions, saturating.
    void missing(std::uint64_t count) noexcept {
        missing_ = count > std::numeric_limits<std::uint64_t>::max() - missing_
                       ? std::numeric_limits<std::uint64_t>::max()
                       : missing_ + count;
    }

    // What a reader with `options_` refuses in `text`, or nothing.
    [[nodiscard]] std::optional<std::string> json_problem(std::string_view text) const {
        try {
            (void)parse_json(text, options_);
            return std::nullopt;
        } catch (const DecodeError& e) {
            return std::string(e.what());
        }
    }

    // Whether a snapshot state is meant as JSON: it opens like an object, an array or a string.
    [[nodiscard]] static bool looks_like_json(std::string_view text) noexcept {
        const auto first = text.find_first_not_of(" \t\r\n");
        return first != std::string_view::npos && (text[first] == '{' || text[first] == '[' || text[first] == '"');
    }

    DecodeOptions options_;
    position_t last_position_ = 0;
    std::unordered_map<std::string, stream_version_t> versions_;
    std::unordered_map<std::string, Expected> expected_;
    // The removed events the records count, the positions missing so far, and the findings of gaps (indexes).
    std::uint64_t removed_ = 0;
    std::uint64_t missing_ = 0;
    bool recorded_ = false;
    std::vector<std::size_t> gaps_;
    VerifyReport report_;
};

/// What `verify` needs of an inspector: rows in position order as they are stored, the snapshots, the head.
template <class I>
concept verifiable_store = requires(I& inspector, position_t from, std::uint64_t count,
                                    void (*on_row)(const RawRecordedEventView&),
                                    void (*on_snapshot)(const SnapshotRow&)) {
    { inspector.head() } -> std::same_as<position_t>;
    { inspector.visit_all(from, count, on_row) } -> std::same_as<std::uint64_t>;
    { inspector.visit_snapshots(on_snapshot) } -> std::same_as<std::uint64_t>;
};

/// Whether an inspector hands over the store's lifecycle records: `visit_stream_records(visitor)` calls
/// `visitor(const StreamRecord&)` for each (none for a store of a layout without them) and returns the number.
template <class I>
concept stream_record_source = requires(I& inspector, void (*on_record)(const StreamRecord&)) {
    { inspector.visit_stream_records(on_record) } -> std::same_as<std::uint64_t>;
};

/// The rows `verify` reads at a time.
inline constexpr std::uint64_t verify_batch = 1000;

/// Reads the lifecycle records of `store` (if it hands them over: `stream_record_source`), every event in
/// position order, then every snapshot, through a `Verifier`, and finishes it with the head read at the start
/// (the inspector's `head()` is the highest position the store ever gave). Calls `progress(events_read,
/// head)` after each batch of `verify_batch` events.
template <verifiable_store Inspector, class Progress>
requires std::invocable<Progress&, std::uint64_t, position_t>
[[nodiscard]] VerifyReport verify(Inspector& store, Progress&& progress, DecodeOptions options = {}) {
    Verifier verifier(options);
    if constexpr (stream_record_source<Inspector>) {
        (void)store.visit_stream_records([&](const StreamRecord& record) { verifier.expect(record); });
    }
    const position_t head = store.head();
    position_t next = 1;
    for (;;) {
        position_t last = 0;
        const std::uint64_t read = store.visit_all(next, verify_batch, [&](const RawRecordedEventView& row) {
            verifier.check_event(row);
            last = row.position;
        });
        if (read == 0) break;
        progress(verifier.report().events, head);
        if (read < verify_batch) break;
        next = last + 1;
    }
    verifier.finish(head);
    (void)store.visit_snapshots([&](const SnapshotRow& snapshot) { verifier.check_snapshot(snapshot); });
    return verifier.report();
}

/// `verify` without progress reports.
template <verifiable_store Inspector>
[[nodiscard]] VerifyReport verify(Inspector& store, DecodeOptions options = {}) {
    return verify(
        store, [](std::uint64_t, position_t) {}, options);
}

} // namespace inspection

} // namespace orchestrix
