// What the asynchronous bus reports to an attached Observer: publishes, handler failures and spans.

#include <orchestrix/async/bus.hpp>
#include <orchestrix/core/observer.hpp>

#include "support/bus_events.hpp"
#include "support/catch.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace bus_test;
using orchestrix::TraceContext;
using orchestrix::TraceScope;
using AsyncBus = orchestrix::AsyncInMemoryBus<UserEvent>;

// Records what it is told (copies: the observations' views live only during the call), from any thread,
// and hands out spans numbered 1, 2, ... in the parent's trace.
class RecordingObserver : public orchestrix::Observer {
public:
    struct Publish {
        std::string bus;
        std::string type;
        std::size_t handlers = 0;
        std::size_t failures = 0;
    };
    struct Span {
        std::string name;
        orchestrix::SpanKind kind = orchestrix::SpanKind::internal;
        TraceContext parent{};
        TraceContext context{};
        bool ended = false;
        bool error = false;
        std::string message{};
    };

    void on_publish(const orchestrix::PublishObservation& o) override {
        std::lock_guard lock(mutex_);
        publishes_.push_back({std::string(o.bus), std::string(o.type), o.handlers, o.failures});
    }
    void on_handler_failure(const orchestrix::HandlerFailureObservation& o) override {
        std::lock_guard lock(mutex_);
        failures_.push_back(std::string(o.bus) + " " + std::string(o.type) + ": " + std::string(o.error));
    }
    TraceContext start_span(const orchestrix::SpanStart& s) override {
        std::lock_guard lock(mutex_);
        Span span;
        span.name = std::string(s.name);
        span.kind = s.kind;
        span.parent = s.parent;
        span.context.trace_id = s.parent.trace_id;
        if (!s.parent.valid()) span.context.trace_id.fill(0xAB); // a root span: a new trace
        span.context.span_id[7] = static_cast<std::uint8_t>(spans_.size() + 1);
        spans_.push_back(span);
        return span.context;
    }
    void end_span(const TraceContext& context, const orchestrix::SpanEnd& end) override {
        std::lock_guard lock(mutex_);
        for (auto& span : spans_) {
            if (span.context != context) continue;
            span.ended = true;
            span.error = end.error;
            span.message = std::string(end.message);
        }
    }

    std::vector<Publish> publishes() const {
        std::lock_guard lock(mutex_);
        return publishes_;
    }
    std::vector<std::string> failures() const {
        std::lock_guard lock(mutex_);
        return failures_;
    }
    std::vector<Span> spans() const {
        std::lock_guard lock(mutex_);
        return spans_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<Publish> publishes_;
    std::vector<std::string> failures_;
    std::vector<Span> spans_;
};

const TraceContext request_trace = *TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

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

} // namespace

TEST_CASE("async bus observer: each event is reported once delivered, with its handlers and failures") {
    RecordingObserver observer;
    AsyncBus bus;
    CHECK(bus.observer() == nullptr);
    bus.observe(&observer);
    CHECK(bus.observer() == &observer);
    auto ok = bus.subscribe<UserCreated>([](const UserCreated&) {});
    auto failing = bus.subscribe<UserCreated>([](const UserCreated&) { throw std::runtime_error("quota exceeded"); });
    auto every = bus.subscribe<UserEvent>([](const UserEvent&) {});

    CHECK_THROWS_AS(bus.publish(UserCreated{"1", "John"}).get(), orchestrix::HandlerError);
    bus.publish(UserRenamed{"1", "Johnny"}).get();
    bus.publish(Numbered{}).get(); // no handler of its own

    const auto publishes = observer.publishes();
    REQUIRE(publishes.size() == 3);
    CHECK(publishes[0].bus == "async_bus");
    CHECK(publishes[0].type == "user.created");
    CHECK(publishes[0].handlers == 3);
    CHECK(publishes[0].failures == 1);
    CHECK(publishes[1].type == "user.renamed");
    CHECK(publishes[1].handlers == 1);
    CHECK(publishes[1].failures == 0);
    CHECK(publishes[2].type == "test.numbered");
    CHECK(publishes[2].handlers == 1);
    CHECK(observer.failures() == std::vector<std::string>{"async_bus user.created: quota exceeded"});

    SECTION("an event no handler wants is reported at once") {
        every.unsubscribe();
        bus.publish(Numbered{}).get();
        CHECK(observer.publishes().back().type == "test.numbered");
        CHECK(observer.publishes().back().handlers == 0);
    }
}

TEST_CASE("async bus observer: handlers run on the workers in the publish span, under the publisher's trace") {
    RecordingObserver observer;
    AsyncBus bus;
    bus.observe(&observer);
    std::mutex mutex;
    std::vector<TraceContext> seen;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        {
            std::lock_guard lock(mutex);
            seen.push_back(orchestrix::current_trace());
        }
        if (e.name.empty()) throw std::invalid_argument("no name");
    });
    {
        TraceScope request(request_trace);
        bus.publish(UserCreated{"1", "John"}).get();
        CHECK_THROWS_AS(bus.publish(UserCreated{"2", ""}).get(), orchestrix::HandlerError);
        CHECK(orchestrix::current_trace() == request_trace);
    }

    const auto spans = observer.spans();
    REQUIRE(spans.size() == 2);
    CHECK(spans[0].name == "orchestrix.publish user.created");
    CHECK(spans[0].kind == orchestrix::SpanKind::producer);
    CHECK(spans[0].parent == request_trace);
    CHECK(spans[0].ended); // before the completion was set
    CHECK_FALSE(spans[0].error);
    CHECK(spans[1].ended);
    CHECK(spans[1].error);
    CHECK(spans[1].message == "no name");
    std::lock_guard lock(mutex);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == spans[0].context);
    CHECK(seen[1] == spans[1].context);
}

TEST_CASE("async bus observer: an event refused for a full queue ends its span failed and is not reported") {
    RecordingObserver observer;
    AsyncBus bus(
        orchestrix::AsyncBusOptions{.workers = 1, .capacity = 1, .overflow = orchestrix::OverflowPolicy::fail});
    bus.observe(&observer);
    Gate gate;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) { gate.pass(); });
    auto accepted = bus.publish(UserCreated{"1", "John"});
    CHECK_THROWS_AS((void)bus.publish(UserCreated{"2", "Ann"}), orchestrix::QueueFullError);
    gate.open();
    accepted.get();

    const auto publishes = observer.publishes();
    REQUIRE(publishes.size() == 1);
    CHECK(publishes[0].handlers == 1);
    const auto spans = observer.spans();
    REQUIRE(spans.size() == 2);
    CHECK(spans[1].ended);
    CHECK(spans[1].error);
    CHECK(spans[1].message.find("full") != std::string::npos);
    CHECK(spans[0].ended);
    CHECK_FALSE(spans[0].error);
}

TEST_CASE("async bus observer: nothing is reported once the observer is detached") {
    RecordingObserver observer;
    AsyncBus bus;
    bus.observe(&observer);
    bus.observe(nullptr);
    TraceContext seen = request_trace;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated&) {
        seen = orchestrix::current_trace();
        throw std::runtime_error("failed");
    });
    TraceScope request(request_trace);
    CHECK_THROWS_AS(bus.publish(UserCreated{"1", "John"}).get(), orchestrix::HandlerError);
    CHECK_FALSE(seen.valid()); // a worker's own (empty) trace: nothing carried without an observer
    CHECK(observer.publishes().empty());
    CHECK(observer.failures().empty());
    CHECK(observer.spans().empty());
}
