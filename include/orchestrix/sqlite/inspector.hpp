#pragma once

// Reads and repairs an SQLite event store without knowing its event types: streams, events as stored,
// checkpoints, dead letters and snapshots, for the `orchestrix` inspector program and for tools like it
// (target orchestrix::sqlite).

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/durable/inspection.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/sqlite/connection.hpp>
#include <orchestrix/sqlite/errors.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace orchestrix {

/// Options of `SqliteInspector`.
struct SqliteInspectorOptions {
    /// The file holding `orchestrix_checkpoints` and `orchestrix_dead_letters`, if not the events' file.
    std::string checkpoints_path{};
    /// How long a read waits for a lock held by another connection before failing with
    /// `InspectionError{locked}`.
    std::chrono::milliseconds busy_timeout{5000};
};

/// Looks into an SQLite event store as it is stored, without its event types (`RawRecordedEventView`):
/// what the `orchestrix` inspector program runs on.
///
/// - Opens only a file that exists and holds an orchestrix store (the `events` table, layout 1, 2 or 3 in
///   `PRAGMA user_version`), else throws `InspectionError` (`store_not_found`, `not_a_database`,
///   `foreign_schema`); it never creates nor migrates anything. A lock held past `busy_timeout` throws
///   `InspectionError{locked}`; any other failure `SqliteError`.
/// - Writes only to the dead letters (`request_retry`, `discard_dead_letters`).
/// - Not thread-safe: one inspector per thread.
class SqliteInspector {
public:
    explicit SqliteInspector(std::string path, const SqliteInspectorOptions& options = {})
        : path_(std::move(path)),
          checkpoints_path_(options.checkpoints_path.empty() ? path_ : options.checkpoints_path),
          db_(open(path_, options.busy_timeout)) {
        guarded(path_, [&] { check_layout(); });
        if (checkpoints_path_ != path_) checkpoints_db_.emplace(open(checkpoints_path_, options.busy_timeout));
        guarded(checkpoints_path_, [&] { (void)checkpoints().query_text("PRAGMA user_version"); });
    }

    /// The events' file.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    /// The layout in `PRAGMA user_version` (1, 2 or 3).
    [[nodiscard]] int layout() const noexcept { return layout_; }

    /// The highest position the store ever gave (0 if none): the last stored event's, or that of removed events
    /// after it (`orchestrix_head`, layout 3).
    [[nodiscard]] position_t head() {
        return guarded(path_, [&] {
            detail::sqlite::Statement s(db_.handle(),
                                        has_table(db_, "orchestrix_head")
                                            ? "SELECT max(coalesce((SELECT max(position) FROM events), 0), "
                                              "coalesce((SELECT position FROM orchestrix_head WHERE id = 1), 0))"
                                            : "SELECT coalesce(max(position), 0) FROM events");
            s.step();
            return static_cast<position_t>(s.int64(0));
        });
    }

    /// The events removed by the store's lifecycle operations in total (0 for a layout without them).
    [[nodiscard]] std::uint64_t removed_count() {
        std::uint64_t removed = 0;
        (void)visit_stream_records([&](const inspection::StreamRecord& record) { removed += record.removed; });
        return removed;
    }

    /// Hands every lifecycle record (`orchestrix_streams`, layout 3: the streams a deletion, truncation or
    /// retention touched) to `visitor` (`const inspection::StreamRecord&`) in stream id order; returns the
    /// number visited. What `inspection::verify` reads to tell removed events from lost rows.
    template <class Visitor>
    std::uint64_t visit_stream_records(Visitor&& visitor) {
        return guarded(path_, [&] {
            if (!has_table(db_, "orchestrix_streams")) return std::uint64_t{0};
            detail::sqlite::Statement s(db_.handle(), "SELECT stream_id, version, first_version, removed FROM "
                                                      "orchestrix_streams ORDER BY stream_id");
            std::uint64_t count = 0;
            while (s.step()) {
                inspection::StreamRecord record;
                record.stream_id = std::string(s.text(0));
                record.version = static_cast<stream_version_t>(std::max<std::int64_t>(s.int64(1), 0));
                record.first_version = static_cast<stream_version_t>(std::max<std::int64_t>(s.int64(2), 0));
                record.removed = static_cast<std::uint64_t>(std::max<std::int64_t>(s.int64(3), 0));
                visitor(static_cast<const inspection::StreamRecord&>(record));
                ++count;
            }
            return count;
        });
    }

