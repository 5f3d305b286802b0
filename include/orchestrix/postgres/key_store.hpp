#pragma once

// Subject keys in a PostgreSQL database: the key store of crypto-shredding (docs/lifecycle.md), beside a
// `PostgresEventStore` or in a database of its own (target orchestrix::postgres).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/personal.hpp>
#include <orchestrix/postgres/connection.hpp>
#include <orchestrix/postgres/errors.hpp>
#include <orchestrix/postgres/event_store.hpp>

#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

namespace detail::postgres {

inline constexpr Oid bytea_oid = 17;

/// The key tables. The statistics target of the key column is 0: `ANALYZE` (autovacuum's too) would otherwise
/// copy sample key bytes into `pg_statistic`, where deleting the key does not reach them.
inline constexpr const char* key_schema_sql = R"sql(
SELECT pg_advisory_xact_lock(7236451023345862);
CREATE TABLE IF NOT EXISTS orchestrix_subject_keys (
    subject    text        NOT NULL,
    version    integer     NOT NULL,
    key        bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS orchestrix_forgotten_subjects (
    subject      text        PRIMARY KEY,
    forgotten_at timestamptz NOT NULL
);
DO $do$ BEGIN
    IF (SELECT a.attstattarget FROM pg_attribute a
         WHERE a.attrelid = to_regclass('orchestrix_subject_keys') AND a.attname = 'key') IS DISTINCT FROM 0 THEN
        ALTER TABLE orchestrix_subject_keys ALTER COLUMN key SET STATISTICS 0;
    END IF;
END $do$;
)sql";

} // namespace detail::postgres

/// Subject keys in a PostgreSQL database: a `key_store` (include/orchestrix/core/personal.hpp). The events'
/// database or another (a key database kept apart from the events, and from their backups, is what makes
/// forgetting reach the events' backups too).
///
/// - Tables `orchestrix_subject_keys` (one row per subject and version, the key's 32 bytes as `bytea`) and
///   `orchestrix_forgotten_subjects`, created if missing (`PostgresOptions::create_schema`).
/// - Thread-safe: a pool of up to `PostgresOptions::pool_size` connections. Any number of objects and
///   processes may share the database: `add_key` and `forget` each run in one transaction holding a
///   transaction-level advisory lock on the subject, so two `add_key` of the same version store one key and both
///   return it (`INSERT ... ON CONFLICT DO NOTHING`, then the stored row), and a `forget` racing an `add_key`
///   leaves no key behind: whichever commits second sees the first.
/// - `forget` deletes the rows; their bytes stay in the table's pages until `compact()` (docs/lifecycle.md).
///   The write-ahead log, replicas and backups keep them as long as they keep anything.
/// - A malformed subject id (`detail::validate_subject`) is refused by `add_key` and `forget`
///   (`InvalidArgumentError("subject")`); the readers find nothing for it. A failure of the database throws
///   `PostgresError`.
class PostgresKeyStore {
public:
    /// Connects to the database at `url` (a libpq URL or key=value string) and creates the key tables if asked.
    /// Throws `PostgresError`.
    explicit PostgresKeyStore(std::string url, PostgresOptions options = {})
        : pool_(std::move(url), options.pool_size) {
        auto c = pool_.acquire();
        if (options.create_schema) (void)c->exec(detail::postgres::key_schema_sql, "create the key tables");
    }

    PostgresKeyStore(const PostgresKeyStore&) = delete;
    PostgresKeyStore& operator=(const PostgresKeyStore&) = delete;

    /// The subject's latest key version, or nothing (never keyed, forgotten, or a malformed subject).
    [[nodiscard]] std::optional<SubjectKey> current_key(std::string_view subject) const {
        namespace pg = detail::postgres;
        if (!is_valid(subject)) return std::nullopt;
        pg::Params params;
        params.add_text(subject);
        auto c = pool_.acquire();
        c->prepare("orchestrix_current_key",
                   "SELECT version, encode(key, 'hex') FROM orchestrix_subject_keys WHERE subject = $1 "
                   "ORDER BY version DESC LIMIT 1",
                   {pg::text_oid});
        return read_key(c->run("orchestrix_current_key", params), subject);
    }

