#pragma once

// Reads and repairs a PostgreSQL event store without knowing its event types: streams, events as stored,
// checkpoints, dead letters and snapshots, for the `orchestrix` inspector program and for tools like it
// (target orchestrix::postgres).

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/durable/inspection.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/postgres/connection.hpp>
#include <orchestrix/postgres/errors.hpp>
#include <orchestrix/postgres/event_store.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// Options of `PostgresInspector`.
struct PostgresInspectorOptions {
    /// How long a statement waits for a lock held by another session (`lock_timeout`) before failing with
    /// `InspectionError{locked}`.
    std::chrono::milliseconds lock_timeout{5000};
};

/// Looks into a PostgreSQL event store as it is stored, without its event types (`RawRecordedEventView`):
/// what the `orchestrix` inspector program runs on.
///
/// - Connects to `url` (a `postgresql://` URL or a libpq `key=value` string): a malformed one throws
///   `InspectionError{bad_address}`, a refused connection `InspectionError{unreachable}`. The database must
///   hold orchestrix's `events` table (found through the search path) with its columns, else
///   `InspectionError{foreign_schema}`; nothing is ever created.
/// - A lock held past `lock_timeout` throws `InspectionError{locked}`; any other failure `PostgresError`.
/// - Writes only to the dead letters (`request_retry`, `discard_dead_letters`).
/// - Not thread-safe: one inspector per thread.
class PostgresInspector {
public:
    explicit PostgresInspector(std::string url, PostgresInspectorOptions options = {})
        : url_(std::move(url)), connection_(connect(url_)) {
        guarded([&] {
            (void)connection_.exec("SET lock_timeout = " + std::to_string(options.lock_timeout.count()),
                                   "set the lock timeout");
            check_layout();
        });
    }

