#pragma once

// The SQLite event store: durable, one file, for one application process (target orchestrix::sqlite).

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/durable/query_sql.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/sqlite/connection.hpp>

#include <sqlite3.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
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
};

namespace detail::sqlite {

/// The store's tables; `PRAGMA user_version` records the layout so a later release can migrate it.
/// Version 2 added the events' tags (`event_tags`, read by query: core/dcb.hpp) and an index of the
/// events by type; see `migrate_to_2_sql`.
inline constexpr int schema_version = 2;
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
PRAGMA user_version = 2;
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
    const auto check_layout = [&](const std::string& layout) {
        if (layout != "0" && layout != "1" && layout != std::to_string(schema_version)) {
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
            db.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }
    return db;
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
          head_(db_.handle(), "SELECT coalesce(max(position), 0) FROM events"),
          find_id_(db_.handle(), "SELECT stream_id, version, position, type, schema_version, payload FROM events "
                                 "WHERE event_id = ?1"),
          insert_(db_.handle(), "INSERT INTO events (stream_id, version, event_id, type, schema_version, payload, "
                                "metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
          insert_tag_(db_.handle(), "INSERT INTO event_tags (tag, position) VALUES (?1, ?2)"),
          read_stream_(db_.handle(), "SELECT position, stream_id, version, event_id, type, schema_version, payload, "
                                     "metadata, recorded_at FROM events WHERE stream_id = ?1 AND version >= ?2 "
                                     "ORDER BY version LIMIT ?3"),
          read_all_(db_.handle(), "SELECT position, stream_id, version, event_id, type, schema_version, payload, "
                                  "metadata, recorded_at FROM events WHERE position >= ?1 ORDER BY position "
                                  "LIMIT ?2") {}

    SqliteEventStore(const SqliteEventStore&) = delete;
    SqliteEventStore& operator=(const SqliteEventStore&) = delete;

    // `append` (plain and conditional, of a span, a braced list or plain events), `read_stream`, `read_all`,
    // `visit_stream`, `visit_all`, and `read` and `visit` by query: `DurableStoreBase`, on `append_batch` below.

    /// The stream's current version: 0 if it does not exist.
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) const {
        std::lock_guard lock(mutex_);
        return current_version(stream);
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
                return durable::check_idempotent_retry<Events>(codec_, stream, events, batch.encoded, stored, expected,
                                                               current);
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
        if (ids.empty()) return AppendResult{current_version(stream), 0, 0, false};
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        // Read under the write lock: recorded_at never decreases along positions (unless the clock does).
        const auto now = durable::to_micros(std::chrono::system_clock::now());
        const stream_version_t current = current_version(stream);
        if (!expected.matches(current)) { // perhaps a retry of a stored batch: that decides
            if (auto stored = check_retry(ids, retry, current)) return *stored;
            throw ConcurrencyError(std::string(stream), expected, current);
        }
        try {
            detail::validate_growth(stream, current, head(), ids.size());
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
            s->bind(2, static_cast<std::int64_t>(current + i + 1));
            s->bind(3, ids[i].to_string());
            s->bind(4, encoded[i].type);
            s->bind(5, static_cast<std::int64_t>(encoded[i].schema_version));
            s->bind(6, encoded[i].payload);
            s->bind(7, encoded[i].metadata);
            s->bind(8, now);
            try {
                s->step();
            } catch (const SqliteError& e) {
                // A later id of the batch is stored already: analyse the whole batch (rolled back below),
                // not counting the rows this append has just inserted.
                if (e.code() != SQLITE_CONSTRAINT_UNIQUE) throw;
                if (auto stored = check_retry(ids, retry, current, i == 0 ? 0 : first)) return *stored;
                throw;
            }
            const auto position = static_cast<position_t>(db_.last_insert_rowid());
            if (i == 0) first = position;
            if (!batch.tags.empty()) insert_tags(batch.tags[i], position);
        }
        transaction.commit();
        return AppendResult{current + ids.size(), first, first + ids.size() - 1, true};
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
