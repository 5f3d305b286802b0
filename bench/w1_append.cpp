// W1 append: 1,000 streams x 100 events, round-robin, expected-version check; 1 or 10 events per append.
// Every side appends the same plain events (bench::make_plain_batches, made before timing), as a user holds
// them before they are stored: no ids yet.
// W1/append/library: InMemoryEventStore's append of plain events, the user's path (`store.append(stream,
//   events, expected)`): inside the timed loop each event is copied into an envelope that gets a fresh
//   Uuid::generate() id, then stored.
// W1/append/baseline: an unordered_map from stream id to a std::vector<Event> with the same version check and
//   nothing else (no ids).
// W1/append/baseline-with-id-index: the baseline plus what makes appends safe to retry: each event gets a
//   Uuid::generate() id inside the timed loop, looked up in and added to a std::unordered_set of stored ids.
// W1/append/library-prebuilt-envelopes: the library given envelopes whose ids were made before timing (not the
//   user's path: id generation and the copy into envelopes are left out of the time).
// W1/append/library-observed: the library's append of plain events with an observer attached that does nothing
//   (the cost of the hooks' clock reads and virtual calls; without an observer they cost a pointer test).
// scaling/append/{library,baseline}/N: N = 1,000 .. 1,000,000 single-event appends of plain events to one
// stream, on both sides (the library's append again gives each event its id inside the timed loop).

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

constexpr std::uint64_t w1_events = static_cast<std::uint64_t>(w1_streams) * w1_events_per_stream;

PlainBatches w1_input(benchmark::State& state) {
    return make_plain_batches(w1_streams, static_cast<int>(state.range(0)), w1_events_per_stream);
}

std::uint64_t expected_version(std::size_t round, const benchmark::State& state) {
    return round * static_cast<std::uint64_t>(state.range(0));
}

// An observer that ignores everything it is told.
class NoopObserver final : public orchestrix::Observer {};

// Appends batch(r, s) of every round r and stream s of `input` to a fresh store per iteration, round-robin
// with an exact expected version, as W1 does.
template <class Batch>
void append_rounds(benchmark::State& state, const PlainBatches& input, orchestrix::Observer* observer,
                   const Batch& batch) {
    for (auto _ : state) {
        state.PauseTiming();
        settle_heap();
        auto store = std::make_unique<Store>();
        store->observe(observer);
        state.ResumeTiming();
        for (std::size_t r = 0; r < input.rounds.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                const auto result = store->append(input.streams[s], batch(r, s),
                                                  orchestrix::ExpectedVersion::exact(expected_version(r, state)));
                benchmark::DoNotOptimize(result);
            }
        }
        state.PauseTiming();
        if (store->head_position() != w1_events) state.SkipWithError("the store did not keep every event");
        store.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(w1_events));
}

// The user's path: plain events in, each given its id by the store's append.
void append_w1(benchmark::State& state, orchestrix::Observer* observer) {
    const PlainBatches input = w1_input(state);
    append_rounds(state, input, observer,
                  [&](std::size_t r, std::size_t s) -> const std::vector<Event>& { return input.rounds[r][s]; });
}

void library_append(benchmark::State& state) { append_w1(state, nullptr); }

void library_append_observed(benchmark::State& state) {
    NoopObserver observer;
    append_w1(state, &observer);
}

// Not the user's path: the same events raised into envelopes (ids made) before timing.
void library_append_prebuilt(benchmark::State& state) {
    const PlainBatches input = w1_input(state);
    std::vector<std::vector<std::vector<Envelope>>> envelopes(input.rounds.size());
    for (std::size_t r = 0; r < input.rounds.size(); ++r) {
        for (const auto& batch : input.rounds[r]) envelopes[r].emplace_back(batch.begin(), batch.end());
    }
    append_rounds(state, input, nullptr,
                  [&](std::size_t r, std::size_t s) { return std::span<const Envelope>(envelopes[r][s]); });
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
        stored_ += events.size();
        return found->second.size();
    }
    [[nodiscard]] std::uint64_t stored() const { return stored_; }

private:
    std::unordered_map<std::string, std::vector<Event>, string_hash, std::equal_to<>> streams_{};
    std::uint64_t stored_ = 0;
};

// The baseline plus what makes appends safe to retry: every event given an id (Uuid::generate(), as the
// library's append does), the id checked against, and added to, a std::unordered_set of stored ids. Not part
// of the W1 definition; it shows what the plain way to that guarantee costs.
class IdempotentBaselineStore {
public:
    std::uint64_t append(std::string_view stream, std::span<const Event> events, std::uint64_t expected) {
        batch_ids_.clear();
        for (std::size_t i = 0; i < events.size(); ++i) {
            const orchestrix::Uuid id = orchestrix::Uuid::generate();
            if (ids_.contains(id)) throw std::runtime_error("duplicate id");
            batch_ids_.push_back(id);
        }
        auto found = streams_.find(stream);
        if (found == streams_.end()) found = streams_.emplace(std::string(stream), std::vector<Event>{}).first;
        if (found->second.size() != expected) throw std::runtime_error("version conflict");
        for (std::size_t i = 0; i < events.size(); ++i) {
            found->second.push_back(events[i]);
            ids_.insert(batch_ids_[i]);
        }
        return found->second.size();
    }
    [[nodiscard]] std::uint64_t stored() const { return ids_.size(); }

private:
    std::unordered_map<std::string, std::vector<Event>, string_hash, std::equal_to<>> streams_{};
    std::unordered_set<orchestrix::Uuid> ids_{};
    std::vector<orchestrix::Uuid> batch_ids_{};
};

template <class Baseline>
void baseline_w1(benchmark::State& state) {
    const PlainBatches input = w1_input(state);
    for (auto _ : state) {
        state.PauseTiming();
        settle_heap();
        auto store = std::make_unique<Baseline>();
        state.ResumeTiming();
        for (std::size_t r = 0; r < input.rounds.size(); ++r) {
            for (std::size_t s = 0; s < input.streams.size(); ++s) {
                benchmark::DoNotOptimize(
                    store->append(input.streams[s], input.rounds[r][s], expected_version(r, state)));
            }
        }
        state.PauseTiming();
        if (store->stored() != w1_events) state.SkipWithError("the baseline did not keep every event");
        store.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(w1_events));
}

void baseline_append(benchmark::State& state) { baseline_w1<BaselineStore>(state); }
void baseline_append_with_ids(benchmark::State& state) { baseline_w1<IdempotentBaselineStore>(state); }

std::vector<Event> one_stream(std::size_t length) {
    std::vector<Event> events;
    events.reserve(length);
    for (std::size_t i = 0; i < length; ++i) events.push_back(make_event("acc-000001", static_cast<int>(i)));
    return events;
}

// Appends into one stream of growing length: the cost per event must stay flat.
void library_append_one_stream(benchmark::State& state) {
    const auto length = static_cast<std::size_t>(state.range(0));
    const std::vector<Event> events = one_stream(length);
    for (auto _ : state) {
        state.PauseTiming();
        settle_heap();
        auto store = std::make_unique<Store>();
        state.ResumeTiming();
        for (std::size_t i = 0; i < length; ++i) {
            benchmark::DoNotOptimize(store->append("acc-000001", std::span<const Event>(&events[i], 1),
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
    const std::vector<Event> events = one_stream(length);
    for (auto _ : state) {
        state.PauseTiming();
        settle_heap();
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
BENCHMARK(library_append_prebuilt)
    ->Name("W1/append/library-prebuilt-envelopes")
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
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
