// W4 durable stores: SQLite (and PostgreSQL when a throwaway cluster can be started).
//
// append:   1,000 streams x 10 events of the W1 event types, appended round-robin with an expected-version
//           check, one append per command, 1 or 10 events per append, synchronous FULL or NORMAL. Each run
//           starts from an empty database file in a temporary directory on the build's disk
//           ($ORCHESTRIX_BENCH_DIR, else the system temporary directory).
//           Library: SqliteEventStore::append. Baseline: raw sqlite3 on the same schema (the store's own
//           CREATE TABLE text, so the same UNIQUE indexes), the same pragmas (WAL, synchronous, busy_timeout),
//           and per command exactly what an application would write by hand: BEGIN IMMEDIATE; a prepared
//           `SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?` and the version check; for
//           each event the payload and metadata encoded with nlohmann::json, the event id as text, and one
//           prepared INSERT of the same eight columns; COMMIT.
// import:   1,000 streams x 100 events, one 100-event append per stream (ExpectedVersion::no_stream),
//           synchronous NORMAL: the bulk import rate. Same baseline as above.
// replay:   load each of those 1,000 streams through Repository::load (folds into bench::Account).
//           Baseline: a prepared `SELECT type, payload, metadata FROM events WHERE stream_id = ? ORDER BY
//           version`, nlohmann::json::parse of payload and metadata, and a fold of the decoded events. It does
//           less than the library: none of the strict checks (a duplicate key, an unknown field, a lossy
//           number conversion, a metadata field of the wrong type or a malformed event id all pass unnoticed),
//           no size or depth limits, no check of the event id column against the metadata, no upcasting.
// PostgreSQL: the same append workload (synchronous_commit on and off, the counterpart of FULL and
//           NORMAL) against one raw libpq statement per command: a multi-row INSERT whose UNIQUE constraint
//           does the version check. Runs only when the PostgreSQL server binaries are installed.

#include "workload.hpp"
#include "workload_json.hpp"

#include <orchestrix/json/codec.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace bench;
using Store = orchestrix::SqliteEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;

constexpr int w4_streams = 1000;
constexpr int w4_events_per_stream = 10;
constexpr int import_events_per_stream = 100;

// A fresh directory for one benchmark's database files, removed afterwards.
class TempDir {
public:
    TempDir() {
        const char* env = std::getenv("ORCHESTRIX_BENCH_DIR");
        const std::filesystem::path base =
            env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::temp_directory_path();
        path_ = base / ("orchestrix-w4-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        std::filesystem::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    static inline int counter_ = 0;
    std::filesystem::path path_;
};

using bench::Batches;

Batches make_batches(int per_append, int events_per_stream) {
    return bench::make_batches(w4_streams, per_append, events_per_stream);
}

orchestrix::SqliteSynchronous sync_of(std::int64_t arg) {
    return arg != 0 ? orchestrix::SqliteSynchronous::full : orchestrix::SqliteSynchronous::normal;
}

// --- library -------------------------------------------------------------------------------------------------

void run_library(const Batches& input, const std::string& path, orchestrix::SqliteSynchronous sync) {
    Store store(path, orchestrix::SqliteOptions{sync, std::chrono::milliseconds(5000)});
    for (std::size_t r = 0; r < input.rounds.size(); ++r) {
        const auto per_append = input.rounds[r][0].size();
        for (std::size_t s = 0; s < input.streams.size(); ++s) {
            const auto result =
                store.append(input.streams[s], input.rounds[r][s], orchestrix::ExpectedVersion::exact(r * per_append));
            benchmark::DoNotOptimize(result);
        }
    }
}

void library_append(benchmark::State& state) {
    const int per_append = static_cast<int>(state.range(0));
    const auto sync = sync_of(state.range(1));
    const Batches input = make_batches(per_append, w4_events_per_stream);
    for (auto _ : state) {
        state.PauseTiming();
        {
            TempDir dir;
            state.ResumeTiming();
            run_library(input, dir.file("events.db"), sync);
            state.PauseTiming();
        }
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * w4_streams * w4_events_per_stream);
}

// --- baseline: raw sqlite3 -------------------------------------------------------------------------------------

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
    }
}

