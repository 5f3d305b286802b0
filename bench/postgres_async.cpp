// PostgreSQL, asynchronous: 1,000 concurrent appends, the asynchronous store against the blocking store driven by
// a pool of threads, in one program that starts its own throwaway cluster (tests/support/postgres_cluster.hpp:
// initdb into a temporary directory, 127.0.0.1 at a free port, fsync off, as the tests run it) and stops it at
// the end.
//
// concurrent-append: 1,000 appends of one event each (the W1 event types), to 1,000 distinct streams, expecting
//           no stream, into a fresh schema for every repetition; the envelopes are made before the timed part and
//           are the same for every side. Before the timed part each side appends a few events to other streams,
//           so that its connections are open and their statements prepared.
//           async:    AsyncPostgresEventStore with `connections` connections and `depth` operations in flight per
//                     connection (pipeline mode above 1): all 1,000 append_async issued from one thread, then
//                     every completion waited for.
//           blocking: PostgresEventStore with a pool of `connections` connections, driven by as many threads,
//                     each taking the next append from a shared counter until none is left.
//           Timed from the first append issued to the last completed; the counter appends_per_s is 1,000 over
//           that time; client_cpu_us is the CPU time of the whole benchmark process (every thread) per append
//           over that time. Each configuration is repeated (--benchmark_repetitions, 10 by default here), the
//           repetitions of all configurations interleaved at random (--benchmark_enable_random_interleaving,
//           on by default here) so that each sees the machine's load alike.
//
// Run: orchestrix_bench_postgres_async [--benchmark_repetitions=N] (needs the PostgreSQL server binaries, as the
// tests do).

#include "workload.hpp"
#include "workload_json.hpp"

#include "support/postgres_cluster.hpp"

#include <orchestrix/postgres/async_event_store.hpp>
#include <orchestrix/postgres/event_store.hpp>

#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using bench::Event;
using Envelope = orchestrix::EventEnvelope<Event>;
using BlockingStore = orchestrix::PostgresEventStore<Event>;
using AsyncStore = orchestrix::AsyncPostgresEventStore<Event>;

constexpr int appends = 1000;
constexpr int warmup_appends = 32;

std::unique_ptr<test_support::PostgresCluster> cluster;
std::string stop_command;

// Interrupted: stop the cluster and remove its directory, by becoming a shell that does it.
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

void exec(const std::string& sql) {
    PGconn* c = PQconnectdb(server_url().c_str());
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string error = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error(sql + ": " + error);
}

// A schema of its own on the cluster, dropped at the end.
class Schema {
public:
    Schema() : name_("bench_async_" + std::to_string(counter_++)) {
        exec("CREATE SCHEMA " + name_);
        url_ = server_url() + "?options=-csearch_path%3D" + name_;
    }
    Schema(const Schema&) = delete;
    Schema& operator=(const Schema&) = delete;
    ~Schema() {
        try {
            exec("DROP SCHEMA " + name_ + " CASCADE");
        } catch (const std::exception&) {
        }
    }
    [[nodiscard]] const std::string& url() const noexcept { return url_; }

private:
    static inline int counter_ = 0;
    std::string name_;
    std::string url_;
};

// The inputs: one envelope per stream, the same for every side.
struct Inputs {
    std::vector<std::string> streams;
    std::vector<Envelope> events;
    Inputs(const std::string& prefix, int count) {
        for (int i = 0; i < count; ++i) {
            streams.push_back(prefix + bench::account_id(i));
            events.emplace_back(bench::make_event(streams.back(), i % 7));
        }
    }
};

