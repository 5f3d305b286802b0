#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/subscription.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <chrono>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::position_t;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using namespace std::chrono_literals;

struct Seen {
    std::mutex mutex;
    std::vector<position_t> positions;
    void add(const Recorded& e) {
        std::lock_guard lock(mutex);
        positions.push_back(e.position);
    }
    std::vector<position_t> get() {
        std::lock_guard lock(mutex);
        return positions;
    }
};

} // namespace

TEST_CASE("catch-up subscription: delivers stored events after its start position, then live ones") {
    Store store;
    for (int i = 0; i < 5; ++i)
        store.append("acc-" + std::to_string(i), {AccountOpened{"a", "b"}}, ExpectedVersion::no_stream());
    Seen seen;
    // A poll interval far beyond the test's waits: only the store's notification can deliver live events in time.
    orchestrix::CatchUpSubscription<Store> subscription(store, 2, [&](const Recorded& e) { seen.add(e); },
                                                        {.batch_size = 2, .poll_interval = 60s});
    subscription.start();
    REQUIRE(subscription.wait_for(5, 10s));
    CHECK(seen.get() == std::vector<position_t>{3, 4, 5});
    std::thread writer([&] {
        for (int i = 0; i < 20; ++i) store.append("live", {MoneyDeposited{"live", i}}, ExpectedVersion::any());
    });
    writer.join();
    REQUIRE(subscription.wait_for(25, 10s));
    subscription.stop();
    const auto positions = seen.get();
    REQUIRE(positions.size() == 23);
    for (std::size_t i = 0; i < positions.size(); ++i) CHECK(positions[i] == i + 3);
    CHECK(subscription.checkpoint() == 25);
}

TEST_CASE("catch-up subscription: driven by the caller, with a filter") {
    Store store;
    store.append("order-1", {AccountOpened{"o", "x"}}, ExpectedVersion::no_stream());
    store.append("acc-1", {AccountOpened{"a", "x"}}, ExpectedVersion::no_stream());
    store.append("order-2", {MoneyDeposited{"o", 1}}, ExpectedVersion::no_stream());
    Seen seen;
    orchestrix::CatchUpSubscription<Store> subscription(store, 0, [&](const Recorded& e) { seen.add(e); },
                                                        {.filter = orchestrix::EventFilter::stream_prefix("order-")});
    CHECK(subscription.poll_once() == 3);
    CHECK(subscription.poll_once() == 0);
    CHECK(seen.get() == std::vector<position_t>{1, 3});
    CHECK_FALSE(subscription.running());
}

TEST_CASE("catch-up subscription: stopping is clean while it waits, and it can start again") {
    Store store;
    Seen seen;
    orchestrix::CatchUpSubscription<Store> subscription(store, 0, [&](const Recorded& e) { seen.add(e); },
                                                        {.poll_interval = 60s});
    subscription.start();
    subscription.start(); // already running: nothing happens
    std::this_thread::sleep_for(5ms);
    subscription.stop(); // wakes it from its wait at once
    CHECK_FALSE(subscription.running());
    store.append("acc-1", {AccountOpened{"a", "b"}}, ExpectedVersion::no_stream());
    subscription.start();
    REQUIRE(subscription.wait_for(1, 10s));
    CHECK(seen.get() == std::vector<position_t>{1});
}

TEST_CASE("in-memory store: wait_for_position wakes on append, times out, and honours a stop request") {
    Store store;
    CHECK_FALSE(store.wait_for_position(1, 1ms));
    CHECK(store.wait_for_position(0, 1ms));
    std::jthread writer([&] {
        std::this_thread::sleep_for(5ms);
        store.append("acc-1", {AccountOpened{"a", "b"}}, ExpectedVersion::no_stream());
    });
    CHECK(store.wait_for_position(1, 60s));
    std::stop_source stop;
    std::jthread stopper([&] {
        std::this_thread::sleep_for(5ms);
        stop.request_stop();
    });
    CHECK_FALSE(store.wait_for_position(2, 60s, stop.get_token()));
}
