#pragma once

// The PostgreSQL event store: durable and shared by many processes on many machines (target
// orchestrix::postgres).

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/lifecycle.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/detail/utf8.hpp>
#include <orchestrix/durable/query_sql.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/postgres/connection.hpp>

#include <libpq-fe.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// Options of `PostgresEventStore`.
struct PostgresOptions {
    /// The most connections one store object opens (they are opened on demand). Calls from more threads
    /// than this wait for a free connection.
    std::size_t pool_size = 4;
    /// Create the tables and the append function if they are missing (under an advisory lock, so several
    /// processes may start at once). Turn off where the application's role may not create them.
    bool create_schema = true;
};

/// The channel on which every append notifies its last global position, on commit.
inline constexpr std::string_view postgres_channel = "orchestrix_events";

namespace detail::postgres {

/// The tables, and the append function: one round trip per append. It locks the events table in
/// EXCLUSIVE mode (writers queue, readers are never blocked) so that positions are assigned and committed
/// in the same order: a reader polling "after my checkpoint" never skips an event that commits late.
/// Its lookups are index probes whatever the table's statistics say (docs/stores.md, "Index probes only").
/// Status: 0 written, 1 expected version not met, 2 some ids stored already (the client decides whether
/// it is a retry), 3 the batch would overflow the largest version or position, 4 the condition failed
/// (`first_position`: the first stored event matching it), 5 the stream is tombstoned, 6 the stream is
/// deleted and only an append expecting no stream recreates it (`detail::admit_append`).
///
/// `orchestrix_streams` holds the life of each stream a lifecycle operation touched (`StreamInfo`). The append
/// reads it only when the stream has no stored event (a new stream, or one deleted or truncated away), so an
/// append to a stream with events costs what it did before; a soft-deleted stream is recreated at its last
/// version + 1. `event_tags_by_position` lets a removal delete the removed events' tags. `orchestrix_head`
/// keeps the highest position given out once a removal may have removed the events at the head: the appends
/// and the head read the greater of it and the last event's position, so a position is never given twice.
///
/// `orchestrix_read_query` runs a read by query (`durable::query_rows_sql`, PostgreSQL dialect, the head as
/// `$4` in its last column) the same way: planned at each call for its values, index scans only; it returns
/// the rows in position order, each with the head read in the same snapshot, or one row of NULLs with the
/// head if none matches. A read returning a large part of the table would be cheaper as a sequential scan,
/// but a plan's estimates are only as good as the statistics, and a sequential scan of a large table where
/// the statistics are stale costs far more than index scans where a sequential one would have done.
///
/// `orchestrix_append_tagged`, what a store of tagged events calls, also inserts the events' tags
/// (`p_tags[k]` is a tag of the `p_tag_events[k]`-th event of the batch, from 1) and, unless `p_condition`
/// is empty, checks a DCB condition under the lock: `p_condition` is the SQL of
/// `durable::query_first_match_sql` (PostgreSQL dialect), run as `EXECUTE p_condition USING p_after,
/// p_values` and planned at each call for the values it is given, under the function's settings (index
/// probes only). The lock makes the check hold against every other append: none can commit between it and
/// the insert. `orchestrix_append` is the same without tags or condition. The tags table has no foreign key
/// to the events: the function writes both, in one transaction. Events appended through
/// `orchestrix_append` (a store of untagged events, or orchestrix 0.1) have no tags.
inline constexpr const char* schema_sql = R"sql(
SELECT pg_advisory_xact_lock(7236451023345861);
CREATE TABLE IF NOT EXISTS events (
    position       bigint      PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    payload        json        NOT NULL,
    metadata       json        NOT NULL,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_id   text        PRIMARY KEY,
    aggregate_type text        NOT NULL,
    version        bigint      NOT NULL,
    schema_version integer     NOT NULL,
    state          text        NOT NULL,
    taken_at       timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS event_tags (
    tag      text   NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tag, position)
);
-- The life of the streams a lifecycle operation touched (status 0 active, 1 deleted, 2 tombstoned; recreation
-- 0 on_append, 1 on_no_stream; removed: the events it removed in total).
CREATE TABLE IF NOT EXISTS orchestrix_streams (
    stream_id     text     PRIMARY KEY,
    version       bigint   NOT NULL,
    start_version bigint   NOT NULL,
    first_version bigint   NOT NULL,
    status        smallint NOT NULL,
    recreation    smallint NOT NULL,
    removed       bigint   NOT NULL
);
-- The highest position ever given out, kept by the removals (which may remove the events at the head): the
-- appends go on after it, so that no position is given out twice.
CREATE TABLE IF NOT EXISTS orchestrix_head (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    position bigint  NOT NULL
);
-- Not CREATE INDEX IF NOT EXISTS: that locks the table (waiting for appends in flight) even when the index exists.
DO $do$ BEGIN
    IF to_regclass('events_by_type') IS NULL THEN
        CREATE INDEX events_by_type ON events (type, position);
    END IF;
    IF to_regclass('event_tags_by_position') IS NULL THEN
        CREATE INDEX event_tags_by_position ON event_tags (position);
    END IF;
END $do$;
CREATE OR REPLACE FUNCTION orchestrix_append_tagged(
    p_stream text, p_kind integer, p_expected bigint, p_ids uuid[], p_types text[],
    p_schema_versions integer[], p_payloads text[], p_metadata text[],
    p_tags text[], p_tag_events integer[], p_condition text, p_after bigint, p_values text[])
RETURNS TABLE (status integer, stream_version bigint, first_position bigint, last_position bigint)
LANGUAGE plpgsql
-- Index probes only, whatever the statistics say: the plans below are made once per session and kept, and one
-- made on an empty table would otherwise read the whole table at every append until the table is analysed.
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $fn$
DECLARE
    v_count    bigint := cardinality(p_ids);
    v_stored   boolean;
    v_now      timestamptz;
    v_conflict bigint;
    v_base     bigint;
    v_kept     bigint;
    v_life     smallint;
    v_recreate smallint;
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;
    -- One statement, three probes of unique indexes: the stream's last version, the head, the batch's ids.
    SELECT coalesce((SELECT e.version FROM events e WHERE e.stream_id = p_stream ORDER BY e.version DESC LIMIT 1), 0),
           greatest((SELECT e.position FROM events e ORDER BY e.position DESC LIMIT 1),
                    (SELECT h.position FROM orchestrix_head h WHERE h.one), 0),
           EXISTS (SELECT FROM events e WHERE e.event_id = ANY (p_ids))
      INTO stream_version, first_position, v_stored;
    last_position := 0;
    v_base := stream_version;
    IF stream_version = 0 THEN
        -- No stored event: a new stream, or one a lifecycle operation emptied. One more probe, of a primary key.
        SELECT s.version, s.status, s.recreation INTO v_kept, v_life, v_recreate
          FROM orchestrix_streams s WHERE s.stream_id = p_stream;
        IF FOUND THEN
            v_base := v_kept; -- versions never repeat
            IF v_life = 0 THEN
                stream_version := v_kept;
            END IF;
        END IF;
    END IF;
    IF v_life = 2 THEN
        status := 5;
        first_position := 0;
    ELSIF v_life = 1 AND v_recreate = 1 AND p_kind <> 1 THEN
        status := 6;
        first_position := 0;
    ELSIF v_stored THEN
        status := 2;
        first_position := 0;
    ELSIF NOT (p_kind = 0 OR (p_kind = 1 AND stream_version = 0) OR (p_kind = 2 AND stream_version > 0)
               OR (p_kind = 3 AND stream_version = p_expected)) THEN
        status := 1;
        first_position := 0;
    ELSIF v_count > 9223372036854775807 - v_base OR v_count > 9223372036854775807 - first_position THEN
        stream_version := v_base;
        status := 3;
    ELSE
        IF p_condition <> '' THEN
            EXECUTE p_condition INTO v_conflict USING p_after, p_values;
        END IF;
        IF v_conflict IS NOT NULL THEN
            status := 4;
            first_position := v_conflict;
        ELSE
            v_now := clock_timestamp();
            INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, metadata,
                                recorded_at)
            SELECT first_position + u.n, p_stream, v_base + u.n, u.id, u.type, u.sv, u.payload::json,
                   u.meta::json, v_now
            FROM unnest(p_ids, p_types, p_schema_versions, p_payloads, p_metadata)
                 WITH ORDINALITY AS u(id, type, sv, payload, meta, n);
            INSERT INTO event_tags (tag, position)
            SELECT t.tag, first_position + t.n FROM unnest(p_tags, p_tag_events) AS t(tag, n);
            IF v_life IS NOT NULL THEN
                -- A recreation starts the stream's new life after its last version.
                UPDATE orchestrix_streams s
                   SET version = v_base + v_count, status = 0,
                       start_version = CASE WHEN v_life = 1 THEN v_base + 1 ELSE s.start_version END,
                       first_version = CASE WHEN v_life = 1 THEN v_base + 1 ELSE s.first_version END
                 WHERE s.stream_id = p_stream;
            END IF;
            PERFORM pg_notify('orchestrix_events', (first_position + v_count)::text);
            status := 0;
            stream_version := v_base + v_count;
            last_position := first_position + v_count;
            first_position := first_position + 1;
        END IF;
    END IF;
    RETURN NEXT;
