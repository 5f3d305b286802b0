#include <orchestrix/memory/bus.hpp>

#include "support/bus_events.hpp"
#include "support/catch.hpp"

#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace bus_test;
using Bus = orchestrix::InMemoryBus<UserEvent>;
using Recorded = orchestrix::RecordedEvent<UserEvent>;

static_assert(orchestrix::message_bus<Bus, UserCreated>);
static_assert(orchestrix::message_bus<Bus, UserEvent>);
static_assert(!orchestrix::async_message_bus<Bus, UserCreated>);

TEST_CASE("sync bus: a published event reaches its handlers in subscription order, on the caller's thread") {
    Bus bus;
    std::vector<std::string> calls;
    const auto caller = std::this_thread::get_id();
    auto first = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        CHECK(std::this_thread::get_id() == caller);
        calls.push_back("first:" + e.user_id);
    });
    auto second = bus.subscribe<UserCreated>([&](const UserCreated& e) { calls.push_back("second:" + e.user_id); });
    auto third = bus.subscribe<UserCreated>([&](const UserCreated& e) { calls.push_back("third:" + e.user_id); });

    bus.publish(UserCreated{"123", "John"});
    CHECK(calls == std::vector<std::string>{"first:123", "second:123", "third:123"});
    CHECK(bus.handler_count<UserCreated>() == 3);
}

TEST_CASE("sync bus: handlers see only the event type they subscribed to") {
    Bus bus;
    int created = 0;
    int renamed = 0;
    auto a = bus.subscribe<UserCreated>([&](const UserCreated&) { ++created; });
    auto b = bus.subscribe<UserRenamed>([&](const UserRenamed&) { ++renamed; });
    bus.publish(UserRenamed{"1", "Ann"});
    bus.publish(UserRenamed{"1", "Bob"});
    CHECK(created == 0);
    CHECK(renamed == 2);
    bus.publish(Numbered{}); // nobody listens: nothing happens
    CHECK(created == 0);
}

TEST_CASE("sync bus: publishing a variant dispatches the alternative it holds") {
    Bus bus;
    std::vector<std::string> calls;
    auto a = bus.subscribe<UserCreated>([&](const UserCreated& e) { calls.push_back("created:" + e.name); });
    auto b = bus.subscribe<UserRenamed>([&](const UserRenamed& e) { calls.push_back("renamed:" + e.name); });
    const UserEvent events[] = {UserCreated{"1", "Ann"}, UserRenamed{"1", "Anna"}};
    for (const auto& e : events) bus.publish(e);
    CHECK(calls == std::vector<std::string>{"created:Ann", "renamed:Anna"});
}

TEST_CASE("sync bus: a recorded event reaches alternative, all-event and recorded-event handlers, in that order") {
    Bus bus;
    std::vector<std::string> calls;
    auto recorded = bus.subscribe<Recorded>(
        [&](const Recorded& r) { calls.push_back("recorded:" + r.stream_id + "@" + std::to_string(r.version)); });
    auto all = bus.subscribe<UserEvent>(
        [&](const UserEvent& e) { calls.push_back("all:" + std::string(orchestrix::event_name_of(e))); });
    auto typed = bus.subscribe<UserCreated>([&](const UserCreated& e) { calls.push_back("typed:" + e.user_id); });

    Recorded r;
    r.stream_id = "user-7";
    r.version = 3;
    r.position = 9;
    r.event = UserCreated{"7", "Ann"};
    bus.publish(r);
    CHECK(calls == std::vector<std::string>{"typed:7", "all:user.created", "recorded:user-7@3"});

    SECTION("a plain event reaches the all-event handlers but not the recorded-event ones") {
        calls.clear();
        bus.publish(UserCreated{"8", "Bo"});
        CHECK(calls == std::vector<std::string>{"typed:8", "all:user.created"});
    }
    SECTION("a variant reaches the all-event handlers but not the recorded-event ones") {
        calls.clear();
        bus.publish(UserEvent{UserRenamed{"8", "Bo"}});
        CHECK(calls == std::vector<std::string>{"all:user.renamed"});
    }
}

TEST_CASE("sync bus: an envelope is published as its event") {
    Bus bus;
    int seen = 0;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated& e) { seen += e.user_id == "5" ? 1 : 100; });
    bus.publish(orchestrix::EventEnvelope<UserEvent>(UserCreated{"5", "Eve"}));
    CHECK(seen == 1);
}

TEST_CASE("sync bus: destroying or unsubscribing a subscription removes its handler") {
    Bus bus;
    int calls = 0;
    {
        auto scoped = bus.subscribe<UserCreated>([&](const UserCreated&) { ++calls; });
        CHECK(scoped.active());
        CHECK(scoped.id() != 0);
        bus.publish(UserCreated{});
    }
    bus.publish(UserCreated{});
    CHECK(calls == 1);
    CHECK(bus.handler_count<UserCreated>() == 0);

    auto explicit_ = bus.subscribe<UserCreated>([&](const UserCreated&) { ++calls; });
    explicit_.unsubscribe();
    CHECK_FALSE(explicit_.active());
    explicit_.unsubscribe(); // idempotent
    bus.publish(UserCreated{});
    CHECK(calls == 1);
}