    /// Connects to `url`: throws `InspectionError{bad_address}` for a malformed URL or connection string
    /// (or an option value libpq refuses before it connects), `InspectionError{unreachable}` if the server
    /// refuses or does not answer. What the inspector opens first; a tool that writes (an import) checks
    /// its address with it.
    [[nodiscard]] static detail::postgres::Connection connect(const std::string& url) {
        char* error = nullptr;
        PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &error);
        if (parsed == nullptr) {
            std::string message = error != nullptr ? error : "out of memory";
            PQfreemem(error);
            while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
            throw InspectionError(InspectionError::Kind::bad_address, url,
                                  "'" + url + "' is not a valid PostgreSQL address: " + message);
        }
        PQconninfoFree(parsed);
        try {
            return detail::postgres::Connection(url);
        } catch (const PostgresError& e) {
            // libpq checks option values (sslmode, port, ...) when it connects: "invalid sslmode value".
            const std::string_view what = e.what();
            const auto reason = what.find(": invalid ");
            throw InspectionError(reason != std::string_view::npos &&
                                          what.find("connection to server") == std::string_view::npos
                                      ? InspectionError::Kind::bad_address
                                      : InspectionError::Kind::unreachable,
                                  url, e.what());
        }
    }

    /// The address connected to.
    [[nodiscard]] const std::string& url() const noexcept { return url_; }

    /// The highest position the store ever gave (0 if none): the last committed event's, or that of removed
    /// events after it (`orchestrix_head`, kept by the store's lifecycle operations).
    [[nodiscard]] position_t head() {
        return guarded([&] {
            return static_cast<position_t>(connection_
                                               .exec(has_table("orchestrix_head")
                                                         ? "SELECT greatest((SELECT max(position) FROM events), "
                                                           "(SELECT position FROM orchestrix_head WHERE one), 0)"
                                                         : "SELECT coalesce(max(position), 0) FROM events",
                                                     "read the head")
                                               .int64(0, 0));
        });
    }

    /// The events removed by the store's lifecycle operations in total (0 for a layout without them).
    [[nodiscard]] std::uint64_t removed_count() {
        std::uint64_t removed = 0;
        (void)visit_stream_records([&](const inspection::StreamRecord& record) { removed += record.removed; });
        return removed;
    }

    /// Hands every lifecycle record (`orchestrix_streams`: the streams a deletion, truncation or retention
    /// touched) to `visitor` (`const inspection::StreamRecord&`) in stream id order (byte order); returns the
    /// number visited (0 for a layout without the table). What `inspection::verify` reads to tell removed
    /// events from lost rows.
    template <class Visitor>
    std::uint64_t visit_stream_records(Visitor&& visitor) {
        return guarded([&] {
            if (!has_table("orchestrix_streams")) return std::uint64_t{0};
            const detail::postgres::Result r =
                connection_.exec("SELECT stream_id, version, first_version, removed FROM orchestrix_streams "
                                 "ORDER BY stream_id COLLATE \"C\"",
                                 "read the lifecycle records");
            for (int i = 0; i < r.rows(); ++i) {
                inspection::StreamRecord record;
                record.stream_id = std::string(r.text(i, 0));
                record.version = static_cast<stream_version_t>(std::max<std::int64_t>(r.int64(i, 1), 0));
                record.first_version = static_cast<stream_version_t>(std::max<std::int64_t>(r.int64(i, 2), 0));
                record.removed = static_cast<std::uint64_t>(std::max<std::int64_t>(r.int64(i, 3), 0));
                visitor(static_cast<const inspection::StreamRecord&>(record));
            }
            return static_cast<std::uint64_t>(r.rows());
        });
    }

    /// The number of stored events.
    [[nodiscard]] std::uint64_t event_count() {
        return guarded([&] {
            return static_cast<std::uint64_t>(
                connection_.exec("SELECT count(*) FROM events", "count the events").int64(0, 0));
        });
    }

    /// Up to `limit` streams whose ids sort after `after` (byte order), with versions and event counts.
    [[nodiscard]] inspection::StreamPage streams(std::string_view after = {}, std::uint64_t limit = 100) {
        namespace pg = detail::postgres;
        return guarded([&] {
            inspection::StreamPage page;
            if (limit == 0) return page;
            pg::Params params;
            params.add_text(after).add_int8(pg::clamp(limit));
            const pg::Result r = connection_.run_unprepared(
                "SELECT stream_id, max(version), count(*), min(position), max(position) FROM events "
                "WHERE stream_id COLLATE \"C\" > $1 GROUP BY stream_id ORDER BY stream_id COLLATE \"C\" LIMIT $2",
                params, {pg::text_oid, pg::int8_oid}, "list the streams");
            for (int i = 0; i < r.rows(); ++i) {
                page.streams.push_back(inspection::StreamSummary{
                    std::string(r.text(i, 0)), static_cast<stream_version_t>(r.int64(i, 1)),
                    static_cast<std::uint64_t>(r.int64(i, 2)), static_cast<position_t>(r.int64(i, 3)),
                    static_cast<position_t>(r.int64(i, 4))});
            }
            if (page.streams.size() == limit) page.next_after = page.streams.back().stream_id;
            return page;
        });
    }

    /// The stream's current version (0 if it has no events).
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) {
        namespace pg = detail::postgres;
        return guarded([&] {
            pg::Params params;
            params.add_text(stream);
            return static_cast<stream_version_t>(
                connection_
                    .run_unprepared("SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1", params,
                                    {pg::text_oid}, "read a stream's version")
                    .int64(0, 0));
        });
    }

    /// Hands the events of `stream` with versions `from_version` to `to_version` to `visitor` (`const
    /// RawRecordedEventView&`) in version order, as stored; returns the number visited.
    template <class Visitor>
    std::uint64_t visit_stream(std::string_view stream, stream_version_t from_version, stream_version_t to_version,
                               Visitor&& visitor) {
        namespace pg = detail::postgres;
        return guarded([&] {
            pg::Params params;
            params.add_text(stream).add_int8(pg::clamp(from_version)).add_int8(pg::clamp(to_version));
            return visit_rows(connection_.run_unprepared(std::string("SELECT ") + pg::row_columns +
                                                             " FROM events WHERE stream_id = $1 AND version >= $2 "
                                                             "AND version <= $3 ORDER BY version",
                                                         params, {pg::text_oid, pg::int8_oid, pg::int8_oid},
                                                         "read a stream"),
                              visitor);
        });
    }

    /// Hands at most `max_count` events from position `from_position` on to `visitor` in position order, as
    /// stored (a version or schema version below 1 reads as 0); returns the number visited.
    template <class Visitor>
    std::uint64_t visit_all(position_t from_position, std::uint64_t max_count, Visitor&& visitor) {
        namespace pg = detail::postgres;
        if (max_count == 0) return 0;
        return guarded([&] {
            pg::Params params;
            params.add_int8(pg::clamp(from_position)).add_int8(pg::clamp(max_count));
            return visit_rows(connection_.run_unprepared(std::string("SELECT ") + pg::row_columns +
                                                             " FROM events WHERE position >= $1 ORDER BY position "
                                                             "LIMIT $2",
                                                         params, {pg::int8_oid, pg::int8_oid}, "read the events"),
                              visitor);
        });
    }

    /// The last `count` events of the store, in position order.
    [[nodiscard]] std::vector<RawRecordedEvent> last_events(std::uint64_t count) {
        namespace pg = detail::postgres;
        return guarded([&] {
            std::vector<RawRecordedEvent> out;
            if (count == 0) return out;
            pg::Params params;
            params.add_int8(pg::clamp(count));
            (void)visit_rows(connection_.run_unprepared(std::string("SELECT ") + pg::row_columns +
                                                            " FROM events ORDER BY position DESC LIMIT $1",
                                                        params, {pg::int8_oid}, "read the last events"),
                             [&](const RawRecordedEventView& row) { out.push_back(row.to_owned()); });
            std::reverse(out.begin(), out.end());
            return out;
        });
    }

    /// Hands every snapshot to `visitor` (`const inspection::SnapshotRow&`) in aggregate id order; returns
    /// the number visited.
    template <class Visitor>
    std::uint64_t visit_snapshots(Visitor&& visitor) {
        return guarded([&] {
            if (!has_table("snapshots")) return std::uint64_t{0};
            const detail::postgres::Result r =
                connection_.exec("SELECT aggregate_id, aggregate_type, version, schema_version, state FROM snapshots "
                                 "ORDER BY aggregate_id COLLATE \"C\"",
                                 "read the snapshots");
            for (int i = 0; i < r.rows(); ++i) {
                inspection::SnapshotRow row;
                row.aggregate_id = std::string(r.text(i, 0));
                row.aggregate_type = std::string(r.text(i, 1));
                const std::int64_t version = r.int64(i, 2);
                row.version = version >= 1 ? static_cast<stream_version_t>(version) : 0;
                const std::int64_t schema = r.int64(i, 3);
                row.schema_version = schema >= 1 ? static_cast<std::uint32_t>(schema) : 0;
                row.state = std::string(r.text(i, 4));
                visitor(static_cast<const inspection::SnapshotRow&>(row));
            }
            return static_cast<std::uint64_t>(r.rows());
        });
    }

    /// Every projection with a checkpoint or dead letters, by name, against the head.
    [[nodiscard]] std::vector<inspection::CheckpointStatus> checkpoints_status() {
        const position_t current = head();
        std::map<std::string, inspection::CheckpointStatus> by_name;
        guarded([&] {
            if (has_table("orchestrix_checkpoints")) {
                const auto r =
                    connection_.exec("SELECT name, position FROM orchestrix_checkpoints", "read the checkpoints");
                for (int i = 0; i < r.rows(); ++i) {
                    by_name[std::string(r.text(i, 0))].position =
                        static_cast<position_t>(std::max<std::int64_t>(r.int64(i, 1), 0));
                }
            }
            if (has_table("orchestrix_dead_letters")) {
                const auto r =
                    connection_.exec("SELECT projection, count(*) FROM orchestrix_dead_letters GROUP BY projection",
                                     "count the dead letters");
                for (int i = 0; i < r.rows(); ++i) {
                    const std::string name(r.text(i, 0));
                    const bool known = by_name.find(name) != by_name.end();
                    auto& status = by_name[name];
                    if (!known) status.has_checkpoint = false;
                    status.dead_letters = static_cast<std::uint64_t>(r.int64(i, 1));
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
        namespace pg = detail::postgres;
        return guarded([&] {
            std::vector<inspection::DeadLetter> out;
            if (!has_table("orchestrix_dead_letters")) return out;
            pg::Params params;
            params.add_text(projection);
            const pg::Result r = connection_.run_unprepared(
                "SELECT projection, position, stream_id, version, event_id, type, schema_version, payload, "
                "metadata, error, attempts, (extract(epoch FROM failed_at) * 1000000)::bigint, retry_requested "
                "FROM orchestrix_dead_letters WHERE ($1 = '' OR projection = $1) ORDER BY projection COLLATE \"C\", "
                "position",
                params, {pg::text_oid}, "read the dead letters");
            for (int i = 0; i < r.rows(); ++i) {
                const auto position = static_cast<position_t>(std::max<std::int64_t>(r.int64(i, 1), 0));
                if (!positions.empty() && std::find(positions.begin(), positions.end(), position) == positions.end()) {
                    continue;
                }
                inspection::DeadLetter d;
                d.projection = std::string(r.text(i, 0));
                d.position = position;
                d.stream_id = std::string(r.text(i, 2));
                d.version = static_cast<stream_version_t>(std::max<std::int64_t>(r.int64(i, 3), 0));
                d.event_id = std::string(r.text(i, 4));
                d.type = std::string(r.text(i, 5));
                if (!r.is_null(i, 6)) {
                    d.schema_version = static_cast<std::uint32_t>(std::max<std::int64_t>(r.int64(i, 6), 0));
                }
                if (!r.is_null(i, 7)) d.payload = std::string(r.text(i, 7));
                if (!r.is_null(i, 8)) d.metadata = std::string(r.text(i, 8));
                d.error = std::string(r.text(i, 9));
                d.attempts = static_cast<std::uint64_t>(std::max<std::int64_t>(r.int64(i, 10), 0));
                d.failed_at = durable::from_micros(r.int64(i, 11));
                d.retry_requested = r.text(i, 12) == "t";
                out.push_back(std::move(d));
            }
            return out;
        });
    }

    /// Asks the running projection `projection` to hand its dead letters at `positions` (all of them if
    /// empty) to its handler again (`retry_requested`); returns the positions marked.
    std::vector<position_t> request_retry(std::string_view projection, const std::vector<position_t>& positions = {}) {
        return change_dead_letters("UPDATE orchestrix_dead_letters SET retry_requested = true WHERE projection = $1 "
                                   "AND position = ANY ($2) RETURNING position",
                                   projection, positions);
    }

    /// Deletes the dead letters of `projection` at `positions` (all of them if empty); returns the positions
    /// deleted.
    std::vector<position_t> discard_dead_letters(std::string_view projection,
                                                 const std::vector<position_t>& positions = {}) {
        return change_dead_letters("DELETE FROM orchestrix_dead_letters WHERE projection = $1 AND position = ANY ($2) "
                                   "RETURNING position",
                                   projection, positions);
    }

private:
    // Runs `f`, turning a lock timeout into `InspectionError{locked}`.
    template <class F>
    auto guarded(F&& f) -> decltype(f()) {
        try {
            return f();
        } catch (const PostgresError& e) {
            if (e.sqlstate() == "55P03") {
                throw InspectionError(InspectionError::Kind::locked, url_,
                                      "the store is locked by another session: " + std::string(e.what()));
            }
            throw;
        }
    }

    bool has_table(std::string_view name) {
        detail::postgres::Params params;
        params.add_text(name);
        return connection_
                   .run_unprepared("SELECT to_regclass($1) IS NOT NULL", params, {detail::postgres::text_oid},
                                   "look for a table")
                   .text(0, 0) == "t";
    }

    void check_layout() {
        if (!has_table("events")) {
            throw InspectionError(InspectionError::Kind::foreign_schema, url_,
                                  "the database holds no orchestrix store: no events table on its search path");
        }
        const auto r = connection_.exec("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('events') "
                                        "AND attnum > 0 AND NOT attisdropped",
                                        "read the events table's columns");
        std::vector<std::string> present;
        present.reserve(static_cast<std::size_t>(r.rows()));
        for (int i = 0; i < r.rows(); ++i) present.emplace_back(r.text(i, 0));
        for (const char* column : {"position", "stream_id", "version", "event_id", "type", "schema_version", "payload",
                                   "metadata", "recorded_at"}) {
            if (std::find(present.begin(), present.end(), column) == present.end()) {
                throw InspectionError(InspectionError::Kind::foreign_schema, url_,
                                      std::string("the database's events table has no column '") + column +
                                          "': not an orchestrix store");
            }
        }
    }

    std::uint64_t events_after(position_t position) {
        namespace pg = detail::postgres;
        return guarded([&] {
            pg::Params params;
            params.add_int8(pg::clamp(position));
            return static_cast<std::uint64_t>(connection_
                                                  .run_unprepared("SELECT count(*) FROM events WHERE position > $1",
                                                                  params, {pg::int8_oid},
                                                                  "count the events after a checkpoint")
                                                  .int64(0, 0));
        });
    }

    std::vector<position_t> change_dead_letters(const char* sql, std::string_view projection,
                                                std::vector<position_t> positions) {
        namespace pg = detail::postgres;
        if (positions.empty()) {
            for (const auto& d : dead_letters(projection)) positions.push_back(d.position);
        }
        return guarded([&] {
            std::vector<position_t> changed;
            if (positions.empty() || !has_table("orchestrix_dead_letters")) return changed;
            std::vector<std::string> elements;
            elements.reserve(positions.size());
            for (const position_t p : positions)
                elements.push_back(pg::Params::big_endian(static_cast<std::uint64_t>(pg::clamp(p))));
            pg::Params params;
            params.add_text(projection).add_array(pg::int8_oid, elements);
            const pg::Result r =
                connection_.run_unprepared(sql, params, {pg::text_oid, int8_array_oid}, "change the dead letters");
            for (int i = 0; i < r.rows(); ++i) changed.push_back(static_cast<position_t>(r.int64(i, 0)));
            std::sort(changed.begin(), changed.end());
            return changed;
        });
    }

    template <class Visitor>
    static std::uint64_t visit_rows(const detail::postgres::Result& r, Visitor&& visitor) {
        for (int i = 0; i < r.rows(); ++i) {
            RawRecordedEventView row;
            row.position = static_cast<position_t>(r.int64(i, 0));
            row.stream_id = r.text(i, 1);
            const std::int64_t version = r.int64(i, 2);
            row.version = version >= 1 ? static_cast<stream_version_t>(version) : 0;
            row.event_id = r.text(i, 3);
            row.type = r.text(i, 4);
            const std::int64_t schema = r.int64(i, 5);
            row.schema_version = schema >= 1 ? static_cast<std::uint32_t>(schema) : 0;
            row.payload = r.text(i, 6);
            row.metadata = r.text(i, 7);
            row.recorded_at = durable::from_micros(r.int64(i, 8));
            visitor(static_cast<const RawRecordedEventView&>(row));
        }
        return static_cast<std::uint64_t>(r.rows());
    }

    // The type OID of bigint[] (fixed in PostgreSQL's catalog).
    static constexpr Oid int8_array_oid = 1016;

    std::string url_;
    detail::postgres::Connection connection_;
};

} // namespace orchestrix
