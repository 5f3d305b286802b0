// Projections on SQLite.
//   catch-up: a projection (SqliteEventStore::read_all in batches, JSON decoding, one read-model upsert per
//             event, one transaction per batch with the checkpoint) over N stored events, against a raw
//             sqlite3 SELECT loop over the same table (no decoding, no writes). N = ORCHESTRIX_BENCH_EVENTS
//             (default 100,000; the figure is 1,000,000).
//   live:     latency from an append's commit to the projection's handler, polling every millisecond
//             (median and p99 over 200 appends). PostgreSQL is not measured here: its server is started
//             only by the test suite's fixture.

#include <orchestrix/json.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace projection_bench {

struct Deposited {
    static constexpr std::string_view type_name = "bench.deposited";
    std::string account;
    std::int64_t amount = 0;
    bool operator==(const Deposited&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, account, amount)
using Event = std::variant<Deposited>;
using Store = orchestrix::SqliteEventStore<Event>;
using Recorded = orchestrix::RecordedEvent<Event>;

std::int64_t event_count() {
    const char* n = std::getenv("ORCHESTRIX_BENCH_EVENTS");
    return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 100'000;
}

std::string temp_file(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("orchestrix-bench-" + std::to_string(::getpid()) + "-" + name))
        .string();
}

void remove_db(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

const orchestrix::SqliteOptions quick{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)};

// The N stored events, made once per run.
const std::string& events_file(std::int64_t count) {
    static const std::string path = [count] {
        const std::string p = temp_file("events.db");
        remove_db(p);
        Store store(p, quick);
        std::vector<orchestrix::EventEnvelope<Event>> batch;
        for (std::int64_t i = 0; i < count; ++i) {
            batch.emplace_back(Deposited{"acc-" + std::to_string(i % 1000), i % 100});
            if (batch.size() == 1000 || i + 1 == count) {
                store.append("deposits-" + std::to_string(i / 1000), batch, orchestrix::ExpectedVersion::any());
                batch.clear();
            }
        }
        return p;
    }();
    return path;
}

void create_balances(orchestrix::SqliteTransaction& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)");
}

void project_balance(orchestrix::SqliteTransaction& tx, const Recorded& e) {
    const auto& d = std::get<Deposited>(e.event);
    tx.run("INSERT INTO balances (account, balance) VALUES (?1, ?2) "
           "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
           d.account, d.amount);
}

void projection_catch_up_sqlite(benchmark::State& state) {
    const auto count = state.range(0);
    Store store(events_file(count), quick);
    const std::string model_path = temp_file("model.db");
    for (auto _ : state) {
        state.PauseTiming();
        remove_db(model_path);
        orchestrix::SqliteCheckpointStore model(model_path, quick);
        model.transact(create_balances);
        orchestrix::Projection projection("balances", store, model, project_balance, {.batch_size = 1000});
        state.ResumeTiming();
        const auto n = projection.run_until_caught_up();
        if (static_cast<std::int64_t>(n) != count) throw std::runtime_error("projection missed events");
    }
    remove_db(model_path);
    state.SetItemsProcessed(state.iterations() * count);
}

void raw_select_sqlite(benchmark::State& state) {
    const auto count = state.range(0);
    const std::string& path = events_file(count);
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
        throw std::runtime_error("open");
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT position, stream_id, version, event_id, type, schema_version, payload, metadata, "
                       "recorded_at FROM events WHERE position >= ?1 ORDER BY position",
                       -1, &stmt, nullptr);
    for (auto _ : state) {
        sqlite3_bind_int64(stmt, 1, 1);
        std::int64_t rows = 0;
        std::size_t bytes = 0;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            ++rows;
            bytes += static_cast<std::size_t>(sqlite3_column_bytes(stmt, 6));
            benchmark::DoNotOptimize(sqlite3_column_text(stmt, 6));
        }
        sqlite3_reset(stmt);
        if (rows != count) throw std::runtime_error("raw select missed rows");
        benchmark::DoNotOptimize(bytes);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    state.SetItemsProcessed(state.iterations() * count);
}

void projection_live_latency_sqlite(benchmark::State& state) {
    const std::string events_path = temp_file("live-events.db");
    const std::string model_path = temp_file("live-model.db");
    remove_db(events_path);
    remove_db(model_path);
    Store store(events_path, quick);
    Store writer(events_path, quick);
    orchestrix::SqliteCheckpointStore model(model_path, quick);
    model.transact(create_balances);
    std::atomic<std::int64_t> handled_at{0};
    std::atomic<orchestrix::position_t> handled{0};
    orchestrix::Projection projection("live", store, model,
                                      [&](orchestrix::SqliteTransaction& tx, const Recorded& e) {
                                          project_balance(tx, e);
                                          handled_at.store(std::chrono::steady_clock::now().time_since_epoch().count());
                                          handled.store(e.position);
                                      },
                                      {.poll_interval = std::chrono::milliseconds(1)});
    projection.start();
    std::vector<double> latencies;
    for (auto _ : state) {
        for (int i = 0; i < 200; ++i) {
            const auto result = writer.append("acc", {Deposited{"acc", 1}}, orchestrix::ExpectedVersion::any());
            const auto committed = std::chrono::steady_clock::now().time_since_epoch().count();
            while (handled.load() < result.last_position) std::this_thread::yield();
            latencies.push_back(static_cast<double>(std::max<std::int64_t>(handled_at.load() - committed, 0)) / 1000.0);
        }
    }
    projection.stop();
    std::sort(latencies.begin(), latencies.end());
    state.counters["median_us"] = latencies[latencies.size() / 2];
    state.counters["p99_us"] = latencies[latencies.size() * 99 / 100];
    remove_db(events_path);
    remove_db(model_path);
}

} // namespace projection_bench

BENCHMARK(projection_bench::projection_catch_up_sqlite)
    ->Arg(projection_bench::event_count())
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(projection_bench::raw_select_sqlite)
    ->Arg(projection_bench::event_count())
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(projection_bench::projection_live_latency_sqlite)->Unit(benchmark::kMillisecond)->Iterations(1);
