// LC: what the data-lifecycle codecs cost on SQLite (docs/lifecycle.md): the plain JsonCodec against
// CompressingCodec (zstd, level 3, threshold 1 KiB), ShreddingCodec (an InMemoryKeyStore, one subject per
// stream) and both stacked (CompressingCodec<Events, ShreddingCodec<...>>: personal data sealed, then the
// payload compressed).
//
// The event: {customer_id, name, note}, `name` a Personal<std::string> of the stream's customer for the
// shredding codecs (a plain string for the others, which cannot write personal data), `note` ~2 KiB of
// words (or ~200 bytes: below the threshold, what compression costs when it does not compress).
//
// append (W1 on SQLite): 1,000 streams x 10 events, round-robin, one event per append with an expected-version
//        check, synchronous NORMAL, from an empty file each run (the shredding codecs from an empty key store:
//        the first write of each subject makes its key). Counters: stored payload bytes per event
//        (payload_bytes) and the database file's bytes per event after the store closed (file_bytes).
// read (W2 on SQLite): read_stream of each of those 1,000 streams (10 events each) from a file written once.
// codec-encode, codec-decode: the codec alone, one event's columns and back (CPU time, no database).

#include <orchestrix/compression/codec.hpp>
#include <orchestrix/core/personal.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/sqlite/event_store.hpp>
#ifdef ORCHESTRIX_BENCH_CRYPTO
#include <orchestrix/crypto/codec.hpp>
#endif

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lifecycle_bench {

struct NoteAdded {
    static constexpr std::string_view type_name = "bench.note-added";
    std::string customer_id;
    std::string name;
    std::string note;
    bool operator==(const NoteAdded&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NoteAdded, customer_id, name, note)

struct PersonalNoteAdded {
    static constexpr std::string_view type_name = "bench.note-added";
    std::string customer_id;
    orchestrix::Personal<std::string> name;
    std::string note;
    bool operator==(const PersonalNoteAdded&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PersonalNoteAdded, customer_id, name, note)

using PlainEvents = std::variant<NoteAdded>;
using PersonalEvents = std::variant<PersonalNoteAdded>;

} // namespace lifecycle_bench

namespace {

using namespace lifecycle_bench;

constexpr int lc_streams = 1000;
constexpr int lc_events_per_stream = 10;
constexpr int lc_events = lc_streams * lc_events_per_stream;
const orchestrix::SqliteOptions lc_sqlite{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)};

// A fresh directory for one run's database files ($ORCHESTRIX_BENCH_DIR, else the temporary directory).
class TempDir {
public:
    TempDir() {
        const char* env = std::getenv("ORCHESTRIX_BENCH_DIR");
        const std::filesystem::path base =
            env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::temp_directory_path();
        path_ = base / ("orchestrix-lc-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
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

std::string customer(int s) { return "customer-" + std::to_string(100000 + s); }

// About `size` bytes of words picked by a fixed pseudo-random sequence: text that compresses as prose does.
std::string note_text(int s, int n, std::size_t size) {
    static constexpr std::string_view words[] = {
        "order",    "delivered", "customer",  "called", "about",  "the",     "invoice",  "payment",  "refund",
        "address",  "changed",   "warehouse", "parcel", "late",   "damaged", "replaced", "agreed",   "discount",
        "of",       "and",       "to",        "a",      "for",    "with",    "on",       "was",      "is",
        "shipping", "tracking",  "number",    "return", "label",  "sent",    "email",    "phone",    "note",
        "account",  "balance",   "credit",    "monday", "friday", "morning", "evening",  "priority", "normal"};
    std::uint64_t x = static_cast<std::uint64_t>(s) * 7919U + static_cast<std::uint64_t>(n) * 104729U + 1U;
    std::string text;
    while (text.size() < size) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        text += words[(x >> 33U) % std::size(words)];
        text += (x >> 60U) == 0 ? ". " : " ";
    }
    text.resize(size);
    return text;
}

// One side of the comparison: the event type, the codec and how to make it (from the run's key store).
struct PlainSide {
    using events = PlainEvents;
    using codec = orchestrix::JsonCodec<events>;
    static events event(int s, int n, std::size_t size) {
        return NoteAdded{customer(s), "Customer " + std::to_string(s), note_text(s, n, size)};
    }
    static codec make(orchestrix::InMemoryKeyStore&) { return codec{}; }
};

struct ZstdSide {
    using events = PlainEvents;
    using codec = orchestrix::CompressingCodec<events>;
    static events event(int s, int n, std::size_t size) { return PlainSide::event(s, n, size); }
    static codec make(orchestrix::InMemoryKeyStore&) { return codec{}; }
};

#ifdef ORCHESTRIX_BENCH_CRYPTO
struct ShredSide {
    using events = PersonalEvents;
    using codec = orchestrix::ShreddingCodec<events, orchestrix::InMemoryKeyStore>;
    static events event(int s, int n, std::size_t size) {
        return PersonalNoteAdded{customer(s),
                                 orchestrix::Personal<std::string>(customer(s), "Customer " + std::to_string(s)),
                                 note_text(s, n, size)};
    }
    static codec make(orchestrix::InMemoryKeyStore& keys) { return codec(keys); }
};

struct ShredZstdSide {
    using events = PersonalEvents;
    using codec = orchestrix::CompressingCodec<events, ShredSide::codec>;
    static events event(int s, int n, std::size_t size) { return ShredSide::event(s, n, size); }
    static codec make(orchestrix::InMemoryKeyStore& keys) { return codec(ShredSide::make(keys)); }
};
#endif

// The appends of one run, made before timing: [round][stream].
template <class Side>
std::vector<std::vector<orchestrix::EventEnvelope<typename Side::events>>> make_input(std::size_t size) {
    std::vector<std::vector<orchestrix::EventEnvelope<typename Side::events>>> rounds(lc_events_per_stream);
    for (int n = 0; n < lc_events_per_stream; ++n) {
        for (int s = 0; s < lc_streams; ++s) {
            rounds[static_cast<std::size_t>(n)].emplace_back(Side::event(s, n, size));
        }
    }
    return rounds;
}

template <class Side, class Input>
void append_all(orchestrix::SqliteEventStore<typename Side::events, typename Side::codec>& store, const Input& input) {
    for (std::size_t n = 0; n < input.size(); ++n) {
        for (std::size_t s = 0; s < input[n].size(); ++s) {
            const auto result = store.append(customer(static_cast<int>(s)), std::span(&input[n][s], 1),
                                             orchestrix::ExpectedVersion::exact(n));
            benchmark::DoNotOptimize(result);
        }
    }
}

// What a run left on disk, per event: the payload column's bytes, and the file's after the store closed.
template <class Side>
void count_bytes(benchmark::State& state, const std::string& path) {
    std::uint64_t payload = 0;
    {
        orchestrix::InMemoryKeyStore keys;
        const orchestrix::SqliteEventStore<typename Side::events, typename Side::codec> store(path, lc_sqlite,
                                                                                              Side::make(keys));
        for (const auto& row : store.read_all_raw()) payload += row.payload.size();
    }
    state.counters["payload_bytes"] = static_cast<double>(payload) / lc_events;
    state.counters["file_bytes"] = static_cast<double>(std::filesystem::file_size(path)) / lc_events;
}

template <class Side>
void lc_append(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const auto input = make_input<Side>(size);
    for (auto _ : state) {
        state.PauseTiming();
        {
            TempDir dir;
            const std::string path = dir.file("events.db");
            {
                orchestrix::InMemoryKeyStore keys;
                orchestrix::SqliteEventStore<typename Side::events, typename Side::codec> store(path, lc_sqlite,
                                                                                                Side::make(keys));
                state.ResumeTiming();
                append_all<Side>(store, input);
                state.PauseTiming();
            }
            count_bytes<Side>(state, path);
        }
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * lc_events);
}

// One file of 1,000 x 10 events per side and note size, written once (with its key store) for the reads.
template <class Side>
struct ReadDatabase {
    TempDir dir;
    std::string path = dir.file("events.db");
    orchestrix::InMemoryKeyStore keys;
    std::unique_ptr<orchestrix::SqliteEventStore<typename Side::events, typename Side::codec>> store;

    explicit ReadDatabase(std::size_t size)
        : store(std::make_unique<orchestrix::SqliteEventStore<typename Side::events, typename Side::codec>>(
              path, lc_sqlite, Side::make(keys))) {
        const auto input = make_input<Side>(size);
        append_all<Side>(*store, input);
        // What the reads give back is what was appended.
        const auto events = store->read_stream(customer(7));
        if (events.size() != lc_events_per_stream || !(events[3].event == input[3][7].event)) {
            throw std::logic_error("LC: the stored events do not read back as appended");
        }
    }
};

template <class Side>
ReadDatabase<Side>& read_database(std::size_t size) {
    static std::map<std::size_t, std::unique_ptr<ReadDatabase<Side>>> databases;
    auto& db = databases[size];
    if (!db) db = std::make_unique<ReadDatabase<Side>>(size);
    return *db;
}

template <class Side>
void lc_read(benchmark::State& state) {
    auto& db = read_database<Side>(static_cast<std::size_t>(state.range(0)));
    std::vector<std::string> streams;
    for (int s = 0; s < lc_streams; ++s) streams.push_back(customer(s));
    for (auto _ : state) {
        for (const auto& stream : streams) {
            const auto events = db.store->read_stream(stream);
            benchmark::DoNotOptimize(events.data());
        }
    }
    state.SetItemsProcessed(state.iterations() * lc_events);
}

// The codec alone (no database): the columns of one event, and the event of those columns.
template <class Side>
void lc_encode(benchmark::State& state) {
    orchestrix::InMemoryKeyStore keys;
    const auto codec = Side::make(keys);
    const orchestrix::EventEnvelope<typename Side::events> e(
        Side::event(7, 3, static_cast<std::size_t>(state.range(0))));
    for (auto _ : state) {
        const orchestrix::SerializedEvent columns = codec.serialize(e.event, e.metadata);
        benchmark::DoNotOptimize(columns.payload.data());
    }
    state.counters["payload_bytes"] = static_cast<double>(codec.serialize(e.event, e.metadata).payload.size());
}

template <class Side>
void lc_decode(benchmark::State& state) {
    orchestrix::InMemoryKeyStore keys;
    const auto codec = Side::make(keys);
    const orchestrix::EventEnvelope<typename Side::events> e(
        Side::event(7, 3, static_cast<std::size_t>(state.range(0))));
    const orchestrix::SerializedEvent columns = codec.serialize(e.event, e.metadata);
    for (auto _ : state) {
        const auto recorded = codec.deserialize(columns, customer(7), 4, 4, {});
        benchmark::DoNotOptimize(&recorded);
    }
    if (!(codec.deserialize(columns, customer(7), 4, 4, {}).event == e.event)) {
        throw std::logic_error("LC: the codec does not decode what it encoded");
    }
}

} // namespace

// Argument: the note's size in bytes (2048: compressed; 200: below the threshold).
#define ORCHESTRIX_LC_BENCH(side, name)                                                                                \
    BENCHMARK(lc_append<side>)                                                                                         \
        ->Name("LC/sqlite-append/" name)                                                                               \
        ->ArgName("note")                                                                                              \
        ->Arg(2048)                                                                                                    \
        ->Arg(200)                                                                                                     \
        ->Unit(benchmark::kMillisecond)                                                                                \
        ->UseRealTime();                                                                                               \
    BENCHMARK(lc_read<side>)                                                                                           \
        ->Name("LC/sqlite-read/" name)                                                                                 \
        ->ArgName("note")                                                                                              \
        ->Arg(2048)                                                                                                    \
        ->Arg(200)                                                                                                     \
        ->Unit(benchmark::kMillisecond)                                                                                \
        ->UseRealTime();                                                                                               \
    BENCHMARK(lc_encode<side>)->Name("LC/codec-encode/" name)->ArgName("note")->Arg(2048)->Arg(200);                   \
    BENCHMARK(lc_decode<side>)->Name("LC/codec-decode/" name)->ArgName("note")->Arg(2048)->Arg(200)

ORCHESTRIX_LC_BENCH(PlainSide, "plain");
ORCHESTRIX_LC_BENCH(ZstdSide, "zstd");
#ifdef ORCHESTRIX_BENCH_CRYPTO
ORCHESTRIX_LC_BENCH(ShredSide, "shred");
ORCHESTRIX_LC_BENCH(ShredZstdSide, "shred+zstd");
#endif
