// W1 append: 1,000 streams x 100 events, round-robin, expected-version check; 1 or 10 events per append.
// The library (InMemoryEventStore) against a hand-written baseline: an unordered_map from stream id to a
// std::vector<Event> with the same version check. Both get their events prepared before timing.
// scaling/append/{library,baseline}/N: N = 1,000 .. 1,000,000 single-event appends to one stream, on both sides.
// W1/append/library-observed: the library with an observer attached that does nothing (the cost of the hooks'
// clock reads and virtual calls; without an observer they cost a pointer test).

#include "workload.hpp"

#include <benchmark/benchmark.h>

#include <functional>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace {

using namespace bench;
using Store = orchestrix::InMemoryEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;

// All batches of W1 in append order: batch b of round r for stream s.
struct W1Input {
    std::vector<std::string> streams;
    std::vector<std::vector<std::vector<Envelope>>> batches; // [round][stream] -> batch
};

W1Input make_input(int per_append) {
    W1Input input;
    for (int s = 0; s < w1_streams; ++s) input.streams.push_back(account_id(s));
    const int rounds = w1_events_per_stream / per_append;
    input.batches.resize(static_cast<std::size_t>(rounds));
    for (int r = 0; r < rounds; ++r) {
        auto& round = input.batches[static_cast<std::size_t>(r)];
        round.resize(static_cast<std::size_t>(w1_streams));
        for (int s = 0; s < w1_streams; ++s) {
            for (int k = 0; k < per_append; ++k) {
                round[static_cast<std::size_t>(s)].emplace_back(
                    make_event(input.streams[static_cast<std::size_t>(s)], r * per_append + k));
            }
        }
    }
    return input;
}

// An observer that ignores everything it is told.
class NoopObserver final : public orchestrix::Observer {};

void append_w1(benchmark::State& state, orchestrix::Observer* observer) {
    const int per_append = static_cast<int>(state.range(0));
    const W1Input input = make_input(per_append);
    for (auto _ : state) {
        state.PauseTiming();
        auto store = std::make_unique<Store>();
        store->observe(observer);
        state.ResumeTiming();
        for (std::size_t r = 0; r < input.batches.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                const auto result =
                    store->append(input.streams[s], input.batches[r][s],
                                  orchestrix::ExpectedVersion::exact(r * static_cast<std::uint64_t>(per_append)));
                benchmark::DoNotOptimize(result);
            }
        }
        state.PauseTiming();
        store.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * w1_streams * w1_events_per_stream);
}

void library_append(benchmark::State& state) { append_w1(state, nullptr); }

void library_append_observed(benchmark::State& state) {
    NoopObserver observer;
    append_w1(state, &observer);
}

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// The baseline: the same version check and storage, nothing else.
class BaselineStore {
public:
    std::uint64_t append(std::string_view stream, std::span<const Event> events, std::uint64_t expected) {
        auto found = streams_.find(stream);
        if (found == streams_.end()) found = streams_.emplace(std::string(stream), std::vector<Event>{}).first;
        if (found->second.size() != expected) throw std::runtime_error("version conflict");
        found->second.insert(found->second.end(), events.begin(), events.end());
        return found->second.size();
    }

private:
    std::unordered_map<std::string, std::vector<Event>, string_hash, std::equal_to<>> streams_;
};

void baseline_append(benchmark::State& state) {
    const int per_append = static_cast<int>(state.range(0));
    const W1Input input = make_input(per_append);
    std::vector<std::vector<std::vector<Event>>> plain(input.batches.size());
    for (std::size_t r = 0; r < input.batches.size(); ++r) {
        for (const auto& batch : input.batches[r]) {
            auto& out = plain[r].emplace_back();
            for (const auto& e : batch) out.push_back(e.event);
        }
    }
    for (auto _ : state) {
        state.PauseTiming();
        auto store = std::make_unique<BaselineStore>();
        state.ResumeTiming();
        for (std::size_t r = 0; r < plain.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                benchmark::DoNotOptimize(
                    store->append(input.streams[s], plain[r][s], r * static_cast<std::uint64_t>(per_append)));
            }
        }
        state.PauseTiming();
        store.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * w1_streams * w1_events_per_stream);
}

