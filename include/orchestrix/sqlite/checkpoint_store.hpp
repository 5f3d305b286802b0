#pragma once

// Checkpoints, dead letters and read models in SQLite: a projection's writes and its checkpoint commit in
// one transaction (target orchestrix::sqlite).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/lease.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/sqlite/connection.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <sqlite3.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

class SqliteCheckpointStore;

/// The handle a projection's handler writes its read model through: the checkpoint store's connection,
/// inside the transaction that will also move the checkpoint. Prepared statements are cached by their SQL.
///
///     tx.run("INSERT INTO balances (account, balance) VALUES (?1, ?2) "
///            "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance", e.stream_id, amount);
///
/// Arguments bind in order to `?1`, `?2`, ...: integers as INTEGER, strings as TEXT, `std::nullopt` (or an
/// empty `std::optional`) as NULL. Errors throw `SqliteError`; thrown from a handler, they roll the transaction back.
class SqliteTransaction {
public:
    /// The raw connection, for anything the helpers do not cover.
    [[nodiscard]] sqlite3* handle() const noexcept;

    /// Runs SQL without parameters or results (may hold several statements).
    void exec(const std::string& sql);

    /// Runs one statement with `args` bound to it, to completion. Returns the number of rows it changed.
    template <class... Args>
    std::int64_t run(std::string_view sql, const Args&... args) {
        detail::sqlite::Statement& s = statement(sql);
        auto use = s.use();
        bind_all(s, args...);
        while (s.step()) {
        }
        return sqlite3_changes64(handle());
    }

    /// The first column of the first row of a query, as an integer (nothing if no row or NULL).
    template <class... Args>
    [[nodiscard]] std::optional<std::int64_t> query_int64(std::string_view sql, const Args&... args) {
        detail::sqlite::Statement& s = statement(sql);
        auto use = s.use();
        bind_all(s, args...);
        if (!s.step() || s.is_null(0)) return std::nullopt;
        return s.int64(0);
    }

    /// The first column of the first row of a query, as text (nothing if no row or NULL).
    template <class... Args>
    [[nodiscard]] std::optional<std::string> query_text(std::string_view sql, const Args&... args) {
        detail::sqlite::Statement& s = statement(sql);
        auto use = s.use();
        bind_all(s, args...);
        if (!s.step() || s.is_null(0)) return std::nullopt;
        return std::string(s.text(0));
    }

    /// Calls `row(const detail::sqlite::Statement&)` for each row of a query; returns the row count.
    template <class Row, class... Args>
    std::uint64_t for_each(std::string_view sql, Row&& row, const Args&... args) {
        detail::sqlite::Statement& s = statement(sql);
        auto use = s.use();
        bind_all(s, args...);
        std::uint64_t count = 0;
        while (s.step()) {
            std::invoke(row, std::as_const(s));
            ++count;
        }
        return count;
    }

private:
    friend class SqliteCheckpointStore;
    explicit SqliteTransaction(SqliteCheckpointStore& store) noexcept : store_(&store) {}

    detail::sqlite::Statement& statement(std::string_view sql);

    template <class... Args>
    static void bind_all(detail::sqlite::Statement& s, const Args&... args) {
        int index = 0;
        (bind_one(s, ++index, args), ...);
    }

    template <class T>
    static void bind_one(detail::sqlite::Statement& s, int index, const T& value) {
        if constexpr (std::is_same_v<T, std::nullopt_t>) {
            (void)s;
            (void)index;
            (void)value;
            return; // left unbound: NULL
        } else if constexpr (detail::is_optional<T>) {
            if (value) bind_one(s, index, *value); // else left unbound: NULL
        } else if constexpr (std::is_same_v<T, bool>) {
            s.bind(index, std::int64_t{value ? 1 : 0});
        } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
            s.bind(index, static_cast<std::int64_t>(value));
        } else if constexpr (std::is_integral_v<T>) {
            if (static_cast<std::uint64_t>(value) >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                throw InvalidArgumentError("argument", "SqliteTransaction: parameter ?" + std::to_string(index) +
                                                           " is too large for an SQLite INTEGER");
            }
            s.bind(index, static_cast<std::int64_t>(value));
        } else {
            static_assert(std::is_convertible_v<const T&, std::string_view>,
                          "SqliteTransaction: bind integers, strings (anything convertible to std::string_view) "
                          "or std::nullopt; use handle() for other types");
            s.bind(index, std::string_view(value));
        }
    }

    SqliteCheckpointStore* store_;
};

