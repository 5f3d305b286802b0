// What projections (and the subscriptions and process managers built on them) report to an Observer:
// progress and lag, failures, dead letters, and the spans that continue each event's trace.

#include <orchestrix/core/observer.hpp>
#include <orchestrix/memory/command_bus.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/process_manager.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/projection/saga.hpp>
#include <orchestrix/projection/subscription.hpp>

#include "support/catch.hpp"
#include "support/saga_bank.hpp"
#include "support/test_events.hpp"

#include <chrono>
#include <cstdint>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::FailureAction;
using orchestrix::FailurePolicy;
using orchestrix::position_t;
using orchestrix::TraceContext;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::InMemoryCheckpointStore;
using Runner = orchestrix::Projection<Store, Checkpoints>;
using namespace std::chrono_literals;

// Records what it is told (copies: the observations' views live only during the call), from any thread,
// and hands out spans numbered 1, 2, ... in the parent's trace.
class RecordingObserver : public orchestrix::Observer {
public:
    struct Progress {
        std::string projection;
        position_t checkpoint = 0;
        position_t head = 0;
        std::uint64_t lag_events = 0;
        std::chrono::nanoseconds lag_time{};
        std::uint64_t events = 0;
    };
    struct Failure {
        std::string projection;
        position_t position = 0;
        std::string stream;
        std::string type;
        std::string error;
        std::uint32_t attempts = 0;
        orchestrix::FailureOutcome outcome = orchestrix::FailureOutcome::stopped;
    };
    struct DeadLetter {
        std::string projection;
        position_t position = 0;
        orchestrix::DeadLetterOutcome outcome = orchestrix::DeadLetterOutcome::added;
    };
    struct Span {
        std::string name;
        orchestrix::SpanKind kind = orchestrix::SpanKind::internal;
        TraceContext parent{};
        TraceContext context{};
        std::vector<std::pair<std::string, std::string>> attributes{};
        bool ended = false;
        bool error = false;
        std::string message{};
    };

    bool traces = true; // false: start_span returns the empty context
    bool throws = false;

    void on_projection(const orchestrix::ProjectionObservation& o) override {
        std::lock_guard lock(mutex_);
        progress_.push_back({std::string(o.projection), o.checkpoint, o.head, o.lag_events, o.lag_time, o.events});
        if (throws) throw std::runtime_error("observer failed");
    }
    void on_projection_failure(const orchestrix::ProjectionFailureObservation& o) override {
        std::lock_guard lock(mutex_);
        failures_.push_back({std::string(o.projection), o.position, std::string(o.stream), std::string(o.type),
                             std::string(o.error), o.attempts, o.outcome});
        if (throws) throw std::runtime_error("observer failed");
    }
    void on_dead_letter(const orchestrix::DeadLetterObservation& o) override {
        std::lock_guard lock(mutex_);
        dead_letters_.push_back({std::string(o.projection), o.position, o.outcome});
        if (throws) throw std::runtime_error("observer failed");
    }
    void on_publish(const orchestrix::PublishObservation&) override {
        std::lock_guard lock(mutex_);
        ++publishes_;
    }
    TraceContext start_span(const orchestrix::SpanStart& s) override {
        std::lock_guard lock(mutex_);
        if (throws) throw std::runtime_error("observer failed");
        if (!traces) return {};
        Span span;
        span.name = std::string(s.name);
        span.kind = s.kind;
        span.parent = s.parent;
        span.context.trace_id = s.parent.trace_id;
        if (!s.parent.valid()) span.context.trace_id.fill(0xAB); // a root span: a new trace
        span.context.span_id[7] = static_cast<std::uint8_t>(spans_.size() + 1);
        for (const auto& a : s.attributes)
            span.attributes.emplace_back(std::string(a.key),
                                         a.is_number ? std::to_string(a.number) : std::string(a.text));
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

    std::vector<Progress> progress() const {
        std::lock_guard lock(mutex_);
        return progress_;
    }
    std::vector<Failure> failures() const {
        std::lock_guard lock(mutex_);
        return failures_;
    }
    std::vector<DeadLetter> dead_letters() const {
        std::lock_guard lock(mutex_);
        return dead_letters_;
    }
    std::vector<Span> spans() const {
        std::lock_guard lock(mutex_);
        return spans_;
    }
    std::size_t publishes() const {
        std::lock_guard lock(mutex_);
        return publishes_;
    }
    bool nothing() const {
        std::lock_guard lock(mutex_);
        return progress_.empty() && failures_.empty() && dead_letters_.empty() && spans_.empty() && publishes_ == 0;
    }

private:
    mutable std::mutex mutex_;
    std::vector<Progress> progress_;
    std::vector<Failure> failures_;
    std::vector<DeadLetter> dead_letters_;
    std::vector<Span> spans_;
    std::size_t publishes_ = 0;
};

const TraceContext request_trace = *TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

void open_and_deposit(Store& store, const std::string& id, int deposits) {
    store.append(id, {AccountOpened{id, "owner of " + id}}, ExpectedVersion::no_stream());
    for (int i = 1; i <= deposits; ++i) store.append(id, {MoneyDeposited{id, i}}, ExpectedVersion::any());
}

// An event store whose reads fail while `failing` is set, and that has no `head_position()`.
struct FlakyStore {
    using event_type = AccountEvent;
    Store inner;
    bool failing = false;