// The baseline plus what makes appends safe to retry: every event id checked against, and added to, a
// std::unordered_set of stored ids. Not part of the W1 definition; it shows what the guarantee costs.
class IdempotentBaselineStore {
public:
    std::uint64_t append(std::string_view stream, const std::vector<Envelope>& events, std::uint64_t expected) {
        for (const auto& e : events)
            if (ids_.contains(e.metadata.event_id)) throw std::runtime_error("duplicate id");
        auto found = streams_.find(stream);
        if (found == streams_.end()) found = streams_.emplace(std::string(stream), std::vector<Event>{}).first;
        if (found->second.size() != expected) throw std::runtime_error("version conflict");
        for (const auto& e : events) {
            found->second.push_back(e.event);
            ids_.insert(e.metadata.event_id);
        }
        return found->second.size();
    }

private:
    std::unordered_map<std::string, std::vector<Event>, string_hash, std::equal_to<>> streams_;
    std::unordered_set<orchestrix::Uuid> ids_;
};

void baseline_append_with_ids(benchmark::State& state) {
    const int per_append = static_cast<int>(state.range(0));
    const W1Input input = make_input(per_append);
    for (auto _ : state) {
        state.PauseTiming();
        auto store = std::make_unique<IdempotentBaselineStore>();
        state.ResumeTiming();
        for (std::size_t r = 0; r < input.batches.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                benchmark::DoNotOptimize(
                    store->append(input.streams[s], input.batches[r][s], r * static_cast<std::uint64_t>(per_append)));
            }
        }
        state.PauseTiming();
        store.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * w1_streams * w1_events_per_stream);
}

// Appends into one stream of growing length: the cost per event must stay flat.
void library_append_one_stream(benchmark::State& state) {
    const auto length = static_cast<std::size_t>(state.range(0));
    std::vector<Envelope> events;
    events.reserve(length);
    for (std::size_t i = 0; i < length; ++i) events.emplace_back(make_event("acc-000001", static_cast<int>(i)));
    for (auto _ : state) {
        state.PauseTiming();
        auto store = std::make_unique<Store>();
        state.ResumeTiming();
        for (std::size_t i = 0; i < length; ++i) {
            benchmark::DoNotOptimize(store->append("acc-000001", std::span<const Envelope>(&events[i], 1),
                                                   orchestrix::ExpectedVersion::exact(i)));
        }
        state.PauseTiming();
        store.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(length));
}

// The same appends into the W1 baseline's store: one stream looked up by id, the version checked, the event
// pushed onto its std::vector<Event>.
void baseline_append_one_stream(benchmark::State& state) {
    const auto length = static_cast<std::size_t>(state.range(0));
    std::vector<Event> events;
    events.reserve(length);
    for (std::size_t i = 0; i < length; ++i) events.push_back(make_event("acc-000001", static_cast<int>(i)));
    for (auto _ : state) {
        state.PauseTiming();
        auto store = std::make_unique<BaselineStore>();
        state.ResumeTiming();
        for (std::size_t i = 0; i < length; ++i) {
            benchmark::DoNotOptimize(store->append("acc-000001", std::span<const Event>(&events[i], 1), i));
        }
        state.PauseTiming();
        store.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(length));
}

} // namespace

BENCHMARK(library_append)->Name("W1/append/library")->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
BENCHMARK(library_append_observed)->Name("W1/append/library-observed")->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
BENCHMARK(baseline_append)->Name("W1/append/baseline")->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
BENCHMARK(baseline_append_with_ids)
    ->Name("W1/append/baseline-with-id-index")
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(library_append_one_stream)
    ->Name("scaling/append/library")
    ->RangeMultiplier(10)
    ->Range(1000, 1000000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(baseline_append_one_stream)
    ->Name("scaling/append/baseline")
    ->RangeMultiplier(10)
    ->Range(1000, 1000000)
    ->Unit(benchmark::kMillisecond);