END
$fn$;
CREATE OR REPLACE FUNCTION orchestrix_read_query(p_sql text, p_after bigint, p_values text[], p_limit bigint)
RETURNS TABLE (r_position bigint, r_stream_id text, r_version bigint, r_event_id text, r_type text,
               r_schema_version integer, r_payload text, r_metadata text, r_recorded_at bigint, r_head bigint)
LANGUAGE plpgsql
STABLE -- its statements share the calling statement's snapshot: the head is that of the rows
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $fn$
DECLARE
    v_head bigint := greatest((SELECT e.position FROM events e ORDER BY e.position DESC LIMIT 1),
                              (SELECT h.position FROM orchestrix_head h WHERE h.one), 0);
BEGIN
    RETURN QUERY EXECUTE p_sql USING p_after, p_values, p_limit, v_head;
    IF NOT FOUND THEN
        r_head := v_head;
        RETURN NEXT;
    END IF;
END
$fn$;
CREATE OR REPLACE FUNCTION orchestrix_append(
    p_stream text, p_kind integer, p_expected bigint, p_ids uuid[], p_types text[],
    p_schema_versions integer[], p_payloads text[], p_metadata text[])
RETURNS TABLE (status integer, stream_version bigint, first_position bigint, last_position bigint)
LANGUAGE sql
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $fn$
    SELECT * FROM orchestrix_append_tagged(p_stream, p_kind, p_expected, p_ids, p_types, p_schema_versions,
                                           p_payloads, p_metadata, NULL, NULL, '', 0, NULL);
$fn$;
)sql";

inline constexpr const char* row_columns =
    "position, stream_id, version, event_id::text, type, schema_version, payload::text, metadata::text, "
    "(extract(epoch FROM recorded_at) * 1000000)::bigint";

[[nodiscard]] inline std::int32_t kind_code(ExpectedVersion expected) noexcept {
    switch (expected.kind()) {
    case ExpectedVersion::Kind::any:
        return 0;
    case ExpectedVersion::Kind::no_stream:
        return 1;
    case ExpectedVersion::Kind::stream_exists:
        return 2;
    case ExpectedVersion::Kind::exact:
        return 3;
    }
    return 0;
}

[[nodiscard]] inline std::int64_t clamp(std::uint64_t value) noexcept {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(value, max_version));
}

/// One statement a PostgreSQL store sends: a prepared statement (`name` set: prepared from `sql` with `types`
/// the first time a connection runs it) or an unnamed one (`name` empty: planned at each call), with its
/// parameters in binary form; `doing` names it in an error ("PostgreSQL failed to <doing>: ..."). The
/// blocking and the asynchronous store build the same statements with the functions below.
struct Statement {
    std::string name{};
    std::string sql{};
    std::vector<Oid> types{};
    Params params{};
    std::string doing{};
};

/// Runs `statement` on `c` and waits for its result (the blocking store's way).
inline Result run(Connection& c, const Statement& statement) {
    if (statement.name.empty())
        return c.run_unprepared(statement.sql, statement.params, statement.types, statement.doing);
    c.prepare(statement.name, statement.sql, statement.types);
    return c.run(statement.name, statement.params);
}

