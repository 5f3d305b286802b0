#pragma once

// Checkpoints and read models in SQLite: a projection's writes and its checkpoint commit in one
// transaction (target orchestrix::sqlite).

#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/sqlite/connection.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <sqlite3.h>

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

namespace orchestrix {

class SqliteCheckpointStore;

/// The handle a projection's handler writes its read model through: the checkpoint store's connection,
/// inside the transaction that will also move the checkpoint. Prepared statements are cached by their SQL.
///
///     tx.run("INSERT INTO balances (account, balance) VALUES (?1, ?2) "
///            "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance", e.stream_id, amount);
///
/// Arguments bind in order to `?1`, `?2`, ...: integers as INTEGER, strings as TEXT, `std::nullopt` as
/// NULL. Errors throw `SqliteError`; thrown from a handler, they roll the transaction back.
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
/// (`BEGIN IMMEDIATE`) on its own connection. A projection's read-model tables belong in the same file,
/// written through the `SqliteTransaction` the handler gets, so they commit with the checkpoint.
///
/// Thread-safe: one connection behind a mutex (a transaction holds it until it ends, so a handler must not
/// call `load`, `save` or `read` of the same store). Other processes may use the file: SQLite's write lock,
/// waited for up to `SqliteOptions::busy_timeout`, serializes them.
class SqliteCheckpointStore {
public:
    using transaction_type = SqliteTransaction;
    /// A rolled-back transaction takes the handler's writes with it.
    static constexpr bool rolls_back_writes = true;

    /// Opens (or creates) `path` in WAL mode with `options.synchronous`, and creates the checkpoint table.
    explicit SqliteCheckpointStore(std::string path, SqliteOptions options = {}) : path_(std::move(path)), db_(path_) {
        db_.exec("PRAGMA busy_timeout = " + std::to_string(options.busy_timeout.count()));
        const std::string mode = db_.query_text("PRAGMA journal_mode = WAL");
        if (mode != "wal" && mode != "memory") {
            throw SqliteError(SQLITE_ERROR, "SQLite could not switch '" + path_ + "' to WAL mode");
        }
        db_.exec(std::string("PRAGMA synchronous = ") + detail::sqlite::synchronous_name(options.synchronous));
        db_.exec("CREATE TABLE IF NOT EXISTS orchestrix_checkpoints (name TEXT PRIMARY KEY, "
                 "position INTEGER NOT NULL)");
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

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] sqlite3* handle() const noexcept { return db_.handle(); }

private:
    friend class SqliteTransaction;

    static void upsert(SqliteTransaction& tx, std::string_view name, position_t position) {
        tx.run("INSERT INTO orchestrix_checkpoints (name, position) VALUES (?1, ?2) "
               "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
               name, static_cast<std::int64_t>(position));
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