const Inputs& inputs() {
    static const Inputs made("", appends);
    return made;
}
const Inputs& warmup() {
    static const Inputs made("warm-", warmup_appends);
    return made;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU time of the whole process (every thread) so far, in seconds: what the counter client_cpu_us reports per append.
double process_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

void report(benchmark::State& state, double seconds, double cpu_seconds) {
    const double count = static_cast<double>(appends) * static_cast<double>(state.iterations());
    state.counters["appends_per_s"] = count / seconds;
    state.counters["client_cpu_us"] = cpu_seconds * 1e6 / count;
}

void async_appends(benchmark::State& state) {
    const auto connections = static_cast<std::size_t>(state.range(0));
    const auto depth = static_cast<std::size_t>(state.range(1));
    const Inputs& in = inputs();
    double total = 0;
    double cpu = 0;
    for (auto _ : state) {
        Schema schema;
        orchestrix::AsyncPostgresOptions options;
        options.pool_size = connections;
        options.pipeline_depth = depth;
        AsyncStore store(schema.url(), options);
        {
            std::vector<orchestrix::Completion<orchestrix::AppendResult>> warm;
            for (int i = 0; i < warmup_appends; ++i) {
                warm.push_back(store.append_async(warmup().streams[static_cast<std::size_t>(i)],
                                                  {warmup().events[static_cast<std::size_t>(i)]},
                                                  orchestrix::ExpectedVersion::no_stream()));
            }
            for (auto& c : warm) (void)c.get();
        }
        std::vector<orchestrix::Completion<orchestrix::AppendResult>> pending;
        pending.reserve(appends);
        const double cpu_start = process_cpu_seconds();
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < in.events.size(); ++i) {
            pending.push_back(
                store.append_async(in.streams[i], {in.events[i]}, orchestrix::ExpectedVersion::no_stream()));
        }
        for (auto& c : pending) {
            if (!c.get().written) throw std::runtime_error("an append was not written");
        }
        const double elapsed = seconds_since(start);
        cpu += process_cpu_seconds() - cpu_start;
        state.SetIterationTime(elapsed);
        total += elapsed;
    }
    report(state, total, cpu);
}

void blocking_appends(benchmark::State& state) {
    const auto threads = static_cast<std::size_t>(state.range(0));
    const Inputs& in = inputs();
    double total = 0;
    double cpu = 0;
    for (auto _ : state) {
        Schema schema;
        BlockingStore store(schema.url(), orchestrix::PostgresOptions{threads, true});
        std::atomic<std::size_t> next{0};
        std::atomic<std::size_t> warmed{0};
        std::latch ready(static_cast<std::ptrdiff_t>(threads) + 1);
        std::latch go(1);
        std::atomic<bool> failed{false};
        std::vector<std::thread> workers;
        for (std::size_t t = 0; t < threads; ++t) {
            workers.emplace_back([&] {
                try {
                    // Warm up: every thread holds a connection at once, so the pool opens them all.
                    for (std::size_t w = warmed++; w < warmup().events.size(); w = warmed++) {
                        (void)store.append(warmup().streams[w], {warmup().events[w]},
                                           orchestrix::ExpectedVersion::no_stream());
                    }
                } catch (const std::exception&) {
                    failed = true;
                }
                ready.count_down();
                go.wait();
                try {
                    for (std::size_t i = next++; i < in.events.size(); i = next++) {
                        if (!store.append(in.streams[i], {in.events[i]}, orchestrix::ExpectedVersion::no_stream())
                                 .written) {
                            failed = true;
                        }
                    }
                } catch (const std::exception&) {
                    failed = true;
                }
            });
        }
        ready.arrive_and_wait();
        const double cpu_start = process_cpu_seconds();
        const auto start = std::chrono::steady_clock::now();
        go.count_down();
        for (auto& w : workers) w.join();
        const double elapsed = seconds_since(start);
        cpu += process_cpu_seconds() - cpu_start;
        if (failed) throw std::runtime_error("a blocking append failed");
        state.SetIterationTime(elapsed);
        total += elapsed;
    }
    report(state, total, cpu);
}

} // namespace

BENCHMARK(blocking_appends)
    ->Name("PGAsync/concurrent-append/blocking")
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(async_appends)
    ->Name("PGAsync/concurrent-append/async")
    ->ArgNames({"connections", "depth"})
    ->Args({1, 1})
    ->Args({1, 16})
    ->Args({4, 1})
    ->Args({4, 8})
    ->Args({16, 1})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
    std::vector<char*> args(argv, argv + argc);
    std::string repetitions = "--benchmark_repetitions=10";
    std::string interleaving = "--benchmark_enable_random_interleaving=true";
    const auto given = [&](const std::string& flag) {
        for (int i = 1; i < argc; ++i)
            if (std::string(argv[i]).rfind(flag.substr(0, flag.find('=')), 0) == 0) return true;
        return false;
    };
    if (!given(repetitions)) args.push_back(repetitions.data());
    if (!given(interleaving)) args.push_back(interleaving.data());
    int count = static_cast<int>(args.size());
    benchmark::Initialize(&count, args.data());
    if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
    int rc = 0;
    try {
        benchmark::RunSpecifiedBenchmarks();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        rc = 1;
    }
    benchmark::Shutdown();
    cluster.reset();
    return rc;
}