    orchestrix::AppendResult append(std::string_view stream,
                                    std::span<const orchestrix::EventEnvelope<AccountEvent>> events,
                                    orchestrix::ExpectedVersion expected) {
        return inner.append(stream, events, expected);
    }
    [[nodiscard]] std::vector<Recorded> read_stream(std::string_view stream, std::uint64_t from,
                                                    std::uint64_t max) const {
        return inner.read_stream(stream, from, max);
    }
    [[nodiscard]] std::vector<Recorded> read_all(std::uint64_t from, std::uint64_t max) const {
        if (failing) throw std::runtime_error("connection lost");
        return inner.read_all(from, max);
    }
    [[nodiscard]] orchestrix::stream_version_t stream_version(std::string_view stream) const {
        return inner.stream_version(stream);
    }
};
static_assert(orchestrix::event_store<FlakyStore>);

// Appends a deposit recorded in the trace `trace`.
void deposit_traced(Store& store, const std::string& id, std::int64_t amount, const TraceContext& trace) {
    orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, trace};
    const orchestrix::EventEnvelope<AccountEvent> envelope(MoneyDeposited{id, amount}, metadata);
    store.append(id, std::span<const orchestrix::EventEnvelope<AccountEvent>>(&envelope, 1), ExpectedVersion::any());
}

} // namespace

TEST_CASE("projection observer: each batch reports checkpoint, head and lag, and the last one none") {
    Store store;
    open_and_deposit(store, "acc-1", 3);
    open_and_deposit(store, "acc-2", 2); // 7 events
    Checkpoints checkpoints;
    RecordingObserver observer;
    int handled = 0;
    Runner runner("balances", store, checkpoints, [&](const Recorded&) { ++handled; },
                  {.batch_size = 3, .observer = &observer});
    CHECK(runner.options().observer == &observer);
    CHECK(runner.run_until_caught_up() == 7);
    CHECK(handled == 7);

    const auto progress = observer.progress();
    REQUIRE(progress.size() == 4); // three batches, then caught up
    CHECK(progress[0].projection == "balances");
    CHECK(progress[0].events == 3);
    CHECK(progress[0].checkpoint == 3);
    CHECK(progress[0].head == 7);
    CHECK(progress[0].lag_events == 4);
    CHECK(progress[0].lag_time > 0ns);
    CHECK(progress[1].events == 3);
    CHECK(progress[1].checkpoint == 6);
    CHECK(progress[1].lag_events == 1);
    CHECK(progress[2].events == 1);
    CHECK(progress[2].checkpoint == 7);
    CHECK(progress[2].head == 7);
    CHECK(progress[2].lag_events == 0);
    CHECK(progress[2].lag_time == 0ns);
    CHECK(progress[3].events == 0); // found nothing new: caught up
    CHECK(progress[3].checkpoint == 7);
    CHECK(progress[3].head == 7);
    CHECK(progress[3].lag_events == 0);
    CHECK(progress[3].lag_time == 0ns);
    CHECK(observer.failures().empty());
    CHECK(observer.dead_letters().empty());

    SECTION("events appended later are lag again, until handled") {
        open_and_deposit(store, "acc-3", 1);
        CHECK(runner.poll_once() == 2);
        CHECK(observer.progress().back().checkpoint == 9);
        CHECK(observer.progress().back().head == 9);
        CHECK(observer.progress().back().lag_events == 0);
    }
}

