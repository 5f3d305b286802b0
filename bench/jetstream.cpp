// JetStream: the store against hand-written libnats doing the same work, in one program that starts its own
// throwaway nats-server processes (tests/support/nats_server.hpp: a single server, and a cluster of three
// on loopback, each in a temporary directory, file storage) and stops them at the end. Where PostgreSQL is
// built in and its server binaries are installed, the same run also appends to a throwaway PostgreSQL
// cluster (tests/support/postgres_cluster.hpp), so that JetStream and PostgreSQL are compared on one
// machine at one time. Run by hand (about two minutes with three repetitions; the figures are
// in docs/performance.md, "JetStream"):
//
//   cmake --preset bench && cmake --build build/bench --target orchestrix_bench_jetstream
//   build/bench/bench/orchestrix_bench_jetstream --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// servers:  single is one server and streams of one replica (R1); cluster is three servers and streams of
//           three replicas (R3), acknowledged once two of them have stored a message. Each side connects to
//           the server that leads its stream (on the cluster, found once the stream is made), so that
//           neither pays a hop between servers that the other does not.
// append:   JS/append/<servers>/<events per append>: 100 streams x 100 events of the W1 event types,
//           appended round-robin, one append per command with an exact expected version, 1 or 10 events
//           per append, into a fresh JetStream stream for every iteration and side (a fresh stream name,
//           its subjects <name>.>, made as the store makes its own and removed after the iteration). The
//           events are plain events raised into envelopes before the timed loop (ids from Uuid::generate(),
//           as an aggregate gets them); every side appends the same ones. Library: JetStreamEventStore::append
//           (it checks the append on its catalog and publishes the batch with the catalog's last sequence as
//           the expected one: one round trip, unless another writer came first). Baseline: libnats by hand
//           (RawAppender): each batch's events encoded by a JsonCodec with the library's default options, the batch
//           framed by jetstream::encode_batch, so both sides send the same bytes, and published with one js_PublishMsg
//           carrying the same headers (Nats-Msg-Id, the last sequence it tracks itself as
//           Nats-Expected-Last-Sequence, Nats-Expected-Stream, Orchestrix-Last-Position); it keeps each
//           stream's version, the head position and the last sequence in memory, and has no idempotency
//           check of its own beyond JetStream's de-duplication window. With
//           ORCHESTRIX_BENCH_JS_BASELINE_INFO=1 a third side, baseline_info, is that baseline asking for the
//           stream's last sequence (js_GetStreamInfo) before each publish, as the store does only when
//           another writer came first.
// replay:   JS/replay/<servers>: the 10,000 events of the append workload at 10 events per append (1,000
//           messages), written once by the store, read back whole five times per side and iteration.
//           Library: read_all() on a store opened before the timed loop. Baseline: an ordered push consumer of the
//           stream (as the store reads), every message's batch decoded by jetstream::decode_batch and each event by the
//           codec (JsonCodec::deserialize), the stream id taken from the subject, into a vector of
//           RecordedEvent; it stops at the message the server reports nothing pending after.
// PG:       PG/append/<events per append>: the append workload through PostgresEventStore::append (one
//           connection, a fresh schema for every iteration) on a throwaway cluster run as the tests run it
//           (fsync off), side postgres, in turns with the same workload through JetStreamEventStore::append on
//           the single server (R1), side jetstream; ratio is jetstream_us over postgres_us. bench/postgres.cpp
//           has the PostgreSQL store's libpq baseline.
//
// The sides run in turns (a round of 100 appends, or one whole read), each timed on its own, so that all of
// them see the same load on the machine. Counters, per event: <side>_us (time), <side>_client_us (CPU time
// of this process during the side's turns: the calling thread and libnats's own) and <side>_server_us (CPU
// time of every thread of the side's server processes: the nats-server, all three for the cluster, or the
// PostgreSQL session's backend; /proc/<pid>/task/*/schedstat); ratio, the first side's time over the
// second's (library_us over baseline_us). The Time column is that of all sides together.