    /// The number of stored events.
    [[nodiscard]] std::uint64_t event_count() {
        return guarded(path_, [&] {
            detail::sqlite::Statement s(db_.handle(), "SELECT count(*) FROM events");
            s.step();
            return static_cast<std::uint64_t>(s.int64(0));
        });
    }

    /// Up to `limit` streams whose ids sort after `after` (byte order), with versions and event counts.
    [[nodiscard]] inspection::StreamPage streams(std::string_view after = {}, std::uint64_t limit = 100) {
        return guarded(path_, [&] {
            inspection::StreamPage page;
            if (limit == 0) return page;
            detail::sqlite::Statement s(db_.handle(),
                                        "SELECT stream_id, max(version), count(*), min(position), max(position) "
                                        "FROM events WHERE stream_id > ?1 GROUP BY stream_id ORDER BY stream_id "
                                        "LIMIT ?2");
            s.bind(1, after);
            s.bind_clamped(2, limit);
            while (s.step()) {
                page.streams.push_back(inspection::StreamSummary{
                    std::string(s.text(0)), static_cast<stream_version_t>(s.int64(1)),
                    static_cast<std::uint64_t>(s.int64(2)), static_cast<position_t>(s.int64(3)),
                    static_cast<position_t>(s.int64(4))});
            }
            if (page.streams.size() == limit) page.next_after = page.streams.back().stream_id;
            return page;
        });
    }