/// Projection checkpoints in an SQLite file (the event store's file or the read model's own), in the table
/// `orchestrix_checkpoints`: a `checkpoint_store` whose transactions are SQLite transactions
/// (`BEGIN IMMEDIATE`) on its own connection. Also a `dead_letter_store`, in the table
/// `orchestrix_dead_letters` (docs/operations.md, "Dead letters"). A projection's read-model tables belong in the same
/// file, written through the `SqliteTransaction` the handler gets, so they commit with the checkpoint.
///
/// Also a `lease_store` for partitioned projections run by several processes on this machine, in the
/// tables `orchestrix_partitioned_projections`, `orchestrix_partition_leases` and
/// `orchestrix_projection_runners` (created by the first `register_partitions`); lease times are this
/// machine's clock (`std::chrono::system_clock`, microseconds since 1970).
///
/// Thread-safe: one connection behind a mutex (a transaction holds it until it ends, so a handler must not
/// call `load`, `save` or `read` of the same store). Other processes may use the file: SQLite's write lock,
/// waited for up to `SqliteOptions::busy_timeout`, serializes them.
class SqliteCheckpointStore {
public:
    using transaction_type = SqliteTransaction;
    /// A rolled-back transaction takes the handler's writes with it.
    static constexpr bool rolls_back_writes = true;

    /// Opens (or creates) `path` in WAL mode with `options.synchronous`, and creates the checkpoint and
    /// dead-letter tables.
    explicit SqliteCheckpointStore(std::string path, SqliteOptions options = {}) : path_(std::move(path)), db_(path_) {
        db_.exec("PRAGMA busy_timeout = " + std::to_string(options.busy_timeout.count()));
        const std::string mode = db_.query_text("PRAGMA journal_mode = WAL");
        if (mode != "wal" && mode != "memory") {
            throw SqliteError(SQLITE_ERROR, "SQLite could not switch '" + path_ + "' to WAL mode");
        }
        db_.exec(std::string("PRAGMA synchronous = ") + detail::sqlite::synchronous_name(options.synchronous));
        db_.exec("CREATE TABLE IF NOT EXISTS orchestrix_checkpoints (name TEXT PRIMARY KEY, "
                 "position INTEGER NOT NULL)");
        db_.exec("CREATE TABLE IF NOT EXISTS orchestrix_dead_letters (projection TEXT NOT NULL, "
                 "position INTEGER NOT NULL, stream_id TEXT NOT NULL, version INTEGER NOT NULL, "
                 "event_id TEXT NOT NULL, type TEXT NOT NULL, schema_version INTEGER, payload TEXT, metadata TEXT, "
                 "error TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at INTEGER NOT NULL, "
                 "retry_requested INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (projection, position)) WITHOUT ROWID");
        begin_ = detail::sqlite::Statement(db_.handle(), "BEGIN IMMEDIATE");
        commit_ = detail::sqlite::Statement(db_.handle(), "COMMIT");
        rollback_ = detail::sqlite::Statement(db_.handle(), "ROLLBACK");
    }

    SqliteCheckpointStore(const SqliteCheckpointStore&) = delete;
    SqliteCheckpointStore& operator=(const SqliteCheckpointStore&) = delete;

    /// The checkpoint of projection `name` (0 if it has none).
    [[nodiscard]] position_t load(std::string_view name) {
        std::lock_guard lock(mutex_);
        SqliteTransaction tx(*this);
        return static_cast<position_t>(
            tx.query_int64("SELECT position FROM orchestrix_checkpoints WHERE name = ?1", name).value_or(0));
    }

    /// Sets the checkpoint of `name`, in a transaction of its own.
    void save(std::string_view name, position_t position) {
        transact([&](SqliteTransaction& tx) { upsert(tx, name, position); });
    }

