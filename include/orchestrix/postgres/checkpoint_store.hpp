#pragma once

// Checkpoints, dead letters and read models in PostgreSQL: a projection's writes and its checkpoint commit
// in one transaction (target orchestrix::postgres).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/postgres/connection.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/lease.hpp>
#include <orchestrix/projection/options.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

/// The handle a projection's handler writes its read model through: the checkpoint store's connection,
/// inside the transaction that will also move the checkpoint.
///
///     tx.exec("INSERT INTO balances (account, balance) VALUES ($1, $2) "
///             "ON CONFLICT (account) DO UPDATE SET balance = balances.balance + excluded.balance",
///             e.stream_id, amount);
///
/// Arguments are sent as bound parameters: integers as `bigint`, strings as `text`, an empty
/// `std::optional` of either as NULL. Errors throw
/// `PostgresError`; thrown from a handler, they roll the transaction back.
class PostgresTransaction {
public:
    explicit PostgresTransaction(detail::postgres::Connection& connection) noexcept : connection_(&connection) {}

    /// The raw libpq connection, for anything the helpers do not cover.
    [[nodiscard]] PGconn* handle() const noexcept { return connection_->get(); }

    /// Runs one statement with `args` bound to `$1`, `$2`, ...; returns its result (rows as text).
    template <class... Args>
    detail::postgres::Result exec(const std::string& sql, const Args&... args) {
        detail::postgres::Params params;
        std::vector<Oid> types;
        std::vector<bool> nulls;
        (add(params, types, nulls, args), ...);
        auto values = params.pointers();
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (nulls[i]) values[i] = nullptr;
        }
        const auto lengths = params.lengths();
        const std::vector<int> formats(values.size(), 1);
        detail::postgres::Result result(PQexecParams(handle(), sql.c_str(), params.count(), types.data(), values.data(),
                                                     lengths.data(), formats.data(), 0));
        const auto status = result.get() == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result.get());
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            const char* state = result.get() != nullptr ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
            std::string message = result.get() != nullptr ? PQresultErrorMessage(result.get()) : "";
            if (message.empty()) message = connection_->message();
            while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
            throw PostgresError(state != nullptr ? state : "", "PostgreSQL failed to run \"" + sql + "\": " + message);
        }
        return result;
    }

    /// The number of rows a command changed.
    [[nodiscard]] static std::int64_t changed(const detail::postgres::Result& result) {
        const char* n = PQcmdTuples(result.get());
        return n == nullptr || *n == '\0' ? 0 : std::stoll(n);
    }

    /// The first column of the first row of a query as an integer (nothing if no row or NULL).
    template <class... Args>
    [[nodiscard]] std::optional<std::int64_t> query_int64(const std::string& sql, const Args&... args) {
        const auto r = exec(sql, args...);
        if (r.rows() == 0 || r.is_null(0, 0)) return std::nullopt;
        return r.int64(0, 0);
    }

private:
    template <class T>
    static void add(detail::postgres::Params& params, std::vector<Oid>& types, std::vector<bool>& nulls,
                    const T& value) {
        if constexpr (detail::is_optional<T>) {
            if (value) {
                add(params, types, nulls, *value);
            } else {
                add(params, types, nulls, typename T::value_type{}); // the parameter's type, sent as NULL
                nulls.back() = true;
            }
        } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            params.add_int8(static_cast<std::int64_t>(value));
            types.push_back(detail::postgres::int8_oid);
            nulls.push_back(false);
        } else {
            static_assert(std::is_convertible_v<const T&, std::string_view>,
                          "PostgresTransaction: bind integers, strings or std::optional of them; use handle() for "
                          "other types");
            params.add_text(std::string_view(value));
            types.push_back(detail::postgres::text_oid);
            nulls.push_back(false);
        }
    }

    detail::postgres::Connection* connection_;
};

/// Projection checkpoints in a PostgreSQL database, in the table `orchestrix_checkpoints`: a
/// `checkpoint_store` whose transactions are PostgreSQL transactions on its own connection. A projection's
/// read-model tables belong in the same database, written through the `PostgresTransaction` the handler
/// gets, so they commit with the checkpoint. Two runners of one projection (in two processes) never both
/// commit the same events: the second one's checkpoint update waits for the first and is refused.
///
/// Also a `dead_letter_store`, in the table `orchestrix_dead_letters` (docs/operations.md, "Dead letters").
///
/// Also a `lease_store` for partitioned projections run by processes on any machines, in the tables
/// `orchestrix_partitioned_projections`, `orchestrix_partition_leases` and `orchestrix_projection_runners`
/// (created by the first `register_partitions`); lease times are the server's clock (`clock_timestamp()`),
/// so the runners' clocks do not matter.
///
/// Thread-safe: one connection behind a mutex (a handler must not call `load` or `save` of the same store).
class PostgresCheckpointStore {
public:
    using transaction_type = PostgresTransaction;
    /// A rolled-back transaction takes the handler's writes with it.
    static constexpr bool rolls_back_writes = true;

