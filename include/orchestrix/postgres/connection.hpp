#pragma once

// Thin RAII wrappers over libpq for the PostgreSQL store: connections, results, parameters sent in
// binary form (so every byte of a value arrives as it is, and no value is ever spliced into SQL), and a
// small connection pool. Every failure becomes an `orchestrix::PostgresError`.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/postgres/errors.hpp>

#include <libpq-fe.h>

#include <array>
#include <charconv>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

namespace detail::postgres {

// Type OIDs of the parameters the store sends (fixed in PostgreSQL's catalog).
inline constexpr Oid int4_oid = 23;
inline constexpr Oid int8_oid = 20;
inline constexpr Oid text_oid = 25;
inline constexpr Oid uuid_oid = 2950;
inline constexpr Oid int4_array_oid = 1007;
inline constexpr Oid text_array_oid = 1009;
inline constexpr Oid uuid_array_oid = 2951;

/// Owns a PGresult.
class Result {
public:
    Result() = default;
    explicit Result(PGresult* result) noexcept : result_(result) {}

    [[nodiscard]] PGresult* get() const noexcept { return result_.get(); }
    [[nodiscard]] int rows() const noexcept { return PQntuples(result_.get()); }
    [[nodiscard]] bool is_null(int row, int column) const noexcept {
        return PQgetisnull(result_.get(), row, column) != 0;
    }
    [[nodiscard]] std::string_view text(int row, int column) const noexcept {
        return {PQgetvalue(result_.get(), row, column),
                static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
    }
    /// The column as a 64-bit integer; `ok` turns false if it is not one.
    [[nodiscard]] std::int64_t int64(int row, int column, bool& ok) const noexcept {
        const std::string_view t = text(row, column);
        std::int64_t value = 0;
        const auto [end, error] = std::from_chars(t.data(), t.data() + t.size(), value);
        ok = ok && error == std::errc{} && end == t.data() + t.size() && !t.empty();
        return value;
    }
    [[nodiscard]] std::int64_t int64(int row, int column) const {
        bool ok = true;
        const std::int64_t value = int64(row, column, ok);
        if (!ok) throw PostgresError({}, "PostgreSQL returned '" + std::string(text(row, column)) + "' for a number");
        return value;
    }

private:
    struct Clear {
        void operator()(PGresult* r) const noexcept { PQclear(r); }
    };
    std::unique_ptr<PGresult, Clear> result_;
};

/// Parameters in PostgreSQL's binary format.
class Params {
public:
    Params& add_text(std::string_view value) { return add(std::string(value)); }
    Params& add_int4(std::int32_t value) { return add(big_endian(static_cast<std::uint32_t>(value))); }
    Params& add_int8(std::int64_t value) { return add(big_endian(static_cast<std::uint64_t>(value))); }
    /// A one-dimensional array whose elements are already in binary form.
    Params& add_array(Oid element_type, const std::vector<std::string>& elements) {
        std::string out;
        out += big_endian(std::uint32_t{1}); // dimensions
        out += big_endian(std::uint32_t{0}); // flags: no nulls
        out += big_endian(static_cast<std::uint32_t>(element_type));
        out += big_endian(static_cast<std::uint32_t>(elements.size()));
        out += big_endian(std::uint32_t{1}); // lower bound
        for (const auto& e : elements) {
            out += big_endian(static_cast<std::uint32_t>(e.size()));
            out += e;
        }
        return add(std::move(out));
    }

    static std::string big_endian(std::uint32_t v) {
        std::string out(4, '\0');
        for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFFU);
        return out;
    }
    static std::string big_endian(std::uint64_t v) {
        std::string out(8, '\0');
        for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xFFU);
        return out;
    }

    [[nodiscard]] int count() const noexcept { return static_cast<int>(values_.size()); }
    [[nodiscard]] std::vector<const char*> pointers() const {
        std::vector<const char*> out;
        for (const auto& v : values_) out.push_back(v.data());
        return out;
    }
    [[nodiscard]] std::vector<int> lengths() const {
        std::vector<int> out;
        for (const auto& v : values_) out.push_back(static_cast<int>(v.size()));
        return out;
    }

private:
    Params& add(std::string value) {
        values_.push_back(std::move(value));
        return *this;
    }
    std::vector<std::string> values_;
};

/// An open connection with the store's statements prepared on it.
class Connection {
public:
    explicit Connection(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
        if (conn_ == nullptr) throw PostgresError({}, "libpq could not allocate a connection");
        if (PQstatus(conn_.get()) != CONNECTION_OK) {
            throw PostgresError({}, "cannot connect to PostgreSQL: " + message());
        }
        // Notices ("relation already exists, skipping") are not errors; a library must not print them.
        PQsetNoticeProcessor(
            conn_.get(), [](void*, const char*) {}, nullptr);
    }

