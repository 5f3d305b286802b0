#pragma once

// Subject keys in an SQLite file: the `key_store` of crypto-shredding (core/personal.hpp), beside the events or
// in a file of its own (target orchestrix::sqlite).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/personal.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/sqlite/connection.hpp>
#include <orchestrix/sqlite/errors.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

namespace detail::sqlite {

/// The key store's tables. The keys are in a rowid table: its inner pages hold row ids only, so a key's bytes
/// are in one leaf cell, which `secure_delete` zeroes when `forget` deletes it (an index, or a table without
/// row ids, would copy keys into inner pages as boundaries). `orchestrix_forgotten_subjects` keeps who was
/// forgotten (the subject id, pseudonymous, and when).
inline constexpr const char* key_store_sql = R"sql(
CREATE TABLE IF NOT EXISTS orchestrix_subject_keys (
    id         INTEGER PRIMARY KEY,
    subject    TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    key        BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (subject, version)
);
CREATE TABLE IF NOT EXISTS orchestrix_forgotten_subjects (
    subject      TEXT    PRIMARY KEY,
    forgotten_at INTEGER NOT NULL
);
)sql";

} // namespace detail::sqlite

/// Subject keys in an SQLite file: a `key_store`. The same file as a `SqliteEventStore` or another (a key file
/// kept apart from the events, and from their backups, is what makes forgetting reach the backups too).
///
/// - Thread-safe: one connection behind a mutex. Several objects and processes may share the file: each write
///   is one `BEGIN IMMEDIATE` transaction, so two `add_key` of the same version store one key and both return
///   it, and `forget` deletes every version of the subject's key and records it as forgotten at once.
/// - The connection always runs with `PRAGMA secure_delete = ON`: the bytes of a forgotten key are zeroed in
///   the pages SQLite writes, and leave the files at the next `checkpoint()` (or `compact()`). Until then the
///   WAL still holds the page the key was written in.
/// - A malformed subject id (`detail::validate_subject`) is refused by `add_key` and `forget`
///   (`InvalidArgumentError("subject")`); the readers find nothing for it.
class SqliteKeyStore {
public:
    /// Opens (or creates) the key tables in the file at `path`, in WAL mode. `options.synchronous` and
    /// `options.busy_timeout` apply; `secure_delete` is always on. Throws `SqliteError`.
    explicit SqliteKeyStore(std::string path, SqliteOptions options = {})
        : path_(std::move(path)), db_(open(path_, options)), begin_(db_.handle(), "BEGIN IMMEDIATE"),
          commit_(db_.handle(), "COMMIT"), rollback_(db_.handle(), "ROLLBACK"),
          current_(db_.handle(), "SELECT version, key FROM orchestrix_subject_keys WHERE subject = ?1 ORDER BY "
                                 "version DESC LIMIT 1"),
          find_(db_.handle(), "SELECT version, key FROM orchestrix_subject_keys WHERE subject = ?1 AND version = ?2"),
          // The key's bytes are bound as they are and cast to a BLOB: the column holds them, not a text.
          insert_(db_.handle(), "INSERT INTO orchestrix_subject_keys (subject, version, key, created_at) VALUES (?1, "
                                "?2, CAST(?3 AS BLOB), ?4) ON CONFLICT (subject, version) DO NOTHING"),
          forgotten_(db_.handle(), "SELECT 1 FROM orchestrix_forgotten_subjects WHERE subject = ?1"),
          delete_keys_(db_.handle(), "DELETE FROM orchestrix_subject_keys WHERE subject = ?1"),
          remember_(db_.handle(), "INSERT INTO orchestrix_forgotten_subjects (subject, forgotten_at) VALUES (?1, ?2) "
                                  "ON CONFLICT (subject) DO NOTHING") {}

    SqliteKeyStore(const SqliteKeyStore&) = delete;
    SqliteKeyStore& operator=(const SqliteKeyStore&) = delete;

    /// The subject's latest key version, or nothing (never keyed, forgotten, or a malformed subject).
    [[nodiscard]] std::optional<SubjectKey> current_key(std::string_view subject) const {
        if (!is_valid(subject)) return std::nullopt;
        std::lock_guard lock(mutex_);
        auto s = current_.use();
        s->bind(1, subject);
        if (!s->step()) return std::nullopt;
        return read_key(*s.operator->(), subject);
    }

    /// That version of the subject's key, or nothing.
    [[nodiscard]] std::optional<SubjectKey> find_key(std::string_view subject, std::uint32_t version) const {
        if (!is_valid(subject) || version == 0) return std::nullopt;
        std::lock_guard lock(mutex_);
        auto s = find_.use();
        s->bind(1, subject);
        s->bind(2, static_cast<std::int64_t>(version));
        if (!s->step()) return std::nullopt;
        return read_key(*s.operator->(), subject);
    }

