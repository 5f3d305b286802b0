#include <orchestrix/async/bus.hpp>

#include "support/bus_events.hpp"
#include "support/catch.hpp"
#include "support/env.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <latch>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace bus_test;
using AsyncBus = orchestrix::AsyncInMemoryBus<UserEvent>;

static_assert(orchestrix::async_message_bus<AsyncBus, UserCreated>);
static_assert(!orchestrix::message_bus<AsyncBus, UserCreated>);

namespace {

// Events each producer publishes in the stress tests: 5000 by default, ORCHESTRIX_BUS_STRESS_MESSAGES=250000 for
// the full size.
std::uint64_t stress_messages() {
    return test_support::env_count("ORCHESTRIX_BUS_STRESS_MESSAGES", 5000, 1, 10'000'000);
}

// A gate handlers wait at until the test opens it.
class Gate {
public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        changed_.notify_all();
    }
    void pass() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool open_ = false;
};

// Counts up; lets a thread wait until the count reaches a target.
class Counter {
public:
    void add() {
        {
            std::lock_guard lock(mutex_);
            ++count_;
        }
        changed_.notify_all();
    }
    void wait_for(std::uint64_t target) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return count_ >= target; });
    }
    std::uint64_t value() {
        std::lock_guard lock(mutex_);
        return count_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::uint64_t count_ = 0;
};

// Checks that each producer's events arrive exactly once and in sequence.
class OrderChecker {
public:
    explicit OrderChecker(std::size_t producers) : next_(producers, 0) {}
    void see(const Numbered& e) { // called by one subscriber: never concurrently
        if (e.sequence == next_[e.producer]) {
            ++next_[e.producer];
        } else if (e.sequence < next_[e.producer]) {
            ++duplicates;
        } else {
            ++order_violations;
            next_[e.producer] = e.sequence + 1;
        }
        ++delivered;
    }
    std::uint64_t delivered = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t order_violations = 0;

private:
    std::vector<std::uint64_t> next_;
};

orchestrix::Completion<void> publish_and_record(AsyncBus& bus, std::vector<std::string>& log) {
    log.emplace_back("before");
    // The event is a local, not a temporary inside the co_await expression: g++ 12 destroys such an
    // aggregate temporary twice.
    UserCreated event{"1", "Ann"};
    co_await bus.publish(std::move(event));
    log.emplace_back("after");
}

orchestrix::Completion<void> publish_failing(AsyncBus& bus, std::string& caught) {
    try {
        UserRenamed event{"1", "x"};
        co_await bus.publish(std::move(event));
    } catch (const orchestrix::HandlerError& e) {
        caught = e.failures().at(0).message;
    }
}

} // namespace

TEST_CASE("async bus: publish returns at once, and handlers run on a worker and the completion tells when") {
    AsyncBus bus;
    Gate gate;
    std::thread::id handler_thread;
    int calls = 0;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        gate.pass();
        handler_thread = std::this_thread::get_id();
        calls += e.user_id == "1" ? 1 : 100;
    });
    auto done = bus.publish(UserCreated{"1", "Ann"});
    CHECK_FALSE(done.ready()); // the handler waits at the gate, yet publish returned
    gate.open();
    done.get();
    CHECK(calls == 1);
    CHECK(handler_thread != std::this_thread::get_id());
}

TEST_CASE("async bus: with no subscriber the completion is ready at once") {
    AsyncBus bus;
    auto done = bus.publish(UserRenamed{});
    CHECK(done.ready());
    REQUIRE_NOTHROW(done.get());
    CHECK(bus.in_flight() == 0);
}

TEST_CASE("async bus: variants and recorded events reach typed, all-event and recorded-event handlers") {
    AsyncBus bus;
    std::mutex mutex;
    std::vector<std::string> seen;
    auto record = [&](std::string what) {
        std::lock_guard lock(mutex);
        seen.push_back(std::move(what));
    };
    auto typed = bus.subscribe<UserRenamed>([&](const UserRenamed& e) { record("typed:" + e.name); });
    auto all = bus.subscribe<UserEvent>(
        [&](const UserEvent& e) { record("all:" + std::string(orchestrix::event_name_of(e))); });
    auto recorded = bus.subscribe<orchestrix::RecordedEvent<UserEvent>>(
        [&](const orchestrix::RecordedEvent<UserEvent>& r) { record("recorded:" + r.stream_id); });

    bus.publish(UserEvent{UserRenamed{"1", "Bo"}}).get();
    orchestrix::RecordedEvent<UserEvent> r;
    r.stream_id = "user-1";
    r.version = 1;
    r.event = UserCreated{"1", "Ann"};
    bus.publish(r).get();
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<std::string>{"all:user.created", "all:user.renamed", "recorded:user-1", "typed:Bo"});
}