    /// That version of the subject's key, or nothing (unknown, forgotten, or a malformed subject).
    [[nodiscard]] std::optional<SubjectKey> find_key(std::string_view subject, std::uint32_t version) const {
        namespace pg = detail::postgres;
        if (!is_valid(subject) || version == 0 || version > max_key_version) return std::nullopt;
        pg::Params params;
        params.add_text(subject).add_int4(static_cast<std::int32_t>(version));
        auto c = pool_.acquire();
        c->prepare(
            "orchestrix_find_key",
            "SELECT version, encode(key, 'hex') FROM orchestrix_subject_keys WHERE subject = $1 AND version = $2",
            {pg::text_oid, pg::int4_oid});
        return read_key(c->run("orchestrix_find_key", params), subject);
    }

    /// Stores `key` as version `key.version` of the subject's key unless that version is stored already, and
    /// returns the stored one: of two writers racing, from any process, the first to commit wins and both get
    /// its key. Throws `SubjectForgottenError` for a forgotten subject, `InvalidArgumentError` for a malformed
    /// subject ("subject") or a version 0 or past 2^31 - 1 ("key"), `PostgresError`.
    SubjectKey add_key(std::string_view subject, const SubjectKey& key) {
        namespace pg = detail::postgres;
        detail::validate_subject(subject);
        detail::validate_key_version(key);
        if (key.version > max_key_version) {
            throw InvalidArgumentError("key", "subject key version " + std::to_string(key.version) +
                                                  " is past the largest the PostgreSQL key store keeps (" +
                                                  std::to_string(max_key_version) + ")");
        }
        auto c = pool_.acquire();
        SubjectTransaction tx(*c, subject);
        pg::Params forgotten;
        forgotten.add_text(subject);
        c->prepare("orchestrix_is_forgotten", "SELECT count(*) FROM orchestrix_forgotten_subjects WHERE subject = $1",
                   {pg::text_oid});
        if (c->run("orchestrix_is_forgotten", forgotten).int64(0, 0) != 0) {
            throw SubjectForgottenError(std::string(subject));
        }
        pg::Params params;
        params.add_text(subject).add_int4(static_cast<std::int32_t>(key.version));
        // bytea in binary form: the bytes as they are.
        params.add_text(std::string_view(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size()));
        c->prepare("orchestrix_add_key",
                   "INSERT INTO orchestrix_subject_keys (subject, version, key, created_at) "
                   "VALUES ($1, $2, $3, clock_timestamp()) ON CONFLICT (subject, version) DO NOTHING",
                   {pg::text_oid, pg::int4_oid, pg::bytea_oid});
        (void)c->run("orchestrix_add_key", params);
        pg::Params find;
        find.add_text(subject).add_int4(static_cast<std::int32_t>(key.version));
        c->prepare(
            "orchestrix_find_key",
            "SELECT version, encode(key, 'hex') FROM orchestrix_subject_keys WHERE subject = $1 AND version = $2",
            {pg::text_oid, pg::int4_oid});
        const std::optional<SubjectKey> stored = read_key(c->run("orchestrix_find_key", find), subject);
        tx.commit();
        if (!stored) {
            throw PostgresError({}, "add_key for subject '" + std::string(subject) +
                                        "': the stored key version cannot be found after its insert");
        }
        return *stored;
    }

    /// Deletes every version of the subject's key and records the subject as forgotten, in one transaction;
    /// returns whether a key was deleted. Idempotent. The key's bytes leave the table's files at the next
    /// `compact()`. Throws `InvalidArgumentError("subject")` for a malformed subject, `PostgresError`.
    bool forget(std::string_view subject) {
        namespace pg = detail::postgres;
        detail::validate_subject(subject);
        auto c = pool_.acquire();
        SubjectTransaction tx(*c, subject);
        pg::Params params;
        params.add_text(subject);
        c->prepare("orchestrix_forget_subject",
                   "INSERT INTO orchestrix_forgotten_subjects (subject, forgotten_at) VALUES ($1, clock_timestamp()) "
                   "ON CONFLICT (subject) DO NOTHING",
                   {pg::text_oid});
        (void)c->run("orchestrix_forget_subject", params);
        c->prepare("orchestrix_delete_keys",
                   "WITH gone AS (DELETE FROM orchestrix_subject_keys WHERE subject = $1 RETURNING 1) "
                   "SELECT count(*) FROM gone",
                   {pg::text_oid});
        const bool deleted = c->run("orchestrix_delete_keys", params).int64(0, 0) > 0;
        tx.commit();
        return deleted;
    }

