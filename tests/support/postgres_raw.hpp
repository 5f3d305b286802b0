#pragma once

// A libpq connection of a test's own, for what the store does not offer: holding a transaction open,
// writing or damaging rows past the store, reading the server's statistics.

#include "support/catch.hpp"

#include <libpq-fe.h>

#include <string>
#include <vector>

namespace test_support {

class RawConnection {
public:
    explicit RawConnection(const std::string& url) : c_(PQconnectdb(url.c_str())) {
        INFO(PQerrorMessage(c_));
        REQUIRE(PQstatus(c_) == CONNECTION_OK);
    }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;
    ~RawConnection() { PQfinish(c_); }

    // Runs `sql` (without parameters it may hold several statements); returns the first column of the first
    // row ("" if none). Fails the test if the server refuses it.
    std::string exec(const std::string& sql, const std::vector<std::string>& params = {}) {
        PGresult* r = nullptr;
        if (params.empty()) {
            r = PQexec(c_, sql.c_str());
        } else {
            std::vector<const char*> values;
            for (const auto& p : params) values.push_back(p.c_str());
            r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                             0);
        }
        const auto status = PQresultStatus(r);
        std::string first = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        const std::string error = PQresultErrorMessage(r);
        PQclear(r);
        INFO(sql << ": " << error);
        REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
        return first;
    }

    // Runs SQL of several statements.
    void script(const std::string& sql) { (void)exec(sql); }

    [[nodiscard]] PGconn* get() const noexcept { return c_; }

private:
    PGconn* c_;
};

// `orchestrix_append` as orchestrix 0.1 created it (no settings, a plan per session kept from wherever the table
// was; no tags), for the upgrade tests.
inline constexpr const char* previous_append_function = R"sql(
CREATE OR REPLACE FUNCTION orchestrix_append(
    p_stream text, p_kind integer, p_expected bigint, p_ids uuid[], p_types text[],
    p_schema_versions integer[], p_payloads text[], p_metadata text[])
RETURNS TABLE (status integer, stream_version bigint, first_position bigint, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_current bigint;
    v_head    bigint;
    v_count   bigint := cardinality(p_ids);
    v_now     timestamptz;
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;
    SELECT coalesce(max(e.version), 0) INTO v_current FROM events e WHERE e.stream_id = p_stream;
    IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_ids)) THEN
        RETURN QUERY SELECT 2, v_current, 0::bigint, 0::bigint;
        RETURN;
    END IF;
    IF NOT (p_kind = 0 OR (p_kind = 1 AND v_current = 0) OR (p_kind = 2 AND v_current > 0)
            OR (p_kind = 3 AND v_current = p_expected)) THEN
        RETURN QUERY SELECT 1, v_current, 0::bigint, 0::bigint;
        RETURN;
    END IF;
    SELECT coalesce(max(e.position), 0) INTO v_head FROM events e;
    IF v_count > 9223372036854775807 - v_current OR v_count > 9223372036854775807 - v_head THEN
        RETURN QUERY SELECT 3, v_current, v_head, 0::bigint;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, metadata,
                        recorded_at)
    SELECT v_head + u.n, p_stream, v_current + u.n, u.id, u.type, u.sv, u.payload::json, u.meta::json, v_now
    FROM unnest(p_ids, p_types, p_schema_versions, p_payloads, p_metadata)
         WITH ORDINALITY AS u(id, type, sv, payload, meta, n);
    PERFORM pg_notify('orchestrix_events', (v_head + v_count)::text);
    RETURN QUERY SELECT 0, v_current + v_count, v_head + 1, v_head + v_count;
END
$fn$;
)sql";

} // namespace test_support
