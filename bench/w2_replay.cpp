// W2 replay: fold a 1,000,000-event stream into an aggregate, and replay all W1 streams.
// The library (Repository::load over InMemoryEventStore, folding stored events in place) against a
// hand-written baseline: a std::visit fold over a std::vector<Event> that counts the version as it goes.
// scaling/replay/{library,baseline}/N: the same pair over one stream of N = 1,000 .. 1,000,000 events.

#include "workload.hpp"

#include <benchmark/benchmark.h>

#include <functional>
#include <unordered_map>

namespace {

using namespace bench;
using Store = orchestrix::InMemoryEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;

std::unique_ptr<Store> make_long_stream(std::size_t length) {
    auto store = std::make_unique<Store>();
    std::vector<Envelope> chunk;
    for (std::size_t i = 0; i < length;) {
        chunk.clear();
        for (std::size_t k = 0; k < 1000 && i < length; ++k, ++i)
            chunk.emplace_back(make_event("acc-000001", static_cast<int>(i)));
        (void)store->append("acc-000001", chunk, orchestrix::ExpectedVersion::any());
    }
    return store;
}

std::vector<Event> make_plain_stream(std::size_t length) {
    std::vector<Event> events;
    events.reserve(length);
    for (std::size_t i = 0; i < length; ++i) events.push_back(make_event("acc-000001", static_cast<int>(i)));
    return events;
}

void library_replay_long(benchmark::State& state) {
    const auto length = static_cast<std::size_t>(state.range(0));
    const auto store = make_long_stream(length);
    orchestrix::Repository<Account, Store> accounts(*store);
    for (auto _ : state) {
        const Account account = accounts.load("acc-000001");
        benchmark::DoNotOptimize(account.balance());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(length));
}

void baseline_replay_long(benchmark::State& state) {
    const auto length = static_cast<std::size_t>(state.range(0));
    const auto events = make_plain_stream(length);
    for (auto _ : state) {
        PlainAccount account;
        std::uint64_t version = 0;
        for (const Event& e : events) {
            std::visit(account, e);
            ++version;
        }
        benchmark::DoNotOptimize(account.balance);
        benchmark::DoNotOptimize(version);
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(length));
}

void library_replay_w1(benchmark::State& state) {
    Store store;
    std::vector<std::string> streams;
    for (int s = 0; s < w1_streams; ++s) streams.push_back(account_id(s));
    for (int n = 0; n < w1_events_per_stream; ++n)
        for (const auto& stream : streams)
            (void)store.append(stream, {make_event(stream, n)},
                               orchestrix::ExpectedVersion::exact(static_cast<std::uint64_t>(n)));
    orchestrix::Repository<Account, Store> accounts(store);
    for (auto _ : state) {
        std::int64_t total = 0;
        std::uint64_t versions = 0;
        for (const auto& stream : streams) {
            const Account account = accounts.load(stream);
            total += account.balance();
            versions += account.version();
        }
        benchmark::DoNotOptimize(total);
        benchmark::DoNotOptimize(versions);
    }
    state.SetItemsProcessed(state.iterations() * w1_streams * w1_events_per_stream);
}

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// The baseline looks each stream up by its id, as any replay by id must, then folds it and counts its version
// (as the 1,000,000-event baseline does: a loaded aggregate knows its version, or it could not be saved).
void baseline_replay_w1(benchmark::State& state) {
    std::unordered_map<std::string, std::vector<Event>, string_hash, std::equal_to<>> streams;
    std::vector<std::string> ids;
    for (int s = 0; s < w1_streams; ++s) ids.push_back(account_id(s));
    for (int n = 0; n < w1_events_per_stream; ++n)
        for (const auto& id : ids) streams[id].push_back(make_event(id, n));
    for (auto _ : state) {
        std::int64_t total = 0;
        std::uint64_t versions = 0;
        for (const auto& id : ids) {
            const auto found = streams.find(std::string_view(id));
            PlainAccount account;
            std::uint64_t version = 0;
            for (const Event& e : found->second) {
                std::visit(account, e);
                ++version;
            }
            total += account.balance;
            versions += version;
        }
        benchmark::DoNotOptimize(total);
        benchmark::DoNotOptimize(versions);
    }
    state.SetItemsProcessed(state.iterations() * w1_streams * w1_events_per_stream);
}

} // namespace

BENCHMARK(library_replay_long)->Name("W2/replay-1M/library")->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK(baseline_replay_long)->Name("W2/replay-1M/baseline")->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK(library_replay_w1)->Name("W2/replay-w1/library")->Unit(benchmark::kMillisecond);
BENCHMARK(baseline_replay_w1)->Name("W2/replay-w1/baseline")->Unit(benchmark::kMillisecond);
BENCHMARK(library_replay_long)
    ->Name("scaling/replay/library")
    ->RangeMultiplier(10)
    ->Range(1000, 1000000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(baseline_replay_long)
    ->Name("scaling/replay/baseline")
    ->RangeMultiplier(10)
    ->Range(1000, 1000000)
    ->Unit(benchmark::kMillisecond);