/// A prepared statement whose errors name it.
inline Statement prepared(std::string name, std::string sql, std::vector<Oid> types, Params params) {
    Statement s{std::move(name), std::move(sql), std::move(types), std::move(params), {}};
    s.doing = s.name;
    return s;
}

/// The call of the append function for a checked batch (`event_ids[i]` the id of `batch.encoded[i]`, at least
/// one): `orchestrix_append_tagged` for a store of tagged events (with the events' tags and the condition, if
/// any), `orchestrix_append` otherwise.
template <class Events>
[[nodiscard]] Statement append_statement(std::string_view stream, std::span<const Uuid> event_ids,
                                         const durable::PreparedBatch& batch, ExpectedVersion expected,
                                         const AppendCondition* condition) {
    const std::vector<SerializedEvent>& encoded = batch.encoded;
    std::vector<std::string> ids, types, versions, payloads, metadata;
    for (std::size_t i = 0; i < event_ids.size(); ++i) {
        ids.push_back(uuid_binary(event_ids[i].bytes()));
        types.push_back(encoded[i].type);
        versions.push_back(Params::big_endian(encoded[i].schema_version));
        payloads.push_back(encoded[i].payload);
        metadata.push_back(encoded[i].metadata);
    }
    Params params;
    params.add_text(stream).add_int4(kind_code(expected)).add_int8(static_cast<std::int64_t>(expected.value()));
    params.add_array(uuid_oid, ids).add_array(text_oid, types).add_array(int4_oid, versions);
    params.add_array(text_oid, payloads).add_array(text_oid, metadata);
    if constexpr (tagged_event_variant<Events>) {
        std::vector<std::string> tags, tag_events;
        for (std::size_t i = 0; i < batch.tags.size(); ++i) {
            for (const std::string& tag : batch.tags[i]) {
                tags.push_back(tag);
                tag_events.push_back(Params::big_endian(static_cast<std::uint32_t>(i + 1)));
            }
        }
        durable::QuerySql check;
        if (condition != nullptr) {
            check = durable::query_first_match_sql(condition->fail_if_events_match, durable::SqlDialect::postgres);
        }
        params.add_array(text_oid, tags).add_array(int4_oid, tag_events).add_text(check.sql);
        params.add_int8(clamp(condition != nullptr ? condition->after.value_or(0) : 0));
        params.add_array(text_oid, check.values);
        return prepared(
            "orchestrix_append_tagged",
            "SELECT * FROM orchestrix_append_tagged($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            {text_oid, int4_oid, int8_oid, uuid_array_oid, text_array_oid, int4_array_oid, text_array_oid,
             text_array_oid, text_array_oid, int4_array_oid, text_oid, int8_oid, text_array_oid},
            std::move(params));
    } else {
        (void)condition;
        return prepared("orchestrix_append", "SELECT * FROM orchestrix_append($1, $2, $3, $4, $5, $6, $7, $8)",
                        {text_oid, int4_oid, int8_oid, uuid_array_oid, text_array_oid, int4_array_oid, text_array_oid,
                         text_array_oid},
                        std::move(params));
    }
}

/// The stream's version the append function reported (`current` of the retry check and of the errors).
[[nodiscard]] inline stream_version_t append_current(const Result& r) {
    return static_cast<stream_version_t>(r.int64(0, 1));
}

/// What the append function's row means: the result of a written batch, nothing when some of its ids are stored
/// already (status 2: the caller looks them up, `stored_rows_statement`, and decides whether it is a retry), or
/// the typed error (`ConcurrencyError`, `AppendConditionError`, `StreamDeletedError`, `InvalidArgumentError` for
/// an overflow) thrown.
[[nodiscard]] inline std::optional<AppendResult> append_outcome(const Result& r, std::string_view stream,
                                                                std::size_t count, ExpectedVersion expected,
                                                                const AppendCondition* condition) {
    const auto status = r.int64(0, 0);
    const auto current = append_current(r);
    if (status == 0) {
        return AppendResult{current, static_cast<position_t>(r.int64(0, 2)), static_cast<position_t>(r.int64(0, 3)),
                            true};
    }
    if (status == 2) return std::nullopt;
    if (status == 3) detail::validate_growth(stream, current, static_cast<position_t>(r.int64(0, 2)), count);
    if (status == 5) throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
    if (status == 6) throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::deleted);
    if (status == 4 && condition != nullptr) {
        throw AppendConditionError(std::string(stream), static_cast<position_t>(r.int64(0, 2)), condition->after);
    }
    throw ConcurrencyError(std::string(stream), expected, current);
}

/// The end of an idempotent retry's check: its result, or `PostgresError` if the database reported stored ids
/// that its lookup could not find.
[[nodiscard]] inline AppendResult retry_outcome(std::optional<AppendResult> stored, std::string_view stream) {
    if (stored) return *stored;
    throw PostgresError({}, "append to stream '" + std::string(stream) +
                                "': the database reported stored event ids that cannot be found");
}

/// The lookup of the stored rows of a batch's ids: an unnamed statement, planned at each call for the table as
/// it is now (a prepared one keeps the plan it got first, and on a table that was empty then, that is a
/// sequential scan; a retry is rare, and planning costs less than a round trip). See docs/stores.md, "Index
/// probes only".
[[nodiscard]] inline Statement stored_rows_statement(std::span<const Uuid> event_ids) {
    std::vector<std::string> ids;
    for (const Uuid& id : event_ids) ids.push_back(uuid_binary(id.bytes()));
    Params params;
    params.add_array(uuid_oid, ids);
    return Statement{{},
                     "SELECT event_id::text, stream_id, version, position, type, schema_version, "
                     "payload::text FROM events WHERE event_id = ANY ($1)",
                     {uuid_array_oid},
                     std::move(params),
                     "look up the stored events of a retry"};
}

/// The rows `stored_rows_statement` found: `rows[i]` that of `event_ids[i]`, or nothing.
[[nodiscard]] inline std::vector<std::optional<durable::StoredEventRow>> stored_rows(const Result& r,
                                                                                     std::span<const Uuid> event_ids) {
    std::vector<std::optional<durable::StoredEventRow>> rows(event_ids.size());
    for (int row = 0; row < r.rows(); ++row) {
        const auto id = r.text(row, 0);
        for (std::size_t i = 0; i < event_ids.size(); ++i) {
            if (event_ids[i].to_string() != id) continue;
            rows[i] = durable::StoredEventRow{std::string(r.text(row, 1)),
                                              static_cast<stream_version_t>(r.int64(row, 2)),
                                              static_cast<position_t>(r.int64(row, 3)),
                                              std::string(r.text(row, 4)),
                                              static_cast<std::uint32_t>(r.int64(row, 5)),
                                              std::string(r.text(row, 6))};
        }
    }
    return rows;
}