    /// Connects to `url` and creates the checkpoint and dead-letter tables if they are missing. Throws
    /// `PostgresError`.
    explicit PostgresCheckpointStore(const std::string& url) : connection_(url) {
        (void)connection_.exec("CREATE TABLE IF NOT EXISTS orchestrix_checkpoints (name text PRIMARY KEY, "
                               "position bigint NOT NULL)",
                               "create the checkpoint table");
        (void)connection_.exec(
            "CREATE TABLE IF NOT EXISTS orchestrix_dead_letters (projection text NOT NULL, position bigint NOT NULL, "
            "stream_id text NOT NULL, version bigint NOT NULL, event_id text NOT NULL, type text NOT NULL, "
            "schema_version integer, payload text, metadata text, error text NOT NULL, attempts integer NOT NULL, "
            "failed_at timestamptz NOT NULL, retry_requested boolean NOT NULL DEFAULT false, "
            "PRIMARY KEY (projection, position))",
            "create the dead-letter table");
    }

    PostgresCheckpointStore(const PostgresCheckpointStore&) = delete;
    PostgresCheckpointStore& operator=(const PostgresCheckpointStore&) = delete;

    /// The checkpoint of projection `name` (0 if it has none).
    [[nodiscard]] position_t load(std::string_view name) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        return static_cast<position_t>(
            tx.query_int64("SELECT position FROM orchestrix_checkpoints WHERE name = $1", name).value_or(0));
    }

    /// Sets the checkpoint of `name`.
    void save(std::string_view name, position_t position) {
        transact([&](PostgresTransaction& tx) { upsert(tx, name, position); });
    }

    /// Runs `body(PostgresTransaction&)` in one transaction: committed if it returns, rolled back if it
    /// throws.
    template <class Body>
    requires std::invocable<Body&, PostgresTransaction&>
    void transact(Body&& body) {
        std::lock_guard lock(mutex_);
        (void)connection_.exec("BEGIN", "begin a projection transaction");
        try {
            PostgresTransaction tx(connection_);
            std::invoke(body, tx);
            (void)connection_.exec("COMMIT", "commit a projection transaction");
        } catch (...) {
            if (PQtransactionStatus(connection_.get()) != PQTRANS_IDLE) {
                PGresult* r = PQexec(connection_.get(), "ROLLBACK");
                PQclear(r);
            }
            throw;
        }
    }

    /// In `tx`, moves the checkpoint of `name` from `from` to `to`; throws `CheckpointConflictError` (which
    /// rolls `tx` back) if it is not at `from`.
    void advance(PostgresTransaction& tx, std::string_view name, position_t from, position_t to) {
        const auto f = static_cast<std::int64_t>(from);
        const auto t = static_cast<std::int64_t>(to);
        if (PostgresTransaction::changed(tx.exec(
                "UPDATE orchestrix_checkpoints SET position = $3 WHERE name = $1 AND position = $2", name, f, t)) ==
            1) {
            return;
        }
        if (from == 0 && PostgresTransaction::changed(tx.exec("INSERT INTO orchestrix_checkpoints (name, position) "
                                                              "VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                                                              name, t)) == 1) {
            return;
        }
        const auto actual = tx.query_int64("SELECT position FROM orchestrix_checkpoints WHERE name = $1", name);
        throw CheckpointConflictError(std::string(name), from, static_cast<position_t>(actual.value_or(0)));
    }

    /// In `tx`, sets the checkpoint of `name` to 0.
    void reset(PostgresTransaction& tx, std::string_view name) { upsert(tx, name, 0); }

    /// Runs `reader(PostgresTransaction&)` on the connection outside a transaction and returns its result.
    template <class Reader>
    requires std::invocable<Reader&, PostgresTransaction&>
    decltype(auto) read(Reader&& reader) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        return std::invoke(reader, tx);
    }

    /// In `tx`, keeps `letter` as a dead letter of `name` (replacing one at the same position).
    void add_dead_letter(PostgresTransaction& tx, std::string_view name, const DeadLetter& letter) {
        std::optional<std::int64_t> schema_version;
        if (letter.schema_version) schema_version = static_cast<std::int64_t>(*letter.schema_version);
        (void)tx.exec("INSERT INTO orchestrix_dead_letters (projection, position, stream_id, version, event_id, type, "
                      "schema_version, payload, metadata, error, attempts, failed_at, retry_requested) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                      "'epoch'::timestamptz + $12 * interval '1 microsecond', $13 <> 0) "
                      "ON CONFLICT (projection, position) DO UPDATE SET stream_id = excluded.stream_id, "
                      "version = excluded.version, event_id = excluded.event_id, type = excluded.type, "
                      "schema_version = excluded.schema_version, payload = excluded.payload, "
                      "metadata = excluded.metadata, error = excluded.error, attempts = excluded.attempts, "
                      "failed_at = excluded.failed_at, retry_requested = excluded.retry_requested",
                      name, checked(letter.position, "position"), letter.stream_id, checked(letter.version, "version"),
                      letter.event_id, letter.type, schema_version, letter.payload, letter.metadata, letter.error,
                      std::int64_t{letter.attempts}, durable::to_micros(letter.failed_at),
                      std::int64_t{letter.retry_requested ? 1 : 0});
    }

    /// The dead letters of `name`, in position order. Throws `StoreError` for a row a tool left out of
    /// range (a negative position, version or attempt count).
    [[nodiscard]] std::vector<DeadLetter> dead_letters(std::string_view name) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        const auto r =
            tx.exec("SELECT position, stream_id, version, event_id, type, schema_version, payload, metadata, "
                    "error, attempts, (extract(epoch FROM failed_at) * 1000000)::bigint, "
                    "retry_requested::integer FROM orchestrix_dead_letters WHERE projection = $1 "
                    "ORDER BY position",
                    name);
        std::vector<DeadLetter> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int row = 0; row < r.rows(); ++row) out.push_back(dead_letter_of(name, r, row));
        return out;
    }

    /// The positions of the dead letters of `name` whose retry was requested, in order.
    [[nodiscard]] std::vector<position_t> dead_letter_retries_requested(std::string_view name) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        const auto r = tx.exec("SELECT position FROM orchestrix_dead_letters WHERE projection = $1 AND "
                               "retry_requested ORDER BY position",
                               name);
        std::vector<position_t> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int row = 0; row < r.rows(); ++row) out.push_back(checked_position(name, r.int64(row, 0)));
        return out;
    }

    /// In `tx`, removes the dead letter of `name` at `position`; returns whether there was one.
    bool remove_dead_letter(PostgresTransaction& tx, std::string_view name, position_t position) {
        return PostgresTransaction::changed(
                   tx.exec("DELETE FROM orchestrix_dead_letters WHERE projection = $1 AND position = $2", name,
                           checked(position, "position"))) == 1;
    }

    /// In `tx`, removes every dead letter of `name`; returns how many there were.
    std::uint64_t remove_dead_letters(PostgresTransaction& tx, std::string_view name) {
        return static_cast<std::uint64_t>(
            PostgresTransaction::changed(tx.exec("DELETE FROM orchestrix_dead_letters WHERE projection = $1", name)));
    }

    /// In `tx`, records one more failed attempt of the dead letter of `name` at `position` (`error`,
    /// `failed_at`, attempts + 1) and clears its `retry_requested`; returns whether there was one.
    bool update_dead_letter(PostgresTransaction& tx, std::string_view name, position_t position, std::string_view error,
                            std::chrono::system_clock::time_point failed_at) {
        return PostgresTransaction::changed(
                   tx.exec("UPDATE orchestrix_dead_letters SET error = $3, attempts = attempts + 1, "
                           "failed_at = 'epoch'::timestamptz + $4 * interval '1 microsecond', retry_requested = false "
                           "WHERE projection = $1 AND position = $2",
                           name, checked(position, "position"), error, durable::to_micros(failed_at))) == 1;
    }

    /// Asks for a retry of the dead letter of `name` at `position` (what a tool does with
    /// `UPDATE orchestrix_dead_letters SET retry_requested = true`); returns whether there is one.
    bool request_dead_letter_retry(std::string_view name, position_t position) {
        bool found = false;
        transact([&](PostgresTransaction& tx) {
            found = PostgresTransaction::changed(tx.exec("UPDATE orchestrix_dead_letters SET retry_requested = true "
                                                         "WHERE projection = $1 AND position = $2",
                                                         name, checked(position, "position"))) == 1;
        });
        return found;
    }

    /// Records the partition count of `projection` if it has none (creating the lease tables first, under
    /// an advisory lock, so that runners starting together do not race); returns the count it has.
    std::uint32_t register_partitions(std::string_view projection, std::uint32_t partitions) {
        std::int64_t stored = 0;
        transact([&](PostgresTransaction& tx) {
            (void)tx.exec("SELECT pg_advisory_xact_lock(7262317089013547857)");
            (void)tx.exec("CREATE TABLE IF NOT EXISTS orchestrix_partitioned_projections (projection text PRIMARY KEY, "
                          "partitions integer NOT NULL)");
            (void)tx.exec(
                "CREATE TABLE IF NOT EXISTS orchestrix_partition_leases (projection text NOT NULL, "
                "partition_no integer NOT NULL, owner text, token bigint NOT NULL DEFAULT 0, "
                "expires_at timestamptz NOT NULL DEFAULT '-infinity', PRIMARY KEY (projection, partition_no))");
            (void)tx.exec("CREATE TABLE IF NOT EXISTS orchestrix_projection_runners (projection text NOT NULL, "
                          "runner text NOT NULL, expires_at timestamptz NOT NULL, PRIMARY KEY (projection, runner))");
            (void)tx.exec("INSERT INTO orchestrix_partitioned_projections (projection, partitions) VALUES ($1, $2) "
                          "ON CONFLICT (projection) DO NOTHING",
                          projection, partitions);
            stored = tx.query_int64("SELECT partitions FROM orchestrix_partitioned_projections WHERE projection = $1",
                                    projection)
                         .value_or(0);
            if (stored != static_cast<std::int64_t>(partitions)) return;
            (void)tx.exec("INSERT INTO orchestrix_partition_leases (projection, partition_no) SELECT $1, p "
                          "FROM generate_series(0, $2 - 1) AS p ON CONFLICT (projection, partition_no) DO NOTHING",
                          projection, partitions);
        });
        return static_cast<std::uint32_t>(stored);
    }

    /// Marks `runner` live for `ttl`; returns the live runners of `projection`.
    std::uint32_t heartbeat(std::string_view projection, std::string_view runner, std::chrono::milliseconds ttl) {
        std::int64_t live = 0;
        transact([&](PostgresTransaction& tx) {
            (void)tx.exec("INSERT INTO orchestrix_projection_runners (projection, runner, expires_at) VALUES ($1, $2, "
                          "clock_timestamp() + $3::double precision * interval '1 millisecond') "
                          "ON CONFLICT (projection, runner) DO UPDATE SET expires_at = excluded.expires_at",
                          projection, runner, ttl.count());
            (void)tx.exec("DELETE FROM orchestrix_projection_runners WHERE projection = $1 AND "
                          "expires_at <= clock_timestamp()",
                          projection);
            live =
                tx.query_int64("SELECT count(*) FROM orchestrix_projection_runners WHERE projection = $1", projection)
                    .value_or(0);
        });
        return static_cast<std::uint32_t>(live);
    }

    /// Extends the leases `runner` owns by `ttl` from now; returns them.
    std::vector<PartitionLease> renew_leases(std::string_view projection, std::string_view runner,
                                             std::chrono::milliseconds ttl) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        const auto r = tx.exec("UPDATE orchestrix_partition_leases SET expires_at = clock_timestamp() + "
                               "$3::double precision * interval '1 millisecond' WHERE projection = $1 AND owner = $2 "
                               "RETURNING partition_no, token",
                               projection, runner, ttl.count());
        std::vector<PartitionLease> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int row = 0; row < r.rows(); ++row)
            out.push_back({static_cast<std::uint32_t>(r.int64(row, 0)), static_cast<std::uint64_t>(r.int64(row, 1))});
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.partition < b.partition; });
        return out;
    }

    /// The partitions of `projection` nobody holds: free, or their lease expired.
    std::vector<std::uint32_t> claimable_partitions(std::string_view projection) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        const auto r = tx.exec("SELECT partition_no FROM orchestrix_partition_leases WHERE projection = $1 AND "
                               "(owner IS NULL OR expires_at <= clock_timestamp()) ORDER BY partition_no",
                               projection);
        std::vector<std::uint32_t> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int row = 0; row < r.rows(); ++row) out.push_back(static_cast<std::uint32_t>(r.int64(row, 0)));
        return out;
    }

    /// Takes the lease of `partition` for `runner` if nobody holds it; returns its new token. A transaction
    /// that holds the lease (`check_lease`) makes the claim wait until it ends.
    std::optional<std::uint64_t> claim_lease(std::string_view projection, std::uint32_t partition,
                                             std::string_view runner, std::chrono::milliseconds ttl) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        const auto token = tx.query_int64(
            "UPDATE orchestrix_partition_leases SET owner = $3, token = token + 1, expires_at = clock_timestamp() + "
            "$4::double precision * interval '1 millisecond' WHERE projection = $1 AND partition_no = $2 AND "
            "(owner IS NULL OR expires_at <= clock_timestamp()) RETURNING token",
            projection, partition, runner, ttl.count());
        if (!token) return std::nullopt;
        return static_cast<std::uint64_t>(*token);
    }

    /// Frees the lease of `partition` if `runner` holds it with `token`.
    void release_lease(std::string_view projection, std::uint32_t partition, std::string_view runner,
                       std::uint64_t token) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        (void)tx.exec("UPDATE orchestrix_partition_leases SET owner = NULL, expires_at = '-infinity' WHERE "
                      "projection = $1 AND partition_no = $2 AND owner = $3 AND token = $4",
                      projection, partition, runner, static_cast<std::int64_t>(token));
    }

    /// Ends the heartbeat of `runner`.
    void remove_runner(std::string_view projection, std::string_view runner) {
        std::lock_guard lock(mutex_);
        PostgresTransaction tx(connection_);
        (void)tx.exec("DELETE FROM orchestrix_projection_runners WHERE projection = $1 AND runner = $2", projection,
                      runner);
    }

    /// In `tx`, locks the lease row of `partition` and makes sure `runner` holds it, unexpired, with `token`;
    /// throws `LeaseLostError` (which rolls `tx` back) if not. The row lock makes a claim by another runner
    /// wait until `tx` ends, so a runner commits only while it holds the lease.
    void check_lease(PostgresTransaction& tx, std::string_view projection, std::uint32_t partition,
                     std::string_view runner, std::uint64_t token) {
        if (!tx.query_int64("SELECT 1 FROM orchestrix_partition_leases WHERE projection = $1 AND partition_no = $2 "
                            "AND owner = $3 AND token = $4 AND expires_at > clock_timestamp() FOR UPDATE",
                            projection, partition, runner, static_cast<std::int64_t>(token))) {
            throw LeaseLostError(std::string(projection), partition, std::string(runner), token);
        }
    }

