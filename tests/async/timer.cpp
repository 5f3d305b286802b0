#include <orchestrix/async/bus.hpp>
#include <orchestrix/async/timer.hpp>

#include "support/bus_events.hpp"
#include "support/catch.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Only lower bounds are checked on elapsed time, and every wait for an outcome has a generous ceiling, so a
// loaded machine (or a sanitizer) slows these tests down without failing them.

using namespace std::chrono_literals;
using bus_test::UserCreated;
using bus_test::UserEvent;

namespace {

constexpr auto patience = 30s;

// Sleeps on `timer`, then appends `name` to `log`.
orchestrix::Completion<void> sleep_then_log(orchestrix::Timer& timer, orchestrix::Timer::clock::time_point deadline,
                                            std::string name, std::mutex& mutex, std::vector<std::string>& log) {
    co_await timer.sleep_until(deadline);
    std::lock_guard lock(mutex);
    log.push_back(std::move(name));
}

orchestrix::Completion<std::chrono::steady_clock::duration> timed_sleep(std::chrono::milliseconds delay) {
    const auto start = std::chrono::steady_clock::now();
    co_await orchestrix::sleep_for(delay);
    co_return std::chrono::steady_clock::now() - start;
}

} // namespace

TEST_CASE("timer: orchestrix::sleep_for suspends a coroutine for at least the delay") {
    orchestrix::Completion<std::chrono::steady_clock::duration> slept = timed_sleep(20ms);
    REQUIRE(slept.wait_for(patience));
    CHECK(slept.get() >= 20ms);

    orchestrix::Completion<void> after = orchestrix::after(1ms);
    REQUIRE(after.wait_for(patience));
    after.get();
}

TEST_CASE("timer: a delay that is not positive ends at once") {
    orchestrix::Timer timer;
    CHECK(timer.sleep_for(0ms).ready());
    CHECK(timer.sleep_for(-5ms).ready());
    CHECK(timer.sleep_until(orchestrix::Timer::clock::now() - 1s).ready());
    CHECK(timer.pending() == 0);
}

TEST_CASE("timer: sleeps end in deadline order, whatever the order they began in") {
    orchestrix::Timer timer;
    std::mutex mutex;
    std::vector<std::string> log;
    const auto base = orchestrix::Timer::clock::now();
    auto late = sleep_then_log(timer, base + 60ms, "late", mutex, log);
    auto early = sleep_then_log(timer, base + 10ms, "early", mutex, log);
    auto middle = sleep_then_log(timer, base + 30ms, "middle", mutex, log);
    auto tie = sleep_then_log(timer, base + 30ms, "middle, begun later", mutex, log);
    for (auto* c : {&late, &early, &middle, &tie}) {
        REQUIRE(c->wait_for(patience));
        c->get();
    }
    CHECK(log == std::vector<std::string>{"early", "middle", "middle, begun later", "late"});
    CHECK(orchestrix::Timer::clock::now() - base >= 60ms);
    CHECK(timer.pending() == 0);
}

TEST_CASE("timer: shutdown cancels pending sleeps with TimerCancelledError, and refuses new ones") {
    orchestrix::Timer timer;
    std::mutex mutex;
    std::vector<std::string> log;
    auto sleeper = sleep_then_log(timer, orchestrix::Timer::clock::now() + 24h, "woke", mutex, log);
    CHECK_FALSE(sleeper.ready());
    CHECK(timer.pending() == 1);

    timer.shutdown();
    REQUIRE(sleeper.ready()); // resumed on the thread that called shutdown, before it returned
    CHECK_THROWS_AS(sleeper.get(), orchestrix::TimerCancelledError);
    CHECK(log.empty());
    CHECK(timer.pending() == 0);

    auto refused = timer.sleep_for(1ms);
    REQUIRE(refused.ready());
    CHECK_THROWS_AS(refused.get(), orchestrix::TimerCancelledError);
    timer.shutdown(); // idempotent
}

TEST_CASE("timer: a coroutine handler on the async bus sleeps with orchestrix::sleep_for") {
    orchestrix::AsyncBusOptions options;
    options.workers = 1;
    orchestrix::AsyncInMemoryBus<UserEvent> bus(options);
    std::atomic<int> slept{0};
    std::atomic<int> plain{0};
    auto sleeper = bus.subscribe<UserCreated>([&](const UserCreated&) -> orchestrix::Completion<void> {
        co_await orchestrix::sleep_for(20ms);
        slept.fetch_add(1);
    });
    auto other = bus.subscribe<UserCreated>([&](const UserCreated&) { plain.fetch_add(1); });

    const auto start = std::chrono::steady_clock::now();
    UserCreated event{"1", "Ada"};
    auto done = bus.publish(std::move(event));
    REQUIRE(done.wait_for(patience));
    done.get();
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
    CHECK(slept.load() == 1);
    CHECK(plain.load() == 1);
}

TEST_CASE("timer: shutting a handler's timer down ends its pending sleep, and the bus then shuts down at once") {
    orchestrix::Timer timer;
    orchestrix::AsyncInMemoryBus<UserEvent> bus;
    std::atomic<bool> started{false};
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) -> orchestrix::Completion<void> {
        started.store(true);
        co_await timer.sleep_for(24h);
    });
    UserCreated event{"1", "Ada"};
    auto done = bus.publish(std::move(event));
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (timer.pending() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    REQUIRE(started.load());
    REQUIRE(timer.pending() == 1);

    timer.shutdown();
    REQUIRE(done.wait_for(patience));
    try {
        done.get();
        FAIL("the handler's cancelled sleep did not fail its delivery");
    } catch (const orchestrix::HandlerError& e) {
        REQUIRE(e.failures().size() == 1);
        CHECK_THROWS_AS(std::rethrow_exception(e.failures()[0].error), orchestrix::TimerCancelledError);
    }
    bus.shutdown();
    CHECK(bus.closed());
}