    /// The stream's current version (0 if it has no events).
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) {
        return guarded(path_, [&] {
            detail::sqlite::Statement s(db_.handle(),
                                        "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1");
            s.bind(1, stream);
            s.step();
            return static_cast<stream_version_t>(s.int64(0));
        });
    }

    /// Hands the events of `stream` with versions `from_version` to `to_version` to `visitor` (`const
    /// RawRecordedEventView&`) in version order, as stored; returns the number visited.
    template <class Visitor>
    std::uint64_t visit_stream(std::string_view stream, stream_version_t from_version, stream_version_t to_version,
                               Visitor&& visitor) {
        return guarded(path_, [&] {
            detail::sqlite::Statement s(db_.handle(), std::string("SELECT ") + columns +
                                                          " FROM events WHERE stream_id = ?1 AND version >= ?2 AND "
                                                          "version <= ?3 ORDER BY version");
            s.bind(1, stream);
            s.bind_clamped(2, from_version);
            s.bind_clamped(3, to_version);
            return visit_rows(s, visitor);
        });
    }

    /// Hands at most `max_count` events from position `from_position` on to `visitor` in position order, as
    /// stored (a damaged version or schema version column reads as 0); returns the number visited.
    template <class Visitor>
    std::uint64_t visit_all(position_t from_position, std::uint64_t max_count, Visitor&& visitor) {
        if (max_count == 0) return 0;
        return guarded(path_, [&] {
            detail::sqlite::Statement s(db_.handle(), std::string("SELECT ") + columns +
                                                          " FROM events WHERE position >= ?1 ORDER BY position "
                                                          "LIMIT ?2");
            s.bind_clamped(1, from_position);
            s.bind_clamped(2, max_count);
            return visit_rows(s, visitor);
        });
    }

    /// The last `count` events of the store, in position order.
    [[nodiscard]] std::vector<RawRecordedEvent> last_events(std::uint64_t count) {
        return guarded(path_, [&] {
            std::vector<RawRecordedEvent> out;
            if (count == 0) return out;
            detail::sqlite::Statement s(db_.handle(), std::string("SELECT ") + columns +
                                                          " FROM events ORDER BY position DESC LIMIT ?1");
            s.bind_clamped(1, count);
            (void)visit_rows(s, [&](const RawRecordedEventView& row) { out.push_back(row.to_owned()); });
            std::reverse(out.begin(), out.end());
            return out;
        });
    }

    /// Hands every snapshot to `visitor` (`const inspection::SnapshotRow&`) in aggregate id order; returns
    /// the number visited.
    template <class Visitor>
    std::uint64_t visit_snapshots(Visitor&& visitor) {
        return guarded(path_, [&] {
            if (!has_table(db_, "snapshots")) return std::uint64_t{0};
            detail::sqlite::Statement s(db_.handle(),
                                        "SELECT aggregate_id, aggregate_type, version, schema_version, state "
                                        "FROM snapshots ORDER BY aggregate_id");
            std::uint64_t count = 0;
            while (s.step()) {
                inspection::SnapshotRow row;
                row.aggregate_id = std::string(s.text(0));
                row.aggregate_type = std::string(s.text(1));
                row.version = positive(s, 2);
                const stream_version_t schema = positive(s, 3);
                row.schema_version =
                    schema <= std::numeric_limits<std::uint32_t>::max() ? static_cast<std::uint32_t>(schema) : 0;
                row.state = std::string(s.text(4));
                visitor(static_cast<const inspection::SnapshotRow&>(row));
                ++count;
            }
            return count;
        });
    }

    /// Every projection with a checkpoint or dead letters, by name, against the head.
    [[nodiscard]] std::vector<inspection::CheckpointStatus> checkpoints_status() {
        const position_t current = head();
        std::map<std::string, inspection::CheckpointStatus> by_name;
        guarded(checkpoints_path_, [&] {
            auto& db = checkpoints();
            if (has_table(db, "orchestrix_checkpoints")) {
                detail::sqlite::Statement s(db.handle(), "SELECT name, position FROM orchestrix_checkpoints");
                while (s.step()) {
                    auto& status = by_name[std::string(s.text(0))];
                    status.position = static_cast<position_t>(std::max<std::int64_t>(s.int64(1), 0));
                }
            }
            if (has_table(db, "orchestrix_dead_letters")) {
                detail::sqlite::Statement s(db.handle(), "SELECT projection, count(*) FROM orchestrix_dead_letters "
                                                         "GROUP BY projection");
                while (s.step()) {
                    const std::string name(s.text(0));
                    const bool known = by_name.find(name) != by_name.end();
                    auto& status = by_name[name];
                    if (!known) status.has_checkpoint = false;
                    status.dead_letters = static_cast<std::uint64_t>(s.int64(1));
                }
            }
        });
        std::vector<inspection::CheckpointStatus> out;
        for (auto& [name, status] : by_name) {
            status.name = name;
            status.head = current;
            status.lag = events_after(status.position);
            out.push_back(std::move(status));
        }
        return out;
    }

    /// The dead letters, of `projection` only unless it is empty, at `positions` only unless it is empty,
    /// by projection and position. None if the table does not exist (no projection skipped an event yet).
    [[nodiscard]] std::vector<inspection::DeadLetter> dead_letters(std::string_view projection = {},
                                                                   const std::vector<position_t>& positions = {}) {
        return guarded(checkpoints_path_, [&] {
            std::vector<inspection::DeadLetter> out;
            auto& db = checkpoints();
            if (!has_table(db, "orchestrix_dead_letters")) return out;
            detail::sqlite::Statement s(db.handle(),
                                        "SELECT projection, position, stream_id, version, event_id, type, "
                                        "schema_version, payload, metadata, error, attempts, failed_at, "
                                        "retry_requested FROM orchestrix_dead_letters WHERE (?1 IS NULL OR "
                                        "projection = ?1) ORDER BY projection, position");
            if (!projection.empty()) s.bind(1, projection);
            while (s.step()) {
                const auto position = static_cast<position_t>(std::max<std::int64_t>(s.int64(1), 0));
                if (!positions.empty() && std::find(positions.begin(), positions.end(), position) == positions.end()) {
                    continue;
                }
                inspection::DeadLetter d;
                d.projection = std::string(s.text(0));
                d.position = position;
                d.stream_id = std::string(s.text(2));
                d.version = static_cast<stream_version_t>(std::max<std::int64_t>(s.int64(3), 0));
                d.event_id = std::string(s.text(4));
                d.type = std::string(s.text(5));
                if (!s.is_null(6)) d.schema_version = static_cast<std::uint32_t>(std::max<std::int64_t>(s.int64(6), 0));
                if (!s.is_null(7)) d.payload = std::string(s.text(7));
                if (!s.is_null(8)) d.metadata = std::string(s.text(8));
                d.error = std::string(s.text(9));
                d.attempts = static_cast<std::uint64_t>(std::max<std::int64_t>(s.int64(10), 0));
                d.failed_at = durable::from_micros(s.int64(11));
                d.retry_requested = s.int64(12) != 0;
                out.push_back(std::move(d));
            }
            return out;
        });
    }

    /// Asks the running projection `projection` to hand its dead letters at `positions` (all of them if
    /// empty) to its handler again (`retry_requested`); returns the positions marked.
    std::vector<position_t> request_retry(std::string_view projection, const std::vector<position_t>& positions = {}) {
        return change_dead_letters(
            "UPDATE orchestrix_dead_letters SET retry_requested = 1 WHERE projection = ?1 AND position = ?2",
            projection, positions);
    }

    /// Deletes the dead letters of `projection` at `positions` (all of them if empty); returns the positions
    /// deleted.
    std::vector<position_t> discard_dead_letters(std::string_view projection,
                                                 const std::vector<position_t>& positions = {}) {
        return change_dead_letters("DELETE FROM orchestrix_dead_letters WHERE projection = ?1 AND position = ?2",
                                   projection, positions);
    }