/// The stream's life in one statement (one snapshot): its stored events' first and last versions and its row in
/// orchestrix_streams (`stream_info` reads the result).
[[nodiscard]] inline Statement stream_info_statement(std::string_view stream) {
    Params params;
    params.add_text(stream);
    return prepared("orchestrix_stream_info",
                    "SELECT (SELECT e.version FROM events e WHERE e.stream_id = $1 ORDER BY e.version LIMIT 1), "
                    "(SELECT e.version FROM events e WHERE e.stream_id = $1 ORDER BY e.version DESC LIMIT 1), "
                    "s.version, s.start_version, s.status, s.recreation "
                    "FROM (SELECT) AS one LEFT JOIN orchestrix_streams s ON s.stream_id = $1",
                    {text_oid}, std::move(params));
}

[[nodiscard]] inline StreamInfo stream_info(const Result& r) {
    StreamInfo info;
    const bool has_events = !r.is_null(0, 1);
    const auto last = has_events ? static_cast<stream_version_t>(r.int64(0, 1)) : stream_version_t{0};
    info.version = last;
    if (!r.is_null(0, 2)) {
        info.version = std::max(last, static_cast<stream_version_t>(r.int64(0, 2)));
        info.start_version = static_cast<stream_version_t>(r.int64(0, 3));
        const auto status = r.int64(0, 4);
        info.status = status == 2   ? StreamStatus::tombstoned
                      : status == 1 ? StreamStatus::deleted
                                    : StreamStatus::active;
        info.recreation = r.int64(0, 5) == 1 ? Recreation::on_no_stream : Recreation::on_append;
    }
    info.first_version = has_events ? static_cast<stream_version_t>(r.int64(0, 0)) : info.version + 1;
    return info;
}

/// The stream's current version (0 if it does not exist, or is deleted or tombstoned): one row, one column.
[[nodiscard]] inline Statement stream_version_statement(std::string_view stream) {
    Params params;
    params.add_text(stream);
    return prepared("orchestrix_stream_version",
                    "SELECT coalesce((SELECT max(e.version) FROM events e WHERE e.stream_id = $1), "
                    "(SELECT CASE WHEN s.status = 0 THEN s.version ELSE 0 END FROM orchestrix_streams s "
                    "WHERE s.stream_id = $1), 0)",
                    {text_oid}, std::move(params));
}

/// The global position of the last committed event (0 if none), as the appends see it: one row, one column.
inline constexpr const char* head_sql =
    "SELECT greatest((SELECT max(position) FROM events), (SELECT position FROM orchestrix_head WHERE one), 0)";

/// Events of `stream` from `from_version` on, at most `max_count`, in `row_columns` (`row_view` reads a row).
[[nodiscard]] inline Statement read_stream_statement(std::string_view stream, stream_version_t from_version,
                                                     std::uint64_t max_count) {
    Params params;
    params.add_text(stream).add_int8(clamp(from_version)).add_int8(clamp(max_count));
    return prepared("orchestrix_read_stream",
                    std::string("SELECT ") + row_columns +
                        " FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3",
                    {text_oid, int8_oid, int8_oid}, std::move(params));
}

/// Events of every stream from `from_position` on, at most `max_count`, in `row_columns`.
[[nodiscard]] inline Statement read_all_statement(position_t from_position, std::uint64_t max_count) {
    Params params;
    params.add_int8(clamp(from_position)).add_int8(clamp(max_count));
    return prepared("orchestrix_read_all",
                    std::string("SELECT ") + row_columns +
                        " FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
                    {int8_oid, int8_oid}, std::move(params));
}

/// A damaged schema_version column, as `row_view` reports it.
inline constexpr durable::ColumnDamage bad_schema_version{"schema_version", "is not a positive 32-bit integer"};

/// Row `row` of a read in `row_columns`, as it is stored; `schema_ok` turns false if a number column is damaged
/// (the row is then reported with `bad_schema_version`).
[[nodiscard]] inline RawRecordedEventView row_view(const Result& r, int row, bool& schema_ok) {
    bool ok = true;
    RawRecordedEventView raw;
    raw.position = static_cast<position_t>(r.int64(row, 0, ok));
    raw.stream_id = r.text(row, 1);
    raw.version = static_cast<stream_version_t>(r.int64(row, 2, ok));
    raw.event_id = r.text(row, 3);
    raw.type = r.text(row, 4);
    const std::int64_t schema = r.int64(row, 5, ok);
    raw.payload = r.text(row, 6);
    raw.metadata = r.text(row, 7);
    raw.recorded_at = durable::from_micros(r.int64(row, 8, ok));
    schema_ok = ok && schema >= 1 && schema <= std::numeric_limits<std::uint32_t>::max();
    if (schema_ok) raw.schema_version = static_cast<std::uint32_t>(schema);
    return raw;
}

} // namespace detail::postgres

/// Waits for appends to commit, on its own connection: what wakes a live subscription instead of polling.
class PostgresListener {
public:
    /// Connects to `url` and listens on `postgres_channel`.
    explicit PostgresListener(const std::string& url) : connection_(url) {
        (void)connection_.exec("LISTEN " + std::string(postgres_channel), "listen for appends");
    }

    /// Waits up to `timeout` for appends to commit. Returns the highest global position they reported,
    /// or nothing if none committed in time. Throws `PostgresError` if the connection is lost.
    [[nodiscard]] std::optional<position_t> wait_for_notification(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (PQconsumeInput(connection_.get()) == 0) {
                throw PostgresError({}, "lost the PostgreSQL connection while listening: " + connection_.message());
            }
            std::optional<position_t> latest;
            while (PGnotify* n = PQnotifies(connection_.get())) {
                const std::string_view payload = n->extra != nullptr ? n->extra : "";
                std::uint64_t position = 0;
                std::from_chars(payload.data(), payload.data() + payload.size(), position);
                latest = std::max<position_t>(latest.value_or(0), position);
                PQfreemem(n);
            }
            if (latest) return latest;
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd fd{PQsocket(connection_.get()), POLLIN, 0};
            if (::poll(&fd, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000))) < 0 && errno != EINTR) {
                throw PostgresError({}, "waiting for a PostgreSQL notification failed");
            }
        }
    }

