// PostgreSQL: the store against hand-written libpq doing the same work, in one program that starts its own
// throwaway cluster (tests/support/postgres_cluster.hpp: initdb into a temporary directory, 127.0.0.1 at a
// free port, fsync off, as the tests run it) and stops it at the end (pg_ctl stop on its data directory, which
// signals the postmaster's pid).
//
// append:   100 streams x 100 events of the W1 event types, appended round-robin, one append per command
//           with an exact expected version, 1 or 10 events per append, into a fresh schema for every
//           iteration. The events are plain events raised into envelopes (ids from Uuid::generate(), as an
//           aggregate gets them), made before the timed loop; both sides append the same envelopes.
//           Library: PostgresEventStore::append (one round trip: orchestrix_append). Baseline: libpq by
//           hand on the same table (the store's own schema text), one round trip per command in pipeline
//           mode: BEGIN; LOCK TABLE events IN EXCLUSIVE MODE; one prepared INSERT ... SELECT FROM unnest(...)
//           that reads the head and the stream's version and inserts only if the version is the expected
//           one, and (notify:1) notifies the last position on the store's channel as the store does;
//           COMMIT. Payload and metadata are encoded with nlohmann::json, the ids sent in binary. It has no
//           idempotency check of its own (a stored id fails on the UNIQUE index). library-unverified is the
//           store with its codec's read-back check off (EncodeOptions::verify_decodable = false), to show
//           what that check costs. The counter server_us is the CPU time of the server process per event
//           (/proc/<pid>/schedstat).
// replay:   the 10,000 events of the append workload read back: each stream with read_stream
//           (replay-stream), and all of them in global order with read_all in pages of 1,000 (replay-all). Baseline:
//           the same SELECT (same columns, text results), nlohmann::json::parse of payload and metadata, the event
//           decoded by type, the ids taken from the metadata, into a vector of records.
// scaling:  the cost per event of appending one event at a time (1,000 appends round-robin over 100 streams)
//           at table sizes from empty to $ORCHESTRIX_BENCH_PG_MAX_EVENTS (default 100,000; 1,000,000 takes
//           about 2 minutes more to fill). Both sides first append on the empty table, so that their
//           sessions plan their statements there, then the table is filled to the size with one INSERT per
//           100,000 rows and never analysed (autovacuum off for it): a plan kept from the empty table is
//           what makes an append cost grow with the table. The baseline here is the one with NOTIFY.
// dcb:      decisions across streams on the workload of dcb_workload.hpp (10,000 events, written once by the
//           store and copied into a fresh, analysed schema for each iteration). dcb-decide: 1,000 decisions per
//           iteration, each on its own course and student, the library on the even courses and the baseline on
//           the odd ones, in turns of 10. Library: DecisionRepository::execute (one round trip for the read by
//           query, one for the conditional append: orchestrix_append_tagged, which checks the condition after
//           LOCK TABLE events IN EXCLUSIVE MODE). Baseline: libpq by hand on one connection in pipeline mode
//           (RawDcbDecider): one prepared SELECT of the state's rows and the head position, decoded with
//           nlohmann::json; then BEGIN; the same LOCK TABLE; one prepared statement that checks the condition
//           (EXISTS of a matching event after the read's head), inserts the event and its tags if nothing
//           matched and notifies its position as the store does; COMMIT (one round trip). dcb-read: the
//           decision's read alone, 1,000 per iteration; the baseline reads every column and decodes payload and
//           metadata with nlohmann::json.

#include "dcb_workload.hpp"
#include "workload.hpp"
#include "workload_json.hpp"

#include "support/postgres_cluster.hpp"

#include <orchestrix/postgres/event_store.hpp>

#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace bench;
using Store = orchestrix::PostgresEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;

constexpr int pg_streams = 100;
constexpr int pg_events_per_stream = 100;
constexpr int scaling_rounds = 10; // appends per stream and iteration of a scaling benchmark

// --- the cluster and fresh schemas -------------------------------------------------------------------------

std::unique_ptr<test_support::PostgresCluster> cluster; // started on first use, stopped by main
std::string stop_command;                               // what stops it, for a signal handler

// Interrupted (Ctrl-C, kill): stop the cluster (pg_ctl stop on its data directory signals the postmaster's
// pid) and remove its directory, by becoming a shell that does it (exec is async-signal-safe).
extern "C" void stop_cluster_and_exit(int) {
    if (!stop_command.empty()) ::execl("/bin/sh", "sh", "-c", stop_command.c_str(), static_cast<char*>(nullptr));
    ::_exit(1);
}

const std::string& server_url() {
    if (!cluster) {
        cluster = std::make_unique<test_support::PostgresCluster>();
        stop_command = cluster->stop_command() + " > /dev/null 2>&1; exit 1";
        for (const int signal : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal, stop_cluster_and_exit);
    }
    return cluster->url();
}

// A connection of the benchmark's own (the baselines, filling tables, creating schemas).
class Connection {
public:
    explicit Connection(const std::string& url) : c_(PQconnectdb(url.c_str())) {
        if (PQstatus(c_) != CONNECTION_OK) throw std::runtime_error(std::string("connect: ") + PQerrorMessage(c_));
        PQsetNoticeProcessor(
            c_, [](void*, const char*) {}, nullptr);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() { PQfinish(c_); }
    [[nodiscard]] PGconn* get() const noexcept { return c_; }

    void exec(const std::string& sql) const {
        PGresult* r = PQexec(c_, sql.c_str());
        const auto status = PQresultStatus(r);
        const std::string error = PQresultErrorMessage(r);
        PQclear(r);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + error);
    }
    void prepare(const char* name, const char* sql) const {
        PGresult* r = PQprepare(c_, name, sql, 0, nullptr);
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        const std::string error = PQresultErrorMessage(r);
        PQclear(r);
        if (!ok) throw std::runtime_error(std::string(sql) + ": " + error);
    }

private:
    PGconn* c_;
};

