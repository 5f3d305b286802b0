#pragma once

// The SQLite event store: durable, one file, for one application process (target orchestrix::sqlite).

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/lifecycle.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/durable/query_sql.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/sqlite/connection.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace orchestrix {

/// How hard SQLite works to keep a committed append on disk (`PRAGMA synchronous`, in WAL mode).
enum class SqliteSynchronous : std::uint8_t {
    off,    ///< no fsync: survives a crash of the process, not of the machine
    normal, ///< fsync at checkpoints: survives a process crash; a power loss may lose the last appends
    full,   ///< fsync at every commit: an acknowledged append survives a power loss (the default)
    extra,  ///< FULL plus an fsync of the directory
};

/// Options of `SqliteEventStore` and `SqliteSnapshotStore`.
struct SqliteOptions {
    /// Durability of each commit; see `SqliteSynchronous`.
    SqliteSynchronous synchronous = SqliteSynchronous::full;
    /// How long a write waits for another process holding the file's write lock before failing with
    /// `SqliteError` (`SQLITE_BUSY`).
    std::chrono::milliseconds busy_timeout{5000};
    /// `PRAGMA secure_delete`: SQLite overwrites what it deletes with zeros, in the pages it keeps and the
    /// pages it frees, so that the bytes of removed events (`delete_stream`, `truncate_stream`,
    /// `apply_retention`) and of replaced snapshots leave the file at the next `checkpoint()` or `compact()`
    /// (docs/lifecycle.md). On by default: an event store deletes only in those rare calls, so it costs
    /// nothing on appends and reads, and deleted personal data should not stay readable in free pages.
    bool secure_delete = true;
};

namespace detail::sqlite {

/// The store's tables; `PRAGMA user_version` records the layout so a later release can migrate it.
/// Version 2 added the events' tags (`event_tags`, read by query: core/dcb.hpp) and an index of the
/// events by type; see `migrate_to_2_sql`. Version 3 added the data lifecycle (core/lifecycle.hpp); see
/// `migrate_to_3_sql`.
inline constexpr int schema_version = 3;

/// A new file's tables, layout 3:
///
/// - `events`, `snapshots`, and the tags of tagged events `event_tags` with their indexes;
/// - `orchestrix_streams`: a row for each stream a lifecycle operation touched (`StreamInfo`; core/lifecycle.hpp):
///   `version` is the last version when the row was written (the stream may have grown since: while it holds
///   events, their versions tell), `removed` the events removed from it in total. A stream without a row is
///   active and starts at version 1;
/// - `orchestrix_head`: the highest position ever given, kept by a removal that takes the last events, so that a
///   position is never given twice (SQLite's own choice, the largest rowid plus one, would give it again);
/// - `event_tags_by_position`: the tags of removed events are deleted by position, not found by a scan.
inline constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_id   TEXT    PRIMARY KEY,
    aggregate_type TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    taken_at       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS event_tags (
    tag      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);
CREATE TABLE IF NOT EXISTS orchestrix_streams (
    stream_id     TEXT    PRIMARY KEY,
    version       INTEGER NOT NULL,
    start_version INTEGER NOT NULL,
    first_version INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'deleted', 'tombstoned')),
    recreation    TEXT    NOT NULL CHECK (recreation IN ('on_append', 'on_no_stream')),
    removed       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orchestrix_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS event_tags_by_position ON event_tags (position);
PRAGMA user_version = 3;
)sql";

/// Layout 1 (orchestrix 0.1) to 2: the tags table and the index by type. The events stored before have no
/// tags (they were appended without them): a query item with tags never matches them, one of types alone does.
inline constexpr const char* migrate_to_2_sql = R"sql(
CREATE TABLE IF NOT EXISTS event_tags (
    tag      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);
PRAGMA user_version = 2;
)sql";

/// Layout 2 to 3: the lifecycle tables and the index of the tags by position (see `schema_sql`). Every stream
/// stored before is active from version 1 and nothing was removed: no row to write; the index is built once,
/// over the tags there.
inline constexpr const char* migrate_to_3_sql = R"sql(
CREATE TABLE IF NOT EXISTS orchestrix_streams (
    stream_id     TEXT    PRIMARY KEY,
    version       INTEGER NOT NULL,
    start_version INTEGER NOT NULL,
    first_version INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'deleted', 'tombstoned')),
    recreation    TEXT    NOT NULL CHECK (recreation IN ('on_append', 'on_no_stream')),
    removed       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orchestrix_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS event_tags_by_position ON event_tags (position);
PRAGMA user_version = 3;
)sql";

[[nodiscard]] inline const char* synchronous_name(SqliteSynchronous s) noexcept {
    switch (s) {
    case SqliteSynchronous::off:
        return "OFF";
    case SqliteSynchronous::normal:
        return "NORMAL";
    case SqliteSynchronous::full:
        return "FULL";
    case SqliteSynchronous::extra:
        return "EXTRA";
    }
    return "FULL";
}