private:
    detail::postgres::Connection connection_;
};

/// An event store in a PostgreSQL database, shared by any number of processes.
///
/// - Each append is one round trip: a call of the server-side function `orchestrix_append`, which takes
///   `LOCK TABLE events IN EXCLUSIVE MODE`, checks the expected version and the event ids, and inserts the
///   batch with one multi-row INSERT, in one transaction. Appends therefore commit in position order, and
///   positions have no gaps: a reader polling `read_all(checkpoint + 1)` never skips an event that
///   commits late. `read_all` and `visit_all` see only committed events, and an event never appears after
///   one with a higher position was seen. Readers take no lock that writers wait for, nor the reverse.
/// - Every append notifies its last position on `postgres_channel` at commit; `listen()` gives a
///   `PostgresListener` that waits for it.
/// - Values are sent as bound parameters in binary form: stream ids of any characters are stored byte for
///   byte.
/// - Thread-safe: a pool of up to `PostgresOptions::pool_size` connections, one per concurrent call.
/// - A lost connection throws `PostgresError`; an append it interrupted either committed or not, and
///   retrying it with the same event ids is safe (idempotent).
/// - For events that declare tags (`tagged_event_variant`), a `dcb_event_store`: every append stores each
///   event's tags (table `event_tags`, through `orchestrix_append_tagged`), `read(query)` / `visit(query,
///   ...)` read by query in one statement, and `append(stream, events, expected, condition)` checks its
///   condition in the append's one round trip, under the table lock, so it holds against every writer.
template <event_variant Events, class Codec = JsonCodec<Events>>
class PostgresEventStore : public DurableStoreBase<PostgresEventStore<Events, Codec>, Events, Codec> {
    using base_type = DurableStoreBase<PostgresEventStore, Events, Codec>;
    friend base_type;

public:
    using typename base_type::envelope_type;
    using typename base_type::event_type;
    using typename base_type::recorded_type;
    using typename base_type::view_type;

    /// The kind this store reports to its observer (`observe`).
    static constexpr std::string_view store_kind = "postgres";

    /// Connects to the database at `url` (a libpq URL or key=value string, e.g.
    /// "postgresql://app@db.internal:5432/bank") and creates the schema if asked. Throws `PostgresError`.
    explicit PostgresEventStore(std::string url, PostgresOptions options = {}, Codec codec = Codec{})
        : codec_(std::move(codec)), pool_(std::move(url), options.pool_size) {
        auto c = pool_.acquire();
        if (options.create_schema) (void)c->exec(detail::postgres::schema_sql, "create the orchestrix schema");
    }

    PostgresEventStore(const PostgresEventStore&) = delete;
    PostgresEventStore& operator=(const PostgresEventStore&) = delete;

    // `append` (plain and conditional, of a span, a braced list or plain events), `read_stream`, `read_all`,
    // `visit_stream`, `visit_all`, and `read` and `visit` by query: `DurableStoreBase`, on `append_batch` below.