TEST_CASE("async bus: handler failures reach the completion, and the other handlers still run") {
    AsyncBus bus;
    std::atomic<int> ran{0};
    auto a = bus.subscribe<UserCreated>([&](const UserCreated&) {
        ++ran;
        throw std::runtime_error("projection broke");
    });
    auto b = bus.subscribe<UserCreated>([&](const UserCreated&) { ++ran; });
    auto c = bus.subscribe<UserEvent>([&](const UserEvent&) {
        ++ran;
        throw std::invalid_argument("bad");
    });
    auto done = bus.publish(UserCreated{"1", "Ann"});
    try {
        done.get();
        FAIL("the completion did not report the failures");
    } catch (const orchestrix::HandlerError& e) {
        CHECK(ran.load() == 3);
        REQUIRE(e.failures().size() == 2);
        std::vector<std::uint64_t> ids{e.failures()[0].subscription_id, e.failures()[1].subscription_id};
        std::sort(ids.begin(), ids.end());
        CHECK(ids == std::vector<std::uint64_t>{a.id(), c.id()});
        CHECK(e.failures()[0].event_type == "user.created");
    }
    // A failure does not stop later events.
    REQUIRE_THROWS_AS(bus.publish(UserCreated{}).get(), orchestrix::HandlerError);
    CHECK(ran.load() == 6);
}

TEST_CASE("async bus: co_await on a publish resumes once every handler has run") {
    AsyncBus bus;
    Gate gate;
    std::atomic<bool> handled{false};
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) {
        gate.pass();
        handled = true;
    });
    std::vector<std::string> log;
    auto task = publish_and_record(bus, log);
    CHECK(log == std::vector<std::string>{"before"}); // suspended at co_await
    gate.open();
    task.get();
    CHECK(handled.load());
    CHECK(log == std::vector<std::string>{"before", "after"});

    SECTION("a failure is rethrown at co_await") {
        auto fails = bus.subscribe<UserRenamed>([](const UserRenamed&) { throw std::runtime_error("boom"); });
        std::string caught;
        publish_failing(bus, caught).get();
        CHECK(caught == "boom");
    }
}

TEST_CASE("async bus: a coroutine handler's delivery ends when it finishes, and its next event waits") {
    AsyncBus bus;
    orchestrix::CompletionSource<void> external;
    auto external_done = std::make_shared<orchestrix::Completion<void>>(external.completion());
    std::mutex mutex;
    std::vector<std::string> log;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated& e) -> orchestrix::Completion<void> {
        const std::string id = e.user_id; // copy: the event is only guaranteed until the first suspension
        {
            std::lock_guard lock(mutex);
            log.push_back("start:" + id);
        }
        if (id == "1") co_await std::move(*external_done);
        std::lock_guard lock(mutex);
        log.push_back("end:" + id);
    });
    auto first = bus.publish(UserCreated{"1", ""});
    auto second = bus.publish(UserCreated{"2", ""});
    CHECK_FALSE(first.wait_for(std::chrono::milliseconds(0)));
    external.set_value();
    first.get();
    second.get();
    CHECK(log == std::vector<std::string>{"start:1", "end:1", "start:2", "end:2"});
}

TEST_CASE("async bus: a coroutine handler's failure reaches the completion") {
    AsyncBus bus;
    auto s = bus.subscribe<UserCreated>([](const UserCreated&) -> orchestrix::Completion<void> {
        co_await orchestrix::Completion<void>::ready_with();
        throw std::runtime_error("after resuming");
    });
    try {
        bus.publish(UserCreated{}).get();
        FAIL("no HandlerError");
    } catch (const orchestrix::HandlerError& e) {
        REQUIRE(e.failures().size() == 1);
        CHECK(e.failures()[0].message == "after resuming");
    }
}