class RawStatement {
public:
    RawStatement(sqlite3* db, const char* sql) : db_(db) {
        check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr), db, sql);
    }
    RawStatement(const RawStatement&) = delete;
    RawStatement& operator=(const RawStatement&) = delete;
    ~RawStatement() { sqlite3_finalize(stmt_); }
    sqlite3_stmt* get() const { return stmt_; }
    int step() const {
        const int rc = sqlite3_step(stmt_);
        check(rc, db_, "step");
        return rc;
    }
    void reset() const {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

class RawDatabase {
public:
    RawDatabase(const std::string& path, orchestrix::SqliteSynchronous sync) {
        check(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                              nullptr),
              db_, "open");
        exec("PRAGMA busy_timeout = 5000");
        exec("PRAGMA journal_mode = WAL");
        exec(sync == orchestrix::SqliteSynchronous::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        exec("BEGIN IMMEDIATE");
        exec(orchestrix::detail::sqlite::schema_sql);
        exec("COMMIT");
    }
    RawDatabase(const RawDatabase&) = delete;
    RawDatabase& operator=(const RawDatabase&) = delete;
    ~RawDatabase() { sqlite3_close_v2(db_); }
    void exec(const char* sql) const { check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), db_, sql); }
    sqlite3* get() const { return db_; }

private:
    sqlite3* db_ = nullptr;
};

// What a hand-written append does; see the file comment.
class RawAppender {
public:
    explicit RawAppender(const RawDatabase& db)
        : db_(db), begin_(db.get(), "BEGIN IMMEDIATE"), commit_(db.get(), "COMMIT"),
          version_(db.get(), "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1"),
          insert_(db.get(), "INSERT INTO events (stream_id, version, event_id, type, schema_version, payload, "
                            "metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)") {}