TEST_CASE("sync bus: a moved subscription keeps the handler, and assigning over one unsubscribes the old handler") {
    Bus bus;
    std::vector<int> calls;
    auto a = bus.subscribe<UserCreated>([&](const UserCreated&) { calls.push_back(1); });
    orchestrix::Subscription moved = std::move(a);
    CHECK_FALSE(a.active()); // NOLINT(bugprone-use-after-move): a moved-from subscription is empty
    CHECK(moved.active());
    bus.publish(UserCreated{});
    CHECK(calls == std::vector<int>{1});

    moved = bus.subscribe<UserCreated>([&](const UserCreated&) { calls.push_back(2); });
    bus.publish(UserCreated{});
    CHECK(calls == std::vector<int>{1, 2});
}

TEST_CASE("sync bus: a released subscription keeps its handler for the bus's life") {
    Bus bus;
    int calls = 0;
    {
        auto s = bus.subscribe<UserCreated>([&](const UserCreated&) { ++calls; });
        s.release();
        CHECK_FALSE(s.active());
    }
    bus.publish(UserCreated{});
    CHECK(calls == 1);
}

TEST_CASE("sync bus: a subscription may outlive its bus") {
    orchestrix::Subscription s;
    CHECK_FALSE(s.active());
    {
        Bus bus;
        s = bus.subscribe<UserCreated>([](const UserCreated&) {});
        CHECK(s.active());
    }
    CHECK_FALSE(s.active());
    s.unsubscribe(); // does nothing, does not crash
}

TEST_CASE("sync bus: one handler's exception does not stop the others, and all failures come together") {
    Bus bus;
    std::vector<int> ran;
    auto a = bus.subscribe<UserCreated>([&](const UserCreated&) {
        ran.push_back(1);
        throw std::runtime_error("mail server down");
    });
    auto b = bus.subscribe<UserCreated>([&](const UserCreated&) { ran.push_back(2); });
    auto c = bus.subscribe<UserCreated>([&](const UserCreated&) {
        ran.push_back(3);
        throw 42; // not a std::exception
    });
    auto d = bus.subscribe<UserCreated>([&](const UserCreated&) { ran.push_back(4); });

    try {
        bus.publish(UserCreated{"1", "Ann"});
        FAIL("publish did not report the failing handlers");
    } catch (const orchestrix::HandlerError& e) {
        CHECK(ran == std::vector<int>{1, 2, 3, 4});
        REQUIRE(e.failures().size() == 2);
        CHECK(e.failures()[0].subscription_id == a.id());
        CHECK(e.failures()[0].event_type == "user.created");
        CHECK(e.failures()[0].message == "mail server down");
        CHECK(e.failures()[1].subscription_id == c.id());
        CHECK(e.failures()[1].message.find("not a std::exception") != std::string::npos);
        REQUIRE_THROWS_AS(std::rethrow_exception(e.failures()[0].error), std::runtime_error);
        const std::string what = e.what();
        CHECK(what.find("2 event handlers failed") != std::string::npos);
        CHECK(what.find("mail server down") != std::string::npos);
        CHECK(what.find("'user.created'") != std::string::npos);
    }
}

TEST_CASE("sync bus: the failure of an all-event handler reports the alternative's name") {
    Bus bus;
    auto s = bus.subscribe<UserEvent>([](const UserEvent&) { throw std::logic_error("no"); });
    try {
        bus.publish(UserRenamed{"1", "x"});
        FAIL("no HandlerError");
    } catch (const orchestrix::HandlerError& e) {
        REQUIRE(e.failures().size() == 1);
        CHECK(e.failures()[0].event_type == "user.renamed");
    }
}

TEST_CASE("sync bus: publish_all publishes in order and reports the failures of every event together") {
    Bus bus;
    std::vector<std::string> seen;
    auto s = bus.subscribe<UserEvent>([&](const UserEvent& e) {
        seen.emplace_back(orchestrix::event_name_of(e));
        if (std::holds_alternative<UserRenamed>(e)) throw std::runtime_error("rename failed");
    });
    const std::vector<UserEvent> events{UserRenamed{"1", "a"}, UserCreated{"1", "b"}, UserRenamed{"1", "c"}};
    REQUIRE_THROWS_AS(bus.publish_all(events), orchestrix::HandlerError);
    CHECK(seen == std::vector<std::string>{"user.renamed", "user.created", "user.renamed"});
    try {
        bus.publish_all(events);
    } catch (const orchestrix::HandlerError& e) {
        CHECK(e.failures().size() == 2);
    }
}

TEST_CASE("sync bus: a handler subscribed during a delivery does not see that event, but sees the next") {
    Bus bus;
    std::vector<std::string> calls;
    std::optional<orchestrix::Subscription> late;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        calls.push_back("early:" + e.user_id);
        if (!late) {
            late = bus.subscribe<UserCreated>([&](const UserCreated& e2) { calls.push_back("late:" + e2.user_id); });
        }
    });
    bus.publish(UserCreated{"1", ""});
    CHECK(calls == std::vector<std::string>{"early:1"});
    bus.publish(UserCreated{"2", ""});
    CHECK(calls == std::vector<std::string>{"early:1", "early:2", "late:2"});
}