// A schema of its own on the cluster, dropped at the end.
class Schema {
public:
    Schema() : name_("bench_" + std::to_string(counter_++)) {
        Connection(server_url()).exec("CREATE SCHEMA " + name_);
        url_ = server_url() + "?options=-csearch_path%3D" + name_;
    }
    Schema(const Schema&) = delete;
    Schema& operator=(const Schema&) = delete;
    ~Schema() {
        try {
            Connection(server_url()).exec("DROP SCHEMA " + name_ + " CASCADE");
        } catch (const std::exception&) {
        }
    }
    [[nodiscard]] const std::string& url() const noexcept { return url_; }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
    static inline int counter_ = 0;
    std::string name_;
    std::string url_;
};

// CPU time the server process `pid` has had so far, in nanoseconds (/proc/<pid>/schedstat): what the
// benchmarks report as the server's share of their time (counter server_us, per event).
std::uint64_t server_cpu_ns(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
    std::uint64_t ns = 0;
    in >> ns;
    return ns;
}

// The server process of the session named `application` (a store's only connection).
int backend_pid(const std::string& url, const std::string& application) {
    const Connection c(url);
    const std::string sql = "SELECT pid FROM pg_stat_activity WHERE application_name = '" + application + "'";
    PGresult* r = PQexec(c.get(), sql.c_str());
    const int pid = PQntuples(r) == 1 ? std::atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    if (pid == 0) throw std::runtime_error("no session named " + application);
    return pid;
}

// A store on `url` with a single connection, and the server process of that connection. `verify`: the codec's
// default check that every event it encodes decodes back to itself (EncodeOptions::verify_decodable).
struct MeasuredStore {
    std::string application = "orchestrix_bench_" + std::to_string(counter++);
    Store store;
    int pid;
    MeasuredStore(const std::string& url, bool verify)
        : store(url + "&application_name=" + application, orchestrix::PostgresOptions{1, true},
                orchestrix::JsonCodec<Event>({}, encode_options(verify))),
          pid(backend_pid(url, application)) {}
    static orchestrix::EncodeOptions encode_options(bool verify) {
        orchestrix::EncodeOptions options;
        options.verify_decodable = verify;
        return options;
    }
    static inline int counter = 0;
};

// --- inputs ----------------------------------------------------------------------------------------------------

using bench::Batches;

// The append workload's commands: plain events raised into envelopes, which gives each its id.
Batches make_batches(int per_append) { return bench::make_batches(pg_streams, per_append, pg_events_per_stream); }

// --- baseline: libpq by hand -----------------------------------------------------------------------------------

std::string big_endian(std::uint32_t v) {
    std::string out(4, '\0');
    for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFFU);
    return out;
}

// A one-dimensional array in PostgreSQL's binary format.
std::string binary_array(Oid element_type, const std::vector<std::string>& elements) {
    std::string out = big_endian(1) + big_endian(0) + big_endian(static_cast<std::uint32_t>(element_type)) +
                      big_endian(static_cast<std::uint32_t>(elements.size())) + big_endian(1);
    for (const auto& e : elements) out += big_endian(static_cast<std::uint32_t>(e.size())) + e;
    return out;
}

constexpr Oid uuid_oid = 2950;
constexpr Oid text_oid = 25;

// What an application writes by hand to append with the same guarantees of order: see the file comment.
class RawAppender {
public:
    // `notify`: also notify the last position on the store's channel, as the store does.
    RawAppender(const std::string& url, bool notify) : connection_(url), notify_(notify) {
        connection_.exec(orchestrix::detail::postgres::schema_sql);
        connection_.prepare("begin", "BEGIN");
        connection_.prepare("lock", "LOCK TABLE events IN EXCLUSIVE MODE");
        const std::string insert =
            "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, metadata, "
            "recorded_at) "
            "SELECT h.p + u.n, $1, s.v + u.n, u.id, u.type, 1, u.payload::json, u.meta::json, now() "
            "FROM (SELECT coalesce(max(position), 0) AS p FROM events) AS h, "
            "(SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = $1) AS s, "
            "unnest($3::uuid[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS u(id, type, payload, meta, n) "
            "WHERE s.v = $2::bigint";
        connection_.prepare("insert", notify_ ? ("WITH written AS (" + insert +
                                                 " RETURNING position) SELECT pg_notify('orchestrix_events', "
                                                 "max(position)::text) FROM written HAVING count(*) > 0")
                                                    .c_str()
                                              : insert.c_str());
        connection_.prepare("commit", "COMMIT");
        if (PQenterPipelineMode(connection_.get()) != 1) throw std::runtime_error("pipeline mode");
    }

    [[nodiscard]] int pid() const noexcept { return PQbackendPID(connection_.get()); }