    /// The stream's current version: 0 if it does not exist, if it is deleted or tombstoned, or if `stream` is
    /// malformed (PostgreSQL would refuse a NUL or invalid UTF-8 in a query; no such stream can exist). A
    /// stream whose events were all truncated away keeps its version.
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) const {
        if (!detail::is_valid_stream_id(stream)) return 0;
        auto c = pool_.acquire();
        return static_cast<stream_version_t>(
            detail::postgres::run(*c, detail::postgres::stream_version_statement(stream)).int64(0, 0));
    }

    /// Deletes `stream` (`lifecycle_event_store`): under the lock the appends take, in one transaction, checks
    /// `expected`, deletes the stream's events and their tags, and records the deletion in
    /// `orchestrix_streams`. The rows are gone from every read at once; their bytes stay in the table's
    /// pages until `compact()` (docs/lifecycle.md). Throws `InvalidArgumentError("stream")` for a malformed
    /// stream id, `ConcurrencyError`, `StreamDeletedError` (a soft delete of a tombstone), `PostgresError`.
    RemovalResult delete_stream(std::string_view stream, ExpectedVersion expected = ExpectedVersion::any(),
                                DeleteOptions options = {}) {
        detail::validate_stream_id(stream);
        auto c = pool_.acquire();
        Transaction tx(*c);
        const StreamInfo info = load_info(*c, stream);
        if (info.status == StreamStatus::tombstoned && options.mode == DeleteMode::soft) {
            throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
        }
        detail::check_expected(stream, expected, info.status == StreamStatus::active ? info.version : 0);
        if (info.status == StreamStatus::tombstoned) return RemovalResult{0, info.version};
        const std::uint64_t removed = remove_events(*c, stream, std::nullopt);
        StreamInfo next = info;
        next.first_version = info.version + 1;
        next.status = options.mode == DeleteMode::hard ? StreamStatus::tombstoned : StreamStatus::deleted;
        next.recreation = options.recreation;
        save_info(*c, stream, next, removed);
        tx.commit();
        return RemovalResult{removed, info.version};
    }

    /// Removes the events of `stream` with versions below `before` (`lifecycle_event_store`), with their tags,
    /// under the lock the appends take, in one transaction; `stream_version` is unchanged. Throws
    /// `InvalidArgumentError` for a malformed stream id or `before` past `version + 1`, `StreamDeletedError`
    /// for a tombstone, `PostgresError`.
    RemovalResult truncate_stream(std::string_view stream, stream_version_t before) {
        detail::validate_stream_id(stream);
        auto c = pool_.acquire();
        Transaction tx(*c);
        const StreamInfo info = load_info(*c, stream);
        if (info.status == StreamStatus::tombstoned) {
            throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
        }
        if (info.status == StreamStatus::deleted) return RemovalResult{0, info.version};
        if (before > info.version + 1) {
            throw InvalidArgumentError("before", "truncate_stream('" + std::string(stream) + "', " +
                                                     std::to_string(before) + "): the stream is at version " +
                                                     std::to_string(info.version) + "; before may be at most " +
                                                     std::to_string(info.version + 1));
        }
        if (before <= info.first_version) return RemovalResult{0, info.version};
        const std::uint64_t removed = remove_events(*c, stream, before);
        StreamInfo next = info;
        next.first_version = before;
        save_info(*c, stream, next, removed);
        tx.commit();
        return RemovalResult{removed, info.version};
    }

    /// Applies `rules` to every active stream (`lifecycle_event_store`): in one transaction under the lock the
    /// appends take (appends wait while it runs), removes from each stream the prefix the rule removing most
    /// asks for, with the events' tags. Only when called. Throws `InvalidArgumentError("rules")` for a
    /// negative `max_age`, `PostgresError`.
    RetentionReport apply_retention(std::span<const RetentionRule> rules,
                                    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
        namespace pg = detail::postgres;
        detail::validate_retention_rules(rules);
        RetentionReport report;
        if (rules.empty()) return report;
        auto c = pool_.acquire();
        Transaction tx(*c);
        const pg::Result streams =
            c->exec("SELECT stream_id, min(version), max(version) FROM events GROUP BY stream_id",
                    "list the streams for retention");
        for (int row = 0; row < streams.rows(); ++row) {
            const std::string stream(streams.text(row, 0));
            const auto first = static_cast<stream_version_t>(streams.int64(row, 1));
            const auto last = static_cast<stream_version_t>(streams.int64(row, 2));
            stream_version_t before = 0;
            for (const RetentionRule& rule : rules) {
                if (!detail::retention_matches(rule, stream)) continue;
                if (rule.max_count) before = std::max(before, detail::retention_count_bound(last, *rule.max_count));
                if (rule.max_age) before = std::max(before, first_kept_by_age(*c, stream, last, now - *rule.max_age));
            }
            if (before <= first) continue;
            StreamInfo info = load_info(*c, stream);
            const std::uint64_t removed = remove_events(*c, stream, before);
            info.first_version = before;
            save_info(*c, stream, info, removed);
            ++report.streams_truncated;
            report.events_removed += removed;
        }
        tx.commit();
        return report;
    }

    /// The life of `stream` (`StreamInfo`): the default for a stream never written or a malformed id.
    [[nodiscard]] StreamInfo stream_info(std::string_view stream) const {
        if (!detail::is_valid_stream_id(stream)) return StreamInfo{};
        auto c = pool_.acquire();
        return load_info(*c, stream);
    }

    /// The events removed by `delete_stream`, `truncate_stream` and `apply_retention` in total, as recorded in
    /// `orchestrix_streams`: what `verify` tells removals from lost rows by.
    [[nodiscard]] std::uint64_t removed_count() const {
        auto c = pool_.acquire();
        return static_cast<std::uint64_t>(
            c->exec("SELECT coalesce(sum(removed), 0)::bigint FROM orchestrix_streams", "count the removed events")
                .int64(0, 0));
    }

    /// Physical erasure (docs/lifecycle.md): rewrites the events table, its TOAST table and its indexes, and
    /// the tags and stream tables (`VACUUM FULL`), so that the bytes of removed events leave their pages. A
    /// deletion only marks rows dead and a plain `VACUUM` (autovacuum) only prunes them: their bytes may stay
    /// in the table's files until the space is reused. Takes an ACCESS EXCLUSIVE lock on each table in turn
    /// (every read and append waits while it is rewritten), needs free disk space for a copy of the table, and
    /// keeps rows a transaction still open when it starts may see. The write-ahead log, replicas, backups and
    /// the file system's free blocks are not erased. Needs the tables' owner. Throws `PostgresError`.
    void compact() {
        auto c = pool_.acquire();
        // One statement per exec: VACUUM cannot run inside a transaction block (nor a multi-statement string).
        for (const char* table : {"events", "event_tags", "orchestrix_streams"}) {
            (void)c->exec(std::string("VACUUM (FULL) ") + table, "compact the table");
        }
    }

    /// The global position of the last committed event: 0 if the store is empty.
    [[nodiscard]] position_t head_position() const {
        auto c = pool_.acquire();
        return static_cast<position_t>(c->exec(detail::postgres::head_sql, "read the head").int64(0, 0));
    }

    /// A listener on its own connection that wakes when appends commit.
    [[nodiscard]] PostgresListener listen() const { return PostgresListener(pool_.url()); }

    /// The codec events go through.
    [[nodiscard]] const Codec& codec() const noexcept { return codec_; }

