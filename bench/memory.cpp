// Memory per stored event for W1 (1,000 streams x 100 events, appended round-robin one event at a time): the
// heap glibc reports in use (`mallinfo2()`: `uordblks` + `hblkhd`) after filling a store, less before, divided
// by the events stored. Every side is given the same envelopes, raised before measuring (each with the id a user's
// command gives it); each keeps what it keeps.
// memory/library: InMemoryEventStore (the events, their ids, positions, recording times, the global log).
// memory/vector-variant: one std::vector<Event> holding the payloads only, reserved to the exact count.
// memory/map-store: the W1 baseline's store, an unordered_map from stream id to a std::vector<Event>.
// memory/short-streams/{library,map-store}/N: the same measure for 10,000 streams of N events each (N = 1, 5,
// 20), appended round-robin one event at a time: what a store of many short streams costs per event.

#include "workload.hpp"

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>

namespace {

using namespace bench;
using Store = orchestrix::InMemoryEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;

constexpr std::size_t w1_events = static_cast<std::size_t>(w1_streams) * w1_events_per_stream;

// The bytes of heap the process has allocated and not freed: glibc's arena (`uordblks`) and the blocks it
// maps on their own (`hblkhd`: under the default heap, every allocation above the mmap threshold).
std::size_t heap_in_use() {
    const auto info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

// W1's events in append order, one single-event batch per append: [round][stream].
Batches w1_input() { return make_batches(w1_streams, 1, w1_events_per_stream); }

void report(benchmark::State& state, std::size_t before, std::size_t after, std::size_t events) {
    state.counters["bytes_per_event"] =
        benchmark::Counter(static_cast<double>(after - before) / static_cast<double>(events));
}

// Appends every batch of `input` round-robin to a fresh store and reports the heap it holds per event.
void measure_library(benchmark::State& state, const Batches& input, std::size_t events) {
    for (auto _ : state) {
        const std::size_t before = heap_in_use();
        auto store = std::make_unique<Store>();
        for (std::size_t r = 0; r < input.rounds.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                benchmark::DoNotOptimize(
                    store->append(input.streams[s], input.rounds[r][s], orchestrix::ExpectedVersion::exact(r)));
            }
        }
        const std::size_t after = heap_in_use();
        if (store->head_position() != events) state.SkipWithError("the store did not keep every event");
        report(state, before, after, events);
    }
}

void library_memory(benchmark::State& state) { measure_library(state, w1_input(), w1_events); }

void vector_variant_memory(benchmark::State& state) {
    const Batches input = w1_input();
    for (auto _ : state) {
        const std::size_t before = heap_in_use();
        auto events = std::make_unique<std::vector<Event>>();
        events->reserve(w1_events);
        for (const auto& round : input.rounds)
            for (const auto& batch : round)
                for (const Envelope& e : batch) events->push_back(e.event);
        const std::size_t after = heap_in_use();
        benchmark::DoNotOptimize(events->data());
        report(state, before, after, w1_events);
    }
}

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// The same for the W1 baseline's store, an unordered_map from stream id to a std::vector<Event>.
void measure_map_store(benchmark::State& state, const Batches& input, std::size_t events) {
    using Map = std::unordered_map<std::string, std::vector<Event>, string_hash, std::equal_to<>>;
    for (auto _ : state) {
        const std::size_t before = heap_in_use();
        auto streams = std::make_unique<Map>();
        for (const auto& round : input.rounds) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                auto found = streams->find(std::string_view(input.streams[s]));
                if (found == streams->end()) found = streams->try_emplace(input.streams[s]).first;
                for (const Envelope& e : round[s]) found->second.push_back(e.event);
            }
        }
        const std::size_t after = heap_in_use();
        benchmark::DoNotOptimize(streams->size());
        report(state, before, after, events);
    }
}

void map_store_memory(benchmark::State& state) { measure_map_store(state, w1_input(), w1_events); }

constexpr int short_streams = 10000;

// 10,000 streams of state.range(0) events each, one event per append, and how many events that is.
std::pair<Batches, std::size_t> short_streams_input(const benchmark::State& state) {
    const auto per_stream = static_cast<int>(state.range(0));
    return {make_batches(short_streams, 1, per_stream),
            static_cast<std::size_t>(short_streams) * static_cast<std::size_t>(per_stream)};
}

void library_short_streams(benchmark::State& state) {
    const auto [input, events] = short_streams_input(state);
    measure_library(state, input, events);
}

void map_store_short_streams(benchmark::State& state) {
    const auto [input, events] = short_streams_input(state);
    measure_map_store(state, input, events);
}

} // namespace

BENCHMARK(library_memory)->Name("memory/library")->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(vector_variant_memory)->Name("memory/vector-variant")->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(map_store_memory)->Name("memory/map-store")->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(library_short_streams)
    ->Name("memory/short-streams/library")
    ->Arg(1)
    ->Arg(5)
    ->Arg(20)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(map_store_short_streams)
    ->Name("memory/short-streams/map-store")
    ->Arg(1)
    ->Arg(5)
    ->Arg(20)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
