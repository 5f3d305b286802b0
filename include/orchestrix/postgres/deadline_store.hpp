#pragma once

// Saga deadlines in PostgreSQL: a `deadline_store` (projection/saga.hpp) in a table shared by every runner
// (target orchestrix::postgres).

#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/postgres/connection.hpp>
#include <orchestrix/postgres/errors.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/projection/saga.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// Saga deadlines in the table `orchestrix_saga_deadlines`, keyed by saga type, key and name, with an index on
/// (saga type, due time). Thread-safe (a pool of connections, `PostgresOptions::pool_size`).
class PostgresDeadlineStore {
public:
    /// Connects to `url` and creates the table if asked (`PostgresOptions::create_schema`). Throws
    /// `PostgresError`.
    explicit PostgresDeadlineStore(std::string url, PostgresOptions options = {})
        : pool_(std::move(url), options.pool_size) {
        if (options.create_schema) {
            auto c = pool_.acquire();
            (void)c->exec("SELECT pg_advisory_xact_lock(7236451023345862); "
                          "CREATE TABLE IF NOT EXISTS orchestrix_saga_deadlines (saga_type text NOT NULL, "
                          "saga_key text NOT NULL, name text NOT NULL, due bigint NOT NULL, "
                          "PRIMARY KEY (saga_type, saga_key, name)); "
                          "CREATE INDEX IF NOT EXISTS orchestrix_saga_deadlines_due ON orchestrix_saga_deadlines "
                          "(saga_type, due)",
                          "create the saga deadline table");
        }
    }

    /// Keeps `d`, replacing the deadline of the same saga type, key and name.
    void schedule(const Deadline& d) {
        namespace pg = detail::postgres;
        pg::Params params;
        params.add_text(d.saga_type).add_text(d.saga_key).add_text(d.name).add_int8(durable::to_micros(d.due));
        auto c = pool_.acquire();
        c->prepare("orchestrix_schedule_deadline",
                   "INSERT INTO orchestrix_saga_deadlines (saga_type, saga_key, name, due) VALUES ($1, $2, $3, $4) "
                   "ON CONFLICT (saga_type, saga_key, name) DO UPDATE SET due = excluded.due",
                   {pg::text_oid, pg::text_oid, pg::text_oid, pg::int8_oid});
        (void)c->run("orchestrix_schedule_deadline", params);
    }

    /// Forgets the deadline `name` of saga `saga_key` (nothing if there is none).
    void cancel(std::string_view saga_type, std::string_view saga_key, std::string_view name) {
        namespace pg = detail::postgres;
        pg::Params params;
        params.add_text(saga_type).add_text(saga_key).add_text(name);
        auto c = pool_.acquire();
        c->prepare("orchestrix_cancel_deadline",
                   "DELETE FROM orchestrix_saga_deadlines WHERE saga_type = $1 AND saga_key = $2 AND name = $3",
                   {pg::text_oid, pg::text_oid, pg::text_oid});
        (void)c->run("orchestrix_cancel_deadline", params);
    }

    /// At most `limit` deadlines of `saga_type` due at or before `now`, earliest first.
    [[nodiscard]] std::vector<Deadline> due(std::string_view saga_type, std::chrono::system_clock::time_point now,
                                            std::size_t limit) {
        namespace pg = detail::postgres;
        pg::Params params;
        params.add_text(saga_type).add_int8(durable::to_micros(now)).add_int8(pg::clamp(limit));
        auto c = pool_.acquire();
        c->prepare("orchestrix_due_deadlines",
                   "SELECT saga_key, name, due FROM orchestrix_saga_deadlines WHERE saga_type = $1 AND due <= $2 "
                   "ORDER BY due, saga_key, name LIMIT $3",
                   {pg::text_oid, pg::int8_oid, pg::int8_oid});
        const pg::Result r = c->run("orchestrix_due_deadlines", params);
        std::vector<Deadline> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int row = 0; row < r.rows(); ++row) {
            out.push_back(Deadline{std::string(saga_type), std::string(r.text(row, 0)), std::string(r.text(row, 1)),
                                   durable::from_micros(r.int64(row, 2))});
        }
        return out;
    }

    /// Forgets `d` if it is still due at `d.due`.
    void remove(const Deadline& d) {
        namespace pg = detail::postgres;
        pg::Params params;
        params.add_text(d.saga_type).add_text(d.saga_key).add_text(d.name).add_int8(durable::to_micros(d.due));
        auto c = pool_.acquire();
        c->prepare("orchestrix_remove_deadline",
                   "DELETE FROM orchestrix_saga_deadlines WHERE saga_type = $1 AND saga_key = $2 AND name = $3 "
                   "AND due = $4",
                   {pg::text_oid, pg::text_oid, pg::text_oid, pg::int8_oid});
        (void)c->run("orchestrix_remove_deadline", params);
    }

    /// How many deadlines wait (all saga types).
    [[nodiscard]] std::size_t size() {
        auto c = pool_.acquire();
        return static_cast<std::size_t>(
            c->exec("SELECT count(*) FROM orchestrix_saga_deadlines", "count the deadlines").int64(0, 0));
    }

private:
    detail::postgres::Pool pool_;
};

static_assert(deadline_store<PostgresDeadlineStore>);

} // namespace orchestrix
