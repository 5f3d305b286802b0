#pragma once

// Saga deadlines in SQLite: a `deadline_store` (projection/saga.hpp) in a table of an SQLite file, shared by
// every process that opens it (target orchestrix::sqlite).

#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/projection/saga.hpp>
#include <orchestrix/sqlite/connection.hpp>
#include <orchestrix/sqlite/errors.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <sqlite3.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// Saga deadlines in the table `orchestrix_saga_deadlines` of an SQLite file (the saga store's file, or
/// another), keyed by saga type, key and name, with an index on (saga type, due time). Thread-safe (one
/// connection behind a mutex); several processes may share the file.
class SqliteDeadlineStore {
public:
    /// Opens (or creates) `path` in WAL mode and creates the table if it is missing. Throws `SqliteError`.
    explicit SqliteDeadlineStore(std::string path, SqliteOptions options = {})
        : path_(std::move(path)), db_(open(path_, options)),
          schedule_(db_.handle(),
                    "INSERT INTO orchestrix_saga_deadlines (saga_type, saga_key, name, due) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT (saga_type, saga_key, name) DO UPDATE SET due = excluded.due"),
          cancel_(db_.handle(),
                  "DELETE FROM orchestrix_saga_deadlines WHERE saga_type = ?1 AND saga_key = ?2 AND name = ?3"),
          due_(db_.handle(), "SELECT saga_key, name, due FROM orchestrix_saga_deadlines WHERE saga_type = ?1 AND "
                             "due <= ?2 ORDER BY due, saga_key, name LIMIT ?3"),
          remove_(db_.handle(), "DELETE FROM orchestrix_saga_deadlines WHERE saga_type = ?1 AND saga_key = ?2 AND "
                                "name = ?3 AND due = ?4"),
          count_(db_.handle(), "SELECT count(*) FROM orchestrix_saga_deadlines") {}

    SqliteDeadlineStore(const SqliteDeadlineStore&) = delete;
    SqliteDeadlineStore& operator=(const SqliteDeadlineStore&) = delete;

    /// Keeps `d`, replacing the deadline of the same saga type, key and name.
    void schedule(const Deadline& d) {
        std::lock_guard lock(mutex_);
        auto s = schedule_.use();
        s->bind(1, d.saga_type);
        s->bind(2, d.saga_key);
        s->bind(3, d.name);
        s->bind(4, durable::to_micros(d.due));
        s->step();
    }

    /// Forgets the deadline `name` of saga `saga_key` (nothing if there is none).
    void cancel(std::string_view saga_type, std::string_view saga_key, std::string_view name) {
        std::lock_guard lock(mutex_);
        auto s = cancel_.use();
        s->bind(1, saga_type);
        s->bind(2, saga_key);
        s->bind(3, name);
        s->step();
    }

    /// At most `limit` deadlines of `saga_type` due at or before `now`, earliest first.
    [[nodiscard]] std::vector<Deadline> due(std::string_view saga_type, std::chrono::system_clock::time_point now,
                                            std::size_t limit) {
        std::lock_guard lock(mutex_);
        auto s = due_.use();
        s->bind(1, saga_type);
        s->bind(2, durable::to_micros(now));
        s->bind_clamped(3, limit);
        std::vector<Deadline> out;
        while (s->step()) {
            out.push_back(Deadline{std::string(saga_type), std::string(s->text(0)), std::string(s->text(1)),
                                   durable::from_micros(s->int64(2))});
        }
        return out;
    }

    /// Forgets `d` if it is still due at `d.due`.
    void remove(const Deadline& d) {
        std::lock_guard lock(mutex_);
        auto s = remove_.use();
        s->bind(1, d.saga_type);
        s->bind(2, d.saga_key);
        s->bind(3, d.name);
        s->bind(4, durable::to_micros(d.due));
        s->step();
    }

    /// How many deadlines wait (all saga types).
    [[nodiscard]] std::size_t size() {
        std::lock_guard lock(mutex_);
        auto s = count_.use();
        s->step();
        return static_cast<std::size_t>(s->int64(0));
    }

private:
    static detail::sqlite::Connection open(const std::string& path, const SqliteOptions& options) {
        detail::sqlite::Connection db(path);
        db.exec("PRAGMA busy_timeout = " + std::to_string(options.busy_timeout.count()));
        const std::string mode = db.query_text("PRAGMA journal_mode = WAL");
        if (mode != "wal" && mode != "memory") {
            throw SqliteError(SQLITE_ERROR, "SQLite could not switch '" + path + "' to WAL mode");
        }
        db.exec(std::string("PRAGMA synchronous = ") + detail::sqlite::synchronous_name(options.synchronous));
        db.exec("CREATE TABLE IF NOT EXISTS orchestrix_saga_deadlines (saga_type TEXT NOT NULL, saga_key TEXT NOT "
                "NULL, name TEXT NOT NULL, due INTEGER NOT NULL, PRIMARY KEY (saga_type, saga_key, name)) WITHOUT "
                "ROWID; CREATE INDEX IF NOT EXISTS orchestrix_saga_deadlines_due ON orchestrix_saga_deadlines "
                "(saga_type, due)");
        return db;
    }

    std::string path_;
    std::mutex mutex_;
    detail::sqlite::Connection db_; // declared before the statements: closed after they are finalized
    detail::sqlite::Statement schedule_;
    detail::sqlite::Statement cancel_;
    detail::sqlite::Statement due_;
    detail::sqlite::Statement remove_;
    detail::sqlite::Statement count_;
};

static_assert(deadline_store<SqliteDeadlineStore>);

} // namespace orchestrix