private:
    static constexpr const char* columns =
        "position, stream_id, version, event_id, type, schema_version, payload, metadata, recorded_at";

    // Opens an existing file, never creating one.
    static detail::sqlite::Connection open(const std::string& path, std::chrono::milliseconds busy_timeout) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
            throw InspectionError(InspectionError::Kind::store_not_found, path,
                                  "no SQLite store at '" + path + "': the file does not exist");
        }
        if (std::filesystem::is_directory(path, ec)) {
            throw InspectionError(InspectionError::Kind::not_a_database, path,
                                  "'" + path + "' is a directory, not an SQLite database");
        }
        return guarded(path, [&] {
            detail::sqlite::Connection db(path);
            db.exec("PRAGMA busy_timeout = " + std::to_string(busy_timeout.count()));
            return db;
        });
    }

    // Runs `f`, turning SQLite's "locked" and "not a database" into `InspectionError`.
    template <class F>
    static auto guarded(const std::string& path, F&& f) -> decltype(f()) {
        try {
            return f();
        } catch (const SqliteError& e) {
            if (e.primary_code() == SQLITE_BUSY || e.primary_code() == SQLITE_LOCKED) {
                throw InspectionError(InspectionError::Kind::locked, path,
                                      "'" + path + "' is locked by another connection: " + e.what());
            }
            if (e.primary_code() == SQLITE_NOTADB) {
                throw InspectionError(InspectionError::Kind::not_a_database, path,
                                      "'" + path + "' is not an SQLite database");
            }
            throw;
        }
    }

    static bool has_table(detail::sqlite::Connection& db, std::string_view name) {
        detail::sqlite::Statement s(db.handle(), "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
        s.bind(1, name);
        return s.step();
    }

    void check_layout() {
        const std::string layout = db_.query_text("PRAGMA user_version");
        if (!has_table(db_, "events")) {
            throw InspectionError(InspectionError::Kind::foreign_schema, path_,
                                  "'" + path_ + "' holds no orchestrix store: it has no events table");
        }
        if (layout != "1" && layout != "2" && layout != std::to_string(detail::sqlite::schema_version)) {
            throw InspectionError(InspectionError::Kind::foreign_schema, path_,
                                  "'" + path_ + "' has PRAGMA user_version " + layout +
                                      "; this program knows the orchestrix layouts 1, 2 and " +
                                      std::to_string(detail::sqlite::schema_version));
        }
        std::vector<std::string> present;
        {
            detail::sqlite::Statement s(db_.handle(), "SELECT name FROM pragma_table_info('events')");
            while (s.step()) present.emplace_back(s.text(0));
        }
        for (const char* column : {"position", "stream_id", "version", "event_id", "type", "schema_version", "payload",
                                   "metadata", "recorded_at"}) {
            if (std::find(present.begin(), present.end(), column) == present.end()) {
                throw InspectionError(InspectionError::Kind::foreign_schema, path_,
                                      "'" + path_ + "' has an events table without the column '" + column +
                                          "': not an orchestrix store");
            }
        }
        layout_ = std::stoi(layout);
    }

    detail::sqlite::Connection& checkpoints() { return checkpoints_db_ ? *checkpoints_db_ : db_; }

    std::uint64_t events_after(position_t position) {
        return guarded(path_, [&] {
            detail::sqlite::Statement s(db_.handle(), "SELECT count(*) FROM events WHERE position > ?1");
            s.bind_clamped(1, position);
            s.step();
            return static_cast<std::uint64_t>(s.int64(0));
        });
    }

    std::vector<position_t> change_dead_letters(const char* sql, std::string_view projection,
                                                std::vector<position_t> positions) {
        if (positions.empty()) {
            for (const auto& d : dead_letters(projection)) positions.push_back(d.position);
        }
        return guarded(checkpoints_path_, [&] {
            std::vector<position_t> changed;
            auto& db = checkpoints();
            if (!has_table(db, "orchestrix_dead_letters")) return changed;
            db.exec("BEGIN IMMEDIATE");
            try {
                detail::sqlite::Statement s(db.handle(), sql);
                for (const position_t position : positions) {
                    auto use = s.use();
                    s.bind(1, projection);
                    s.bind_clamped(2, position);
                    s.step();
                    if (sqlite3_changes(db.handle()) > 0) changed.push_back(position);
                }
                db.exec("COMMIT");
            } catch (...) {
                sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
                throw;
            }
            return changed;
        });
    }

    // A column that must hold a positive integer; 0 if it does not.
    static std::uint64_t positive(const detail::sqlite::Statement& s, int column) {
        const std::int64_t value = s.int64(column);
        return s.type(column) == SQLITE_INTEGER && value >= 1 ? static_cast<std::uint64_t>(value) : 0;
    }

    template <class Visitor>
    static std::uint64_t visit_rows(detail::sqlite::Statement& s, Visitor&& visitor) {
        std::uint64_t count = 0;
        while (s.step()) {
            RawRecordedEventView row;
            row.position = static_cast<position_t>(s.int64(0));
            row.stream_id = s.text(1);
            row.version = positive(s, 2);
            row.event_id = s.text(3);
            row.type = s.text(4);
            const std::uint64_t schema = positive(s, 5);
            row.schema_version =
                schema <= std::numeric_limits<std::uint32_t>::max() ? static_cast<std::uint32_t>(schema) : 0;
            row.payload = s.text(6);
            row.metadata = s.text(7);
            row.recorded_at = durable::from_micros(s.int64(8));
            visitor(static_cast<const RawRecordedEventView&>(row));
            ++count;
        }
        return count;
    }

    std::string path_;
    std::string checkpoints_path_;
    detail::sqlite::Connection db_;
    std::optional<detail::sqlite::Connection> checkpoints_db_;
    int layout_ = 0;
};

} // namespace orchestrix