#include "workload.hpp"
#include "workload_json.hpp"

#include "support/nats_server.hpp"

#include <orchestrix/jetstream.hpp>

#ifdef ORCHESTRIX_BENCH_POSTGRES
#include "support/postgres_cluster.hpp"

#include <orchestrix/postgres/event_store.hpp>
#endif

#include <benchmark/benchmark.h>
#include <nats/nats.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

using namespace bench;
using Store = orchestrix::JetStreamEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;
using Recorded = orchestrix::RecordedEvent<Event>;
using Codec = orchestrix::JsonCodec<Event>;

constexpr int js_streams = 100;
constexpr int js_events_per_stream = 100;
constexpr std::size_t replay_reads = 5; // whole reads per side and iteration of a replay benchmark

// --- the servers -------------------------------------------------------------------------------------------------

enum class Servers : std::size_t { single = 0, cluster = 1 };

std::unique_ptr<test_support::NatsServer> single_server; // started on first use, stopped by main
std::unique_ptr<test_support::NatsCluster> nats_cluster;
#ifdef ORCHESTRIX_BENCH_POSTGRES
std::unique_ptr<test_support::PostgresCluster> postgres;
#endif
std::string stop_command; // what stops every server started so far, for a signal handler

// Interrupted (Ctrl-C, kill): stop the servers and remove their directories, by becoming a shell that does it
// (exec is async-signal-safe).
extern "C" void stop_servers_and_exit(int) {
    if (!stop_command.empty()) ::execl("/bin/sh", "sh", "-c", stop_command.c_str(), static_cast<char*>(nullptr));
    ::_exit(1);
}

void add_stop_command(const std::string& command) {
    std::string updated = stop_command.empty() ? "" : stop_command.substr(0, stop_command.rfind("; exit 1"));
    updated += (updated.empty() ? "" : "; ") + command + " > /dev/null 2>&1; exit 1";
    stop_command = std::move(updated);
    for (const int signal : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal, stop_servers_and_exit);
}

// Where a benchmark's streams live: the servers' URLs (comma-separated), the stream's replicas, the server
// processes.
struct Target {
    std::string urls;
    int replicas = 1;
    std::vector<pid_t> pids;
};

Target target(Servers servers) {
    if (servers == Servers::single) {
        if (!single_server) {
            single_server = std::make_unique<test_support::NatsServer>();
            add_stop_command(single_server->stop_command());
        }
        return Target{single_server->url(), 1, {single_server->pid()}};
    }
    if (!nats_cluster) {
        nats_cluster = std::make_unique<test_support::NatsCluster>();
        add_stop_command(nats_cluster->stop_command());
    }
    Target out{nats_cluster->urls(), 3, {}};
    for (std::size_t i = 0; i < nats_cluster->size(); ++i) out.pids.push_back(nats_cluster->node(i).pid());
    return out;
}

// The URL a client of the JetStream stream `stream` connects to: the single server, or the cluster's node that
// leads the stream (so that no side pays a route hop the other does not).
std::string url_for(const Target& where, const std::string& stream) {
    if (where.replicas == 1) return where.urls;
    return nats_cluster->node(nats_cluster->wait_for_leader(stream, std::chrono::seconds(30))).url();
}

orchestrix::JetStreamOptions store_options(const std::string& url, const std::string& stream, int replicas) {
    orchestrix::JetStreamOptions options;
    options.url = url;
    options.stream = stream;
    options.subject_prefix = stream; // the streams of one server cannot share subjects
    options.replicas = replicas;
    return options;
}

// --- paired measurement ----------------------------------------------------------------------------------------