/// Opens `path`, switches it to WAL with the requested synchronous level, and creates or checks the tables.
[[nodiscard]] inline Connection open_database(const std::string& path, const SqliteOptions& options) {
    Connection db(path);
    db.exec("PRAGMA busy_timeout = " + std::to_string(options.busy_timeout.count()));
    const std::string mode = db.query_text("PRAGMA journal_mode = WAL");
    if (mode != "wal" && mode != "memory") {
        throw SqliteError(SQLITE_ERROR,
                          "SQLite could not switch '" + path + "' to WAL mode (it is in '" + mode + "' mode)");
    }
    db.exec(std::string("PRAGMA synchronous = ") + synchronous_name(options.synchronous));
    db.exec(options.secure_delete ? "PRAGMA secure_delete = ON" : "PRAGMA secure_delete = OFF");
    const auto check_layout = [&](const std::string& layout) {
        if (layout != "0" && layout != "1" && layout != "2" && layout != std::to_string(schema_version)) {
            throw SqliteError(SQLITE_ERROR, "'" + path + "' has orchestrix schema version " + layout +
                                                "; this program knows version " + std::to_string(schema_version));
        }
    };
    std::string layout = db.query_text("PRAGMA user_version");
    check_layout(layout);
    if (layout != std::to_string(schema_version)) {
        // Created or migrated in one IMMEDIATE transaction, the layout read again under the write lock: another
        // process may have done it meanwhile (every statement is idempotent anyway).
        db.exec("BEGIN IMMEDIATE");
        try {
            layout = db.query_text("PRAGMA user_version");
            check_layout(layout);
            if (layout == "0") db.exec(schema_sql);
            if (layout == "1") db.exec(migrate_to_2_sql);
            if (layout == "1" || layout == "2") db.exec(migrate_to_3_sql);
            db.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }
    return db;
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on `db`: copies every page of the WAL into the database file and empties
/// the WAL file. Throws `SqliteError` (`SQLITE_BUSY`) if another connection's read kept it from finishing
/// within the busy timeout.
inline void checkpoint_truncate(Connection& db) {
    Statement s(db.handle(), "PRAGMA wal_checkpoint(TRUNCATE)");
    if (s.step() && s.int64(0) != 0) {
        throw SqliteError(SQLITE_BUSY, "SQLite could not finish the checkpoint: another connection is reading an "
                                       "older state of the file; call it again when that read has ended");
    }
}

/// `VACUUM` (the file rewritten from its live rows: free pages and index pages of removed rows are gone, the
/// file shrinks), then `checkpoint_truncate`.
inline void compact(Connection& db) {
    db.exec("VACUUM");
    checkpoint_truncate(db);
}

/// How `orchestrix_streams` spells a `StreamStatus` and a `Recreation`.
[[nodiscard]] constexpr const char* status_name(StreamStatus status) noexcept {
    switch (status) {
    case StreamStatus::active:
        return "active";
    case StreamStatus::deleted:
        return "deleted";
    case StreamStatus::tombstoned:
        return "tombstoned";
    }
    return "active";
}
[[nodiscard]] constexpr const char* recreation_name(Recreation recreation) noexcept {
    return recreation == Recreation::on_no_stream ? "on_no_stream" : "on_append";
}

} // namespace detail::sqlite

/// An event store in one SQLite file.
///
/// - Durable: WAL journal, `synchronous = FULL` by default (`SqliteOptions`), one `BEGIN IMMEDIATE`
///   transaction per append, so a batch is on disk completely or not at all.
/// - Events are kept as JSON through `Codec` (`JsonCodec<Events>` by default; pass one with upcasters
///   registered); a stored row that cannot be decoded throws `StoredEventDecodeError` naming its position.
/// - Thread-safe: one long-lived connection with cached prepared statements, serialized by a mutex, so
///   calls from several threads run one at a time. Several processes may open the same file; SQLite's
///   write lock (waiting up to `busy_timeout`) serializes their appends.
/// - `visit_stream` / `visit_all` call their callback with the store locked: the callback must not call
///   this store.
/// - For events that declare tags (`tagged_event_variant`), a `dcb_event_store`: every append stores each
///   event's tags (table `event_tags`), `read(query)` / `visit(query, ...)` read by query, and
///   `append(stream, events, expected, condition)` checks its condition inside the append's write
///   transaction, so it holds against every other writer of the file, in this process or another.
/// - A `lifecycle_event_store`: `delete_stream`, `truncate_stream` and `apply_retention` delete the rows (and
///   their tags) in one `BEGIN IMMEDIATE` transaction each and record the stream's life in
///   `orchestrix_streams`; an append reads that table only for a stream that holds no events. The bytes of
///   the removed rows leave the file at the next `checkpoint()` (with `SqliteOptions::secure_delete`) or
///   `compact()` (docs/lifecycle.md).
template <event_variant Events, class Codec = JsonCodec<Events>>
class SqliteEventStore : public DurableStoreBase<SqliteEventStore<Events, Codec>, Events, Codec> {
    using base_type = DurableStoreBase<SqliteEventStore, Events, Codec>;
    friend base_type;

public:
    using typename base_type::envelope_type;
    using typename base_type::event_type;
    using typename base_type::recorded_type;
    using typename base_type::view_type;

    /// The kind this store reports to its observer (`observe`).
    static constexpr std::string_view store_kind = "sqlite";

    /// Opens (or creates) the store in the file at `path`. Throws `SqliteError` if the file cannot be
    /// opened, switched to WAL, or holds a newer layout.
    explicit SqliteEventStore(std::string path, SqliteOptions options = {}, Codec codec = Codec{})
        : path_(std::move(path)), codec_(std::move(codec)), db_(detail::sqlite::open_database(path_, options)),
          begin_(db_.handle(), "BEGIN IMMEDIATE"), begin_read_(db_.handle(), "BEGIN"), commit_(db_.handle(), "COMMIT"),
          rollback_(db_.handle(), "ROLLBACK"),
          stream_version_(db_.handle(), "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1"),
          head_(db_.handle(), "SELECT max(coalesce((SELECT max(position) FROM events), 0), "
                              "coalesce((SELECT position FROM orchestrix_head WHERE id = 1), 0))"),
          find_id_(db_.handle(), "SELECT stream_id, version, position, type, schema_version, payload FROM events "
                                 "WHERE event_id = ?1"),
          insert_(db_.handle(), "INSERT INTO events (stream_id, version, event_id, type, schema_version, payload, "
                                "metadata, recorded_at, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
          insert_tag_(db_.handle(), "INSERT INTO event_tags (tag, position) VALUES (?1, ?2)"),
          read_stream_(db_.handle(), "SELECT position, stream_id, version, event_id, type, schema_version, payload, "
                                     "metadata, recorded_at FROM events WHERE stream_id = ?1 AND version >= ?2 "
                                     "ORDER BY version LIMIT ?3"),
          read_all_(db_.handle(), "SELECT position, stream_id, version, event_id, type, schema_version, payload, "
                                  "metadata, recorded_at FROM events WHERE position >= ?1 ORDER BY position "
                                  "LIMIT ?2"),
          stream_row_(db_.handle(), "SELECT version, start_version, first_version, status, recreation FROM "
                                    "orchestrix_streams WHERE stream_id = ?1"),
          stream_bounds_(db_.handle(), "SELECT min(version), max(version) FROM events WHERE stream_id = ?1"),
          save_stream_(db_.handle(),
                       "INSERT INTO orchestrix_streams (stream_id, version, start_version, first_version, status, "
                       "recreation, removed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (stream_id) DO UPDATE "
                       "SET version = excluded.version, start_version = excluded.start_version, first_version = "
                       "excluded.first_version, status = excluded.status, recreation = excluded.recreation, "
                       "removed = orchestrix_streams.removed + excluded.removed"),
          remove_tags_(db_.handle(), "DELETE FROM event_tags WHERE position IN (SELECT position FROM events WHERE "
                                     "stream_id = ?1 AND version < ?2)"),
          remove_events_(db_.handle(), "DELETE FROM events WHERE stream_id = ?1 AND version < ?2"),
          keep_head_(db_.handle(), "INSERT INTO orchestrix_head (id, position) VALUES (1, ?1) ON CONFLICT (id) DO "
                                   "UPDATE SET position = max(position, excluded.position)"),
          removed_(db_.handle(), "SELECT coalesce(sum(removed), 0) FROM orchestrix_streams") {}

    SqliteEventStore(const SqliteEventStore&) = delete;
    SqliteEventStore& operator=(const SqliteEventStore&) = delete;

    // `append` (plain and conditional, of a span, a braced list or plain events), `read_stream`, `read_all`,
    // `visit_stream`, `visit_all`, and `read` and `visit` by query: `DurableStoreBase`, on `append_batch` below.

    /// The stream's current version: 0 if it does not exist or is deleted; the kept version of an active
    /// stream whose events were all truncated away.
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) const {
        std::lock_guard lock(mutex_);
        if (const stream_version_t stored = current_version(stream); stored != 0) return stored;
        const auto row = lifecycle_row(stream);
        return row && row->status == StreamStatus::active ? row->version : 0;
    }

    /// Removes every event of `stream` and marks it deleted (soft) or tombstoned (hard), if `expected` holds
    /// for `stream_version(stream)`; see `lifecycle_event_store`. One write transaction: the rows and their
    /// tags are gone for every reader at once. Throws `ConcurrencyError`, `StreamDeletedError` (soft-deleting
    /// a tombstoned stream), `InvalidArgumentError("stream")` for a malformed stream id, `SqliteError`.
    RemovalResult delete_stream(std::string_view stream, ExpectedVersion expected, DeleteOptions options = {}) {
        detail::validate_stream_id(stream);
        std::lock_guard lock(mutex_);
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        const StoredLife life = load_life(stream);
        StreamInfo info = life.info;
        if (info.status == StreamStatus::tombstoned && options.mode == DeleteMode::soft) {
            throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
        }
        detail::check_expected(stream, expected, info.status == StreamStatus::active ? info.version : 0);
        if (info.status == StreamStatus::tombstoned) return RemovalResult{0, info.version};
        const std::uint64_t removed = remove_below(stream, std::numeric_limits<stream_version_t>::max());
        info.first_version = info.version + 1;
        info.status = options.mode == DeleteMode::hard ? StreamStatus::tombstoned : StreamStatus::deleted;
        info.recreation = options.recreation;
        save_life(stream, info, removed);
        transaction.commit();
        return RemovalResult{removed, info.version};
    }

    /// Removes the events of `stream` with versions below `before`; `stream_version` is unchanged. See
    /// `lifecycle_event_store`. Throws `InvalidArgumentError("before")` for `before` above the version plus
    /// one, `StreamDeletedError` for a tombstoned stream, `InvalidArgumentError("stream")` for a malformed
    /// stream id, `SqliteError`.
    RemovalResult truncate_stream(std::string_view stream, stream_version_t before) {
        detail::validate_stream_id(stream);
        std::lock_guard lock(mutex_);
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        const StoredLife life = load_life(stream);
        StreamInfo info = life.info;
        if (info.status == StreamStatus::tombstoned) {
            throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
        }
        if (before > info.version + 1) {
            throw InvalidArgumentError("before", "truncate_stream of '" + std::string(stream) + "' before version " +
                                                     std::to_string(before) + ": the stream is at version " +
                                                     std::to_string(info.version) + ", so at most " +
                                                     std::to_string(info.version + 1) + " removes anything");
        }
        if (info.status == StreamStatus::deleted || before <= info.first_version) return RemovalResult{0, info.version};
        const std::uint64_t removed = remove_below(stream, before);
        info.first_version = before;
        save_life(stream, info, removed);
        transaction.commit();
        return RemovalResult{removed, info.version};
    }

    /// Applies each rule to each active stream whose id starts with its prefix (the rule removing most wins),
    /// in one write transaction; see `lifecycle_event_store`. Throws `InvalidArgumentError("rules")` for a
    /// negative `max_age`, `SqliteError`.
    RetentionReport apply_retention(std::span<const RetentionRule> rules,
                                    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
        detail::validate_retention_rules(rules);
        std::lock_guard lock(mutex_);
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        // The version each stream is truncated before: the most any rule removes.
        std::map<std::string, stream_version_t, std::less<>> bounds;
        detail::sqlite::Statement streams(db_.handle(), "SELECT stream_id, max(version) FROM events WHERE stream_id "
                                                        ">= ?1 GROUP BY stream_id ORDER BY stream_id");
        detail::sqlite::Statement first_recent(db_.handle(), "SELECT min(version) FROM events WHERE stream_id = ?1 "
                                                             "AND recorded_at >= ?2");
        for (const RetentionRule& rule : rules) {
            if (!rule.max_count && !rule.max_age) continue;
            // In microseconds, saturated: a max_age of centuries keeps everything rather than overflowing.
            constexpr std::int64_t micros = 1'000'000;
            const std::int64_t age = !rule.max_age ? 0
                                     : rule.max_age->count() > std::numeric_limits<std::int64_t>::max() / micros
                                         ? std::numeric_limits<std::int64_t>::max()
                                         : rule.max_age->count() * micros;
            const std::int64_t at = durable::to_micros(now);
            const std::int64_t cutoff = at < std::numeric_limits<std::int64_t>::min() + age
                                            ? std::numeric_limits<std::int64_t>::min()
                                            : at - age;
            auto s = streams.use();
            s->bind(1, rule.stream_prefix);
            while (s->step()) {
                const std::string_view stream = s->text(0);
                if (!detail::retention_matches(rule, stream)) break; // past the prefix's range
                const auto version = static_cast<stream_version_t>(s->int64(1));
                stream_version_t before = 0;
                if (rule.max_count) before = detail::retention_count_bound(version, *rule.max_count);
                if (rule.max_age) {
                    auto f = first_recent.use();
                    f->bind(1, stream);
                    f->bind(2, cutoff);
                    f->step();
                    const stream_version_t kept =
                        f->is_null(0) ? version + 1 : static_cast<stream_version_t>(f->int64(0));
                    before = std::max(before, kept);
                }
                auto [entry, inserted] = bounds.try_emplace(std::string(stream), before);
                if (!inserted) entry->second = std::max(entry->second, before);
            }
        }
        RetentionReport report;
        for (const auto& [stream, before] : bounds) {
            StreamInfo info = load_life(stream).info;
            if (before <= info.first_version) continue;
            const std::uint64_t removed = remove_below(stream, before);
            if (removed == 0) continue;
            info.first_version = before;
            save_life(stream, info, removed);
            ++report.streams_truncated;
            report.events_removed += removed;
        }
        transaction.commit();
        return report;
    }

    /// The stream's life (`StreamInfo`): the default (never written) for a stream without events or a
    /// record, and for a malformed stream id.
    [[nodiscard]] StreamInfo stream_info(std::string_view stream) const {
        if (!detail::is_valid_stream_id(stream)) return StreamInfo{};
        std::lock_guard lock(mutex_);
        // One read transaction: the events and the record from one snapshot of the file.
        detail::sqlite::ImmediateTransaction transaction(begin_read_, commit_, rollback_);
        StreamInfo info = load_life(stream).info;
        transaction.commit();
        return info;
    }

    /// The events removed by `delete_stream`, `truncate_stream` and `apply_retention` in total, by every
    /// writer of the file: how `verify` tells a removal from a lost row.
    [[nodiscard]] std::uint64_t removed_count() const {
        std::lock_guard lock(mutex_);
        auto s = removed_.use();
        s->step();
        return static_cast<std::uint64_t>(s->int64(0));
    }

    /// Moves the WAL into the database file and empties the WAL file (`PRAGMA wal_checkpoint(TRUNCATE)`).
    /// With `SqliteOptions::secure_delete`, what removals deleted was overwritten with zeros, so after this the
    /// payload and metadata of removed events are in neither file. Throws `SqliteError` (`SQLITE_BUSY`) if
    /// another connection's read kept it from finishing: call it again.
    void checkpoint() {
        std::lock_guard lock(mutex_);
        detail::sqlite::checkpoint_truncate(db_);
    }

    /// `VACUUM`, then `checkpoint()`: the file is rewritten from its live rows, so nothing of a removed event
    /// is left in it, not even a stream id or tag that an index page kept as a boundary, and its free pages
    /// are given back to the file system (the file shrinks). Rewrites the whole file (it needs as much free
    /// disk again, and holds the write lock meanwhile): call it after removals, not after every one. Throws
    /// `SqliteError` (`SQLITE_BUSY`) as `checkpoint()`.
    void compact() {
        std::lock_guard lock(mutex_);
        detail::sqlite::compact(db_);
    }

    /// The global position of the last stored event: 0 if the store is empty.
    [[nodiscard]] position_t head_position() const {
        std::lock_guard lock(mutex_);
        return head();
    }

    /// The database file.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

    /// The journal mode in force on the store's connection: "wal" (or "memory" for ":memory:").
    [[nodiscard]] std::string journal_mode() const {
        std::lock_guard lock(mutex_);
        return db_.query_text("PRAGMA journal_mode");
    }

    /// The `synchronous` level in force on the store's connection.
    [[nodiscard]] SqliteSynchronous synchronous() const {
        std::lock_guard lock(mutex_);
        const std::string level = db_.query_text("PRAGMA synchronous");
        return level == "0"   ? SqliteSynchronous::off
               : level == "1" ? SqliteSynchronous::normal
               : level == "3" ? SqliteSynchronous::extra
                              : SqliteSynchronous::full;
    }
    /// The codec events go through.
    [[nodiscard]] const Codec& codec() const noexcept { return codec_; }

private:
    // The most statements of read-by-query and condition shapes kept prepared; past it the cache starts over.
    static constexpr std::size_t max_cached_queries = 64;
    // The columns `visit_rows` reads.
    static constexpr const char* row_columns =
        "position, stream_id, version, event_id, type, schema_version, payload, metadata, recorded_at";

    AppendResult append_batch(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected,
                              const AppendCondition* condition) {
        const durable::PreparedBatch batch = durable::prepare_append<Events>(codec_, stream, events, condition);
        std::vector<Uuid> ids;
        ids.reserve(events.size());
        for (const auto& e : events) ids.push_back(e.metadata.event_id);
        return write_batch(
            stream, std::span<const Uuid>(ids), batch, expected, condition,
            [&](std::span<const std::optional<durable::StoredEventRow>> stored, stream_version_t current) {
                return durable::check_idempotent_retry<Events>(
                    codec_, stream, events, batch.encoded, stored, expected, current, [&] {
                        const std::optional<StreamInfo> record = lifecycle_row(stream);
                        return record ? record->start_version : stream_version_t{1};
                    });
            });
    }

    // The insert of a checked batch, shared by `append_batch` and `append_raw` (see `DurableStoreBase`).
    template <class Retry>
    AppendResult write_batch(std::string_view stream, std::span<const Uuid> ids, const durable::PreparedBatch& batch,
                             ExpectedVersion expected, const AppendCondition* condition, Retry&& retry) {
        const std::vector<SerializedEvent>& encoded = batch.encoded;
        std::optional<durable::QuerySql> check;
        if (condition != nullptr) {
            check = durable::query_first_match_sql(condition->fail_if_events_match, durable::SqlDialect::sqlite);
        }

        std::lock_guard lock(mutex_);
        if (ids.empty()) {
            if (const stream_version_t stored = current_version(stream); stored != 0) {
                return AppendResult{stored, 0, 0, false};
            }
            const auto row = lifecycle_row(stream);
            return AppendResult{row && row->status == StreamStatus::active ? row->version : 0, 0, 0, false};
        }
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        // Read under the write lock: recorded_at never decreases along positions (unless the clock does).
        const auto now = durable::to_micros(std::chrono::system_clock::now());
        // `last`: the version the batch's versions follow; `current`: the one `expected` is checked against
        // (0 for a deleted stream, which the append recreates). The lifecycle record is read only for a stream
        // that holds no events: a stream with events is active and its last event has its version.
        stream_version_t last = current_version(stream);
        stream_version_t current = last;
        std::optional<StreamInfo> record;
        if (last == 0) {
            record = lifecycle_row(stream);
            if (record) {
                current = detail::admit_append(stream, *record, expected);
                last = record->version;
            }
        }
        if (!expected.matches(current)) { // perhaps a retry of a stored batch: that decides
            if (auto stored = check_retry(ids, retry, current)) return *stored;
            throw ConcurrencyError(std::string(stream), expected, current);
        }
        const position_t head_position = head();
        try {
            detail::validate_growth(stream, last, head_position, ids.size());
        } catch (const InvalidArgumentError&) { // a retry of a stored batch writes nothing: that decides first
            if (auto stored = check_retry(ids, retry, current)) return *stored;
            throw;
        }
        if (check) {
            if (const auto conflict = first_match(*check, condition->after.value_or(0))) {
                // A retry of a stored batch is not checked against the condition (its own events may match).
                if (auto stored = check_retry(ids, retry, current)) return *stored;
                throw AppendConditionError(std::string(stream), *conflict, condition->after);
            }
        }

        position_t first = 0;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            auto s = insert_.use();
            s->bind(1, stream);
            s->bind(2, static_cast<std::int64_t>(last + i + 1));
            s->bind(3, ids[i].to_string());
            s->bind(4, encoded[i].type);
            s->bind(5, static_cast<std::int64_t>(encoded[i].schema_version));
            s->bind(6, encoded[i].payload);
            s->bind(7, encoded[i].metadata);
            s->bind(8, now);
            s->bind(9, static_cast<std::int64_t>(head_position + i + 1));
            try {
                s->step();
            } catch (const SqliteError& e) {
                // A later id of the batch is stored already: analyse the whole batch (rolled back below),
                // not counting the rows this append has just inserted.
                if (e.code() != SQLITE_CONSTRAINT_UNIQUE) throw;
                if (auto stored = check_retry(ids, retry, current, i == 0 ? 0 : first)) return *stored;
                throw;
            }
            const position_t position = head_position + i + 1;
            if (i == 0) first = position;
            if (!batch.tags.empty()) insert_tags(batch.tags[i], position);
        }
        if (record && record->status == StreamStatus::deleted) { // recreated: a new life from the next version
            StreamInfo recreated = *record;
            recreated.status = StreamStatus::active;
            recreated.start_version = recreated.first_version = record->version + 1;
            save_life(stream, recreated, 0);
        }
        transaction.commit();
        return AppendResult{last + ids.size(), first, first + ids.size() - 1, true};
    }

    // A stream's life as stored: `info` (from its events and its record), and whether it has a record.
    struct StoredLife {
        StreamInfo info{};
        bool recorded = false;
    };

    // The stream's record in `orchestrix_streams` (its `first_version` is that of the record), or nothing.
    std::optional<StreamInfo> lifecycle_row(std::string_view stream) const {
        auto s = stream_row_.use();
        s->bind(1, stream);
        if (!s->step()) return std::nullopt;
        StreamInfo info;
        info.version = static_cast<stream_version_t>(s->int64(0));
        info.start_version = static_cast<stream_version_t>(s->int64(1));
        info.first_version = static_cast<stream_version_t>(s->int64(2));
        const std::string_view status = s->text(3);
        if (status == "deleted") {
            info.status = StreamStatus::deleted;
        } else if (status == "tombstoned") {
            info.status = StreamStatus::tombstoned;
        } else if (status != "active") {
            throw SqliteError(SQLITE_CORRUPT, "the orchestrix_streams row of stream '" + std::string(stream) +
                                                  "' has the status '" + std::string(status) +
                                                  "' (active, deleted or tombstoned expected)");
        }
        info.recreation = s->text(4) == "on_no_stream" ? Recreation::on_no_stream : Recreation::on_append;
        return info;
    }

    // The stream's life from its events and its record (called inside a transaction).
    StoredLife load_life(std::string_view stream) const {
        StoredLife life;
        if (auto row = lifecycle_row(stream)) {
            life.info = *row;
            life.recorded = true;
        }
        auto s = stream_bounds_.use();
        s->bind(1, stream);
        s->step();
        if (!s->is_null(0)) { // it holds events: it is active, and they tell its versions
            life.info.first_version = static_cast<stream_version_t>(s->int64(0));
            life.info.version = static_cast<stream_version_t>(s->int64(1));
            life.info.status = StreamStatus::active;
        } else if (life.recorded) {
            life.info.first_version = life.info.version + 1;
        }
        return life;
    }

    // Writes the stream's record, adding `removed` to its removed events.
    void save_life(std::string_view stream, const StreamInfo& info, std::uint64_t removed) {
        auto s = save_stream_.use();
        s->bind(1, stream);
        s->bind_clamped(2, info.version);
        s->bind_clamped(3, info.start_version);
        s->bind_clamped(4, info.first_version);
        s->bind(5, std::string_view(detail::sqlite::status_name(info.status)));
        s->bind(6, std::string_view(detail::sqlite::recreation_name(info.recreation)));
        s->bind_clamped(7, removed);
        s->step();
    }

    // Deletes the stream's events with versions below `before` and their tags; returns how many events. Keeps
    // the head first, so that the positions of the last events are not given again.
    std::uint64_t remove_below(std::string_view stream, stream_version_t before) {
        {
            auto k = keep_head_.use();
            k->bind_clamped(1, head());
            k->step();
        }
        {
            auto t = remove_tags_.use();
            t->bind(1, stream);
            t->bind_clamped(2, before);
            t->step();
        }
        auto e = remove_events_.use();
        e->bind(1, stream);
        e->bind_clamped(2, before);
        e->step();
        return static_cast<std::uint64_t>(sqlite3_changes(db_.handle()));
    }

    void insert_tags(const std::vector<std::string>& tags, position_t position) {
        for (const std::string& tag : tags) {
            auto s = insert_tag_.use();
            s->bind(1, tag);
            s->bind(2, static_cast<std::int64_t>(position));
            s->step();
        }
    }

    // The prepared statement of `sql` (a query shape), prepared on first use.
    detail::sqlite::Statement& cached(const std::string& sql) const {
        if (auto it = queries_.find(sql); it != queries_.end()) return it->second;
        if (queries_.size() >= max_cached_queries) queries_.clear();
        return queries_.emplace(sql, detail::sqlite::Statement(db_.handle(), sql)).first->second;
    }

    // Binds `after` and the query's values (`?1`, `?3`...) of a built query.
    static void bind_query(detail::sqlite::Statement& s, const durable::QuerySql& sql, position_t after) {
        s.bind_clamped(1, after);
        for (std::size_t i = 0; i < sql.values.size(); ++i) s.bind(static_cast<int>(i) + 3, sql.values[i]);
    }

    // The first position after `after` that the condition `sql` (`query_first_match_sql`) finds.
    std::optional<position_t> first_match(const durable::QuerySql& sql, position_t after) const {
        auto s = cached(sql.sql).use();
        bind_query(*s.operator->(), sql, after);
        if (!s->step() || s->is_null(0)) return std::nullopt;
        return static_cast<position_t>(s->int64(0));
    }

    template <class Visitor>
    durable::QueryRowsRead visit_query_rows(const Query& query, position_t after, std::uint64_t max_count,
                                            Visitor& visitor) const {
        const durable::QuerySql sql = durable::query_rows_sql(query, durable::SqlDialect::sqlite, row_columns);
        std::lock_guard lock(mutex_);
        // One read transaction: the head and the rows from one snapshot of the file, whoever appends meanwhile.
        detail::sqlite::ImmediateTransaction transaction(begin_read_, commit_, rollback_);
        durable::QueryRowsRead read;
        read.head = head();
        {
            auto s = cached(sql.sql).use();
            bind_query(*s.operator->(), sql, after);
            s->bind_clamped(2, max_count);
            while (s->step()) {
                read.last = visit_current_row(*s.operator->(), visitor);
                ++read.count;
            }
        }
        transaction.commit();
        return read;
    }

    template <class Visitor>
    std::uint64_t visit_stream_rows(std::string_view stream, stream_version_t from_version, std::uint64_t max_count,
                                    Visitor& visitor) const {
        std::lock_guard lock(mutex_);
        auto s = read_stream_.use();
        s->bind(1, stream);
        s->bind_clamped(2, from_version);
        s->bind_clamped(3, max_count);
        return visit_rows(*s.operator->(), visitor);
    }

    template <class Visitor>
    std::uint64_t visit_all_rows(position_t from_position, std::uint64_t max_count, Visitor& visitor) const {
        std::lock_guard lock(mutex_);
        auto s = read_all_.use();
        s->bind_clamped(1, from_position);
        s->bind_clamped(2, max_count);
        return visit_rows(*s.operator->(), visitor);
    }

    stream_version_t current_version(std::string_view stream) const {
        auto s = stream_version_.use();
        s->bind(1, stream);
        s->step();
        return static_cast<stream_version_t>(s->int64(0));
    }

    position_t head() const {
        auto s = head_.use();
        s->step();
        return static_cast<position_t>(s->int64(0));
    }

    std::optional<durable::StoredEventRow> lookup(const Uuid& id) const {
        auto s = find_id_.use();
        s->bind(1, id.to_string());
        if (!s->step()) return std::nullopt;
        return durable::StoredEventRow{
            std::string(s->text(0)), static_cast<stream_version_t>(s->int64(1)), static_cast<position_t>(s->int64(2)),
            std::string(s->text(3)), static_cast<std::uint32_t>(s->int64(4)),    std::string(s->text(5))};
    }

    // `inserted_from`: the position of the first row the running append has inserted (0 if none); those
    // rows are not stored events of an earlier append.
    // The stored rows of the batch's ids, handed to `retry` (see `write_batch`).
    template <class Retry>
    std::optional<AppendResult> check_retry(std::span<const Uuid> ids, Retry& retry, stream_version_t current,
                                            position_t inserted_from = 0) const {
        std::vector<std::optional<durable::StoredEventRow>> rows;
        rows.reserve(ids.size());
        for (const Uuid& id : ids) {
            auto row = lookup(id);
            if (row && inserted_from != 0 && row->position >= inserted_from) row.reset();
            rows.push_back(std::move(row));
        }
        return retry(std::span<const std::optional<durable::StoredEventRow>>(rows), current);
    }

    template <class Visitor>
    std::uint64_t visit_rows(detail::sqlite::Statement& s, Visitor& visitor) const {
        std::uint64_t count = 0;
        while (s.step()) {
            (void)visit_current_row(s, visitor);
            ++count;
        }
        return count;
    }

    // Hands the row `s` is on (the columns of `row_columns`) to `visit_row`; returns its position.
    template <class Visitor>
    position_t visit_current_row(detail::sqlite::Statement& s, Visitor& visitor) const {
        RawRecordedEventView row;
        row.position = static_cast<position_t>(s.int64(0));
        row.stream_id = s.text(1);
        row.event_id = s.text(3);
        row.type = s.text(4);
        row.payload = s.text(6);
        row.metadata = s.text(7);
        const durable::ColumnDamage* damage = nullptr;
        static constexpr durable::ColumnDamage bad_version{"version", "is not a positive integer"};
        static constexpr durable::ColumnDamage bad_schema{"schema_version", "is not a positive 32-bit integer"};
        static constexpr durable::ColumnDamage bad_time{"recorded_at", "is not an integer"};
        const std::int64_t version = s.int64(2);
        if (s.type(2) == SQLITE_INTEGER && version >= 1) {
            row.version = static_cast<stream_version_t>(version);
        } else {
            damage = &bad_version;
        }
        const std::int64_t schema = s.int64(5);
        if (s.type(5) == SQLITE_INTEGER && schema >= 1 && schema <= std::numeric_limits<std::uint32_t>::max()) {
            row.schema_version = static_cast<std::uint32_t>(schema);
        } else if (damage == nullptr) {
            damage = &bad_schema;
        }
        if (s.type(8) == SQLITE_INTEGER) {
            row.recorded_at = durable::from_micros(s.int64(8));
        } else if (damage == nullptr) {
            damage = &bad_time;
        }
        this->visit_row(visitor, row, damage);
        return row.position;
    }

    std::string path_;
    Codec codec_;
    mutable std::mutex mutex_;
    mutable detail::sqlite::Connection db_; // declared before the statements: closed after they are finalized
    mutable detail::sqlite::Statement begin_;
    mutable detail::sqlite::Statement begin_read_;
    mutable detail::sqlite::Statement commit_;
    mutable detail::sqlite::Statement rollback_;
    mutable detail::sqlite::Statement stream_version_;
    mutable detail::sqlite::Statement head_;
    mutable detail::sqlite::Statement find_id_;
    mutable detail::sqlite::Statement insert_;
    mutable detail::sqlite::Statement insert_tag_;
    mutable detail::sqlite::Statement read_stream_;
    mutable detail::sqlite::Statement read_all_;
    mutable detail::sqlite::Statement stream_row_;
    mutable detail::sqlite::Statement stream_bounds_;
    mutable detail::sqlite::Statement save_stream_;
    mutable detail::sqlite::Statement remove_tags_;
    mutable detail::sqlite::Statement remove_events_;
    mutable detail::sqlite::Statement keep_head_;
    mutable detail::sqlite::Statement removed_;
    // The statements of read-by-query and condition shapes, by SQL text (`cached`).
    mutable std::unordered_map<std::string, detail::sqlite::Statement> queries_;
};

