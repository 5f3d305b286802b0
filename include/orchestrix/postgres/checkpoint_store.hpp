#pragma once

// Checkpoints and read models in PostgreSQL: a projection's writes and its checkpoint commit in one
// transaction (target orchestrix::postgres).

#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/postgres/connection.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/options.hpp>

#include <libpq-fe.h>

#include <concepts>
#include <cstdint>
#include <functional>
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
/// Arguments are sent as bound parameters: integers as `bigint`, strings as `text`. Errors throw
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
        (add(params, types, args), ...);
        const auto values = params.pointers();
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
    static void add(detail::postgres::Params& params, std::vector<Oid>& types, const T& value) {
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            params.add_int8(static_cast<std::int64_t>(value));
            types.push_back(detail::postgres::int8_oid);
        } else {
            static_assert(std::is_convertible_v<const T&, std::string_view>,
                          "PostgresTransaction: bind integers or strings; use handle() for other types");
            params.add_text(std::string_view(value));
            types.push_back(detail::postgres::text_oid);
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
/// Thread-safe: one connection behind a mutex (a handler must not call `load` or `save` of the same store).
class PostgresCheckpointStore {
public:
    using transaction_type = PostgresTransaction;
    /// A rolled-back transaction takes the handler's writes with it.
    static constexpr bool rolls_back_writes = true;

    /// Connects to `url` and creates the checkpoint table if it is missing. Throws `PostgresError`.
    explicit PostgresCheckpointStore(const std::string& url) : connection_(url) {
        (void)connection_.exec("CREATE TABLE IF NOT EXISTS orchestrix_checkpoints (name text PRIMARY KEY, "
                               "position bigint NOT NULL)",
                               "create the checkpoint table");
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

private:
    static void upsert(PostgresTransaction& tx, std::string_view name, position_t position) {
        (void)tx.exec("INSERT INTO orchestrix_checkpoints (name, position) VALUES ($1, $2) "
                      "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                      name, static_cast<std::int64_t>(position));
    }

    std::mutex mutex_;
    detail::postgres::Connection connection_;
};

} // namespace orchestrix