// CPU time the processes `pids` have had so far, in nanoseconds: the sum over their threads
// (/proc/<pid>/task/<tid>/schedstat; a Go program such as nats-server works on many).
std::uint64_t server_cpu_ns(const std::vector<pid_t>& pids) {
    std::uint64_t total = 0;
    for (const pid_t pid : pids) {
        std::error_code ec;
        for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
            std::ifstream in(task.path() / "schedstat");
            std::uint64_t ns = 0;
            in >> ns;
            total += ns;
        }
    }
    return total;
}

// CPU time of this process so far (every thread: libnats reads and writes on threads of its own).
std::uint64_t client_cpu_ns() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(t.tv_nsec);
}

// One side of a benchmark and what it has taken so far.
struct Side {
    std::string name;
    std::function<void(std::size_t)> run{}; // one turn
    std::vector<pid_t> servers{};           // its server processes
    double seconds = 0;
    std::uint64_t client_ns = 0;
    std::uint64_t server_ns = 0;
};

// Runs `turns` turns of every side, starting turn t with side (first + t).
void take_turns(std::vector<Side>& sides, std::size_t turns, std::size_t first = 0) {
    for (std::size_t t = 0; t < turns; ++t) {
        for (std::size_t k = 0; k < sides.size(); ++k) {
            Side& side = sides[(first + t + k) % sides.size()];
            const std::uint64_t server = server_cpu_ns(side.servers);
            const std::uint64_t client = client_cpu_ns();
            const auto start = std::chrono::steady_clock::now();
            side.run(t);
            side.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            side.client_ns += client_cpu_ns() - client;
            side.server_ns += server_cpu_ns(side.servers) - server;
        }
    }
}

// The counters of every side, per event, and `ratio`: the first side's time over the second's (library over
// baseline; with repetitions, the median of the repetitions' ratios).
void report(benchmark::State& state, const std::vector<Side>& sides, double events) {
    for (const Side& side : sides) {
        state.counters[side.name + "_us"] = side.seconds * 1e6 / events;
        state.counters[side.name + "_client_us"] = static_cast<double>(side.client_ns) / 1e3 / events;
        state.counters[side.name + "_server_us"] = static_cast<double>(side.server_ns) / 1e3 / events;
    }
    if (sides.size() >= 2 && sides[1].seconds > 0) state.counters["ratio"] = sides[0].seconds / sides[1].seconds;
}

void add_totals(std::vector<Side>& totals, const std::vector<Side>& sides) {
    for (std::size_t k = 0; k < sides.size(); ++k) {
        totals[k].seconds += sides[k].seconds;
        totals[k].client_ns += sides[k].client_ns;
        totals[k].server_ns += sides[k].server_ns;
    }
}

// A turn of a store's side of the append workload: round `r`, one append per stream.
template <class S>
std::function<void(std::size_t)> append_turn(S& store, const Batches& input) {
    return [&store, &input](std::size_t r) {
        const auto per_append = input.rounds[r][0].size();
        for (std::size_t s = 0; s < input.streams.size(); ++s) {
            benchmark::DoNotOptimize(
                store.append(input.streams[s], input.rounds[r][s], orchestrix::ExpectedVersion::exact(r * per_append)));
        }
    };
}

// --- baseline: libnats by hand -----------------------------------------------------------------------------------

void check(natsStatus status, jsErrCode code, const std::string& what) {
    if (status != NATS_OK) {
        throw std::runtime_error(what + ": " + natsStatus_GetText(status) + " (JetStream error " +
                                 std::to_string(static_cast<int>(code)) + ")");
    }
}