/// Snapshots in an SQLite file (the same file as the events, or another): a `snapshot_store`.
/// Thread-safe like `SqliteEventStore` (one connection behind a mutex).
class SqliteSnapshotStore {
public:
    explicit SqliteSnapshotStore(std::string path, SqliteOptions options = {})
        : path_(std::move(path)), db_(detail::sqlite::open_database(path_, options)),
          save_(db_.handle(),
                "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, taken_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (aggregate_id) DO UPDATE SET "
                "aggregate_type = excluded.aggregate_type, version = excluded.version, "
                "schema_version = excluded.schema_version, state = excluded.state, taken_at = excluded.taken_at "
                "WHERE NOT (snapshots.schema_version = excluded.schema_version AND "
                "snapshots.version > excluded.version)"),
          latest_(db_.handle(), "SELECT aggregate_type, version, schema_version, state, taken_at FROM snapshots "
                                "WHERE aggregate_id = ?1") {}

    /// Keeps `snapshot` as its aggregate's latest, unless the stored one has the same schema version and
    /// a higher version. Throws `InvalidArgumentError` for a malformed aggregate id or a version of 0.
    void save(const Snapshot& snapshot) {
        detail::validate_snapshot(snapshot);
        std::lock_guard lock(mutex_);
        auto s = save_.use();
        s->bind(1, snapshot.aggregate_id);
        s->bind(2, snapshot.aggregate_type);
        s->bind(3, static_cast<std::int64_t>(snapshot.version));
        s->bind(4, static_cast<std::int64_t>(snapshot.schema_version));
        s->bind(5, snapshot.state);
        s->bind(6, durable::to_micros(snapshot.taken_at));
        s->step();
    }