private:
    // A position or version as a bigint.
    static std::int64_t checked(std::uint64_t value, const char* what) {
        if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            throw InvalidArgumentError(what, std::string("PostgresCheckpointStore: the dead letter's ") + what + " " +
                                                 std::to_string(value) + " is too large for a bigint");
        }
        return static_cast<std::int64_t>(value);
    }

    static position_t checked_position(std::string_view name, std::int64_t position) {
        if (position <= 0) {
            throw StoreError("orchestrix_dead_letters: projection '" + std::string(name) + "' has a dead letter at " +
                             "position " + std::to_string(position) + "; positions start at 1");
        }
        return static_cast<position_t>(position);
    }

    static DeadLetter dead_letter_of(std::string_view name, const detail::postgres::Result& r, int row) {
        DeadLetter out;
        out.position = checked_position(name, r.int64(row, 0));
        const auto count = [&](int column, const char* what, std::int64_t max) {
            const std::int64_t value = r.int64(row, column);
            if (value < 0 || value > max) {
                throw StoreError("orchestrix_dead_letters: the dead letter of projection '" + std::string(name) +
                                 "' at position " + std::to_string(out.position) + " has " + what + " " +
                                 std::to_string(value) + ", out of range");
            }
            return value;
        };
        constexpr auto max_u32 = static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max());
        out.stream_id = std::string(r.text(row, 1));
        out.version = static_cast<stream_version_t>(count(2, "version", std::numeric_limits<std::int64_t>::max()));
        out.event_id = std::string(r.text(row, 3));
        out.type = std::string(r.text(row, 4));
        if (!r.is_null(row, 5)) out.schema_version = static_cast<std::uint32_t>(count(5, "schema_version", max_u32));
        if (!r.is_null(row, 6)) out.payload = std::string(r.text(row, 6));
        if (!r.is_null(row, 7)) out.metadata = std::string(r.text(row, 7));
        out.error = std::string(r.text(row, 8));
        out.attempts = static_cast<std::uint32_t>(count(9, "attempts", max_u32));
        out.failed_at = durable::from_micros(r.int64(row, 10));
        out.retry_requested = r.int64(row, 11) != 0;
        return out;
    }

    static void upsert(PostgresTransaction& tx, std::string_view name, position_t position) {
        (void)tx.exec("INSERT INTO orchestrix_checkpoints (name, position) VALUES ($1, $2) "
                      "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                      name, static_cast<std::int64_t>(position));
    }

    std::mutex mutex_;
    detail::postgres::Connection connection_;
};

} // namespace orchestrix