TEST_CASE("projection observer: a projection started behind reports how many events and how long it lags") {
    Store store;
    open_and_deposit(store, "acc-1", 4); // 5 events, recorded before the projection starts
    Checkpoints checkpoints;
    RecordingObserver observer;
    std::latch release(1);
    Runner runner("slow", store, checkpoints,
                  [&](const Recorded& e) {
                      if (e.position == 1) release.wait();
                  },
                  {.batch_size = 1, .poll_interval = 10ms, .observer = &observer});
    runner.start();
    std::this_thread::sleep_for(30ms); // the first event waits meanwhile: the projection falls behind
    release.count_down();
    REQUIRE(runner.wait_for(5, 5s));
    runner.stop();

    const auto progress = observer.progress();
    REQUIRE(progress.size() >= 5);
    CHECK(progress[0].projection == "slow");
    CHECK(progress[0].checkpoint == 1);
    CHECK(progress[0].head == 5);
    CHECK(progress[0].lag_events == 4);
    CHECK(progress[0].lag_time >= 30ms);
    CHECK(progress[0].events == 1);
    CHECK(progress[3].checkpoint == 4);
    CHECK(progress[3].lag_events == 1);
    CHECK(progress[3].lag_time > 0ns);
    CHECK(progress[4].checkpoint == 5);
    CHECK(progress[4].lag_events == 0);
    CHECK(progress[4].lag_time == 0ns);
    CHECK(progress.back().checkpoint == 5); // then caught up
    CHECK(progress.back().lag_events == 0);
}

TEST_CASE("projection observer: failed attempts are reported with what followed: retried, then skipped") {
    Store store;
    open_and_deposit(store, "acc-1", 2);
    Checkpoints checkpoints;
    RecordingObserver observer;
    Runner runner("fragile", store, checkpoints,
                  [](const Recorded& e) {
                      if (e.position == 2) throw std::runtime_error("cannot apply");
                  },
                  {.on_failure = FailurePolicy::retry(2, 1ms, FailureAction::skip), .observer = &observer});
    CHECK(runner.run_until_caught_up() == 3);
    CHECK(runner.skipped().size() == 1);

    const auto failures = observer.failures();
    REQUIRE(failures.size() == 2);
    CHECK(failures[0].projection == "fragile");
    CHECK(failures[0].position == 2);
    CHECK(failures[0].stream == "acc-1");
    CHECK(failures[0].type == "account.deposited");
    CHECK(failures[0].error == "cannot apply");
    CHECK(failures[0].attempts == 1);
    CHECK(failures[0].outcome == orchestrix::FailureOutcome::retried);
    CHECK(failures[1].attempts == 2);
    CHECK(failures[1].outcome == orchestrix::FailureOutcome::skipped);

    const auto dead_letters = observer.dead_letters();
    REQUIRE(dead_letters.size() == 1);
    CHECK(dead_letters[0].projection == "fragile");
    CHECK(dead_letters[0].position == 2);
    CHECK(dead_letters[0].outcome == orchestrix::DeadLetterOutcome::added);
    CHECK(observer.progress().back().checkpoint == 3);
    CHECK(observer.progress().back().lag_events == 0);

    const auto spans = observer.spans(); // each attempt is a span of its own
    REQUIRE(spans.size() == 4);
    CHECK_FALSE(spans[0].error);
    CHECK(spans[1].error);
    CHECK(spans[1].message == "cannot apply");
    CHECK(spans[2].error);
    CHECK(spans[1].attributes == spans[2].attributes);
    CHECK_FALSE(spans[3].error);
}