    [[nodiscard]] PGconn* get() const noexcept { return conn_.get(); }
    [[nodiscard]] bool healthy() const noexcept { return PQstatus(conn_.get()) == CONNECTION_OK; }

    /// Runs SQL without parameters (may hold several statements).
    Result exec(const std::string& sql, std::string_view doing) {
        return check(Result(PQexec(conn_.get(), sql.c_str())), doing);
    }

    /// Prepares `sql` under `name` with the given parameter types, unless this connection already did.
    void prepare(const std::string& name, const std::string& sql, const std::vector<Oid>& types) {
        for (const auto& p : prepared_)
            if (p == name) return;
        check(Result(PQprepare(conn_.get(), name.c_str(), sql.c_str(), static_cast<int>(types.size()), types.data())),
              "prepare " + name);
        prepared_.push_back(name);
    }

    /// Runs the prepared statement `name` with binary parameters; results come back as text.
    Result run(const std::string& name, const Params& params) {
        const auto values = params.pointers();
        const auto lengths = params.lengths();
        const std::vector<int> formats(values.size(), 1);
        return check(Result(PQexecPrepared(conn_.get(), name.c_str(), params.count(), values.data(), lengths.data(),
                                           formats.data(), 0)),
                     name);
    }

    /// Runs `sql` with binary parameters of the given types as an unnamed statement, planned for the table
    /// as it is at this call (a prepared statement keeps the plan it got first); results come back as text.
    Result run_unprepared(const std::string& sql, const Params& params, const std::vector<Oid>& types,
                          std::string_view doing) {
        const auto values = params.pointers();
        const auto lengths = params.lengths();
        const std::vector<int> formats(values.size(), 1);
        return check(Result(PQexecParams(conn_.get(), sql.c_str(), params.count(), types.data(), values.data(),
                                         lengths.data(), formats.data(), 0)),
                     doing);
    }

    [[nodiscard]] std::string message() const {
        const char* m = PQerrorMessage(conn_.get());
        std::string text = m != nullptr ? m : "";
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
        return text;
    }

private:
    Result check(Result result, std::string_view doing) {
        const auto status = result.get() == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result.get());
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
        const char* state = result.get() != nullptr ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
        const char* text = result.get() != nullptr ? PQresultErrorMessage(result.get()) : nullptr;
        std::string detail = text != nullptr && *text != '\0' ? text : message();
        while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
        throw PostgresError(state != nullptr ? state : "",
                            "PostgreSQL failed to " + std::string(doing) + ": " + detail);
    }

    struct Finish {
        void operator()(PGconn* c) const noexcept { PQfinish(c); }
    };
    std::unique_ptr<PGconn, Finish> conn_;
    std::vector<std::string> prepared_;
};

/// Up to `capacity` connections to one URL, opened on demand and handed out one caller at a time.
/// A connection that broke while leased is dropped rather than reused.
class Pool {
public:
    Pool(std::string url, std::size_t capacity) : url_(std::move(url)), capacity_(capacity == 0 ? 1 : capacity) {
        idle_.reserve(capacity_); // give_back never allocates
    }

    class Lease {
    public:
        Lease(Pool& pool, std::unique_ptr<Connection> connection) noexcept
            : pool_(&pool), connection_(std::move(connection)) {}
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() { pool_->give_back(std::move(connection_)); }
        Connection* operator->() const noexcept { return connection_.get(); }
        Connection& operator*() const noexcept { return *connection_; }

    private:
        Pool* pool_;
        std::unique_ptr<Connection> connection_;
    };

    /// A connection for the caller's exclusive use until the lease ends.
    [[nodiscard]] Lease acquire() {
        std::unique_lock lock(mutex_);
        available_.wait(lock, [&] { return !idle_.empty() || open_ < capacity_; });
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return Lease(*this, std::move(c));
        }
        ++open_;
        lock.unlock();
        try {
            return Lease(*this, std::make_unique<Connection>(url_));
        } catch (...) {
            lock.lock();
            --open_;
            available_.notify_one();
            throw;
        }
    }

    [[nodiscard]] const std::string& url() const noexcept { return url_; }

private:
    void give_back(std::unique_ptr<Connection> c) noexcept {
        std::lock_guard lock(mutex_);
        if (c != nullptr && c->healthy() && PQtransactionStatus(c->get()) == PQTRANS_IDLE) {
            idle_.push_back(std::move(c));
        } else {
            --open_;
        }
        available_.notify_one();
    }

    std::string url_;
    std::size_t capacity_;
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<Connection>> idle_;
    std::size_t open_ = 0;
};

/// A UUID's 16 bytes, as PostgreSQL's binary `uuid` format wants them.
template <class Bytes>
[[nodiscard]] std::string uuid_binary(const Bytes& bytes) {
    std::string out(bytes.size(), '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) out[i] = static_cast<char>(bytes[i]);
    return out;
}

} // namespace detail::postgres

} // namespace orchestrix