    /// The latest snapshot of `aggregate_id`, or nothing.
    [[nodiscard]] std::optional<Snapshot> latest(std::string_view aggregate_id) const {
        std::lock_guard lock(mutex_);
        auto s = latest_.use();
        s->bind(1, aggregate_id);
        if (!s->step()) return std::nullopt;
        return Snapshot{std::string(aggregate_id),
                        std::string(s->text(0)),
                        static_cast<stream_version_t>(s->int64(1)),
                        static_cast<std::uint32_t>(s->int64(2)),
                        std::string(s->text(3)),
                        durable::from_micros(s->int64(4))};
    }

private:
    std::string path_;
    mutable std::mutex mutex_;
    detail::sqlite::Connection db_;
    mutable detail::sqlite::Statement save_;
    mutable detail::sqlite::Statement latest_;
};

} // namespace orchestrix

/// Compiles `SqliteEventStore<Events>` once instead of in every file that uses it (docs/stores.md, "Compiling
/// a store once"): put `ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE(Events);` outside every namespace in a header of your own,
/// after the event types, and `ORCHESTRIX_INSTANTIATE_SQLITE_EVENT_STORE(Events);` in one source file that includes
/// that header. The files that include the header then use the store without compiling its code
/// (with `ORCHESTRIX_EXTERN_JSON_CODEC` / `ORCHESTRIX_INSTANTIATE_JSON_CODEC` for the codec beside it).
#define ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE(...)                                                                      \
    ORCHESTRIX_DETAIL_DURABLE_STORE_INSTANCE(extern, SqliteEventStore, __VA_ARGS__)
/// See `ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE`: in exactly one source file of the program.
#define ORCHESTRIX_INSTANTIATE_SQLITE_EVENT_STORE(...)                                                                 \
    ORCHESTRIX_DETAIL_DURABLE_STORE_INSTANCE(, SqliteEventStore, __VA_ARGS__)