TEST_CASE("async bus: each subscriber sees every event once, in publish order, under concurrent publishers") {
    constexpr std::size_t producers = 4;
    const std::uint64_t per_producer = stress_messages();
    AsyncBus bus(orchestrix::AsyncBusOptions{.workers = 3, .capacity = 256});
    OrderChecker steady(producers);
    OrderChecker also_steady(producers);
    std::atomic<std::uint64_t> thrown{0};
    auto a = bus.subscribe<Numbered>([&](const Numbered& e) { steady.see(e); });
    auto b = bus.subscribe<UserEvent>([&](const UserEvent& e) { also_steady.see(std::get<Numbered>(e)); });
    auto flaky = bus.subscribe<Numbered>([&](const Numbered& e) {
        if (e.sequence % 97 == 0) {
            ++thrown;
            throw std::runtime_error("now and then");
        }
    });

    std::atomic<bool> stop_churn{false};
    std::atomic<std::uint64_t> churn_calls{0};
    std::latch start(producers + 1);
    std::thread churn([&] {
        start.arrive_and_wait();
        while (!stop_churn.load()) {
            auto s = bus.subscribe<Numbered>([&](const Numbered&) { ++churn_calls; });
        }
    });
    std::atomic<std::uint64_t> failed_completions{0};
    std::vector<std::thread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            start.arrive_and_wait();
            std::vector<orchestrix::Completion<void>> completions;
            completions.reserve(per_producer);
            for (std::uint64_t i = 0; i < per_producer; ++i) {
                completions.push_back(bus.publish(Numbered{static_cast<std::uint32_t>(p), i}));
            }
            for (auto& c : completions) {
                try {
                    c.get();
                } catch (const orchestrix::HandlerError&) {
                    ++failed_completions;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    stop_churn = true;
    churn.join();
    bus.shutdown();

    CHECK(steady.delivered == producers * per_producer);
    CHECK(steady.duplicates == 0);
    CHECK(steady.order_violations == 0);
    CHECK(also_steady.delivered == producers * per_producer);
    CHECK(also_steady.order_violations == 0);
    const std::uint64_t expected_failures = producers * ((per_producer + 96) / 97);
    CHECK(thrown.load() == expected_failures);
    CHECK(failed_completions.load() == expected_failures);
}

TEST_CASE("async bus: a full queue fails fast when the caller asks") {
    AsyncBus bus(
        orchestrix::AsyncBusOptions{.workers = 1, .capacity = 2, .overflow = orchestrix::OverflowPolicy::fail});
    Gate gate;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) { gate.pass(); });
    auto first = bus.publish(UserCreated{"1", ""});
    auto second = bus.publish(UserCreated{"2", ""});
    CHECK(bus.in_flight() == 2);
    try {
        (void)bus.publish(UserCreated{"3", ""});
        FAIL("a third event was accepted");
    } catch (const orchestrix::QueueFullError& e) {
        CHECK(e.capacity() == 2);
        CHECK(e.event_type() == "user.created");
    }
    gate.open();
    first.get();
    second.get();
    REQUIRE_NOTHROW(bus.publish(UserCreated{"4", ""}).get());

    SECTION("a blocking bus can be asked to fail for one call") {
        AsyncBus blocking(orchestrix::AsyncBusOptions{.workers = 1, .capacity = 1});
        Gate hold;
        auto h = blocking.subscribe<UserCreated>([&](const UserCreated&) { hold.pass(); });
        auto one = blocking.publish(UserCreated{});
        REQUIRE_THROWS_AS((void)blocking.publish(UserCreated{}, orchestrix::OverflowPolicy::fail),
                          orchestrix::QueueFullError);
        hold.open();
        one.get();
    }
}

TEST_CASE("async bus: a full queue makes a blocking publish wait until an event is delivered") {
    AsyncBus bus(orchestrix::AsyncBusOptions{.workers = 1, .capacity = 1});
    Gate gate;
    std::atomic<int> handled{0};
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) {
        gate.pass();
        ++handled;
    });
    auto first = bus.publish(UserCreated{"1", ""});
    int handled_when_accepted = -1;
    std::optional<orchestrix::Completion<void>> second;
    std::thread publisher([&] {
        second = bus.publish(UserCreated{"2", ""}); // waits for room
        handled_when_accepted = handled.load();
    });
    gate.open();
    publisher.join();
    CHECK(handled_when_accepted >= 1); // it returned only after the first event was delivered
    first.get();
    second->get();
    CHECK(handled.load() == 2);
}

TEST_CASE("async bus: shutdown wakes a publisher waiting for room with BusClosedError") {
    AsyncBus bus(orchestrix::AsyncBusOptions{.workers = 1, .capacity = 1});
    Gate gate;
    std::atomic<int> handled{0};
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) {
        gate.pass();
        ++handled;
    });
    auto first = bus.publish(UserCreated{"1", ""});
    std::atomic<bool> refused{false};
    std::thread publisher([&] {
        try {
            (void)bus.publish(UserCreated{"2", ""});
        } catch (const orchestrix::BusClosedError&) {
            refused = true;
        }
    });
    std::thread closer([&] { bus.shutdown(); });
    publisher.join(); // ends only once shutdown refused it: the first event cannot finish before the gate opens
    CHECK(refused.load());
    gate.open();
    closer.join();
    CHECK(first.ready());
    CHECK(handled.load() == 1);
}