TEST_CASE("projection observer: a failure that stops the projection is reported as stopped") {
    Store store;
    open_and_deposit(store, "acc-1", 2);
    Checkpoints checkpoints;
    RecordingObserver observer;
    Runner runner("strict", store, checkpoints,
                  [](const Recorded& e) {
                      if (e.position == 3) throw std::runtime_error("poison");
                  },
                  {.on_failure = FailurePolicy::stop(), .observer = &observer});
    CHECK_THROWS_AS(runner.poll_once(), orchestrix::ProjectionStoppedError);
    CHECK(runner.checkpoint() == 2);

    const auto failures = observer.failures();
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].projection == "strict");
    CHECK(failures[0].position == 3);
    CHECK(failures[0].error == "poison");
    CHECK(failures[0].attempts == 1);
    CHECK(failures[0].outcome == orchestrix::FailureOutcome::stopped);
    CHECK(observer.dead_letters().empty());
    CHECK(observer.progress().empty()); // the batch that stopped it reports its failure only
}

TEST_CASE(
    "projection observer: a failed read is reported as a failure, and a store without a head reports the checkpoint") {
    FlakyStore store;
    open_and_deposit(store.inner, "acc-1", 1);
    Checkpoints checkpoints;
    RecordingObserver observer;
    orchestrix::Projection<FlakyStore, Checkpoints> runner(
        "remote", store, checkpoints, [](const Recorded&) {},
        {.on_failure = FailurePolicy::retry(3, 1ms), .observer = &observer});
    store.failing = true;
    CHECK(runner.poll_once() == 0);
    CHECK(observer.progress().empty());
    const auto failures = observer.failures();
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].position == 1);
    CHECK(failures[0].stream.empty());
    CHECK(failures[0].type.empty());
    CHECK(failures[0].error == "connection lost");
    CHECK(failures[0].outcome == orchestrix::FailureOutcome::retried);

    store.failing = false;
    CHECK(runner.poll_once() == 2);
    const auto progress = observer.progress();
    REQUIRE(progress.size() == 1);
    CHECK(progress[0].checkpoint == 2);
    CHECK(progress[0].head == 2);
    CHECK(progress[0].lag_events == 0);
}

TEST_CASE("projection observer: a projection over an empty store reports itself caught up at 0") {
    Store store;
    Checkpoints checkpoints;
    RecordingObserver observer;
    Runner runner("empty", store, checkpoints, [](const Recorded&) {}, {.observer = &observer});
    CHECK(runner.run_until_caught_up() == 0);
    const auto progress = observer.progress();
    REQUIRE(progress.size() == 1);
    CHECK(progress[0].checkpoint == 0);
    CHECK(progress[0].head == 0);
    CHECK(progress[0].lag_events == 0);
    CHECK(progress[0].lag_time == 0ns);
    CHECK(progress[0].events == 0);
}

