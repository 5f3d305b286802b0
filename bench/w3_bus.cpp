// W3 bus.
//
// publish:  the sync bus (InMemoryBus) publishing one `Deposited` to 1, 10 or 1,000 handlers, against a plain
//           loop over a std::vector<std::function<void(const Deposited&)>> holding the same handlers. Time is
//           per publish; the counter ns_per_handler divides it by the handler count.
// route:    publishing a `bench::Event` variant whose alternative is known only at run time, with one
//           handler per alternative: the bus (a std::visit to the alternative's handler list) against an
//           std::unordered_map<std::type_index, std::vector<std::function<void(const void*)>>> looked up with
//           the held alternative's typeid. Each publish cycles through the three alternatives.
// async:    the async bus (AsyncInMemoryBus, 2 workers, one subscriber) delivering 100,000 events, against a
//           hand-written queue (std::mutex, std::condition_variable, std::deque) drained by one consumer
//           thread calling the same handler. Rate in events/s.
// latency:  one event at a time (publish, wait until handled): publish-to-handler latency, median and p99,
//           as counters (ns), for the async bus and the same hand-written queue.

#include "workload.hpp"

#include <orchestrix/async.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <typeindex>
#include <unordered_map>

namespace {

using namespace bench;

// --- sync publish ------------------------------------------------------------------------------------------

void library_publish(benchmark::State& state) {
    const auto handlers = static_cast<std::size_t>(state.range(0));
    orchestrix::InMemoryBus<Event> bus;
    std::int64_t sum = 0;
    std::vector<orchestrix::Subscription> subscriptions;
    for (std::size_t i = 0; i < handlers; ++i)
        subscriptions.push_back(bus.subscribe<Deposited>([&sum](const Deposited& e) { sum += e.amount; }));
    const Deposited event{"acc-000123", 7};
    for (auto _ : state) {
        bus.publish(event);
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.iterations());
    state.counters["ns_per_handler"] =
        benchmark::Counter(static_cast<double>(state.iterations() * static_cast<std::int64_t>(handlers)),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void baseline_publish(benchmark::State& state) {
    const auto handlers = static_cast<std::size_t>(state.range(0));
    std::int64_t sum = 0;
    std::vector<std::function<void(const Deposited&)>> list;
    for (std::size_t i = 0; i < handlers; ++i) list.emplace_back([&sum](const Deposited& e) { sum += e.amount; });
    const Deposited event{"acc-000123", 7};
    for (auto _ : state) {
        for (const auto& handler : list) handler(event);
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.iterations());
    state.counters["ns_per_handler"] =
        benchmark::Counter(static_cast<double>(state.iterations() * static_cast<std::int64_t>(handlers)),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// --- routing by run-time type --------------------------------------------------------------------------------

std::vector<Event> route_inputs() {
    return {Opened{"acc-000123", 0}, Deposited{"acc-000123", 7}, Withdrawn{"acc-000123", 3}};
}

void library_route(benchmark::State& state) {
    orchestrix::InMemoryBus<Event> bus;
    std::int64_t sum = 0;
    auto s1 = bus.subscribe<Opened>([&sum](const Opened& e) { sum += e.amount + 1; });
    auto s2 = bus.subscribe<Deposited>([&sum](const Deposited& e) { sum += e.amount; });
    auto s3 = bus.subscribe<Withdrawn>([&sum](const Withdrawn& e) { sum -= e.amount; });
    const auto inputs = route_inputs();
    std::size_t i = 0;
    for (auto _ : state) {
        bus.publish(inputs[i]);
        i = i == 2 ? 0 : i + 1;
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.iterations());
}

void baseline_route(benchmark::State& state) {
    std::int64_t sum = 0;
    std::unordered_map<std::type_index, std::vector<std::function<void(const void*)>>> routes;
    routes[typeid(Opened)].emplace_back([&sum](const void* e) { sum += static_cast<const Opened*>(e)->amount + 1; });
    routes[typeid(Deposited)].emplace_back([&sum](const void* e) { sum += static_cast<const Deposited*>(e)->amount; });
    routes[typeid(Withdrawn)].emplace_back([&sum](const void* e) { sum -= static_cast<const Withdrawn*>(e)->amount; });
    const auto inputs = route_inputs();
    std::size_t i = 0;
    for (auto _ : state) {
        std::visit(
            [&](const auto& e) {
                const auto found = routes.find(typeid(e));
                if (found == routes.end()) return;
                for (const auto& handler : found->second) handler(&e);
            },
            inputs[i]);
        i = i == 2 ? 0 : i + 1;
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.iterations());
}

// --- async -----------------------------------------------------------------------------------------------------

struct Tick {
    static constexpr std::string_view type_name = "bench.tick";
    std::int64_t sent_ns = 0;
    bool operator==(const Tick&) const = default;
};
using TickEvent = std::variant<Tick>;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

constexpr int async_events = 100000;

// The hand-written baseline: a queue under a mutex, one consumer thread, a counter the producer can wait on.
class PlainQueue {
public:
    explicit PlainQueue(std::function<void(const Tick&)> handler)
        : handler_(std::move(handler)), consumer_([this](std::stop_token stop) { run(stop); }) {}
    ~PlainQueue() {
        consumer_.request_stop();
        ready_.notify_all();
    }
    void push(const Tick& t) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(t);
            ++pushed_;
        }
        ready_.notify_one();
    }
    void wait_all() {
        std::unique_lock lock(mutex_);
        done_.wait(lock, [this] { return handled_ == pushed_; });
    }

private:
    void run(std::stop_token stop) {
        std::unique_lock lock(mutex_);
        while (ready_.wait(lock, stop, [this] { return !queue_.empty(); })) {
            const Tick t = queue_.front();
            queue_.pop_front();
            lock.unlock();
            handler_(t);
            lock.lock();
            ++handled_;
            done_.notify_all();
        }
    }

    std::function<void(const Tick&)> handler_;
    std::mutex mutex_;
    std::condition_variable_any ready_;
    std::condition_variable done_;
    std::deque<Tick> queue_;
    std::uint64_t pushed_ = 0;
    std::uint64_t handled_ = 0;
    std::jthread consumer_;
};

void library_async_throughput(benchmark::State& state) {
    std::atomic<std::int64_t> seen{0};
    orchestrix::AsyncInMemoryBus<TickEvent> bus(
        orchestrix::AsyncBusOptions{2, 1024, orchestrix::OverflowPolicy::block});
    auto s = bus.subscribe<Tick>([&seen](const Tick& t) { seen.fetch_add(t.sent_ns, std::memory_order_relaxed); });
    for (auto _ : state) {
        orchestrix::Completion<void> last;
        for (int i = 0; i < async_events; ++i) last = bus.publish(Tick{1});
        last.wait();
    }
    benchmark::DoNotOptimize(seen.load());
    state.SetItemsProcessed(state.iterations() * async_events);
}

void baseline_async_throughput(benchmark::State& state) {
    std::atomic<std::int64_t> seen{0};
    PlainQueue queue([&seen](const Tick& t) { seen.fetch_add(t.sent_ns, std::memory_order_relaxed); });
    for (auto _ : state) {
        for (int i = 0; i < async_events; ++i) queue.push(Tick{1});
        queue.wait_all();
    }
    benchmark::DoNotOptimize(seen.load());
    state.SetItemsProcessed(state.iterations() * async_events);
}

void report_latency(benchmark::State& state, std::vector<std::int64_t>& samples) {
    if (samples.empty()) return;
    std::sort(samples.begin(), samples.end());
    state.counters["median_ns"] = static_cast<double>(samples[samples.size() / 2]);
    state.counters["p99_ns"] = static_cast<double>(samples[samples.size() * 99 / 100]);
}

void library_async_latency(benchmark::State& state) {
    std::vector<std::int64_t> samples;
    samples.reserve(1 << 20);
    orchestrix::AsyncInMemoryBus<TickEvent> bus(
        orchestrix::AsyncBusOptions{2, 1024, orchestrix::OverflowPolicy::block});
    auto s = bus.subscribe<Tick>([&samples](const Tick& t) { samples.push_back(now_ns() - t.sent_ns); });
    for (auto _ : state) bus.publish(Tick{now_ns()}).wait();
    report_latency(state, samples);
    state.SetItemsProcessed(state.iterations());
}

void baseline_async_latency(benchmark::State& state) {
    std::vector<std::int64_t> samples;
    samples.reserve(1 << 20);
    PlainQueue queue([&samples](const Tick& t) { samples.push_back(now_ns() - t.sent_ns); });
    for (auto _ : state) {
        queue.push(Tick{now_ns()});
        queue.wait_all();
    }
    report_latency(state, samples);
    state.SetItemsProcessed(state.iterations());
}

} // namespace

BENCHMARK(library_publish)->Name("W3/publish/library")->Arg(1)->Arg(10)->Arg(1000);
BENCHMARK(baseline_publish)->Name("W3/publish/baseline")->Arg(1)->Arg(10)->Arg(1000);
BENCHMARK(library_route)->Name("W3/route/library");
BENCHMARK(baseline_route)->Name("W3/route/baseline");
BENCHMARK(library_async_throughput)->Name("W3/async-throughput/library")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(baseline_async_throughput)
    ->Name("W3/async-throughput/baseline")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(library_async_latency)->Name("W3/async-latency/library")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_async_latency)->Name("W3/async-latency/baseline")->Unit(benchmark::kMicrosecond)->UseRealTime();
