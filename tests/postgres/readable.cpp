// What append accepts, every reader can read: the PostgreSQL store (tests/support/readable_contract.hpp).

#include <orchestrix/postgres.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "support/readable_events.hpp"

namespace {

struct PostgresReadableFactory {
    using store_type = orchestrix::PostgresEventStore<readable::Events>;
    std::string url = test_support::fresh_postgres_database();

    std::unique_ptr<store_type> make(orchestrix::JsonCodec<readable::Events> codec) {
        return std::make_unique<store_type>(url, orchestrix::PostgresOptions{4, true}, std::move(codec));
    }

    // PostgreSQL's `json` column refuses text that is not JSON: such a payload is stored as a JSON string
    // of that text instead, which the codec cannot decode as an event either.
    std::string insert_raw(const readable::RawRow& row) {
        PGconn* c = PQconnectdb(url.c_str());
        REQUIRE(PQstatus(c) == CONNECTION_OK);
        const std::vector<std::string> values = {std::to_string(row.position),
                                                 row.stream_id,
                                                 std::to_string(row.version),
                                                 row.event_id,
                                                 row.type,
                                                 std::to_string(row.schema_version),
                                                 row.payload,
                                                 row.metadata};
        std::vector<const char*> params;
        for (const auto& v : values) params.push_back(v.c_str());
        std::string stored;
        for (const char* payload : {"$7::json", "to_json($7::text)"}) {
            const std::string sql = std::string("INSERT INTO events (position, stream_id, version, event_id, type, "
                                                "schema_version, payload, metadata, recorded_at) VALUES ($1, $2, $3, "
                                                "$4::uuid, $5, $6, ") +
                                    payload + ", $8, now()) RETURNING payload::text";
            PGresult* r = PQexecParams(c, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                                       nullptr, 0);
            const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            if (ok) stored = PQgetvalue(r, 0, 0);
            PQclear(r);
            if (ok) break;
        }
        PQfinish(c);
        REQUIRE_FALSE(stored.empty());
        return stored;
    }
};

} // namespace

#define ORCHESTRIX_READABLE_STORES std::tuple<PostgresReadableFactory>
#include "support/readable_contract.hpp"