    /// Stores `key` as version `key.version` of the subject's key unless that version is stored already, and
    /// returns the stored one (the first writer wins, in this process or another). Throws
    /// `SubjectForgottenError` for a forgotten subject, `InvalidArgumentError` for a malformed subject or
    /// version 0, `SqliteError`.
    SubjectKey add_key(std::string_view subject, const SubjectKey& key) {
        detail::validate_subject(subject);
        detail::validate_key_version(key);
        std::lock_guard lock(mutex_);
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        if (is_forgotten_locked(subject)) throw SubjectForgottenError(std::string(subject));
        {
            auto s = insert_.use();
            s->bind(1, subject);
            s->bind(2, static_cast<std::int64_t>(key.version));
            s->bind(3, std::string_view(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size()));
            s->bind(4, durable::to_micros(std::chrono::system_clock::now()));
            s->step();
        }
        std::optional<SubjectKey> stored;
        {
            auto s = find_.use();
            s->bind(1, subject);
            s->bind(2, static_cast<std::int64_t>(key.version));
            if (s->step()) stored = read_key(*s.operator->(), subject);
        }
        if (!stored) {
            throw SqliteError(SQLITE_CORRUPT, "the key of subject '" + std::string(subject) + "', version " +
                                                  std::to_string(key.version) + ", is not there after storing it");
        }
        transaction.commit();
        return *stored;
    }

    /// Deletes every version of the subject's key and records the subject as forgotten, in one transaction;
    /// returns whether a key was deleted. Idempotent. Throws `InvalidArgumentError` for a malformed subject,
    /// `SqliteError`.
    bool forget(std::string_view subject) {
        detail::validate_subject(subject);
        std::lock_guard lock(mutex_);
        detail::sqlite::ImmediateTransaction transaction(begin_, commit_, rollback_);
        bool deleted = false;
        {
            auto s = delete_keys_.use();
            s->bind(1, subject);
            s->step();
            deleted = sqlite3_changes(db_.handle()) > 0;
        }
        {
            auto s = remember_.use();
            s->bind(1, subject);
            s->bind(2, durable::to_micros(std::chrono::system_clock::now()));
            s->step();
        }
        transaction.commit();
        return deleted;
    }

    /// Whether the subject was forgotten (false for a malformed subject).
    [[nodiscard]] bool is_forgotten(std::string_view subject) const {
        if (!is_valid(subject)) return false;
        std::lock_guard lock(mutex_);
        return is_forgotten_locked(subject);
    }

    /// Moves the WAL into the file and empties the WAL file (`PRAGMA wal_checkpoint(TRUNCATE)`): after
    /// `forget`, the key's bytes are then in neither file. Throws `SqliteError` (`SQLITE_BUSY`) if another
    /// connection's read kept it from finishing: call it again.
    void checkpoint() {
        std::lock_guard lock(mutex_);
        detail::sqlite::checkpoint_truncate(db_);
    }

    /// `VACUUM`, then `checkpoint()`: the file rewritten from its live rows (the whole file, with the events if
    /// they share it: see `SqliteEventStore::compact`).
    void compact() {
        std::lock_guard lock(mutex_);
        detail::sqlite::compact(db_);
    }

    /// The database file.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    static detail::sqlite::Connection open(const std::string& path, SqliteOptions options) {
        detail::sqlite::Connection db(path);
        db.exec("PRAGMA busy_timeout = " + std::to_string(options.busy_timeout.count()));
        const std::string mode = db.query_text("PRAGMA journal_mode = WAL");
        if (mode != "wal" && mode != "memory") {
            throw SqliteError(SQLITE_ERROR,
                              "SQLite could not switch '" + path + "' to WAL mode (it is in '" + mode + "' mode)");
        }
        db.exec(std::string("PRAGMA synchronous = ") + detail::sqlite::synchronous_name(options.synchronous));
        db.exec("PRAGMA secure_delete = ON");
        db.exec("BEGIN IMMEDIATE");
        try {
            db.exec(detail::sqlite::key_store_sql);
            db.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
        return db;
    }

    static bool is_valid(std::string_view subject) noexcept {
        return !subject.empty() && subject.size() <= max_subject_length &&
               subject.find('\0') == std::string_view::npos && detail::is_valid_utf8(subject);
    }

    bool is_forgotten_locked(std::string_view subject) const {
        auto s = forgotten_.use();
        s->bind(1, subject);
        return s->step();
    }

    // The key in the row `s` is on (columns version, key).
    static SubjectKey read_key(const detail::sqlite::Statement& s, std::string_view subject) {
        const std::string_view bytes = s.text(1); // the BLOB's bytes as they are
        if (bytes.size() != subject_key_size || s.int64(0) < 1 ||
            s.int64(0) > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max())) {
            throw SqliteError(SQLITE_CORRUPT, "the stored key of subject '" + std::string(subject) +
                                                  "' is damaged: " + std::to_string(bytes.size()) +
                                                  " bytes at version " + std::to_string(s.int64(0)) + " (" +
                                                  std::to_string(subject_key_size) + " bytes expected)");
        }
        SubjectKey key;
        key.version = static_cast<std::uint32_t>(s.int64(0));
        std::memcpy(key.bytes.data(), bytes.data(), subject_key_size);
        return key;
    }

    std::string path_;
    mutable std::mutex mutex_;
    mutable detail::sqlite::Connection db_; // declared before the statements: closed after they are finalized
    mutable detail::sqlite::Statement begin_;
    mutable detail::sqlite::Statement commit_;
    mutable detail::sqlite::Statement rollback_;
    mutable detail::sqlite::Statement current_;
    mutable detail::sqlite::Statement find_;
    mutable detail::sqlite::Statement insert_;
    mutable detail::sqlite::Statement forgotten_;
    mutable detail::sqlite::Statement delete_keys_;
    mutable detail::sqlite::Statement remember_;
};

static_assert(key_store<SqliteKeyStore>);

} // namespace orchestrix