// A libnats connection and its JetStream context, on the servers `urls` (comma-separated).
class RawConnection {
public:
    explicit RawConnection(const std::string& urls_text) {
        const std::vector<std::string> urls = test_support::nats_detail::split_urls(urls_text);
        std::vector<const char*> servers;
        for (const auto& url : urls) servers.push_back(url.c_str());
        natsOptions* options = nullptr;
        natsStatus s = natsOptions_Create(&options);
        if (s == NATS_OK) s = natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
        if (s == NATS_OK) s = natsOptions_SetTimeout(options, 5000);
        if (s == NATS_OK) s = natsConnection_Connect(&connection_, options);
        natsOptions_Destroy(options);
        check(s, static_cast<jsErrCode>(0), "connect to " + urls_text);
        jsOptions js_options;
        jsOptions_Init(&js_options);
        js_options.Wait = 5000;
        s = natsConnection_JetStream(&js_, connection_, &js_options);
        if (s != NATS_OK) natsConnection_Destroy(connection_);
        check(s, static_cast<jsErrCode>(0), "open a JetStream context");
    }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;
    ~RawConnection() {
        jsCtx_Destroy(js_);
        natsConnection_Destroy(connection_);
    }
    [[nodiscard]] jsCtx* js() const noexcept { return js_; }

    // Creates the stream `name` on the subjects `<name>.>` as the store creates its own (which then finds it
    // and uses it as it is).
    void add_stream(const std::string& name, int replicas) const {
        const std::string subject = name + ".>";
        const char* subjects[] = {subject.c_str()};
        jsStreamConfig config;
        jsStreamConfig_Init(&config);
        config.Name = name.c_str();
        config.Subjects = subjects;
        config.SubjectsLen = 1;
        config.Storage = js_FileStorage;
        config.Replicas = replicas;
        config.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::seconds(120)).count();
        config.DenyDelete = true;
        config.DenyPurge = true;
        jsStreamInfo* info = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        check(js_AddStream(&info, js_, &config, nullptr, &code), code, "create the stream " + name);
        jsStreamInfo_Destroy(info);
    }

    // Removes the stream `name` (after a benchmark's iteration: the servers keep only what is being measured).
    void delete_stream(const std::string& name) const noexcept {
        jsErrCode code = static_cast<jsErrCode>(0);
        (void)js_DeleteStream(js_, name.c_str(), nullptr, &code);
    }

private:
    natsConnection* connection_ = nullptr;
    jsCtx* js_ = nullptr;
};

// What an application writes by hand to append with the same guarantee of order: see the file comment.
class RawAppender {
public:
    // `ask_last_sequence`: also ask the server for the stream's last sequence before each publish, as the store
    // does to learn what other writers stored.
    RawAppender(const std::string& url, std::string stream, bool ask_last_sequence)
        : connection_(url), stream_(std::move(stream)), ask_last_sequence_(ask_last_sequence) {}