    void append(const std::string& stream, const std::vector<Envelope>& events, std::int64_t expected) {
        const auto now =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        begin_.step();
        begin_.reset();
        sqlite3_bind_text(version_.get(), 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
        version_.step();
        const std::int64_t current = sqlite3_column_int64(version_.get(), 0);
        version_.reset();
        if (current != expected) {
            db_.exec("ROLLBACK");
            throw std::runtime_error("version conflict");
        }
        for (std::size_t i = 0; i < events.size(); ++i) {
            const Envelope& e = events[i];
            const std::string type(orchestrix::event_name_of(e.event));
            const std::string payload = std::visit([](const auto& v) { return nlohmann::json(v).dump(); }, e.event);
            const std::string id = e.metadata.event_id.to_string();
            const std::string metadata = nlohmann::json{
                {"event_id", id},
                {"correlation_id", e.metadata.correlation_id},
                {"causation_id",
                 e.metadata.causation_id}}.dump();
            sqlite3_stmt* s = insert_.get();
            sqlite3_bind_text(s, 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, current + static_cast<std::int64_t>(i) + 1);
            sqlite3_bind_text(s, 3, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
            sqlite3_bind_text(s, 4, type.data(), static_cast<int>(type.size()), SQLITE_STATIC);
            sqlite3_bind_int64(s, 5, 1);
            sqlite3_bind_text(s, 6, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
            sqlite3_bind_text(s, 7, metadata.data(), static_cast<int>(metadata.size()), SQLITE_STATIC);
            sqlite3_bind_int64(s, 8, now);
            insert_.step();
            insert_.reset();
        }
        commit_.step();
        commit_.reset();
    }

private:
    const RawDatabase& db_;
    RawStatement begin_;
    RawStatement commit_;
    RawStatement version_;
    RawStatement insert_;
};

void run_baseline(const Batches& input, const std::string& path, orchestrix::SqliteSynchronous sync) {
    RawDatabase db(path, sync);
    RawAppender appender(db);
    for (std::size_t r = 0; r < input.rounds.size(); ++r) {
        const auto per_append = static_cast<std::int64_t>(input.rounds[r][0].size());
        for (std::size_t s = 0; s < input.streams.size(); ++s) {
            appender.append(input.streams[s], input.rounds[r][s], static_cast<std::int64_t>(r) * per_append);
        }
    }
}

void baseline_append(benchmark::State& state) {
    const int per_append = static_cast<int>(state.range(0));
    const auto sync = sync_of(state.range(1));
    const Batches input = make_batches(per_append, w4_events_per_stream);
    for (auto _ : state) {
        state.PauseTiming();
        {
            TempDir dir;
            state.ResumeTiming();
            run_baseline(input, dir.file("events.db"), sync);
            state.PauseTiming();
        }
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * w4_streams * w4_events_per_stream);
}

// --- bulk import -----------------------------------------------------------------------------------------------

void library_import(benchmark::State& state) {
    const Batches input = make_batches(import_events_per_stream, import_events_per_stream);
    for (auto _ : state) {
        state.PauseTiming();
        {
            TempDir dir;
            state.ResumeTiming();
            run_library(input, dir.file("events.db"), orchestrix::SqliteSynchronous::normal);
            state.PauseTiming();
        }
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * w4_streams * import_events_per_stream);
}

void baseline_import(benchmark::State& state) {
    const Batches input = make_batches(import_events_per_stream, import_events_per_stream);
    for (auto _ : state) {
        state.PauseTiming();
        {
            TempDir dir;
            state.ResumeTiming();
            run_baseline(input, dir.file("events.db"), orchestrix::SqliteSynchronous::normal);
            state.PauseTiming();
        }
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * w4_streams * import_events_per_stream);
}

// --- replay ----------------------------------------------------------------------------------------------------

// One database of 1,000 streams x 100 events, written once for both replay benchmarks.
struct ReplayDatabase {
    TempDir dir;
    std::string path = dir.file("replay.db");
    Batches input = make_batches(import_events_per_stream, import_events_per_stream);
    ReplayDatabase() { run_library(input, path, orchestrix::SqliteSynchronous::normal); }
};

ReplayDatabase& replay_database() {
    static ReplayDatabase db;
    return db;
}

void library_replay(benchmark::State& state) {
    const auto& db = replay_database();
    Store store(db.path,
                orchestrix::SqliteOptions{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)});
    orchestrix::Repository<Account, Store> accounts(store);
    for (auto _ : state) {
        for (const auto& stream : db.input.streams) {
            const Account account = accounts.load(stream);
            benchmark::DoNotOptimize(account.balance());
        }
    }
    state.SetItemsProcessed(state.iterations() * w4_streams * import_events_per_stream);
}

Event decode(std::string_view type, const nlohmann::json& payload) {
    if (type == Opened::type_name) return payload.get<Opened>();
    if (type == Deposited::type_name) return payload.get<Deposited>();
    if (type == Withdrawn::type_name) return payload.get<Withdrawn>();
    throw std::runtime_error("unknown event type");
}

// What a hand-written replay does; see the file comment for the checks it leaves out that the library makes.
void baseline_replay(benchmark::State& state) {
    const auto& db = replay_database();
    RawDatabase raw(db.path, orchestrix::SqliteSynchronous::normal);
    RawStatement select(raw.get(), "SELECT type, payload, metadata FROM events WHERE stream_id = ?1 ORDER BY version");
    for (auto _ : state) {
        for (const auto& stream : db.input.streams) {
            PlainAccount account;
            std::uint64_t version = 0;
            sqlite3_bind_text(select.get(), 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
            while (select.step() == SQLITE_ROW) {
                const auto text = [&](int column) {
                    return std::string_view(reinterpret_cast<const char*>(sqlite3_column_text(select.get(), column)),
                                            static_cast<std::size_t>(sqlite3_column_bytes(select.get(), column)));
                };
                const Event event = decode(text(0), nlohmann::json::parse(text(1)));
                const auto metadata = nlohmann::json::parse(text(2));
                benchmark::DoNotOptimize(metadata.size());
                std::visit(account, event);
                ++version;
            }
            select.reset();
            benchmark::DoNotOptimize(account.balance);
            benchmark::DoNotOptimize(version);
        }
    }
    state.SetItemsProcessed(state.iterations() * w4_streams * import_events_per_stream);
}

} // namespace

// Arguments: events per append, synchronous (1 = FULL, 0 = NORMAL).
BENCHMARK(library_append)
    ->Name("W4/sqlite-append/library")
    ->ArgNames({"per_append", "full"})
    ->Args({1, 0})
    ->Args({10, 0})
    ->Args({1, 1})
    ->Args({10, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(baseline_append)
    ->Name("W4/sqlite-append/baseline")
    ->ArgNames({"per_append", "full"})
    ->Args({1, 0})
    ->Args({10, 0})
    ->Args({1, 1})
    ->Args({10, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(library_import)->Name("W4/sqlite-import/library")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(baseline_import)->Name("W4/sqlite-import/baseline")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(library_replay)->Name("W4/sqlite-replay/library")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(baseline_replay)->Name("W4/sqlite-replay/baseline")->Unit(benchmark::kMillisecond)->UseRealTime();