TEST_CASE("sync bus: a handler unsubscribed during a delivery is not called afterwards") {
    Bus bus;
    std::vector<int> calls;
    orchestrix::Subscription second;
    auto first = bus.subscribe<UserCreated>([&](const UserCreated&) {
        calls.push_back(1);
        second.unsubscribe(); // removes a handler that has not run yet for this event
    });
    second = bus.subscribe<UserCreated>([&](const UserCreated&) { calls.push_back(2); });
    auto third = bus.subscribe<UserCreated>([&](const UserCreated&) { calls.push_back(3); });
    bus.publish(UserCreated{});
    CHECK(calls == std::vector<int>{1, 3});
    CHECK(bus.handler_count<UserCreated>() == 2);
}

TEST_CASE("sync bus: a handler may unsubscribe itself while it runs") {
    Bus bus;
    int calls = 0;
    orchestrix::Subscription self;
    self = bus.subscribe<UserCreated>([&](const UserCreated&) {
        ++calls;
        self.unsubscribe();
    });
    bus.publish(UserCreated{});
    bus.publish(UserCreated{});
    CHECK(calls == 1);
    CHECK(bus.handler_count<UserCreated>() == 0);
}

TEST_CASE("sync bus: a handler may publish, and the nested event is delivered before the outer delivery goes on") {
    Bus bus;
    std::vector<std::string> calls;
    auto created = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        calls.push_back("created");
        bus.publish(UserRenamed{e.user_id, e.name + " (renamed)"});
        calls.push_back("created-after");
    });
    auto renamed = bus.subscribe<UserRenamed>([&](const UserRenamed& e) { calls.push_back("renamed:" + e.name); });
    bus.publish(UserCreated{"1", "Ann"});
    CHECK(calls == std::vector<std::string>{"created", "renamed:Ann (renamed)", "created-after"});
}

TEST_CASE("sync bus: a failure in a nested publish is reported by the handler that published") {
    Bus bus;
    auto created = bus.subscribe<UserCreated>([&](const UserCreated&) { bus.publish(UserRenamed{}); });
    auto renamed = bus.subscribe<UserRenamed>([&](const UserRenamed&) { throw std::runtime_error("inner"); });
    try {
        bus.publish(UserCreated{});
        FAIL("no HandlerError");
    } catch (const orchestrix::HandlerError& e) {
        REQUIRE(e.failures().size() == 1);
        CHECK(e.failures()[0].subscription_id == created.id());
        CHECK(e.failures()[0].message.find("inner") != std::string::npos);
    }
}

TEST_CASE("sync bus: an empty handler is refused") {
    Bus bus;
    std::function<void(const UserCreated&)> empty;
    REQUIRE_THROWS_AS((void)bus.subscribe<UserCreated>(empty), orchestrix::InvalidArgumentError);
    CHECK(bus.handler_count<UserCreated>() == 0);
}

TEST_CASE("sync bus: a handler's captured subscription may be destroyed with the bus") {
    // The handler owns a subscription of the same bus: tearing the bus down must not deadlock.
    auto bus = std::make_unique<Bus>();
    auto holder = std::make_shared<orchestrix::Subscription>();
    *holder = bus->subscribe<UserRenamed>([](const UserRenamed&) {});
    auto s = bus->subscribe<UserCreated>([holder](const UserCreated&) {});
    holder.reset();
    s.unsubscribe(); // frees the handler, which unsubscribes its captured subscription
    CHECK(bus->handler_count<UserRenamed>() == 0);
    bus.reset();
}

TEST_CASE("sync bus: many threads publish while others subscribe and unsubscribe") {
    Bus bus;
    constexpr int publishers = 4;
    constexpr int events_per_publisher = 2000;
    std::atomic<std::uint64_t> steady_calls{0};
    std::atomic<std::uint64_t> churn_calls{0};
    auto steady = bus.subscribe<Numbered>([&](const Numbered&) { steady_calls.fetch_add(1); });

    std::latch start(publishers + 1);
    std::atomic<bool> done{false};
    std::thread churn([&] {
        start.arrive_and_wait();
        while (!done.load()) {
            auto s = bus.subscribe<Numbered>([&](const Numbered&) { churn_calls.fetch_add(1); });
            auto all = bus.subscribe<UserEvent>([&](const UserEvent&) { churn_calls.fetch_add(1); });
        }
    });
    std::vector<std::thread> threads;
    for (int p = 0; p < publishers; ++p) {
        threads.emplace_back([&, p] {
            start.arrive_and_wait();
            for (int i = 0; i < events_per_publisher; ++i) {
                bus.publish(Numbered{static_cast<std::uint32_t>(p), static_cast<std::uint64_t>(i)});
            }
        });
    }
    for (auto& t : threads) t.join();
    done = true;
    churn.join();
    CHECK(steady_calls.load() == std::uint64_t{publishers} * events_per_publisher);
    CHECK(bus.handler_count<Numbered>() == 1);
    CHECK(bus.handler_count<UserEvent>() == 0);
}