    void append(const std::string& stream, std::span<const Envelope> events, std::uint64_t expected) {
        std::uint64_t& version = versions_[stream];
        if (version != expected) {
            throw std::runtime_error("append to " + stream + ": version " + std::to_string(version) + ", expected " +
                                     std::to_string(expected));
        }
        std::vector<orchestrix::Uuid> ids;
        std::vector<orchestrix::SerializedEvent> encoded;
        ids.reserve(events.size());
        encoded.reserve(events.size());
        for (const Envelope& e : events) {
            ids.push_back(e.metadata.event_id);
            encoded.push_back(codec_.serialize(e.event, e.metadata));
        }
        const auto now =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        const std::string body = orchestrix::jetstream::encode_batch(head_ + 1, version + 1, now, ids, encoded, {});
        const std::string subject = stream_ + "." + orchestrix::jetstream::encode_subject_token(stream);
        const std::string message_id = ids.front().to_string() + "/" + std::to_string(ids.size());
        const std::string last_sequence = std::to_string(last_sequence_);
        const std::string last_position = std::to_string(head_ + events.size());

        if (ask_last_sequence_) {
            jsStreamInfo* info = nullptr;
            jsErrCode info_code = static_cast<jsErrCode>(0);
            check(js_GetStreamInfo(&info, connection_.js(), stream_.c_str(), nullptr, &info_code), info_code,
                  "read the state of " + stream_);
            const bool current = info->State.LastSeq == last_sequence_;
            jsStreamInfo_Destroy(info);
            if (!current) throw std::runtime_error("another writer appended to " + stream_);
        }
        natsMsg* message = nullptr;
        natsStatus s = natsMsg_Create(&message, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
        if (s == NATS_OK) s = natsMsgHeader_Set(message, "Nats-Msg-Id", message_id.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(message, "Nats-Expected-Last-Sequence", last_sequence.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(message, "Nats-Expected-Stream", stream_.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(message, "Orchestrix-Last-Position", last_position.c_str());
        jsPubAck* ack = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        if (s == NATS_OK) s = js_PublishMsg(&ack, connection_.js(), message, nullptr, &code);
        natsMsg_Destroy(message);
        check(s, code, "publish to " + subject);
        const bool stored = !ack->Duplicate && ack->Sequence == last_sequence_ + 1;
        jsPubAck_Destroy(ack);
        if (!stored) throw std::runtime_error("publish to " + subject + ": not stored as the next message");
        ++last_sequence_;
        head_ += events.size();
        version += events.size();
    }

private:
    RawConnection connection_;
    std::string stream_;
    bool ask_last_sequence_ = false;
    Codec codec_{};
    std::unordered_map<std::string, std::uint64_t> versions_{};
    std::uint64_t head_ = 0;
    std::uint64_t last_sequence_ = 0;
};

// --- append ----------------------------------------------------------------------------------------------------

// Whether the append benchmarks also run the side baseline_info ($ORCHESTRIX_BENCH_JS_BASELINE_INFO=1): the
// baseline that also asks for the stream's last sequence before each publish, as the store does.
bool with_baseline_info() {
    const char* value = std::getenv("ORCHESTRIX_BENCH_JS_BASELINE_INFO");
    return value != nullptr && std::string_view(value) == "1";
}

// Sides: library (the store), baseline (RawAppender) and, if asked, baseline_info, each on a fresh stream of
// its own; a turn is one round (one append per stream). Argument: events per append.
void append(benchmark::State& state, Servers servers) {
    try {
        const Batches input = make_batches(js_streams, static_cast<int>(state.range(0)), js_events_per_stream);
        const Target where = target(servers);
        const RawConnection admin(where.urls);
        std::vector<Side> totals{{"library"}, {"baseline"}};
        if (with_baseline_info()) totals.push_back({"baseline_info"});
        for (auto _ : state) {
            state.PauseTiming();
            std::vector<std::string> streams;
            for (std::size_t k = 0; k < totals.size(); ++k) {
                streams.push_back(test_support::fresh_jetstream_stream_name());
                admin.add_stream(streams.back(), where.replicas);
            }
            {
                Store store(store_options(url_for(where, streams[0]), streams[0], where.replicas));
                std::vector<std::unique_ptr<RawAppender>> raw;
                for (std::size_t k = 1; k < streams.size(); ++k) {
                    raw.push_back(std::make_unique<RawAppender>(url_for(where, streams[k]), streams[k], k == 2));
                }
                std::vector<Side> sides{{"library", append_turn(store, input), where.pids}};
                for (std::size_t k = 1; k < totals.size(); ++k) {
                    sides.push_back({totals[k].name,
                                     [&, appender = raw[k - 1].get()](std::size_t r) {
                                         const auto per_append = input.rounds[r][0].size();
                                         for (std::size_t s = 0; s < input.streams.size(); ++s) {
                                             appender->append(input.streams[s], input.rounds[r][s], r * per_append);
                                         }
                                     },
                                     where.pids});
                }
                state.ResumeTiming();
                take_turns(sides, input.rounds.size());
                state.PauseTiming();
                add_totals(totals, sides);
                if (store.head_position() != js_streams * js_events_per_stream) {
                    throw std::runtime_error("the store holds " + std::to_string(store.head_position()) + " events");
                }
            }
            for (const std::string& stream : streams) admin.delete_stream(stream);
            state.ResumeTiming();
        }
        report(state, totals, static_cast<double>(state.iterations() * js_streams * js_events_per_stream));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// --- replay ----------------------------------------------------------------------------------------------------

// The append workload's events at 10 per append, written once per kind of servers by the store.
struct ReplayStream {
    std::string stream = test_support::fresh_jetstream_stream_name();
    explicit ReplayStream(const Target& where) {
        const Batches input = make_batches(js_streams, 10, js_events_per_stream);
        Store store(store_options(where.urls, stream, where.replicas));
        for (std::size_t r = 0; r < input.rounds.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                (void)store.append(input.streams[s], input.rounds[r][s], orchestrix::ExpectedVersion::exact(r * 10));
            }
        }
    }
};

std::unique_ptr<ReplayStream> replay_streams[2];

// What the baseline writes by hand to read every event of the stream `stream`: see the file comment.
std::vector<Recorded> raw_read_all(const RawConnection& connection, const std::string& stream, const Codec& codec) {
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = stream.c_str();
    options.Ordered = true;
    natsSubscription* subscription = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const std::string subjects = stream + ".>";
    check(js_SubscribeSync(&subscription, connection.js(), subjects.c_str(), nullptr, &options, &code), code,
          "subscribe to " + subjects);
    const std::unique_ptr<natsSubscription, void (*)(natsSubscription*)> guard(subscription, [](natsSubscription* sub) {
        (void)natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    });
    const std::string prefix = stream + ".";
    std::vector<Recorded> out;
    for (std::uint64_t pending = 1; pending > 0;) {
        natsMsg* raw = nullptr;
        check(natsSubscription_NextMsg(&raw, subscription, 5000), code, "read " + subjects);
        const std::unique_ptr<natsMsg, void (*)(natsMsg*)> message(raw, natsMsg_Destroy);
        jsMsgMetaData* meta = nullptr;
        check(natsMsg_GetMetaData(&meta, raw), code, "read a message's metadata");
        pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        const std::string_view subject = natsMsg_GetSubject(raw);
        std::optional<std::string> stream_id =
            orchestrix::jetstream::decode_subject_token(subject.substr(prefix.size()));
        const auto batch = orchestrix::jetstream::decode_batch(
            std::string_view(natsMsg_GetData(raw), static_cast<std::size_t>(natsMsg_GetDataLength(raw))));
        if (!stream_id || !batch) throw std::runtime_error("not a batch of the store: " + std::string(subject));
        const std::chrono::system_clock::time_point recorded_at{std::chrono::microseconds(batch->recorded_at_micros)};
        for (std::size_t i = 0; i < batch->events.size(); ++i) {
            const auto& e = batch->events[i];
            out.push_back(
                codec.deserialize(orchestrix::SerializedEventView(e.type, e.schema_version, e.payload, e.metadata),
                                  *stream_id, batch->first_version + i, batch->first_position + i, recorded_at));
        }
    }
    return out;
}

// Sides: library (read_all) and baseline (raw_read_all), reading the replay stream whole; a turn is one whole
// read.
void replay(benchmark::State& state, Servers servers) {
    try {
        const Target where = target(servers);
        auto& data = replay_streams[static_cast<std::size_t>(servers)];
        if (!data) data = std::make_unique<ReplayStream>(where);
        const std::string url = url_for(where, data->stream);
        const Store store(store_options(url, data->stream, where.replicas));
        const RawConnection connection(url);
        const Codec codec;
        constexpr std::size_t events = js_streams * js_events_per_stream;
        std::vector<Side> sides{{"library",
                                 [&](std::size_t) {
                                     const auto read = store.read_all();
                                     if (read.size() != events) throw std::runtime_error("library: events missing");
                                     benchmark::DoNotOptimize(read.data());
                                 },
                                 where.pids},
                                {"baseline",
                                 [&](std::size_t) {
                                     const auto read = raw_read_all(connection, data->stream, codec);
                                     if (read.size() != events) throw std::runtime_error("baseline: events missing");
                                     benchmark::DoNotOptimize(read.data());
                                 },
                                 where.pids}};
        std::size_t first = 0;
        for (auto _ : state) take_turns(sides, replay_reads, first++);
        report(state, sides,
               static_cast<double>(state.iterations()) * static_cast<double>(replay_reads) *
                   static_cast<double>(events));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// --- PostgreSQL, for comparison ------------------------------------------------------------------------------------

#ifdef ORCHESTRIX_BENCH_POSTGRES
// The server process of the PostgreSQL session named `application`.
pid_t backend_pid(const std::string& url, const std::string& application) {
    PGconn* c = PQconnectdb(url.c_str());
    PGresult* r =
        PQexec(c, ("SELECT pid FROM pg_stat_activity WHERE application_name = '" + application + "'").c_str());
    const pid_t pid = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? std::atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    PQfinish(c);
    if (pid == 0) throw std::runtime_error("no PostgreSQL session named " + application);
    return pid;
}

// Sides: jetstream (the store on the single server, R1, a fresh stream) and postgres (the store on a fresh
// schema of a throwaway PostgreSQL cluster, one connection), taking turns of one round; ratio is JetStream's
// time over PostgreSQL's. Argument: events per append.
void postgres_append(benchmark::State& state) {
    try {
        if (!postgres) {
            postgres = std::make_unique<test_support::PostgresCluster>();
            add_stop_command(postgres->stop_command());
        }
        const Batches input = make_batches(js_streams, static_cast<int>(state.range(0)), js_events_per_stream);
        const Target where = target(Servers::single);
        const RawConnection admin(where.urls);
        static int schemas = 0;
        std::vector<Side> totals{{"jetstream"}, {"postgres"}};
        for (auto _ : state) {
            state.PauseTiming();
            const std::string schema = "bench_js_" + std::to_string(++schemas);
            test_support::postgres_exec(postgres->url(), "CREATE SCHEMA " + schema);
            const std::string stream = test_support::fresh_jetstream_stream_name();
            {
                Store jetstream(store_options(where.urls, stream, 1));
                const std::string url = postgres->url() + "?options=-csearch_path%3D" + schema;
                orchestrix::PostgresEventStore<Event> store(url + "&application_name=" + schema,
                                                            orchestrix::PostgresOptions{1, true});
                std::vector<Side> sides{{"jetstream", append_turn(jetstream, input), where.pids},
                                        {"postgres", append_turn(store, input), {backend_pid(url, schema)}}};
                state.ResumeTiming();
                take_turns(sides, input.rounds.size());
                state.PauseTiming();
                add_totals(totals, sides);
            }
            admin.delete_stream(stream);
            test_support::postgres_exec(postgres->url(),
                                        "SET client_min_messages TO warning; DROP SCHEMA " + schema + " CASCADE");
            state.ResumeTiming();
        }
        report(state, totals, static_cast<double>(state.iterations() * js_streams * js_events_per_stream));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}
#endif

} // namespace

// Argument: events per append.
BENCHMARK_CAPTURE(append, single, Servers::single)
    ->Name("JS/append/single")
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(append, cluster, Servers::cluster)
    ->Name("JS/append/cluster")
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(replay, single, Servers::single)
    ->Name("JS/replay/single")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(replay, cluster, Servers::cluster)
    ->Name("JS/replay/cluster")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#ifdef ORCHESTRIX_BENCH_POSTGRES
// Argument: events per append.
BENCHMARK(postgres_append)->Name("PG/append")->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    int rc = 0;
    try {
        benchmark::RunSpecifiedBenchmarks();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        rc = 1;
    }
    benchmark::Shutdown();
    // Stop the servers and remove their directories.
    for (auto& data : replay_streams) data.reset();
    single_server.reset();
    nats_cluster.reset();
#ifdef ORCHESTRIX_BENCH_POSTGRES
    postgres.reset();
#endif
    return rc;
}