private:
    // A transaction on a leased connection, rolled back unless committed; it takes the lock appends take.
    class Transaction {
    public:
        explicit Transaction(detail::postgres::Connection& c) : c_(c) {
            (void)c_.exec("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE", "begin a lifecycle operation");
        }
        Transaction(const Transaction&) = delete;
        Transaction& operator=(const Transaction&) = delete;
        ~Transaction() {
            if (done_) return;
            try {
                (void)c_.exec("ROLLBACK", "roll back a lifecycle operation");
            } catch (...) { // the pool drops a connection left in a transaction
            }
        }
        void commit() {
            (void)c_.exec("COMMIT", "commit a lifecycle operation");
            done_ = true;
        }

    private:
        detail::postgres::Connection& c_;
        bool done_ = false;
    };

    // The stream's life in one statement (one snapshot): its stored events' first and last versions and its
    // row in orchestrix_streams.
    static StreamInfo load_info(detail::postgres::Connection& c, std::string_view stream) {
        return detail::postgres::stream_info(detail::postgres::run(c, detail::postgres::stream_info_statement(stream)));
    }

    // Records `info` as the stream's life, adding `removed` to its count of removed events.
    static void save_info(detail::postgres::Connection& c, std::string_view stream, const StreamInfo& info,
                          std::uint64_t removed) {
        namespace pg = detail::postgres;
        pg::Params params;
        params.add_text(stream).add_int8(pg::clamp(info.version)).add_int8(pg::clamp(info.start_version));
        params.add_int8(pg::clamp(info.first_version));
        params.add_int4(info.status == StreamStatus::tombstoned ? 2 : info.status == StreamStatus::deleted ? 1 : 0);
        params.add_int4(info.recreation == Recreation::on_no_stream ? 1 : 0);
        params.add_int8(pg::clamp(removed));
        c.prepare("orchestrix_save_stream_info",
                  "INSERT INTO orchestrix_streams AS s (stream_id, version, start_version, first_version, status, "
                  "recreation, removed) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                  "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
                  "start_version = excluded.start_version, first_version = excluded.first_version, "
                  "status = excluded.status, recreation = excluded.recreation, removed = s.removed + excluded.removed",
                  {pg::text_oid, pg::int8_oid, pg::int8_oid, pg::int8_oid, pg::int4_oid, pg::int4_oid, pg::int8_oid});
        (void)c.run("orchestrix_save_stream_info", params);
    }

    // Deletes the stream's events (those below version `before`, if given) and their tags; returns how many.
    static std::uint64_t remove_events(detail::postgres::Connection& c, std::string_view stream,
                                       std::optional<stream_version_t> before) {
        namespace pg = detail::postgres;
        pg::Params params;
        // Versions up to `before - 1` (`before` is at least 2 here), or every version.
        params.add_text(stream).add_int8(before ? pg::clamp(*before - 1) : std::numeric_limits<std::int64_t>::max());
        // The head is kept first: the events removed may be the last ones, and their positions are never reused.
        c.prepare("orchestrix_keep_head",
                  "INSERT INTO orchestrix_head AS h (one, position) "
                  "SELECT true, max(e.position) FROM events e HAVING max(e.position) IS NOT NULL "
                  "ON CONFLICT (one) DO UPDATE SET position = greatest(h.position, excluded.position)",
                  {});
        (void)c.run("orchestrix_keep_head", pg::Params{});
        c.prepare("orchestrix_remove_tags",
                  "DELETE FROM event_tags t USING events e "
                  "WHERE e.stream_id = $1 AND e.version <= $2 AND t.position = e.position",
                  {pg::text_oid, pg::int8_oid});
        (void)c.run("orchestrix_remove_tags", params);
        c.prepare("orchestrix_remove_events",
                  "WITH gone AS (DELETE FROM events WHERE stream_id = $1 AND version <= $2 RETURNING 1) "
                  "SELECT count(*) FROM gone",
                  {pg::text_oid, pg::int8_oid});
        const std::int64_t removed = c.run("orchestrix_remove_events", params).int64(0, 0);
        return static_cast<std::uint64_t>(removed);
    }

    // The version of the stream's first event recorded at or after `cutoff` (`last + 1` if none): what a
    // retention rule's `max_age` keeps.
    static stream_version_t first_kept_by_age(detail::postgres::Connection& c, const std::string& stream,
                                              stream_version_t last, std::chrono::system_clock::time_point cutoff) {
        namespace pg = detail::postgres;
        pg::Params params;
        params.add_text(stream).add_int8(durable::to_micros(cutoff));
        c.prepare("orchestrix_first_kept_by_age",
                  "SELECT min(version) FROM events WHERE stream_id = $1 "
                  "AND recorded_at >= 'epoch'::timestamptz + $2 * interval '1 microsecond'",
                  {pg::text_oid, pg::int8_oid});
        const pg::Result r = c.run("orchestrix_first_kept_by_age", params);
        return r.is_null(0, 0) ? last + 1 : static_cast<stream_version_t>(r.int64(0, 0));
    }

    AppendResult append_batch(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected,
                              const AppendCondition* condition) {
        const durable::PreparedBatch batch = durable::prepare_append<Events>(codec_, stream, events, condition);
        std::vector<Uuid> event_ids;
        event_ids.reserve(events.size());
        for (const auto& e : events) event_ids.push_back(e.metadata.event_id);
        return write_batch(stream, std::span<const Uuid>(event_ids), batch, expected, condition,
                           [&](std::span<const std::optional<durable::StoredEventRow>> stored, stream_version_t current,
                               auto&& start_of_life) {
                               return durable::check_idempotent_retry<Events>(codec_, stream, events, batch.encoded,
                                                                              stored, expected, current, start_of_life);
                           });
    }

    // The insert of a checked batch, shared by `append_batch` and `append_raw` (see `DurableStoreBase`).
    template <class Retry>
    AppendResult write_batch(std::string_view stream, std::span<const Uuid> event_ids,
                             const durable::PreparedBatch& batch, ExpectedVersion expected,
                             const AppendCondition* condition, Retry&& retry) {
        namespace pg = detail::postgres;
        if (event_ids.empty()) return AppendResult{stream_version(stream), 0, 0, false};
        const pg::Statement append = pg::append_statement<Events>(stream, event_ids, batch, expected, condition);
        auto c = pool_.acquire();
        const pg::Result r = pg::run(*c, append);
        if (auto written = pg::append_outcome(r, stream, event_ids.size(), expected, condition)) return *written;
        const auto start_of_life = [&] { return load_info(*c, stream).start_version; };
        const auto stored = pg::stored_rows(pg::run(*c, pg::stored_rows_statement(event_ids)), event_ids);
        return pg::retry_outcome(retry(std::span<const std::optional<durable::StoredEventRow>>(stored),
                                       pg::append_current(r), start_of_life),
                                 stream);
    }

    template <class Visitor>
    durable::QueryRowsRead visit_query_rows(const Query& query, position_t after, std::uint64_t max_count,
                                            Visitor& visitor) const {
        namespace pg = detail::postgres;
        const durable::QuerySql sql = durable::query_rows_sql(query, durable::SqlDialect::postgres,
                                                              std::string(pg::row_columns) + ", $4::bigint");
        pg::Params params;
        params.add_text(sql.sql).add_int8(pg::clamp(after)).add_array(pg::text_oid, sql.values);
        params.add_int8(pg::clamp(max_count));
        auto c = pool_.acquire();
        // Run by `orchestrix_read_query`: one statement (one snapshot for the rows and the head), planned at
        // each call for its values (a query's shape varies), index scans only.
        c->prepare("orchestrix_read_query", "SELECT * FROM orchestrix_read_query($1, $2, $3, $4)",
                   {pg::text_oid, pg::int8_oid, pg::text_array_oid, pg::int8_oid});
        const pg::Result r = c->run("orchestrix_read_query", params);
        durable::QueryRowsRead read;
        if (r.rows() == 0) return read;
        read.head = static_cast<position_t>(r.int64(0, 9));
        if (r.is_null(0, 0)) return read; // no event matched
        read.count = visit_rows(r, visitor);
        read.last = static_cast<position_t>(r.int64(r.rows() - 1, 0));
        return read;
    }

    template <class Visitor>
    std::uint64_t visit_stream_rows(std::string_view stream, stream_version_t from_version, std::uint64_t max_count,
                                    Visitor& visitor) const {
        namespace pg = detail::postgres;
        auto c = pool_.acquire();
        return visit_rows(pg::run(*c, pg::read_stream_statement(stream, from_version, max_count)), visitor);
    }

    template <class Visitor>
    std::uint64_t visit_all_rows(position_t from_position, std::uint64_t max_count, Visitor& visitor) const {
        namespace pg = detail::postgres;
        auto c = pool_.acquire();
        return visit_rows(pg::run(*c, pg::read_all_statement(from_position, max_count)), visitor);
    }

    template <class Visitor>
    std::uint64_t visit_rows(const detail::postgres::Result& r, Visitor& visitor) const {
        const int rows = r.rows();
        for (int row = 0; row < rows; ++row) {
            bool schema_ok = true;
            const RawRecordedEventView raw = detail::postgres::row_view(r, row, schema_ok);
            this->visit_row(visitor, raw, schema_ok ? nullptr : &detail::postgres::bad_schema_version);
        }
        return static_cast<std::uint64_t>(rows);
    }

    Codec codec_;
    mutable detail::postgres::Pool pool_;
};