    void append(const std::string& stream, const std::vector<Envelope>& events, std::int64_t expected) {
        std::vector<std::string> ids, types, payloads, metadata;
        for (const Envelope& e : events) {
            const auto& bytes = e.metadata.event_id.bytes();
            ids.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            types.emplace_back(orchestrix::event_name_of(e.event));
            payloads.push_back(std::visit([](const auto& v) { return nlohmann::json(v).dump(); }, e.event));
            metadata.push_back(nlohmann::json{{"event_id", e.metadata.event_id.to_string()},
                                              {"correlation_id", e.metadata.correlation_id},
                                              {"causation_id", e.metadata.causation_id}}
                                   .dump());
        }
        const std::string version = std::to_string(expected);
        const std::string params[] = {stream,
                                      version,
                                      binary_array(uuid_oid, ids),
                                      binary_array(text_oid, types),
                                      binary_array(text_oid, payloads),
                                      binary_array(text_oid, metadata)};
        const char* values[6];
        int lengths[6];
        for (int i = 0; i < 6; ++i) {
            values[i] = params[i].data();
            lengths[i] = static_cast<int>(params[i].size());
        }
        const int formats[6] = {0, 0, 1, 1, 1, 1};
        PGconn* c = connection_.get();
        send(PQsendQueryPrepared(c, "begin", 0, nullptr, nullptr, nullptr, 0));
        send(PQsendQueryPrepared(c, "lock", 0, nullptr, nullptr, nullptr, 0));
        send(PQsendQueryPrepared(c, "insert", 6, values, lengths, formats, 0));
        send(PQsendQueryPrepared(c, "commit", 0, nullptr, nullptr, nullptr, 0));
        send(PQpipelineSync(c));
        bool inserted = false;
        for (int q = 0; q < 4; ++q) {
            PGresult* r = PQgetResult(c);
            const auto status = PQresultStatus(r);
            if (q == 2) {
                inserted = notify_ ? PQntuples(r) == 1 : std::string(PQcmdTuples(r)) == std::to_string(events.size());
            }
            const std::string error = PQresultErrorMessage(r);
            PQclear(r);
            if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw std::runtime_error("append: " + error);
            if (PQgetResult(c) != nullptr) throw std::runtime_error("append: unexpected result");
        }
        PGresult* sync = PQgetResult(c);
        const bool synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
        PQclear(sync);
        if (!synced) throw std::runtime_error("append: no pipeline sync");
        if (!inserted) throw std::runtime_error("append: version conflict");
    }

private:
    static void send(int ok) {
        if (ok != 1) throw std::runtime_error("sending to PostgreSQL failed");
    }

    Connection connection_;
    bool notify_;
};

// --- paired measurement -----------------------------------------------------------------------------------------

// The library and its baselines are measured together, in turns of a few milliseconds, so that all of them
// see the same load on the machine (on a shared virtual machine, separate runs differ by tens of percent).
// Each side is timed on its own, with the CPU time its server process had in the meantime.
struct Side {
    std::string name;
    std::function<void(std::size_t)> run; // one turn
    int pid = 0;                          // its server process
    double seconds = 0;
    std::uint64_t server_ns = 0;
    std::uint64_t client_ns = 0;
};

// CPU time of the calling thread so far, in nanoseconds.
std::uint64_t client_cpu_ns() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(t.tv_nsec);
}

// Runs `turns` turns of every side, starting each turn with the next side.
void take_turns(std::vector<Side>& sides, std::size_t turns) {
    for (std::size_t t = 0; t < turns; ++t) {
        for (std::size_t k = 0; k < sides.size(); ++k) {
            Side& side = sides[(t + k) % sides.size()];
            const std::uint64_t cpu = server_cpu_ns(side.pid);
            const std::uint64_t client = client_cpu_ns();
            const auto start = std::chrono::steady_clock::now();
            side.run(t);
            side.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            side.client_ns += client_cpu_ns() - client;
            side.server_ns += server_cpu_ns(side.pid) - cpu;
        }
    }
}

// The counters of every side, per event: <name>_us (time), <name>_client_us and <name>_server_us (CPU time of
// the benchmark's thread and of the server process).
void report(benchmark::State& state, const std::vector<Side>& sides, double events) {
    for (const Side& side : sides) {
        state.counters[side.name + "_us"] = side.seconds * 1e6 / events;
        state.counters[side.name + "_client_us"] = static_cast<double>(side.client_ns) / 1e3 / events;
        state.counters[side.name + "_server_us"] = static_cast<double>(side.server_ns) / 1e3 / events;
    }
}

// --- append ----------------------------------------------------------------------------------------------------