TEST_CASE("async bus: shutdown delivers every accepted event, then refuses new ones") {
    constexpr int events = 2000;
    std::atomic<int> handled{0};
    std::vector<orchestrix::Completion<void>> completions;
    AsyncBus bus(orchestrix::AsyncBusOptions{.workers = 2, .capacity = 4096});
    auto a = bus.subscribe<Numbered>([&](const Numbered&) { ++handled; });
    auto b = bus.subscribe<Numbered>([&](const Numbered&) { ++handled; });
    for (int i = 0; i < events; ++i) completions.push_back(bus.publish(Numbered{0, static_cast<std::uint64_t>(i)}));
    bus.shutdown();
    CHECK(handled.load() == 2 * events);
    for (auto& c : completions) CHECK(c.ready());
    CHECK(bus.closed());
    CHECK(bus.in_flight() == 0);
    try {
        (void)bus.publish(UserCreated{});
        FAIL("a closed bus accepted an event");
    } catch (const orchestrix::BusClosedError& e) {
        CHECK(e.event_type() == "user.created");
    }
    bus.shutdown(); // idempotent
}

TEST_CASE("async bus: shutting down while publishers run ends every publish as delivered or refused") {
    constexpr std::size_t producers = 4;
    const std::uint64_t per_producer = stress_messages();
    AsyncBus bus(orchestrix::AsyncBusOptions{.workers = 2, .capacity = 64});
    Counter delivered;
    auto s = bus.subscribe<Numbered>([&](const Numbered&) { delivered.add(); });
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> refused{0};
    std::vector<std::thread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            for (std::uint64_t i = 0; i < per_producer; ++i) {
                try {
                    auto c = bus.publish(Numbered{static_cast<std::uint32_t>(p), i});
                    ++accepted;
                } catch (const orchestrix::BusClosedError&) {
                    ++refused;
                }
            }
        });
    }
    delivered.wait_for(std::min<std::uint64_t>(200, producers * per_producer));
    bus.shutdown();
    const std::uint64_t delivered_at_shutdown = delivered.value();
    for (auto& t : threads) t.join();
    CHECK(accepted.load() + refused.load() == producers * per_producer);
    CHECK(delivered_at_shutdown == accepted.load()); // nothing accepted was lost, nothing after shutdown ran
    CHECK(delivered.value() == accepted.load());
}

TEST_CASE("async bus: unsubscribing drops undelivered events and waits for the running call") {
    AsyncBus bus(orchestrix::AsyncBusOptions{.workers = 1, .capacity = 16});
    Gate gate;
    std::latch entered(1);
    std::atomic<int> handled{0};
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) {
        entered.count_down(); // only the first event ever gets here
        gate.pass();
        ++handled;
    });
    auto first = bus.publish(UserCreated{"1", ""});
    auto second = bus.publish(UserCreated{"2", ""});
    entered.wait(); // the handler is running the first event
    int handled_after_unsubscribe = -1;
    std::thread unsubscriber([&] {
        s.unsubscribe();
        handled_after_unsubscribe = handled.load();
    });
    second.wait(); // the dropped event no longer waits for the handler
    CHECK_FALSE(first.ready());
    gate.open();
    unsubscriber.join();
    CHECK(handled_after_unsubscribe == 1); // it returned only after the running call ended
    first.get();
    second.get();
    CHECK(handled.load() == 1);
}

TEST_CASE("async bus: a handler may unsubscribe itself and publish") {
    AsyncBus bus;
    orchestrix::Subscription self;
    Counter renamed;
    std::atomic<int> created{0};
    std::optional<orchestrix::Completion<void>> inner;
    self = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        ++created;
        self.unsubscribe();
        inner = bus.publish(UserRenamed{e.user_id, "renamed"});
    });
    auto r = bus.subscribe<UserRenamed>([&](const UserRenamed&) { renamed.add(); });
    bus.publish(UserCreated{"1", ""}).get();
    bus.publish(UserCreated{"2", ""}).get();
    renamed.wait_for(1);
    inner->get();
    CHECK(created.load() == 1);
    CHECK(renamed.value() == 1);
}

TEST_CASE("async bus: shutdown from a handler is refused instead of waiting for itself") {
    AsyncBus bus;
    std::string error;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) {
        try {
            bus.shutdown();
        } catch (const orchestrix::Error& e) {
            error = e.what();
        }
    });
    bus.publish(UserCreated{}).get();
    CHECK(error.find("own handlers") != std::string::npos);
    CHECK_FALSE(bus.closed());
}

TEST_CASE("async bus: bad options are refused") {
    REQUIRE_THROWS_AS(AsyncBus(orchestrix::AsyncBusOptions{.workers = 0}), orchestrix::InvalidArgumentError);
    REQUIRE_THROWS_AS(AsyncBus(orchestrix::AsyncBusOptions{.capacity = 0}), orchestrix::InvalidArgumentError);
}