TEST_CASE("projection observer: each event is handled in a consumer span that continues the event's trace") {
    Store store;
    deposit_traced(store, "acc-1", 10, request_trace);
    deposit_traced(store, "acc-1", -1, request_trace);
    store.append("acc-2", {MoneyDeposited{"acc-2", 5}}, ExpectedVersion::any()); // recorded in no trace
    Checkpoints checkpoints;
    RecordingObserver observer;
    std::vector<TraceContext> seen;
    Runner runner("traced", store, checkpoints,
                  [&](const Recorded& e) {
                      seen.push_back(orchestrix::current_trace());
                      if (std::get<MoneyDeposited>(e.event).amount < 0) throw std::invalid_argument("negative deposit");
                  },
                  {.on_failure = FailurePolicy::skip(), .observer = &observer});

    SECTION("the handler runs under the span, whose parent is the event's trace") {
        CHECK(runner.run_until_caught_up() == 3);
        CHECK_FALSE(orchestrix::current_trace().valid());
        const auto spans = observer.spans();
        REQUIRE(spans.size() == 3);
        CHECK(spans[0].name == "orchestrix.projection traced");
        CHECK(spans[0].kind == orchestrix::SpanKind::consumer);
        CHECK(spans[0].parent == request_trace);
        CHECK(spans[0].attributes ==
              std::vector<std::pair<std::string, std::string>>{{"orchestrix.stream", "acc-1"},
                                                               {"orchestrix.position", "1"},
                                                               {"orchestrix.event_type", "account.deposited"}});
        CHECK(spans[0].ended);
        CHECK_FALSE(spans[0].error);
        CHECK(spans[1].parent == request_trace);
        CHECK(spans[1].ended);
        CHECK(spans[1].error);
        CHECK(spans[1].message == "negative deposit");
        CHECK_FALSE(spans[2].parent.valid()); // an event recorded in no trace starts a root span
        REQUIRE(seen.size() == 3);
        CHECK(seen[0] == spans[0].context);
        CHECK(seen[0].trace_id == spans[0].context.trace_id);
        CHECK(seen[1] == spans[1].context);
        CHECK(seen[2] == spans[2].context);
    }
    SECTION("an observer that traces nothing still runs the handler in the event's own trace") {
        observer.traces = false;
        CHECK(runner.run_until_caught_up() == 3);
        CHECK(observer.spans().empty());
        REQUIRE(seen.size() == 3);
        CHECK(seen[0] == request_trace);
        CHECK(seen[1] == request_trace);
        CHECK_FALSE(seen[2].valid());
    }
}

TEST_CASE("projection observer: a command a process manager sends continues the event's trace") {
    Store store;
    deposit_traced(store, "acc-1", 10, request_trace);
    Checkpoints checkpoints;
    RecordingObserver observer;
    orchestrix::CommandBus commands;
    commands.observe(&observer);
    struct Notify {
        std::string account_id;
    };
    TraceContext handled_in{};
    auto registration =
        commands.register_handler<Notify>([&](const Notify&) { handled_in = orchestrix::current_trace(); });
    orchestrix::ProcessManager<Store, Checkpoints> manager(
        "notifier", store, checkpoints, commands,
        [](auto& step) { step.send(Notify{std::get<MoneyDeposited>(step.event().event).account_id}); },
        {.observer = &observer});
    CHECK(manager.run_until_caught_up() == 1);

    const auto spans = observer.spans();
    REQUIRE(spans.size() == 2);
    CHECK(spans[0].name == "orchestrix.projection notifier");
    CHECK(spans[0].parent == request_trace);
    CHECK(spans[1].kind == orchestrix::SpanKind::producer); // the command's publish
    CHECK(spans[1].parent == spans[0].context);
    CHECK(handled_in == spans[1].context);
    CHECK(handled_in.trace_id == request_trace.trace_id);
    CHECK(observer.publishes() == 1);
    CHECK(observer.progress().back().projection == "notifier");
}