/// Snapshots in the PostgreSQL database's `snapshots` table: a `snapshot_store`, thread-safe (a pool of
/// connections like `PostgresEventStore`'s).
class PostgresSnapshotStore {
public:
    /// Connects to `url` and creates the schema if asked (the same tables as `PostgresEventStore`).
    explicit PostgresSnapshotStore(std::string url, PostgresOptions options = {})
        : pool_(std::move(url), options.pool_size) {
        auto c = pool_.acquire();
        if (options.create_schema) (void)c->exec(detail::postgres::schema_sql, "create the orchestrix schema");
    }

    /// Keeps `snapshot` as its aggregate's latest, unless the stored one has the same schema version and
    /// a higher version. Throws `InvalidArgumentError` for a malformed aggregate id or a version of 0.
    void save(const Snapshot& snapshot) {
        namespace pg = detail::postgres;
        detail::validate_snapshot(snapshot);
        if (!detail::is_valid_utf8(snapshot.state) || snapshot.state.find('\0') != std::string::npos ||
            !detail::is_valid_utf8(snapshot.aggregate_type) ||
            snapshot.aggregate_type.find('\0') != std::string::npos) {
            throw InvalidArgumentError("snapshot", "snapshot of '" + snapshot.aggregate_id +
                                                       "': its type and state must be UTF-8 text without NUL");
        }
        pg::Params params;
        params.add_text(snapshot.aggregate_id).add_text(snapshot.aggregate_type);
        params.add_int8(static_cast<std::int64_t>(snapshot.version))
            .add_int4(static_cast<std::int32_t>(snapshot.schema_version));
        params.add_text(snapshot.state).add_int8(durable::to_micros(snapshot.taken_at));
        auto c = pool_.acquire();
        c->prepare(
            "orchestrix_save_snapshot",
            "INSERT INTO snapshots AS s (aggregate_id, aggregate_type, version, schema_version, state, taken_at) "
            "VALUES ($1, $2, $3, $4, $5, 'epoch'::timestamptz + $6 * interval '1 microsecond') "
            "ON CONFLICT (aggregate_id) DO UPDATE SET aggregate_type = excluded.aggregate_type, "
            "version = excluded.version, schema_version = excluded.schema_version, state = excluded.state, "
            "taken_at = excluded.taken_at "
            "WHERE NOT (s.schema_version = excluded.schema_version AND s.version > excluded.version)",
            {pg::text_oid, pg::text_oid, pg::int8_oid, pg::int4_oid, pg::text_oid, pg::int8_oid});
        (void)c->run("orchestrix_save_snapshot", params);
    }

    /// The latest snapshot of `aggregate_id`, or nothing.
    [[nodiscard]] std::optional<Snapshot> latest(std::string_view aggregate_id) const {
        namespace pg = detail::postgres;
        pg::Params params;
        params.add_text(aggregate_id);
        auto c = pool_.acquire();
        c->prepare("orchestrix_latest_snapshot",
                   "SELECT aggregate_type, version, schema_version, state, "
                   "(extract(epoch FROM taken_at) * 1000000)::bigint FROM snapshots WHERE aggregate_id = $1",
                   {pg::text_oid});
        const pg::Result r = c->run("orchestrix_latest_snapshot", params);
        if (r.rows() == 0) return std::nullopt;
        return Snapshot{std::string(aggregate_id),
                        std::string(r.text(0, 0)),
                        static_cast<stream_version_t>(r.int64(0, 1)),
                        static_cast<std::uint32_t>(r.int64(0, 2)),
                        std::string(r.text(0, 3)),
                        durable::from_micros(r.int64(0, 4))};
    }

private:
    mutable detail::postgres::Pool pool_;
};

} // namespace orchestrix

/// Compiles `PostgresEventStore<Events>` once instead of in every file that uses it (docs/stores.md, "Compiling
/// a store once"): put `ORCHESTRIX_EXTERN_POSTGRES_EVENT_STORE(Events);` outside every namespace in a header of your
/// own, after the event types, and `ORCHESTRIX_INSTANTIATE_POSTGRES_EVENT_STORE(Events);` in one source file that
/// includes that header. The files that include the header then use the store without compiling its code
/// (with `ORCHESTRIX_EXTERN_JSON_CODEC` / `ORCHESTRIX_INSTANTIATE_JSON_CODEC` for the codec beside it).
#define ORCHESTRIX_EXTERN_POSTGRES_EVENT_STORE(...)                                                                    \
    ORCHESTRIX_DETAIL_DURABLE_STORE_INSTANCE(extern, PostgresEventStore, __VA_ARGS__)
/// See `ORCHESTRIX_EXTERN_POSTGRES_EVENT_STORE`: in exactly one source file of the program.
#define ORCHESTRIX_INSTANTIATE_POSTGRES_EVENT_STORE(...)                                                               \
    ORCHESTRIX_DETAIL_DURABLE_STORE_INSTANCE(, PostgresEventStore, __VA_ARGS__)