    /// Whether the subject was forgotten (false for a malformed subject, which cannot have been).
    [[nodiscard]] bool is_forgotten(std::string_view subject) const {
        namespace pg = detail::postgres;
        if (!is_valid(subject)) return false;
        pg::Params params;
        params.add_text(subject);
        auto c = pool_.acquire();
        c->prepare("orchestrix_is_forgotten", "SELECT count(*) FROM orchestrix_forgotten_subjects WHERE subject = $1",
                   {pg::text_oid});
        return c->run("orchestrix_is_forgotten", params).int64(0, 0) != 0;
    }

    /// Physical erasure of forgotten keys: rewrites the key tables and their indexes (`VACUUM FULL`), so that
    /// the bytes of deleted keys leave the tables' files (docs/lifecycle.md). Takes an ACCESS EXCLUSIVE lock
    /// on each table while it is rewritten (every key look-up waits), and keeps rows a transaction still open
    /// when it starts may see. The write-ahead log, replicas and backups are not erased. Needs the tables'
    /// owner. Throws `PostgresError`.
    void compact() {
        auto c = pool_.acquire();
        for (const char* table : {"orchestrix_subject_keys", "orchestrix_forgotten_subjects"}) {
            (void)c->exec(std::string("VACUUM (FULL) ") + table, "compact the key table");
        }
    }

private:
    // Key versions are PostgreSQL integers.
    static constexpr std::uint32_t max_key_version = 2147483647;

    // A transaction holding the subject's advisory lock (released at its end), rolled back unless committed.
    // Under READ COMMITTED each statement after the lock sees what the previous holder committed.
    class SubjectTransaction {
    public:
        SubjectTransaction(detail::postgres::Connection& c, std::string_view subject) : c_(c) {
            (void)c_.exec("BEGIN", "begin a key store transaction");
            detail::postgres::Params params;
            params.add_text(subject);
            c_.prepare("orchestrix_lock_subject", "SELECT pg_advisory_xact_lock(1868723559, hashtext($1))",
                       {detail::postgres::text_oid});
            (void)c_.run("orchestrix_lock_subject", params);
        }
        SubjectTransaction(const SubjectTransaction&) = delete;
        SubjectTransaction& operator=(const SubjectTransaction&) = delete;
        ~SubjectTransaction() {
            if (done_) return;
            try {
                (void)c_.exec("ROLLBACK", "roll back a key store transaction");
            } catch (...) { // the pool drops a connection left in a transaction
            }
        }
        void commit() {
            (void)c_.exec("COMMIT", "commit a key store transaction");
            done_ = true;
        }

    private:
        detail::postgres::Connection& c_;
        bool done_ = false;
    };

    static bool is_valid(std::string_view subject) noexcept {
        try {
            detail::validate_subject(subject);
            return true;
        } catch (...) {
            return false;
        }
    }

    // The key in the first row (version, hex bytes), or nothing.
    static std::optional<SubjectKey> read_key(const detail::postgres::Result& r, std::string_view subject) {
        if (r.rows() == 0) return std::nullopt;
        SubjectKey key;
        const std::int64_t version = r.int64(0, 0);
        const std::string_view hex = r.text(0, 1);
        if (version < 1 || hex.size() != 2 * subject_key_size) {
            throw PostgresError({}, "the stored key of subject '" + std::string(subject) + "' is damaged: version " +
                                        std::to_string(version) + ", " + std::to_string(hex.size() / 2) +
                                        " bytes instead of " + std::to_string(subject_key_size));
        }
        key.version = static_cast<std::uint32_t>(version);
        const auto nibble = [](char h) { return static_cast<std::uint8_t>(h <= '9' ? h - '0' : h - 'a' + 10); };
        for (std::size_t i = 0; i < subject_key_size; ++i) {
            key.bytes[i] = static_cast<std::uint8_t>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
        }
        return key;
    }

    mutable detail::postgres::Pool pool_;
};

static_assert(key_store<PostgresKeyStore>);

} // namespace orchestrix
