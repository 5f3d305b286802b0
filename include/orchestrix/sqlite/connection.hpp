#pragma once

// Thin RAII wrappers over the SQLite C API for the SQLite store: a connection, prepared statements that
// reset themselves, and an IMMEDIATE transaction that rolls back unless committed. Every failure becomes
// an `orchestrix::SqliteError` carrying SQLite's message and result code.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/sqlite/errors.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

namespace detail::sqlite {

[[noreturn]] inline void fail(sqlite3* db, int code, std::string_view doing) {
    const int extended = db != nullptr ? sqlite3_extended_errcode(db) : code;
    const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    throw SqliteError(extended, "SQLite failed to " + std::string(doing) + ": " +
                                    (message != nullptr ? message : "unknown error") + " (code " +
                                    std::to_string(extended) + ")");
}

/// A prepared statement. Binding indexes start at 1, column indexes at 0. `step()` returns true while
/// there is a row; `Reset` puts it back for its next use, as the cached statements are reused.
class Statement {
public:
    Statement() = default;
    Statement(sqlite3* db, std::string_view sql) : db_(db) {
        const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                          &stmt_, nullptr);
        if (rc != SQLITE_OK) fail(db, rc, "prepare \"" + std::string(sql) + "\"");
    }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    Statement(Statement&& other) noexcept
        : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}
    Statement& operator=(Statement&& other) noexcept {
        if (this != &other) {
            sqlite3_finalize(stmt_);
            db_ = std::exchange(other.db_, nullptr);
            stmt_ = std::exchange(other.stmt_, nullptr);
        }
        return *this;
    }
    ~Statement() { sqlite3_finalize(stmt_); }

    /// Resets the statement and clears its bindings when it leaves scope.
    class [[nodiscard]] Use {
    public:
        explicit Use(Statement& s) noexcept : s_(&s) {}
        Use(const Use&) = delete;
        Use& operator=(const Use&) = delete;
        ~Use() {
            sqlite3_reset(s_->stmt_);
            sqlite3_clear_bindings(s_->stmt_);
        }
        Statement* operator->() const noexcept { return s_; }

    private:
        Statement* s_;
    };
    [[nodiscard]] Use use() noexcept { return Use(*this); }

    void bind(int index, std::string_view text) {
        check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8), "bind");
    }
    void bind(int index, std::int64_t value) { check(sqlite3_bind_int64(stmt_, index, value), "bind"); }
    /// Binds an unsigned count, clamped to the largest value SQLite can hold.
    void bind_clamped(int index, std::uint64_t value) {
        constexpr auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
        bind(index, static_cast<std::int64_t>(value > limit ? limit : value));
    }

    /// Runs one step: true if a row is available, false when done.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(db_, rc, "run \"" + std::string(sqlite3_sql(stmt_)) + "\"");
    }

    [[nodiscard]] bool is_null(int column) const noexcept { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    [[nodiscard]] int type(int column) const noexcept { return sqlite3_column_type(stmt_, column); }
    [[nodiscard]] std::int64_t int64(int column) const noexcept { return sqlite3_column_int64(stmt_, column); }
    /// The column as text (valid until the next step or reset); "" for NULL. Throws `SqliteError`
    /// (`SQLITE_NOMEM`) if SQLite runs out of memory converting the value, rather than passing an empty
    /// text off as the stored one.
    [[nodiscard]] std::string_view text(int column) const {
        const auto* data = sqlite3_column_text(stmt_, column);
        const int size = sqlite3_column_bytes(stmt_, column);
        if (data == nullptr) {
            if (sqlite3_errcode(db_) == SQLITE_NOMEM) fail(db_, SQLITE_NOMEM, "read a column");
            return {};
        }
        return {reinterpret_cast<const char*>(data), static_cast<std::size_t>(size)};
    }

private:
    void check(int rc, std::string_view doing) const {
        if (rc != SQLITE_OK) fail(db_, rc, doing);
    }

    sqlite3* db_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
};

/// An open database connection.
class Connection {
public:
    Connection() = default;
    /// Opens (creating if needed) the database file at `path`, in full-mutex-free mode: the caller
    /// serializes access.
    explicit Connection(const std::string& path) {
        const int rc = sqlite3_open_v2(path.c_str(), &db_,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
        if (rc != SQLITE_OK) {
            std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
            sqlite3_close(db_);
            db_ = nullptr;
            throw SqliteError(rc, "SQLite failed to open '" + path + "': " + message);
        }
        sqlite3_extended_result_codes(db_, 1);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    Connection(Connection&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
    Connection& operator=(Connection&& other) noexcept {
        if (this != &other) {
            sqlite3_close_v2(db_);
            db_ = std::exchange(other.db_, nullptr);
        }
        return *this;
    }
    /// Closes the connection; statements must be finalized first (members declared after it are).
    ~Connection() { sqlite3_close_v2(db_); }

    [[nodiscard]] sqlite3* handle() const noexcept { return db_; }

    /// Runs one or more statements without results.
    void exec(const std::string& sql) {
        char* error = nullptr;
        const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
        if (rc != SQLITE_OK) {
            const std::string message = error != nullptr ? error : sqlite3_errstr(rc);
            sqlite3_free(error);
            throw SqliteError(sqlite3_extended_errcode(db_), "SQLite failed to run \"" + sql + "\": " + message +
                                                                 " (code " +
                                                                 std::to_string(sqlite3_extended_errcode(db_)) + ")");
        }
    }

    /// The first column of the first row of `sql`, as text ("" if there is none).
    [[nodiscard]] std::string query_text(std::string_view sql) {
        Statement s(db_, sql);
        return s.step() ? std::string(s.text(0)) : std::string{};
    }

    [[nodiscard]] std::int64_t last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_); }

private:
    sqlite3* db_ = nullptr;
};

/// `BEGIN IMMEDIATE` on construction (the write lock is taken at once, so two writers never deadlock
/// upgrading a read lock); rolls back on destruction unless `commit()` succeeded. (Given a plain `BEGIN`, a
/// read transaction: one snapshot for the statements it runs.)
class ImmediateTransaction {
public:
    ImmediateTransaction(Statement& begin, Statement& commit, Statement& rollback)
        : commit_(&commit), rollback_(&rollback) {
        auto b = begin.use();
        b->step();
    }
    ImmediateTransaction(const ImmediateTransaction&) = delete;
    ImmediateTransaction& operator=(const ImmediateTransaction&) = delete;
    ~ImmediateTransaction() {
        if (open_) {
            try {
                auto r = rollback_->use();
                r->step();
            } catch (...) { // NOLINT(bugprone-empty-catch): SQLite rolls back by itself when ROLLBACK fails
            }
        }
    }
    void commit() {
        auto c = commit_->use();
        c->step();
        open_ = false;
    }

private:
    Statement* commit_;
    Statement* rollback_;
    bool open_ = true;
};

} // namespace detail::sqlite

} // namespace orchestrix