// Sides: library (the store as it comes), library_unverified (its codec's read-back check off), baseline
// (libpq by hand with NOTIFY), baseline_no_notify. Each appends the same batches to a fresh schema of its own;
// a turn is one round (one append per stream).
void append(benchmark::State& state) {
    try {
        const Batches input = make_batches(static_cast<int>(state.range(0)));
        std::vector<Side> totals{
            {"library", {}}, {"library_unverified", {}}, {"baseline", {}}, {"baseline_no_notify", {}}};
        for (auto _ : state) {
            state.PauseTiming();
            {
                Schema schemas[4];
                MeasuredStore library(schemas[0].url(), true);
                MeasuredStore unverified(schemas[1].url(), false);
                RawAppender baseline(schemas[2].url(), true);
                RawAppender plain(schemas[3].url(), false);
                const auto store_turn = [&](Store& store) {
                    return [&](std::size_t r) {
                        const auto per_append = input.rounds[r][0].size();
                        for (std::size_t s = 0; s < input.streams.size(); ++s) {
                            benchmark::DoNotOptimize(store.append(input.streams[s], input.rounds[r][s],
                                                                  orchestrix::ExpectedVersion::exact(r * per_append)));
                        }
                    };
                };
                const auto raw_turn = [&](RawAppender& raw) {
                    return [&](std::size_t r) {
                        const auto per_append = static_cast<std::int64_t>(input.rounds[r][0].size());
                        for (std::size_t s = 0; s < input.streams.size(); ++s) {
                            raw.append(input.streams[s], input.rounds[r][s], static_cast<std::int64_t>(r) * per_append);
                        }
                    };
                };
                std::vector<Side> sides{{"library", store_turn(library.store), library.pid},
                                        {"library_unverified", store_turn(unverified.store), unverified.pid},
                                        {"baseline", raw_turn(baseline), baseline.pid()},
                                        {"baseline_no_notify", raw_turn(plain), plain.pid()}};
                state.ResumeTiming();
                take_turns(sides, input.rounds.size());
                state.PauseTiming();
                for (std::size_t k = 0; k < sides.size(); ++k) {
                    totals[k].seconds += sides[k].seconds;
                    totals[k].client_ns += sides[k].client_ns;
                    totals[k].server_ns += sides[k].server_ns;
                }
            }
            state.ResumeTiming();
        }
        report(state, totals, static_cast<double>(state.iterations() * pg_streams * pg_events_per_stream));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// --- replay ----------------------------------------------------------------------------------------------------

// The append workload's events, written once for the replay benchmarks.
struct ReplayDatabase {
    Schema schema;
    Batches input = make_batches(10);
    ReplayDatabase() {
        Store store(schema.url());
        for (std::size_t r = 0; r < input.rounds.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                (void)store.append(input.streams[s], input.rounds[r][s], orchestrix::ExpectedVersion::exact(r * 10));
            }
        }
    }
};

std::unique_ptr<ReplayDatabase> replay;

ReplayDatabase& replay_database() {
    if (!replay) replay = std::make_unique<ReplayDatabase>();
    return *replay;
}

// What the baseline reads an event into: the same fields as a RecordedEvent.
struct RawRecord {
    std::string stream_id;
    std::uint64_t version = 0;
    std::uint64_t position = 0;
    Event event;
    std::string event_id;
    std::string correlation_id;
    std::string causation_id;
    std::int64_t recorded_at = 0;
};

Event decode(std::string_view type, const nlohmann::json& payload) {
    if (type == Opened::type_name) return payload.get<Opened>();
    if (type == Deposited::type_name) return payload.get<Deposited>();
    if (type == Withdrawn::type_name) return payload.get<Withdrawn>();
    throw std::runtime_error("unknown event type");
}

std::int64_t number(const PGresult* r, int row, int column) {
    const char* text = PQgetvalue(r, row, column);
    std::int64_t value = 0;
    std::from_chars(text, text + PQgetlength(r, row, column), value);
    return value;
}

constexpr const char* raw_columns = "SELECT position, stream_id, version, event_id::text, type, schema_version, "
                                    "payload::text, metadata::text, "
                                    "(extract(epoch FROM recorded_at) * 1000000)::bigint FROM events ";

std::vector<RawRecord> raw_read(const Connection& c, const char* statement, int count, const char* const* values) {
    PGresult* r = PQexecPrepared(c.get(), statement, count, values, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const std::string error = PQresultErrorMessage(r);
        PQclear(r);
        throw std::runtime_error("read: " + error);
    }
    std::vector<RawRecord> out;
    const int rows = PQntuples(r);
    out.reserve(static_cast<std::size_t>(rows));
    for (int row = 0; row < rows; ++row) {
        RawRecord e;
        e.position = static_cast<std::uint64_t>(number(r, row, 0));
        e.stream_id.assign(PQgetvalue(r, row, 1), static_cast<std::size_t>(PQgetlength(r, row, 1)));
        e.version = static_cast<std::uint64_t>(number(r, row, 2));
        const std::string_view type(PQgetvalue(r, row, 4), static_cast<std::size_t>(PQgetlength(r, row, 4)));
        e.event = decode(type, nlohmann::json::parse(std::string_view(
                                   PQgetvalue(r, row, 6), static_cast<std::size_t>(PQgetlength(r, row, 6)))));
        const auto metadata = nlohmann::json::parse(
            std::string_view(PQgetvalue(r, row, 7), static_cast<std::size_t>(PQgetlength(r, row, 7))));
        e.event_id = metadata.at("event_id").get<std::string>();
        e.correlation_id = metadata.at("correlation_id").get<std::string>();
        e.causation_id = metadata.at("causation_id").get<std::string>();
        e.recorded_at = number(r, row, 8);
        out.push_back(std::move(e));
    }
    PQclear(r);
    return out;
}

// Sides: library and baseline, reading the replay database. `all`: a turn reads a page of 1,000 events in
// global order (read_all(from, 1000)), every event once per iteration; otherwise a turn reads one stream
// (read_stream), every stream once per iteration.
void replay_benchmark(benchmark::State& state, bool all) {
    try {
        const auto& db = replay_database();
        MeasuredStore library(db.schema.url(), true);
        const Connection c(db.schema.url());
        c.prepare("read_stream", (std::string(raw_columns) + "WHERE stream_id = $1 ORDER BY version").c_str());
        c.prepare("read_all", (std::string(raw_columns) + "WHERE position >= $1 ORDER BY position LIMIT $2").c_str());
        constexpr std::size_t page = 1000;
        const std::size_t turns = all ? pg_streams * pg_events_per_stream / page : db.input.streams.size();
        std::vector<Side> sides{{"library",
                                 [&](std::size_t t) {
                                     const auto events = all ? library.store.read_all(t * page + 1, page)
                                                             : library.store.read_stream(db.input.streams[t]);
                                     benchmark::DoNotOptimize(events.data());
                                 },
                                 library.pid},
                                {"baseline",
                                 [&](std::size_t t) {
                                     const std::string from = std::to_string(t * page + 1);
                                     const std::string limit = std::to_string(page);
                                     const char* stream[] = {db.input.streams[t].c_str()};
                                     const char* range[] = {from.c_str(), limit.c_str()};
                                     const auto events = all ? raw_read(c, "read_all", 2, range)
                                                             : raw_read(c, "read_stream", 1, stream);
                                     benchmark::DoNotOptimize(events.data());
                                 },
                                 PQbackendPID(c.get())}};
        for (auto _ : state) take_turns(sides, turns);
        const double per_turn = all ? page : pg_events_per_stream;
        report(state, sides, static_cast<double>(state.iterations()) * static_cast<double>(turns) * per_turn);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// --- scaling ---------------------------------------------------------------------------------------------------

// A table of `size` events that both sides first appended to while it was empty; shared by the library's
// and the baseline's benchmark of that size, which keep appending to it.
struct ScalingTable {
    Schema schema;
    std::unique_ptr<Store> store;
    std::unique_ptr<RawAppender> raw;
    std::vector<std::string> streams;
    std::vector<std::uint64_t> versions;
    int library_pid = 0;

    explicit ScalingTable(std::uint64_t size) {
        for (int s = 0; s < pg_streams; ++s) streams.push_back(account_id(s));
        versions.assign(streams.size(), 0);
        const std::string application = "orchestrix_bench_scaling_" + std::to_string(size);
        store = std::make_unique<Store>(schema.url() + "&application_name=" + application,
                                        orchestrix::PostgresOptions{1, true});
        library_pid = backend_pid(schema.url(), application);
        raw = std::make_unique<RawAppender>(schema.url(), true);
        const Connection c(schema.url());
        c.exec("ALTER TABLE events SET (autovacuum_enabled = false)");
        append_library();
        append_baseline();
        std::uint64_t head = 2 * streams.size();
        for (std::uint64_t done = 0; done < size;) {
            const std::uint64_t chunk = std::min<std::uint64_t>(100'000, size - done);
            // Events spread round-robin over the streams, behind those appended so far (chunk is a multiple of
            // the number of streams).
            c.exec("INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, "
                   "metadata, recorded_at) "
                   "SELECT " +
                   std::to_string(head) + " + g, 'acc-' || lpad(((g - 1) % 100)::text, 6, '0'), " +
                   std::to_string(versions[0]) + " + (g - 1) / 100 + 1, md5('fill' || (" + std::to_string(head) +
                   " + g))::uuid, 'bench.deposited', 1, '{\"account_id\":\"acc-000000\",\"amount\":5}', "
                   "json_build_object('causation_id', '', 'correlation_id', '', 'event_id', md5('fill' || (" +
                   std::to_string(head) + " + g))::uuid), now() FROM generate_series(1, " + std::to_string(chunk) +
                   ") AS g");
            head += chunk;
            done += chunk;
            for (auto& v : versions) v += chunk / streams.size();
        }
    }

    // One event per stream.
    void append_library() {
        for (std::size_t s = 0; s < streams.size(); ++s) {
            const std::vector<Envelope> batch{Envelope(make_event(streams[s], static_cast<int>(versions[s])))};
            (void)store->append(streams[s], batch, orchestrix::ExpectedVersion::exact(versions[s]));
            ++versions[s];
        }
    }
    void append_baseline() {
        for (std::size_t s = 0; s < streams.size(); ++s) {
            const std::vector<Envelope> batch{Envelope(make_event(streams[s], static_cast<int>(versions[s])))};
            raw->append(streams[s], batch, static_cast<std::int64_t>(versions[s]));
            ++versions[s];
        }
    }
};

std::map<std::uint64_t, std::unique_ptr<ScalingTable>> scaling_tables;

ScalingTable& scaling_table(std::uint64_t size) {
    auto& table = scaling_tables[size];
    if (!table) table = std::make_unique<ScalingTable>(size);
    return *table;
}

// Sides: library and baseline (with NOTIFY), appending to the table of that size; a turn is one event per
// stream, 10 turns per iteration.
void scaling(benchmark::State& state) {
    try {
        ScalingTable& table = scaling_table(static_cast<std::uint64_t>(state.range(0)));
        std::vector<Side> sides{{"library", [&](std::size_t) { table.append_library(); }, table.library_pid},
                                {"baseline", [&](std::size_t) { table.append_baseline(); }, table.raw->pid()}};
        for (auto _ : state) take_turns(sides, scaling_rounds);
        report(state, sides, static_cast<double>(state.iterations() * pg_streams * scaling_rounds));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

std::uint64_t max_scaling_size() {
    const char* env = std::getenv("ORCHESTRIX_BENCH_PG_MAX_EVENTS");
    if (env == nullptr || *env == '\0') return 100'000;
    std::uint64_t value = 0;
    const std::string_view text(env);
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        throw std::runtime_error("ORCHESTRIX_BENCH_PG_MAX_EVENTS must be a number of events");
    }
    return value;
}

// --- decisions across streams (DCB) ----------------------------------------------------------------------------

using DcbStore = orchestrix::PostgresEventStore<dcb::Event>;
using DcbEnvelope = orchestrix::EventEnvelope<dcb::Event>;

constexpr std::int64_t dcb_events = 10'000;
constexpr std::size_t dcb_decisions_per_turn = 10;

// The DCB workload's 10,000 events, appended once by the store (one event per append, in the workload's order);
// each decision benchmark copies them into a fresh schema.
struct DcbTemplate {
    Schema schema;
    DcbTemplate() {
        DcbStore store(schema.url(), orchestrix::PostgresOptions{1, true});
        dcb::for_each_prefill_event(dcb_events, [&](const std::string& stream, dcb::Event e) {
            (void)store.append(stream, {DcbEnvelope(std::move(e))}, orchestrix::ExpectedVersion::any());
        });
        Connection(schema.url()).exec("ANALYZE events; ANALYZE event_tags");
    }
};

std::unique_ptr<DcbTemplate> dcb_template;

DcbTemplate& dcb_filled() {
    if (!dcb_template) dcb_template = std::make_unique<DcbTemplate>();
    return *dcb_template;
}

// A fresh schema holding the template's events (the store's own tables, filled by copy, then analysed).
struct DcbSchema {
    Schema schema;
    DcbSchema() {
        const std::string& from = dcb_filled().schema.name();
        { DcbStore creates_tables(schema.url(), orchestrix::PostgresOptions{1, true}); }
        Connection(schema.url())
            .exec("INSERT INTO events SELECT * FROM " + from + ".events; INSERT INTO event_tags SELECT * FROM " + from +
                  ".event_tags; ANALYZE events; ANALYZE event_tags");
    }
};

// A DCB store on `url` with a single connection, and the server process of that connection.
struct MeasuredDcbStore {
    std::string application = "orchestrix_bench_dcb_" + std::to_string(counter++);
    DcbStore store;
    int pid;
    explicit MeasuredDcbStore(const std::string& url)
        : store(url + "&application_name=" + application, orchestrix::PostgresOptions{1, true}),
          pid(backend_pid(url, application)) {}
    static inline int counter = 0;
};

// The decision's query by hand: $1 the course's tag, $2 the student's; `columns` over `e` (events), followed by
// the head position, read in the same statement (one snapshot).
std::string dcb_matching_sql(const std::string& columns) {
    const std::string head = ", (SELECT coalesce(max(position), 0) FROM events) AS head ";
    return "SELECT " + columns + head +
           "FROM event_tags t JOIN events e ON e.position = t.position WHERE t.tag = $1 "
           "AND e.type IN ('course.defined', 'course.capacity_changed', 'course.student_subscribed') "
           "UNION SELECT " +
           columns + head +
           "FROM event_tags t JOIN events e ON e.position = t.position WHERE t.tag = $2 "
           "AND e.type = 'course.student_subscribed' ORDER BY 1";
}

dcb::Event dcb_decode(std::string_view type, const nlohmann::json& payload) {
    if (type == dcb::CourseDefined::type_name) return payload.get<dcb::CourseDefined>();
    if (type == dcb::CourseCapacityChanged::type_name) return payload.get<dcb::CourseCapacityChanged>();
    if (type == dcb::StudentSubscribed::type_name) return payload.get<dcb::StudentSubscribed>();
    throw std::runtime_error("unknown event type");
}

std::string_view text_of(const PGresult* r, int row, int col) {
    return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}

PGresult* run_prepared(const Connection& c, const char* statement, int count, const char* const* values) {
    PGresult* r = PQexecPrepared(c.get(), statement, count, values, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const std::string error = PQresultErrorMessage(r);
        PQclear(r);
        throw std::runtime_error(std::string(statement) + ": " + error);
    }
    return r;
}

// What the baseline reads an event into: the same fields as a RecordedEvent.
struct DcbRecord {
    std::uint64_t position = 0;
    std::string stream_id;
    std::uint64_t version = 0;
    dcb::Event event;
    std::string event_id;
    std::string correlation_id;
    std::string causation_id;
    std::int64_t recorded_at = 0;
};

// What an application writes by hand for the decision with libpq, on one connection in pipeline mode: one round trip
// for the read (the state's rows and the head position in one statement), one for the conditional append in pipeline
// mode: BEGIN; LOCK TABLE events IN EXCLUSIVE MODE (the lock the store's append takes); one prepared statement that
// checks the condition (EXISTS of a matching event after the read's head), reads the head and the stream's version,
// inserts the event and its tags only if nothing matched, and notifies the new position on the store's
// channel as the store does; COMMIT.
class RawDcbDecider {
public:
    explicit RawDcbDecider(const std::string& url) : connection_(url) {
        connection_.prepare("dcb_read", dcb_matching_sql("e.position, e.type, e.payload::text").c_str());
        connection_.prepare("dcb_head", "SELECT coalesce(max(position), 0) FROM events");
        connection_.prepare("begin", "BEGIN");
        connection_.prepare("lock", "LOCK TABLE events IN EXCLUSIVE MODE");
        connection_.prepare(
            "dcb_append",
            "WITH conflict AS (SELECT EXISTS (SELECT 1 FROM event_tags t JOIN events e ON e.position = t.position "
            "WHERE t.tag = $1 AND t.position > $3::bigint AND e.type IN ('course.defined', 'course.capacity_changed', "
            "'course.student_subscribed')) OR EXISTS (SELECT 1 FROM event_tags t JOIN events e ON e.position = "
            "t.position WHERE t.tag = $2 AND t.position > $3::bigint AND e.type = 'course.student_subscribed') AS c), "
            "ins AS (INSERT INTO events (position, stream_id, version, event_id, type, schema_version, payload, "
            "metadata, recorded_at) SELECT h.p + 1, $4, s.v + 1, $5::uuid, $6, 1, $7::json, $8::json, now() "
            "FROM (SELECT coalesce(max(position), 0) AS p FROM events) AS h, (SELECT coalesce(max(version), 0) AS v "
            "FROM events WHERE stream_id = $4) AS s, conflict WHERE NOT conflict.c RETURNING position), "
            "tags AS (INSERT INTO event_tags (tag, position) SELECT u.tag, ins.position FROM ins, "
            "unnest($9::text[]) AS u(tag)) "
            "SELECT pg_notify('orchestrix_events', position::text) FROM ins");
        connection_.prepare("commit", "COMMIT");
        if (PQenterPipelineMode(connection_.get()) != 1) throw std::runtime_error("pipeline mode");
    }

    [[nodiscard]] int pid() const noexcept { return PQbackendPID(connection_.get()); }

    void decide_and_append(const std::string& student, const std::string& course) {
        const std::string course_tag = orchestrix::tag("course", course);
        const std::string student_tag = orchestrix::tag("student", student);
        bool exists = false;
        std::int64_t seats = 0, taken = 0, mine = 0, head = -1;
        {
            const char* values[] = {course_tag.c_str(), student_tag.c_str()};
            PGresult* r = query("dcb_read", 2, values);
            for (int row = 0; row < PQntuples(r); ++row) {
                const dcb::Event e = dcb_decode(text_of(r, row, 1), nlohmann::json::parse(text_of(r, row, 2)));
                if (const auto* d = std::get_if<dcb::CourseDefined>(&e)) {
                    exists = true;
                    seats = d->capacity;
                } else if (const auto* c = std::get_if<dcb::CourseCapacityChanged>(&e)) {
                    seats = c->capacity;
                } else if (const auto* s = std::get_if<dcb::StudentSubscribed>(&e)) {
                    if (s->course_id == course) ++taken;
                    if (s->student_id == student) ++mine;
                }
                head = number(r, row, 3);
            }
            PQclear(r);
        }
        if (head < 0) { // nothing matched: the head alone
            PGresult* r = query("dcb_head", 0, nullptr);
            head = number(r, 0, 0);
            PQclear(r);
        }
        const dcb::Event decided = dcb::decide(student, course, exists, seats, taken, mine);

        const std::string stream = dcb::course_stream(course);
        const std::string after = std::to_string(head);
        const std::string id = orchestrix::Uuid::generate().to_string();
        const std::string type(orchestrix::event_name_of(decided));
        const std::string payload = std::visit([](const auto& v) { return nlohmann::json(v).dump(); }, decided);
        const std::string metadata =
            nlohmann::json{{"event_id", id}, {"correlation_id", ""}, {"causation_id", ""}}.dump();
        std::vector<std::string> tags;
        std::visit(
            [&](const auto& v) {
                for (const auto& t : v.tags()) tags.push_back(t);
            },
            decided);
        const std::string tag_array = binary_array(text_oid, tags);
        const char* values[9] = {course_tag.c_str(), student_tag.c_str(), after.c_str(),    stream.c_str(),  id.c_str(),
                                 type.c_str(),       payload.c_str(),     metadata.c_str(), tag_array.data()};
        int lengths[9] = {};
        lengths[8] = static_cast<int>(tag_array.size());
        const int formats[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
        PGconn* c = connection_.get();
        send(PQsendQueryPrepared(c, "begin", 0, nullptr, nullptr, nullptr, 0));
        send(PQsendQueryPrepared(c, "lock", 0, nullptr, nullptr, nullptr, 0));
        send(PQsendQueryPrepared(c, "dcb_append", 9, values, lengths, formats, 0));
        send(PQsendQueryPrepared(c, "commit", 0, nullptr, nullptr, nullptr, 0));
        send(PQpipelineSync(c));
        bool inserted = false;
        for (int q = 0; q < 4; ++q) {
            PGresult* r = PQgetResult(c);
            const auto status = PQresultStatus(r);
            if (q == 2) inserted = PQntuples(r) == 1;
            const std::string error = PQresultErrorMessage(r);
            PQclear(r);
            if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw std::runtime_error("append: " + error);
            if (PQgetResult(c) != nullptr) throw std::runtime_error("append: unexpected result");
        }
        PGresult* sync = PQgetResult(c);
        const bool synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
        PQclear(sync);
        if (!synced) throw std::runtime_error("append: no pipeline sync");
        if (!inserted) throw std::runtime_error("append condition failed");
    }

private:
    static void send(int ok) {
        if (ok != 1) throw std::runtime_error("sending to PostgreSQL failed");
    }

    // One prepared statement's rows, in one round trip (the connection is in pipeline mode).
    PGresult* query(const char* statement, int count, const char* const* values) {
        PGconn* c = connection_.get();
        send(PQsendQueryPrepared(c, statement, count, values, nullptr, nullptr, 0));
        send(PQpipelineSync(c));
        PGresult* r = PQgetResult(c);
        const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        const std::string error = PQresultErrorMessage(r);
        while (PGresult* more = PQgetResult(c)) PQclear(more); // the end of this query's results
        PGresult* sync = PQgetResult(c);
        const bool synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
        PQclear(sync);
        if (!ok || !synced) {
            PQclear(r);
            throw std::runtime_error(std::string(statement) + ": " + error);
        }
        return r;
    }

    Connection connection_; // in pipeline mode
};

// Sides: library (DecisionRepository::execute on the store) and baseline (RawDcbDecider), on one fresh schema of
// the template's events, taking turns of 10 decisions: the library on the even courses, the baseline on the odd
// ones, each course and student decided on once. One iteration is the 1,000 courses.
void dcb_decide(benchmark::State& state) {
    try {
        const std::int64_t courses = dcb::courses_of(state.range(0));
        const std::size_t turns = static_cast<std::size_t>(courses) / (2 * dcb_decisions_per_turn);
        std::vector<Side> totals{{"library", {}}, {"baseline", {}}};
        for (auto _ : state) {
            state.PauseTiming();
            {
                const DcbSchema db;
                MeasuredDcbStore library(db.schema.url());
                orchestrix::DecisionRepository decisions(library.store);
                RawDcbDecider baseline(db.schema.url());
                const auto decision = [](std::size_t turn, std::size_t k, std::size_t side) {
                    return static_cast<std::int64_t>(2 * (turn * dcb_decisions_per_turn + k) + side);
                };
                std::vector<Side> sides{
                    {"library",
                     [&](std::size_t t) {
                         for (std::size_t k = 0; k < dcb_decisions_per_turn; ++k) {
                             const std::int64_t i = decision(t, k, 0);
                             const std::string course = dcb::decision_course(i);
                             const std::string student = dcb::decision_student(i);
                             benchmark::DoNotOptimize(decisions.execute(
                                 dcb::course_stream(course),
                                 std::tuple{dcb::CourseCapacity{course}, dcb::CourseSubscriptions{course},
                                            dcb::StudentSubscriptions{student}},
                                 [&](const dcb::CourseCapacity& c, const dcb::CourseSubscriptions& taken,
                                     const dcb::StudentSubscriptions& mine) {
                                     return dcb::decide(student, course, c.exists, c.capacity, taken.count, mine.count);
                                 }));
                         }
                     },
                     library.pid},
                    {"baseline",
                     [&](std::size_t t) {
                         for (std::size_t k = 0; k < dcb_decisions_per_turn; ++k) {
                             const std::int64_t i = decision(t, k, 1);
                             baseline.decide_and_append(dcb::decision_student(i), dcb::decision_course(i));
                         }
                     },
                     baseline.pid()}};
                state.ResumeTiming();
                take_turns(sides, turns);
                state.PauseTiming();
                for (std::size_t k = 0; k < sides.size(); ++k) {
                    totals[k].seconds += sides[k].seconds;
                    totals[k].client_ns += sides[k].client_ns;
                    totals[k].server_ns += sides[k].server_ns;
                }
            }
            state.ResumeTiming();
        }
        report(state, totals,
               static_cast<double>(state.iterations()) * static_cast<double>(turns * dcb_decisions_per_turn));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// Sides: library (store.read(query)) and baseline (the same prepared SELECT with every column, payload and
// metadata parsed with nlohmann::json into records), reading the template's events, a turn of 10 reads rotating
// over the courses. One iteration is 1,000 reads per side.
void dcb_read(benchmark::State& state) {
    try {
        const DcbTemplate& db = dcb_filled();
        MeasuredDcbStore library(db.schema.url());
        const Connection c(db.schema.url());
        c.prepare("dcb_read_all", dcb_matching_sql("e.position, e.stream_id, e.version, e.event_id::text, e.type, "
                                                   "e.schema_version, e.payload::text, e.metadata::text, "
                                                   "(extract(epoch FROM e.recorded_at) * 1000000)::bigint")
                                      .c_str());
        const std::int64_t courses = dcb::courses_of(state.range(0));
        const std::size_t turns = static_cast<std::size_t>(courses) / dcb_decisions_per_turn;
        std::vector<Side> sides{
            {"library",
             [&](std::size_t t) {
                 for (std::size_t k = 0; k < dcb_decisions_per_turn; ++k) {
                     const auto i = static_cast<std::int64_t>(t * dcb_decisions_per_turn + k);
                     const auto result =
                         library.store.read(dcb::decision_query(dcb::decision_student(i), dcb::decision_course(i)));
                     benchmark::DoNotOptimize(result.events.data());
                 }
             },
             library.pid},
            {"baseline",
             [&](std::size_t t) {
                 for (std::size_t k = 0; k < dcb_decisions_per_turn; ++k) {
                     const auto i = static_cast<std::int64_t>(t * dcb_decisions_per_turn + k);
                     const std::string course_tag = orchestrix::tag("course", dcb::decision_course(i));
                     const std::string student_tag = orchestrix::tag("student", dcb::decision_student(i));
                     const char* values[] = {course_tag.c_str(), student_tag.c_str()};
                     PGresult* r = run_prepared(c, "dcb_read_all", 2, values);
                     std::vector<DcbRecord> out;
                     out.reserve(static_cast<std::size_t>(PQntuples(r)));
                     std::int64_t head = 0;
                     for (int row = 0; row < PQntuples(r); ++row) {
                         DcbRecord e;
                         e.position = static_cast<std::uint64_t>(number(r, row, 0));
                         e.stream_id = text_of(r, row, 1);
                         e.version = static_cast<std::uint64_t>(number(r, row, 2));
                         e.event = dcb_decode(text_of(r, row, 4), nlohmann::json::parse(text_of(r, row, 6)));
                         const auto metadata = nlohmann::json::parse(text_of(r, row, 7));
                         e.event_id = metadata.at("event_id").get<std::string>();
                         e.correlation_id = metadata.at("correlation_id").get<std::string>();
                         e.causation_id = metadata.at("causation_id").get<std::string>();
                         e.recorded_at = number(r, row, 8);
                         head = number(r, row, 9);
                         out.push_back(std::move(e));
                     }
                     PQclear(r);
                     benchmark::DoNotOptimize(out.data());
                     benchmark::DoNotOptimize(head);
                 }
             },
             PQbackendPID(c.get())}};
        for (auto _ : state) take_turns(sides, turns);
        report(state, sides,
               static_cast<double>(state.iterations()) * static_cast<double>(turns * dcb_decisions_per_turn));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

} // namespace

// Argument: events per append.
BENCHMARK(append)->Name("PG/append")->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(replay_benchmark, stream, false)
    ->Name("PG/replay-stream")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(replay_benchmark, all, true)->Name("PG/replay-all")->Unit(benchmark::kMillisecond)->UseRealTime();
// Argument: events in the store.
BENCHMARK(dcb_decide)->Name("PG/dcb-decide")->Arg(10'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(dcb_read)->Name("PG/dcb-read")->Arg(10'000)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    int rc = 0;
    try {
        // Scaling: the table sizes up to the configured largest.
        const std::uint64_t largest = max_scaling_size();
        for (const std::uint64_t size : {std::uint64_t{0}, std::uint64_t{10'000}, std::uint64_t{100'000},
                                         std::uint64_t{1'000'000}, std::uint64_t{10'000'000}}) {
            if (size > largest) break;
            benchmark::RegisterBenchmark("PG/scaling", scaling)
                ->Arg(static_cast<std::int64_t>(size))
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
        }
        benchmark::RunSpecifiedBenchmarks();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        rc = 1;
    }
    benchmark::Shutdown();
    // Close every connection, then stop the cluster and remove its directory.
    scaling_tables.clear();
    replay.reset();
    dcb_template.reset();
    cluster.reset();
    return rc;
}