TEST_CASE("projection observer: a saga runner reports under its name, and its commands continue the trace") {
    using namespace saga_bank;
    using Domain = orchestrix::InMemoryEventStore<BankEvent>;
    using SagaStore = orchestrix::InMemoryEventStore<Transfer::event_type>;
    Domain domain;
    SagaStore sagas;
    Checkpoints checkpoints;
    orchestrix::InMemoryDeadlineStore deadlines;
    orchestrix::CommandBus bus;
    RecordingObserver observer;
    bus.observe(&observer);
    orchestrix::Repository<Account, Domain> accounts(domain, "account-");
    auto serving = serve_accounts(bus, accounts);
    domain.append("account-a", {saga_bank::AccountOpened{"a", 100, false}}, ExpectedVersion::no_stream());
    domain.append("account-b", {saga_bank::AccountOpened{"b", 0, false}}, ExpectedVersion::no_stream());
    const orchestrix::EventEnvelope<BankEvent> request(
        TransferRequested{"t1", "a", "b", 30, false},
        orchestrix::Metadata{orchestrix::Uuid::generate(), {}, {}, {}, request_trace});
    domain.append("transfer-requests", std::span<const orchestrix::EventEnvelope<BankEvent>>(&request, 1),
                  ExpectedVersion::any());
    orchestrix::SagaOptions options;
    options.projection.observer = &observer;
    orchestrix::SagaRunner<Transfer, Domain, SagaStore, Checkpoints> runner(domain, sagas, checkpoints, deadlines, bus,
                                                                            options);
    runner.run_until_caught_up();
    CHECK(accounts.load("b").balance() == 30);

    const auto progress = observer.progress();
    REQUIRE_FALSE(progress.empty());
    CHECK(progress.back().projection == "saga:transfer");
    CHECK(progress.back().lag_events == 0);
    const auto spans = observer.spans();
    std::size_t commands = 0;
    for (const auto& span : spans) {
        if (span.kind != orchestrix::SpanKind::producer) continue;
        ++commands; // a command the saga sent, while it handled the traced request
        CHECK(span.parent.trace_id == request_trace.trace_id);
    }
    CHECK(commands >= 1);
    CHECK(observer.publishes() == commands);
}

TEST_CASE("projection observer: a catch-up subscription reports under the name subscription") {
    Store store;
    open_and_deposit(store, "acc-1", 1);
    RecordingObserver observer;
    orchestrix::CatchUpSubscription<Store> feed(store, 0, [](const Recorded&) {}, {.observer = &observer});
    CHECK(feed.run_until_caught_up() == 2);
    const auto progress = observer.progress();
    REQUIRE(progress.size() == 2);
    CHECK(progress[0].projection == "subscription");
    CHECK(progress[0].checkpoint == 2);
    CHECK(progress[0].head == 2);
}

TEST_CASE(
    "projection observer: nothing is reported or traced without an observer, and a throwing one changes nothing") {
    Store store;
    deposit_traced(store, "acc-1", 10, request_trace);
    deposit_traced(store, "acc-1", -1, request_trace);
    Checkpoints checkpoints;
    RecordingObserver observer;
    std::vector<TraceContext> seen;
    const auto handler = [&](const Recorded& e) {
        seen.push_back(orchestrix::current_trace());
        if (std::get<MoneyDeposited>(e.event).amount < 0) throw std::invalid_argument("negative deposit");
    };

    SECTION("without an observer") {
        Runner runner("plain", store, checkpoints, handler, {.on_failure = FailurePolicy::skip()});
        CHECK(runner.run_until_caught_up() == 2);
        CHECK(runner.skipped().size() == 1);
        REQUIRE(seen.size() == 2);
        CHECK_FALSE(seen[0].valid()); // no trace scope is opened
        CHECK(observer.nothing());
    }
    SECTION("with an observer whose hooks throw") {
        observer.throws = true;
        Runner runner("plain", store, checkpoints, handler,
                      {.on_failure = FailurePolicy::skip(), .observer = &observer});
        CHECK(runner.run_until_caught_up() == 2);
        CHECK(runner.checkpoint() == 2);
        CHECK(runner.skipped().size() == 1);
        REQUIRE(seen.size() == 2);
        CHECK(seen[0] == request_trace); // no span was started: the event's own trace
        CHECK(observer.failures().size() == 1);
        CHECK(observer.dead_letters().size() == 1);
        CHECK(observer.progress().size() == 2);
    }
}