    /// Runs `body(SqliteTransaction&)` in one `BEGIN IMMEDIATE` transaction: committed if it returns,
    /// rolled back if it throws.
    template <class Body>
    requires std::invocable<Body&, SqliteTransaction&>
    void transact(Body&& body) {
        std::lock_guard lock(mutex_);
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        SqliteTransaction tx(*this);
        std::invoke(body, tx);
        transaction.commit();
    }

    /// In `tx`, moves the checkpoint of `name` from `from` to `to`; throws `CheckpointConflictError` (which
    /// rolls `tx` back) if it is not at `from`.
    void advance(SqliteTransaction& tx, std::string_view name, position_t from, position_t to) {
        const auto f = static_cast<std::int64_t>(from);
        const auto t = static_cast<std::int64_t>(to);
        if (tx.run("UPDATE orchestrix_checkpoints SET position = ?3 WHERE name = ?1 AND position = ?2", name, f, t) ==
            1) {
            return;
        }
        if (from == 0 &&
            tx.run("INSERT INTO orchestrix_checkpoints (name, position) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                   name, t) == 1) {
            return;
        }
        const auto actual =
            tx.query_int64("SELECT position FROM orchestrix_checkpoints WHERE name = ?1", name).value_or(0);
        throw CheckpointConflictError(std::string(name), from, static_cast<position_t>(actual));
    }

    /// In `tx`, sets the checkpoint of `name` to 0.
    void reset(SqliteTransaction& tx, std::string_view name) { upsert(tx, name, 0); }

    /// Runs `reader(SqliteTransaction&)` on the connection outside any write transaction (to query the
    /// read model) and returns its result.
    template <class Reader>
    requires std::invocable<Reader&, SqliteTransaction&>
    decltype(auto) read(Reader&& reader) {
        std::lock_guard lock(mutex_);
        SqliteTransaction tx(*this);
        return std::invoke(reader, tx);
    }

    /// In `tx`, keeps `letter` as a dead letter of `name` (replacing one at the same position).
    void add_dead_letter(SqliteTransaction& tx, std::string_view name, const DeadLetter& letter) {
        std::optional<std::int64_t> schema_version;
        if (letter.schema_version) schema_version = static_cast<std::int64_t>(*letter.schema_version);
        tx.run("INSERT INTO orchestrix_dead_letters (projection, position, stream_id, version, event_id, type, "
               "schema_version, payload, metadata, error, attempts, failed_at, retry_requested) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
               "ON CONFLICT (projection, position) DO UPDATE SET stream_id = excluded.stream_id, "
               "version = excluded.version, event_id = excluded.event_id, type = excluded.type, "
               "schema_version = excluded.schema_version, payload = excluded.payload, metadata = excluded.metadata, "
               "error = excluded.error, attempts = excluded.attempts, failed_at = excluded.failed_at, "
               "retry_requested = excluded.retry_requested",
               name, letter.position, letter.stream_id, letter.version, letter.event_id, letter.type, schema_version,
               letter.payload, letter.metadata, letter.error, letter.attempts, durable::to_micros(letter.failed_at),
               letter.retry_requested);
    }

    /// The dead letters of `name`, in position order. Throws `StoreError` for a row a tool left out of
    /// range (a negative position, version or attempt count).
    [[nodiscard]] std::vector<DeadLetter> dead_letters(std::string_view name) {
        std::lock_guard lock(mutex_);
        SqliteTransaction tx(*this);
        std::vector<DeadLetter> out;
        tx.for_each(
            "SELECT position, stream_id, version, event_id, type, schema_version, payload, metadata, error, "
            "attempts, failed_at, retry_requested FROM orchestrix_dead_letters WHERE projection = ?1 "
            "ORDER BY position",
            [&](const detail::sqlite::Statement& row) { out.push_back(dead_letter_of(name, row)); }, name);
        return out;
    }

    /// The positions of the dead letters of `name` whose retry was requested, in order.
    [[nodiscard]] std::vector<position_t> dead_letter_retries_requested(std::string_view name) {
        std::lock_guard lock(mutex_);
        SqliteTransaction tx(*this);
        std::vector<position_t> out;
        tx.for_each(
            "SELECT position FROM orchestrix_dead_letters WHERE projection = ?1 AND retry_requested <> 0 "
            "ORDER BY position",
            [&](const detail::sqlite::Statement& row) { out.push_back(checked_position(name, row.int64(0))); }, name);
        return out;
    }

    /// In `tx`, removes the dead letter of `name` at `position`; returns whether there was one.
    bool remove_dead_letter(SqliteTransaction& tx, std::string_view name, position_t position) {
        return tx.run("DELETE FROM orchestrix_dead_letters WHERE projection = ?1 AND position = ?2", name, position) ==
               1;
    }

    /// In `tx`, removes every dead letter of `name`; returns how many there were.
    std::uint64_t remove_dead_letters(SqliteTransaction& tx, std::string_view name) {
        return static_cast<std::uint64_t>(tx.run("DELETE FROM orchestrix_dead_letters WHERE projection = ?1", name));
    }

    /// In `tx`, records one more failed attempt of the dead letter of `name` at `position` (`error`,
    /// `failed_at`, attempts + 1) and clears its `retry_requested`; returns whether there was one.
    bool update_dead_letter(SqliteTransaction& tx, std::string_view name, position_t position, std::string_view error,
                            std::chrono::system_clock::time_point failed_at) {
        return tx.run("UPDATE orchestrix_dead_letters SET error = ?3, attempts = attempts + 1, failed_at = ?4, "
                      "retry_requested = 0 WHERE projection = ?1 AND position = ?2",
                      name, position, error, durable::to_micros(failed_at)) == 1;
    }

    /// Asks for a retry of the dead letter of `name` at `position` (what a tool does with
    /// `UPDATE orchestrix_dead_letters SET retry_requested = 1`); returns whether there is one.
    bool request_dead_letter_retry(std::string_view name, position_t position) {
        bool found = false;
        transact([&](SqliteTransaction& tx) {
            found = tx.run("UPDATE orchestrix_dead_letters SET retry_requested = 1 WHERE projection = ?1 AND "
                           "position = ?2",
                           name, position) == 1;
        });
        return found;
    }

    /// Records the partition count of `projection` if it has none (creating the lease tables first);
    /// returns the count it has.
    std::uint32_t register_partitions(std::string_view projection, std::uint32_t partitions) {
        std::int64_t stored = 0;
        transact([&](SqliteTransaction& tx) {
            tx.exec("CREATE TABLE IF NOT EXISTS orchestrix_partitioned_projections (projection TEXT PRIMARY KEY, "
                    "partitions INTEGER NOT NULL)");
            tx.exec("CREATE TABLE IF NOT EXISTS orchestrix_partition_leases (projection TEXT NOT NULL, "
                    "partition_no INTEGER NOT NULL, owner TEXT, token INTEGER NOT NULL DEFAULT 0, "
                    "expires_at INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (projection, partition_no)) WITHOUT ROWID");
            tx.exec(
                "CREATE TABLE IF NOT EXISTS orchestrix_projection_runners (projection TEXT NOT NULL, "
                "runner TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (projection, runner)) WITHOUT ROWID");
            tx.run("INSERT INTO orchestrix_partitioned_projections (projection, partitions) VALUES (?1, ?2) "
                   "ON CONFLICT (projection) DO NOTHING",
                   projection, partitions);
            stored = tx.query_int64("SELECT partitions FROM orchestrix_partitioned_projections WHERE projection = ?1",
                                    projection)
                         .value_or(0);
            if (stored != static_cast<std::int64_t>(partitions)) return;
            for (std::uint32_t p = 0; p < partitions; ++p) {
                tx.run("INSERT INTO orchestrix_partition_leases (projection, partition_no) VALUES (?1, ?2) "
                       "ON CONFLICT (projection, partition_no) DO NOTHING",
                       projection, p);
            }
        });
        return static_cast<std::uint32_t>(stored);
    }

    /// Marks `runner` live for `ttl`; returns the live runners of `projection`.
    std::uint32_t heartbeat(std::string_view projection, std::string_view runner, std::chrono::milliseconds ttl) {
        std::int64_t live = 0;
        transact([&](SqliteTransaction& tx) {
            const std::int64_t now = now_micros();
            tx.run("INSERT INTO orchestrix_projection_runners (projection, runner, expires_at) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (projection, runner) DO UPDATE SET expires_at = excluded.expires_at",
                   projection, runner, now + micros(ttl));
            tx.run("DELETE FROM orchestrix_projection_runners WHERE projection = ?1 AND expires_at <= ?2", projection,
                   now);
            live =
                tx.query_int64("SELECT count(*) FROM orchestrix_projection_runners WHERE projection = ?1", projection)
                    .value_or(0);
        });
        return static_cast<std::uint32_t>(live);
    }

    /// Extends the leases `runner` owns by `ttl` from now; returns them.
    std::vector<PartitionLease> renew_leases(std::string_view projection, std::string_view runner,
                                             std::chrono::milliseconds ttl) {
        std::vector<PartitionLease> out;
        transact([&](SqliteTransaction& tx) {
            out.clear();
            tx.run("UPDATE orchestrix_partition_leases SET expires_at = ?3 WHERE projection = ?1 AND owner = ?2",
                   projection, runner, now_micros() + micros(ttl));
            tx.for_each(
                "SELECT partition_no, token FROM orchestrix_partition_leases WHERE projection = ?1 AND owner = ?2 "
                "ORDER BY partition_no",
                [&](const detail::sqlite::Statement& row) {
                    out.push_back({static_cast<std::uint32_t>(row.int64(0)), static_cast<std::uint64_t>(row.int64(1))});
                },
                projection, runner);
        });
        return out;
    }

    /// The partitions of `projection` nobody holds: free, or their lease expired.
    std::vector<std::uint32_t> claimable_partitions(std::string_view projection) {
        std::lock_guard lock(mutex_);
        SqliteTransaction tx(*this);
        std::vector<std::uint32_t> out;
        tx.for_each(
            "SELECT partition_no FROM orchestrix_partition_leases WHERE projection = ?1 AND "
            "(owner IS NULL OR expires_at <= ?2) ORDER BY partition_no",
            [&](const detail::sqlite::Statement& row) { out.push_back(static_cast<std::uint32_t>(row.int64(0))); },
            projection, now_micros());
        return out;
    }

    /// Takes the lease of `partition` for `runner` if nobody holds it; returns its new token.
    std::optional<std::uint64_t> claim_lease(std::string_view projection, std::uint32_t partition,
                                             std::string_view runner, std::chrono::milliseconds ttl) {
        std::optional<std::uint64_t> token;
        transact([&](SqliteTransaction& tx) {
            const std::int64_t now = now_micros();
            if (tx.run("UPDATE orchestrix_partition_leases SET owner = ?3, token = token + 1, expires_at = ?4 "
                       "WHERE projection = ?1 AND partition_no = ?2 AND (owner IS NULL OR expires_at <= ?5)",
                       projection, partition, runner, now + micros(ttl), now) != 1) {
                return;
            }
            token = static_cast<std::uint64_t>(
                tx.query_int64("SELECT token FROM orchestrix_partition_leases WHERE projection = ?1 AND "
                               "partition_no = ?2",
                               projection, partition)
                    .value_or(0));
        });
        return token;
    }

    /// Frees the lease of `partition` if `runner` holds it with `token`.
    void release_lease(std::string_view projection, std::uint32_t partition, std::string_view runner,
                       std::uint64_t token) {
        transact([&](SqliteTransaction& tx) {
            tx.run("UPDATE orchestrix_partition_leases SET owner = NULL, expires_at = 0 WHERE projection = ?1 AND "
                   "partition_no = ?2 AND owner = ?3 AND token = ?4",
                   projection, partition, runner, token);
        });
    }

    /// Ends the heartbeat of `runner`.
    void remove_runner(std::string_view projection, std::string_view runner) {
        transact([&](SqliteTransaction& tx) {
            tx.run("DELETE FROM orchestrix_projection_runners WHERE projection = ?1 AND runner = ?2", projection,
                   runner);
        });
    }

    /// In `tx`, makes sure `runner` holds the unexpired lease of `partition` with `token`; throws
    /// `LeaseLostError` (which rolls `tx` back) if not. The transaction's write lock keeps any claim out
    /// until it ends.
    void check_lease(SqliteTransaction& tx, std::string_view projection, std::uint32_t partition,
                     std::string_view runner, std::uint64_t token) {
        if (!tx.query_int64("SELECT 1 FROM orchestrix_partition_leases WHERE projection = ?1 AND partition_no = ?2 AND "
                            "owner = ?3 AND token = ?4 AND expires_at > ?5",
                            projection, partition, runner, token, now_micros())) {
            throw LeaseLostError(std::string(projection), partition, std::string(runner), token);
        }
    }

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] sqlite3* handle() const noexcept { return db_.handle(); }

private:
    static std::int64_t now_micros() {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    static std::int64_t micros(std::chrono::milliseconds d) {
        return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    }

    friend class SqliteTransaction;

    static void upsert(SqliteTransaction& tx, std::string_view name, position_t position) {
        tx.run("INSERT INTO orchestrix_checkpoints (name, position) VALUES (?1, ?2) "
               "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
               name, static_cast<std::int64_t>(position));
    }

    static position_t checked_position(std::string_view name, std::int64_t position) {
        if (position <= 0) {
            throw StoreError("orchestrix_dead_letters: projection '" + std::string(name) + "' has a dead letter at " +
                             "position " + std::to_string(position) + "; positions start at 1");
        }
        return static_cast<position_t>(position);
    }

    static DeadLetter dead_letter_of(std::string_view name, const detail::sqlite::Statement& row) {
        DeadLetter out;
        out.position = checked_position(name, row.int64(0));
        const auto count = [&](int column, const char* what, std::int64_t max) {
            const std::int64_t value = row.int64(column);
            if (value < 0 || value > max) {
                throw StoreError("orchestrix_dead_letters: the dead letter of projection '" + std::string(name) +
                                 "' at position " + std::to_string(out.position) + " has " + what + " " +
                                 std::to_string(value) + ", out of range");
            }
            return value;
        };
        constexpr auto max_u32 = static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max());
        out.stream_id = std::string(row.text(1));
        out.version = static_cast<stream_version_t>(count(2, "version", std::numeric_limits<std::int64_t>::max()));
        out.event_id = std::string(row.text(3));
        out.type = std::string(row.text(4));
        if (!row.is_null(5)) out.schema_version = static_cast<std::uint32_t>(count(5, "schema_version", max_u32));
        if (!row.is_null(6)) out.payload = std::string(row.text(6));
        if (!row.is_null(7)) out.metadata = std::string(row.text(7));
        out.error = std::string(row.text(8));
        out.attempts = static_cast<std::uint32_t>(count(9, "attempts", max_u32));
        out.failed_at = durable::from_micros(row.int64(10));
        out.retry_requested = row.int64(11) != 0;
        return out;
    }

    detail::sqlite::Statement& statement(std::string_view sql) {
        auto found = statements_.find(sql);
        if (found != statements_.end()) return found->second;
        return statements_.emplace(std::string(sql), detail::sqlite::Statement(db_.handle(), sql)).first->second;
    }

    std::string path_;
    std::mutex mutex_;
    detail::sqlite::Connection db_; // declared before the statements: closed after they are finalized
    detail::sqlite::Statement begin_;
    detail::sqlite::Statement commit_;
    detail::sqlite::Statement rollback_;
    std::map<std::string, detail::sqlite::Statement, std::less<>> statements_;
};

inline sqlite3* SqliteTransaction::handle() const noexcept { return store_->db_.handle(); }
inline void SqliteTransaction::exec(const std::string& sql) { store_->db_.exec(sql); }
inline detail::sqlite::Statement& SqliteTransaction::statement(std::string_view sql) { return store_->statement(sql); }

} // namespace orchestrix
