// Warm commands: Repository::execute with an AggregateCache against a hand-written command handler that
// keeps each account's state in a map (lookup, decide, append with a version check), at stream lengths
// 10, 1,000 and 100,000. Both sides make an event id per event, as a user's command does. Without the cache,
// every command replays the whole stream (the third series).

#include "workload.hpp"

#include <orchestrix/orchestrix.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace {

using bench::Deposited;
using bench::Event;
using bench::Opened;
using bench::Withdrawn;
using Store = orchestrix::InMemoryEventStore<Event>;

struct Deposit {
    std::int64_t amount = 0;
};

class Teller : public orchestrix::AggregateRoot<Teller, Event> {
public:
    void handle(const Deposit& c) {
        if (!opened_) throw std::logic_error("account not open");
        raise(Deposited{"acc-000001", c.amount});
    }
    void apply(const Opened& /*e*/) { opened_ = true; }
    void apply(const Deposited& e) { balance_ += e.amount; }
    void apply(const Withdrawn& e) { balance_ -= e.amount; }
    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    bool opened_ = false;
    std::int64_t balance_ = 0;
};

void fill(Store& store, std::int64_t length) {
    std::vector<orchestrix::EventEnvelope<Event>> events;
    for (std::int64_t n = 0; n < length; ++n) events.emplace_back(bench::make_event("acc-000001", static_cast<int>(n)));
    (void)store.append("acc-000001", events, orchestrix::ExpectedVersion::no_stream());
}

void library_cached(benchmark::State& state) {
    Store store;
    fill(store, state.range(0));
    orchestrix::AggregateCache<Teller> cache;
    orchestrix::Repository<Teller, Store> accounts(store);
    accounts.with_cache(cache);
    (void)accounts.execute("acc-000001", Deposit{1}); // warm
    for (auto _ : state) benchmark::DoNotOptimize(accounts.execute("acc-000001", Deposit{1}));
    state.SetItemsProcessed(state.iterations());
}

void library_uncached(benchmark::State& state) {
    Store store;
    fill(store, state.range(0));
    orchestrix::Repository<Teller, Store> accounts(store);
    for (auto _ : state) benchmark::DoNotOptimize(accounts.execute("acc-000001", Deposit{1}));
    state.SetItemsProcessed(state.iterations());
}

// The hand-written side: the state of each account in a map next to its events.
struct StoredEvent {
    orchestrix::Uuid id;
    Event event;
};
struct AccountRecord {
    bench::PlainAccount state;
    std::vector<StoredEvent> events;
};

void baseline_map(benchmark::State& state) {
    std::unordered_map<std::string, AccountRecord> accounts;
    AccountRecord& filled = accounts["acc-000001"];
    for (std::int64_t n = 0; n < state.range(0); ++n) {
        Event e = bench::make_event("acc-000001", static_cast<int>(n));
        std::visit(filled.state, e);
        filled.events.push_back(StoredEvent{orchestrix::Uuid::generate(), std::move(e)});
    }
    const std::string id = "acc-000001";
    for (auto _ : state) {
        auto found = accounts.find(id); // lookup
        if (found == accounts.end() || !found->second.state.opened) throw std::logic_error("account not open");
        AccountRecord& record = found->second;
        const std::size_t expected = record.events.size(); // decide at this version
        Event e = Deposited{"acc-000001", 1};
        if (record.events.size() != expected) throw std::logic_error("conflict"); // the version check
        std::visit(record.state, e);
        record.events.push_back(StoredEvent{orchestrix::Uuid::generate(), std::move(e)});
        benchmark::DoNotOptimize(record.events.back());
    }
    state.SetItemsProcessed(state.iterations());
}

} // namespace

BENCHMARK(library_cached)->Name("Command/warm/library-cached")->Arg(10)->Arg(1000)->Arg(100000);
BENCHMARK(baseline_map)->Name("Command/warm/baseline-map")->Arg(10)->Arg(1000)->Arg(100000);
BENCHMARK(library_uncached)->Name("Command/warm/library-uncached")->Arg(10)->Arg(1000)->Arg(100000)->Iterations(2000);
