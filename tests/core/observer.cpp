// Observers: the W3C trace context, TraceScope, what the in-memory store, Repository and DecisionRepository
// report, ObserverSet, and the trace context carried from a TraceScope into the stored events.

#include <orchestrix/async/event_store.hpp>
#include <orchestrix/core/decision.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/memory/snapshot_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/test_events.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace {

using namespace test_domain;
using orchestrix::AppendOutcome;
using orchestrix::CommandOutcome;
using orchestrix::ExpectedVersion;
using orchestrix::ReadKind;
using orchestrix::SnapshotOutcome;
using orchestrix::TraceContext;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;

constexpr std::string_view sample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// Records what it is told, with the texts copied; starts spans when `tracing` (ids counted up from 1, in the
// parent's trace or in trace 0xab...ab).
class Recorder : public orchestrix::Observer {
public:
    struct Append {
        std::string store{};
        std::string stream{};
        std::size_t events = 0;
        AppendOutcome outcome = AppendOutcome::written;
        std::chrono::nanoseconds duration{};
    };
    struct Read {
        std::string store{};
        ReadKind kind = ReadKind::stream;
        std::string stream{};
        std::uint64_t events = 0;
    };
    struct Command {
        std::string aggregate{};
        std::string stream{};
        std::uint32_t attempts = 0;
        std::uint64_t replayed = 0;
        CommandOutcome outcome = CommandOutcome::succeeded;
    };
    struct Snapshot {
        std::string aggregate{};
        std::string stream{};
        orchestrix::stream_version_t version = 0;
        SnapshotOutcome outcome = SnapshotOutcome::taken;
        std::string reason{};
    };
    struct Span {
        std::string name{};
        TraceContext parent{};
        TraceContext context{};
        std::vector<std::pair<std::string, std::string>> texts{};    // attributes with text values
        std::vector<std::pair<std::string, std::int64_t>> numbers{}; // attributes with number values
        bool ended = false;
        bool error = false;
        std::string message{};
    };

    void on_append(const orchestrix::AppendObservation& o) override {
        appends.push_back(Append{std::string(o.store), std::string(o.stream), o.events, o.outcome, o.duration});
    }
    void on_read(const orchestrix::ReadObservation& o) override {
        reads.push_back(Read{std::string(o.store), o.kind, std::string(o.stream), o.events});
    }
    void on_command(const orchestrix::CommandObservation& o) override {
        commands.push_back(
            Command{std::string(o.aggregate), std::string(o.stream), o.attempts, o.events_replayed, o.outcome});
    }
    void on_snapshot(const orchestrix::SnapshotObservation& o) override {
        snapshots.push_back(
            Snapshot{std::string(o.aggregate), std::string(o.stream), o.version, o.outcome, std::string(o.reason)});
    }
    TraceContext start_span(const orchestrix::SpanStart& start) override {
        if (!tracing) return {};
        TraceContext context;
        if (start.parent.valid()) {
            context.trace_id = start.parent.trace_id;
        } else {
            context.trace_id.fill(0xab);
        }
        context.span_id[7] = static_cast<std::uint8_t>(++started_);
        context.flags = 1;
        Span span{std::string(start.name), start.parent, context, {}, {}, false, false, {}};
        for (const auto& a : start.attributes) {
            if (a.is_number) {
                span.numbers.emplace_back(std::string(a.key), a.number);
            } else {
                span.texts.emplace_back(std::string(a.key), std::string(a.text));
            }
        }
        spans.push_back(std::move(span));
        return context;
    }
    void end_span(const TraceContext& context, const orchestrix::SpanEnd& end) override {
        for (Span& s : spans) {
            if (s.context == context) {
                s.ended = true;
                s.error = end.error;
                s.message = std::string(end.message);
                for (const auto& a : end.attributes) {
                    if (a.is_number) {
                        s.numbers.emplace_back(std::string(a.key), a.number);
                    } else {
                        s.texts.emplace_back(std::string(a.key), std::string(a.text));
                    }
                }
            }
        }
    }

    [[nodiscard]] std::size_t count(AppendOutcome outcome) const {
        return static_cast<std::size_t>(
            std::count_if(appends.begin(), appends.end(), [&](const Append& a) { return a.outcome == outcome; }));
    }
    [[nodiscard]] bool empty() const {
        return appends.empty() && reads.empty() && commands.empty() && snapshots.empty() && spans.empty();
    }

    bool tracing = false;
    std::vector<Append> appends{};
    std::vector<Read> reads{};
    std::vector<Command> commands{};
    std::vector<Snapshot> snapshots{};
    std::vector<Span> spans{};

private:
    int started_ = 0;
};

// Throws from every hook.
class Throwing : public orchestrix::Observer {
public:
    void on_append(const orchestrix::AppendObservation&) override { throw std::runtime_error("hook"); }
    void on_read(const orchestrix::ReadObservation&) override { throw std::runtime_error("hook"); }
    void on_command(const orchestrix::CommandObservation&) override { throw std::runtime_error("hook"); }
    TraceContext start_span(const orchestrix::SpanStart&) override { throw std::runtime_error("hook"); }
};

TraceContext trace(std::string_view text) {
    const auto parsed = TraceContext::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

// A store that lets another writer in before the first N appends (a version conflict each time), and
// fails every append with a StoreError when `broken`.
class InterferingStore {
public:
    using event_type = AccountEvent;
    explicit InterferingStore(int interferences) : left_(interferences) {}

    orchestrix::AppendResult append(std::string_view stream, std::span<const Envelope> events,
                                    orchestrix::ExpectedVersion expected) {
        if (broken) throw orchestrix::StoreError("the disk is gone");
        if (left_ > 0) {
            --left_;
            (void)inner.append(stream, {MoneyDeposited{std::string(stream), 1000}}, ExpectedVersion::any());
        }
        return inner.append(stream, events, expected);
    }
    [[nodiscard]] std::vector<orchestrix::RecordedEvent<AccountEvent>>
    read_stream(std::string_view s, std::uint64_t from, std::uint64_t max) const {
        return inner.read_stream(s, from, max);
    }
    [[nodiscard]] std::vector<orchestrix::RecordedEvent<AccountEvent>> read_all(std::uint64_t from,
                                                                                std::uint64_t max) const {
        return inner.read_all(from, max);
    }
    [[nodiscard]] std::uint64_t stream_version(std::string_view s) const { return inner.stream_version(s); }

    Store inner;
    bool broken = false;

private:
    int left_;
};

orchestrix::RetryPolicy no_wait(std::uint32_t attempts) {
    orchestrix::RetryPolicy retry;
    retry.max_attempts = attempts;
    retry.sleep = [](std::chrono::microseconds) {};
    return retry;
}

// A counter with snapshots: its state is its total, as decimal text.
struct Added {
    static constexpr std::string_view type_name = "counter.added";
    std::int64_t amount = 0;
    bool operator==(const Added&) const = default;
};
using CounterEvent = std::variant<Added>;
struct Add {
    std::int64_t amount = 0;
};
class Counter : public orchestrix::AggregateRoot<Counter, CounterEvent> {
public:
    static constexpr std::string_view aggregate_type_name = "counter";
    void handle(const Add& c) { raise(Added{c.amount}); }
    void apply(const Added& e) { total += e.amount; }
    std::int64_t total = 0;
};
orchestrix::SnapshotSettings<Counter> counter_settings(std::uint64_t every) {
    orchestrix::SnapshotSettings<Counter> settings;
    settings.policy = orchestrix::snapshot_every(every);
    settings.state.encode = [](const Counter& c) { return std::to_string(c.total); };
    settings.state.decode = [](std::string_view text) {
        Counter c;
        c.total = std::stoll(std::string(text));
        return c;
    };
    return settings;
}

// Seats taken in a course, for the decision tests.
struct Seats {
    using event_types = std::variant<dcb_domain::CourseDefined, dcb_domain::StudentSubscribed>;
    std::string course_id;
    std::int64_t capacity = 0;
    std::int64_t taken = 0;
    [[nodiscard]] std::array<std::string, 1> tags() const { return {orchestrix::tag("course", course_id)}; }
    void apply(const dcb_domain::CourseDefined& e) { capacity = e.capacity; }
    void apply(const dcb_domain::StudentSubscribed&) { ++taken; }
};

} // namespace

TEST_CASE("observer: a traceparent parses, formats and round-trips") {
    const TraceContext t = trace(sample);
    CHECK(t.valid());
    CHECK(t.sampled());
    CHECK(t.trace_id[0] == 0x4b);
    CHECK(t.trace_id[15] == 0x36);
    CHECK(t.span_id[0] == 0x00);
    CHECK(t.span_id[7] == 0xb7);
    CHECK(t.to_string() == sample);
    CHECK(trace(t.to_string()) == t);

    const TraceContext unsampled = trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    CHECK_FALSE(unsampled.sampled());
    CHECK(unsampled.to_string() == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");

    // A later version is read by its first four fields, and written back as version 00.
    const TraceContext later = trace("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next");
    CHECK(later == t);
    CHECK(later.to_string() == sample);

    // The empty context is not valid and formats as "".
    CHECK_FALSE(TraceContext{}.valid());
    CHECK(TraceContext{}.to_string().empty());
}

TEST_CASE("observer: a malformed traceparent is refused") {
    const char* const bad[] = {
        "",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  // uppercase hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902B7-01",  // one uppercase digit
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   // trace id one digit short
        "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01", // trace id one digit long
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",   // span id one digit short
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",   // flags one digit
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", // version 00 with more after it
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010", // version 00, one character more
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // a later version, no '-' after the flags
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // wrong separator
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version not hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",  // flags not hex
    };
    for (const char* text : bad) {
        INFO(text);
        CHECK_FALSE(TraceContext::parse(text).has_value());
    }
}

TEST_CASE("observer: TraceScope nests, restores and belongs to its thread") {
    const TraceContext outer = trace(sample);
    const TraceContext inner = trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    CHECK_FALSE(orchestrix::current_trace().valid());
    {
        const orchestrix::TraceScope a(outer);
        CHECK(orchestrix::current_trace() == outer);
        {
            const orchestrix::TraceScope b(inner);
            CHECK(orchestrix::current_trace() == inner);
            TraceContext seen_by_other_thread = outer;
            std::thread([&] { seen_by_other_thread = orchestrix::current_trace(); }).join();
            CHECK(seen_by_other_thread == TraceContext{});
        }
        CHECK(orchestrix::current_trace() == outer);
    }
    CHECK(orchestrix::current_trace() == TraceContext{});
}

TEST_CASE("observer: the in-memory store reports each append with its outcome") {
    Store store;
    Recorder recorder;
    CHECK(store.observer() == nullptr);
    store.observe(&recorder);
    CHECK(store.observer() == &recorder);

    const std::vector<Envelope> first{AccountOpened{"1", "ann"}, MoneyDeposited{"1", 5}};
    (void)store.append("account-1", first, ExpectedVersion::no_stream());                 // written
    (void)store.append("account-1", {MoneyDeposited{"1", 1}}, ExpectedVersion::exact(2)); // written
    (void)store.append("account-2", {AccountOpened{"2", "bob"}}, ExpectedVersion::any()); // written
    CHECK_FALSE(store.append("account-1", first, ExpectedVersion::no_stream()).written);  // idempotent retry
    CHECK_FALSE(store.append("account-1", std::span<const Envelope>{}, ExpectedVersion::any()).written); // empty
    CHECK_THROWS_AS(store.append("account-1", {MoneyDeposited{"1", 2}}, ExpectedVersion::exact(1)),
                    orchestrix::ConcurrencyError); // conflict
    CHECK_THROWS_AS(store.append("", {MoneyDeposited{"1", 2}}, ExpectedVersion::any()),
                    orchestrix::InvalidArgumentError); // failed, and rethrown as it was

    REQUIRE(recorder.appends.size() == 7);
    // Plain events: one report for the call.
    (void)store.append("account-3", std::vector<MoneyDeposited>{{"3", 1}, {"3", 2}}, ExpectedVersion::any());
    REQUIRE(recorder.appends.size() == 8);
    CHECK(recorder.appends[7].events == 2);
    recorder.appends.pop_back();
    CHECK(recorder.count(AppendOutcome::written) == 3);
    CHECK(recorder.count(AppendOutcome::idempotent) == 2);
    CHECK(recorder.count(AppendOutcome::conflict) == 1);
    CHECK(recorder.count(AppendOutcome::failed) == 1);
    for (const auto& a : recorder.appends) {
        CHECK(a.store == "memory");
        CHECK(a.duration.count() >= 0);
    }
    CHECK(recorder.appends[0].stream == "account-1");
    CHECK(recorder.appends[0].events == 2);
    CHECK(recorder.appends[2].stream == "account-2");
    CHECK(recorder.appends[3].events == 2);
    CHECK(recorder.appends[4].events == 0);
    CHECK(recorder.appends[5].outcome == AppendOutcome::conflict);
    CHECK(recorder.appends[6].stream.empty());
    CHECK(recorder.appends[6].outcome == AppendOutcome::failed);
    CHECK(recorder.reads.empty());
    CHECK(store.head_position() == 6);
}

TEST_CASE("observer: a refused conditional append is reported as a conflict") {
    using dcb_domain::CourseDefined;
    orchestrix::InMemoryEventStore<dcb_domain::CourseEvent> store;
    Recorder recorder;
    store.observe(&recorder);
    (void)store.append("course-1", {CourseDefined{"c1", 10}}, ExpectedVersion::any());
    const orchestrix::AppendCondition condition{orchestrix::Query::of({orchestrix::QueryItem{{}, {"course:c1"}}}), 0};
    CHECK_THROWS_AS(store.append("course-1", {CourseDefined{"c1", 20}}, ExpectedVersion::any(), condition),
                    orchestrix::AppendConditionError);
    REQUIRE(recorder.appends.size() == 2);
    CHECK(recorder.appends[0].outcome == AppendOutcome::written);
    CHECK(recorder.appends[1].outcome == AppendOutcome::conflict);

    // Read by query: one report, kind query, with the events it returned.
    const auto result = store.read(orchestrix::Query::of({orchestrix::QueryItem{{}, {"course:c1"}}}));
    REQUIRE(recorder.reads.size() == 1);
    CHECK(recorder.reads[0].kind == ReadKind::query);
    CHECK(recorder.reads[0].events == result.events.size());
    CHECK(recorder.reads[0].events == 1);
    CHECK(recorder.reads[0].stream.empty());

    // A read that throws is not reported.
    CHECK_THROWS_AS(store.read(orchestrix::Query::of({orchestrix::QueryItem{{"no.such_type"}, {}}})),
                    orchestrix::InvalidArgumentError);
    CHECK(recorder.reads.size() == 1);
}

TEST_CASE("observer: the in-memory store reports each read with its event count") {
    Store store;
    (void)store.append("account-1", {AccountOpened{"1", "ann"}, MoneyDeposited{"1", 5}, MoneyDeposited{"1", 6}},
                       ExpectedVersion::no_stream());
    (void)store.append("account-2", {AccountOpened{"2", "bob"}}, ExpectedVersion::no_stream());
    Recorder recorder;
    store.observe(&recorder);

    CHECK(store.read_stream("account-1").size() == 3);
    CHECK(store.read_stream("account-1", 2, 1).size() == 1);
    CHECK(store.read_stream("nobody").empty());
    CHECK(store.visit_stream("account-1", 1, [](const auto&) {}) == 3);
    CHECK(store.read_all().size() == 4);
    CHECK(store.visit_all(3, [](const auto&) {}) == 2);

    REQUIRE(recorder.reads.size() == 6);
    const std::uint64_t counts[] = {3, 1, 0, 3, 4, 2};
    const ReadKind kinds[] = {ReadKind::stream, ReadKind::stream, ReadKind::stream,
                              ReadKind::stream, ReadKind::all,    ReadKind::all};
    const char* const streams[] = {"account-1", "account-1", "nobody", "account-1", "", ""};
    for (std::size_t i = 0; i < 6; ++i) {
        INFO(i);
        CHECK(recorder.reads[i].store == "memory");
        CHECK(recorder.reads[i].events == counts[i]);
        CHECK(recorder.reads[i].kind == kinds[i]);
        CHECK(recorder.reads[i].stream == streams[i]);
    }
    CHECK(recorder.appends.empty());
}

TEST_CASE("observer: nothing is reported without an observer, nor after detaching") {
    Store store;
    Recorder recorder;
    orchestrix::Repository<Account, Store> accounts(store, "account-");
    // Nothing attached: the recorder is never called, and nothing else changes.
    CHECK(accounts.execute("1", OpenAccount{"1", "ann"}).attempts == 1);
    (void)store.read_all();
    CHECK(recorder.empty());

    store.observe(&recorder);
    accounts.observe(&recorder);
    CHECK(accounts.observer() == &recorder);
    (void)accounts.execute("1", Deposit{5});
    CHECK(recorder.commands.size() == 1);
    CHECK(recorder.appends.size() == 1);
    CHECK(recorder.reads.size() == 1); // the replay before the command

    store.observe(nullptr);
    accounts.observe(nullptr);
    CHECK(store.observer() == nullptr);
    CHECK(accounts.observer() == nullptr);
    (void)accounts.execute("1", Deposit{6});
    (void)store.read_stream("account-1");
    CHECK(recorder.commands.size() == 1);
    CHECK(recorder.appends.size() == 1);
    CHECK(recorder.reads.size() == 1);
    CHECK(accounts.load("1").balance() == 11);
}

TEST_CASE("observer: a hook that throws changes nothing") {
    Store store;
    Throwing throwing;
    store.observe(&throwing);
    orchestrix::Repository<Account, Store> accounts(store);
    accounts.observe(&throwing);
    CHECK(accounts.execute("1", OpenAccount{"1", "ann"}).append.written);
    CHECK(store.read_stream("1").size() == 1);
    // The store's own exception reaches the caller, not the hook's.
    CHECK_THROWS_AS(store.append("1", {MoneyDeposited{"1", 1}}, ExpectedVersion::no_stream()),
                    orchestrix::ConcurrencyError);
    CHECK_THROWS_AS(accounts.execute("1", Withdraw{5}), InsufficientFunds);
}

TEST_CASE("observer: Repository::execute reports attempts, replays and outcomes in a span") {
    Recorder recorder;
    recorder.tracing = true;

    SECTION("two conflicts, then success") {
        InterferingStore store(2);
        (void)store.inner.append("account-1", {AccountOpened{"1", "ann"}}, ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store, "account-");
        accounts.observe(&recorder);
        CHECK(accounts.execute("1", Deposit{5}, no_wait(3)).attempts == 3);
        REQUIRE(recorder.commands.size() == 1);
        const auto& c = recorder.commands[0];
        CHECK(c.outcome == CommandOutcome::succeeded);
        CHECK(c.attempts == 3);
        CHECK(c.replayed == 1 + 2 + 3); // each attempt replays what the rival wrote before it
        CHECK(c.stream == "account-1");
        CHECK(c.aggregate.empty()); // Account declares no aggregate_type_name
        REQUIRE(recorder.spans.size() == 1);
        const auto& span = recorder.spans[0];
        CHECK(span.name == "orchestrix.command account-");
        CHECK_FALSE(span.parent.valid());
        CHECK(span.ended);
        CHECK_FALSE(span.error);
        CHECK(std::find(span.texts.begin(), span.texts.end(),
                        std::pair<std::string, std::string>{"orchestrix.stream", "account-1"}) != span.texts.end());
        CHECK(std::find(span.numbers.begin(), span.numbers.end(),
                        std::pair<std::string, std::int64_t>{"orchestrix.attempts", 3}) != span.numbers.end());
    }
    SECTION("conflicts on every attempt") {
        InterferingStore store(5);
        (void)store.inner.append("account-1", {AccountOpened{"1", "ann"}}, ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store, "account-");
        accounts.observe(&recorder);
        CHECK_THROWS_AS(accounts.execute("1", Deposit{5}, no_wait(2)), orchestrix::ConcurrencyError);
        REQUIRE(recorder.commands.size() == 1);
        CHECK(recorder.commands[0].outcome == CommandOutcome::conflict);
        CHECK(recorder.commands[0].attempts == 2);
        REQUIRE(recorder.spans.size() == 1);
        CHECK(recorder.spans[0].ended);
        CHECK(recorder.spans[0].error);
        CHECK(recorder.spans[0].message.find("version conflict") != std::string::npos);
    }
    SECTION("a refused command") {
        InterferingStore store(0);
        (void)store.inner.append("account-1", {AccountOpened{"1", "ann"}}, ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store, "account-");
        accounts.observe(&recorder);
        CHECK_THROWS_AS(accounts.execute("1", Withdraw{5}), InsufficientFunds);
        REQUIRE(recorder.commands.size() == 1);
        CHECK(recorder.commands[0].outcome == CommandOutcome::rejected);
        CHECK(recorder.commands[0].attempts == 1);
        CHECK(recorder.commands[0].replayed == 1);
        CHECK(recorder.spans[0].message == "insufficient funds");
    }
    SECTION("a store that fails") {
        InterferingStore store(0);
        store.broken = true;
        orchestrix::Repository<Account, InterferingStore> accounts(store, "account-");
        accounts.observe(&recorder);
        CHECK_THROWS_AS(accounts.execute("1", OpenAccount{"1", "ann"}), orchestrix::StoreError);
        REQUIRE(recorder.commands.size() == 1);
        CHECK(recorder.commands[0].outcome == CommandOutcome::failed);
        CHECK(recorder.commands[0].replayed == 0);
        CHECK(recorder.spans[0].error);
    }
}

TEST_CASE("observer: a TraceScope's context reaches the events a repository saves") {
    const TraceContext request = trace(sample);
    Store store;
    orchestrix::Repository<Account, Store> accounts(store, "account-");

    SECTION("without an observer: the caller's context itself") {
        {
            const orchestrix::TraceScope scope(request);
            (void)accounts.execute("1", OpenAccount{"1", "ann"});
        }
        (void)accounts.execute("1", Deposit{5}); // outside the scope: no trace
        const auto events = store.read_stream("account-1");
        REQUIRE(events.size() == 2);
        CHECK(events[0].metadata.trace == request);
        CHECK(events[0].metadata.trace.to_string() == sample);
        CHECK_FALSE(events[1].metadata.trace.valid());
    }
    SECTION("with an observer that traces: the command's span, a child of the caller's context") {
        Recorder recorder;
        recorder.tracing = true;
        accounts.observe(&recorder);
        {
            const orchestrix::TraceScope scope(request);
            (void)accounts.execute("1", OpenAccount{"1", "ann"});
            CHECK(orchestrix::current_trace() == request); // restored after the command
        }
        REQUIRE(recorder.spans.size() == 1);
        const TraceContext span = recorder.spans[0].context;
        CHECK(recorder.spans[0].parent == request);
        CHECK(span.trace_id == request.trace_id);
        CHECK(span.span_id != request.span_id);
        const auto events = store.read_stream("account-1");
        REQUIRE(events.size() == 1);
        CHECK(events[0].metadata.trace == span);
    }
    SECTION("with an observer that does not trace: the caller's context") {
        Recorder recorder;
        accounts.observe(&recorder);
        const orchestrix::TraceScope scope(request);
        (void)accounts.execute("1", OpenAccount{"1", "ann"});
        CHECK(recorder.spans.empty());
        CHECK(store.read_stream("account-1").at(0).metadata.trace == request);
    }
    SECTION("a store of a wider event type gets the context too") {
        using Wide = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn, dcb_domain::CourseDefined>;
        orchestrix::InMemoryEventStore<Wide> wide;
        orchestrix::Repository<Account, orchestrix::InMemoryEventStore<Wide>> repo(wide);
        const orchestrix::TraceScope scope(request);
        (void)repo.execute("1", OpenAccount{"1", "ann"});
        CHECK(wide.read_stream("1").at(0).metadata.trace == request);
    }
}

TEST_CASE("observer: the asynchronous store reports through the store it wraps") {
    orchestrix::AsyncInMemoryEventStore<AccountEvent> store;
    Recorder recorder;
    store.observe(&recorder);
    CHECK(store.observer() == &recorder);
    CHECK(store.sync().observer() == &recorder);
    (void)store.append_async("1", {AccountOpened{"1", "ann"}}, ExpectedVersion::no_stream()).get();
    CHECK(store.read_stream_async("1").get().size() == 1);
    store.shutdown();
    REQUIRE(recorder.appends.size() == 1);
    CHECK(recorder.appends[0].store == "memory");
    REQUIRE(recorder.reads.size() == 1);
    CHECK(recorder.reads[0].events == 1);
}

TEST_CASE("observer: the in-memory store keeps an event's trace context") {
    Store store;
    const TraceContext t = trace(sample);
    Envelope traced{AccountOpened{"1", "ann"}};
    traced.metadata.trace = t;
    (void)store.append("1", {traced, Envelope{MoneyDeposited{"1", 5}}}, ExpectedVersion::no_stream());
    const auto events = store.read_stream("1");
    REQUIRE(events.size() == 2);
    CHECK(events[0].metadata.trace == t);
    CHECK(events[1].metadata.trace == TraceContext{});
    std::vector<TraceContext> seen;
    (void)store.visit_all(1, [&](const auto& e) { seen.push_back(e.metadata().trace); });
    CHECK(seen == std::vector<TraceContext>{t, TraceContext{}});

    // A retry with another trace context is still a retry; the stored context stays.
    Envelope retried = traced;
    retried.metadata.trace = TraceContext{};
    CHECK_FALSE(store.append("1", {retried}, ExpectedVersion::no_stream()).written);
    CHECK(store.read_stream("1").at(0).metadata.trace == t);
}

TEST_CASE("observer: snapshots taken, used and ignored are reported") {
    orchestrix::InMemoryEventStore<CounterEvent> store;
    orchestrix::InMemorySnapshotStore snapshots;
    Recorder recorder;
    orchestrix::Repository<Counter, orchestrix::InMemoryEventStore<CounterEvent>, orchestrix::InMemorySnapshotStore>
        counters(store, snapshots, counter_settings(2), "counter-");
    counters.observe(&recorder);

    (void)counters.execute("1", Add{1});
    CHECK(recorder.snapshots.empty());
    (void)counters.execute("1", Add{2}); // version 2: taken
    REQUIRE(recorder.snapshots.size() == 1);
    CHECK(recorder.snapshots[0].outcome == SnapshotOutcome::taken);
    CHECK(recorder.snapshots[0].version == 2);
    CHECK(recorder.snapshots[0].aggregate == "counter");
    CHECK(recorder.snapshots[0].stream == "counter-1");
    CHECK(recorder.snapshots[0].reason.empty());

    CHECK(counters.load("1").total == 3); // used
    REQUIRE(recorder.snapshots.size() == 2);
    CHECK(recorder.snapshots[1].outcome == SnapshotOutcome::used);
    CHECK(recorder.snapshots[1].version == 2);

    // A snapshot from a newer program: ignored, with the reason's name.
    snapshots.save(orchestrix::Snapshot{"counter-1", "counter", 2, 9, "3", {}});
    CHECK(counters.load("1").total == 3);
    REQUIRE(recorder.snapshots.size() == 3);
    CHECK(recorder.snapshots[2].outcome == SnapshotOutcome::ignored);
    CHECK(recorder.snapshots[2].reason == "newer_schema_version");
    CHECK(recorder.snapshots[2].version == 2);

    // Another aggregate's snapshot under this stream: ignored.
    orchestrix::InMemorySnapshotStore other;
    other.save(orchestrix::Snapshot{"counter-1", "basket", 2, 1, "3", {}});
    orchestrix::Repository<Counter, orchestrix::InMemoryEventStore<CounterEvent>, orchestrix::InMemorySnapshotStore>
        confused(store, other, counter_settings(1000), "counter-");
    confused.observe(&recorder);
    CHECK(confused.load("1").total == 3);
    REQUIRE(recorder.snapshots.size() == 4);
    CHECK(recorder.snapshots[3].reason == "wrong_aggregate_type");

    // Each command reports the events it replayed: none for the new counter, one for the second command.
    REQUIRE(recorder.commands.size() == 2);
    CHECK(recorder.commands[0].aggregate == "counter");
    CHECK(recorder.commands[0].replayed == 0);
    CHECK(recorder.commands[1].replayed == 1);
}

TEST_CASE("observer: reason_name names every snapshot issue") {
    using Reason = orchestrix::SnapshotIssue::Reason;
    CHECK(orchestrix::reason_name(Reason::old_schema_version) == "old_schema_version");
    CHECK(orchestrix::reason_name(Reason::newer_schema_version) == "newer_schema_version");
    CHECK(orchestrix::reason_name(Reason::wrong_aggregate_type) == "wrong_aggregate_type");
    CHECK(orchestrix::reason_name(Reason::ahead_of_stream) == "ahead_of_stream");
    CHECK(orchestrix::reason_name(Reason::undecodable) == "undecodable");
    CHECK(orchestrix::reason_name(Reason::read_failed) == "read_failed");
    CHECK(orchestrix::reason_name(Reason::save_failed) == "save_failed");
    CHECK(orchestrix::reason_name(Reason::upcast_failed) == "upcast_failed");
}

TEST_CASE("observer: DecisionRepository::execute reports decisions and carries the trace") {
    using namespace dcb_domain;
    orchestrix::InMemoryEventStore<CourseEvent> store;
    (void)store.append("course-c1", {CourseDefined{"c1", 2}}, ExpectedVersion::any());
    orchestrix::DecisionRepository decisions(store);
    Recorder recorder;
    recorder.tracing = true;
    decisions.observe(&recorder);
    CHECK(decisions.observer() == &recorder);
    int calls = 0;
    const auto subscribe = [&](const std::string& student) {
        return decisions.execute(
            "course-c1", std::tuple{Seats{"c1"}},
            [&, student](const Seats& s) {
                if (++calls == 1) { // a rival takes a seat after the first read
                    (void)store.append("course-c1", {StudentSubscribed{"rival", "c1"}}, ExpectedVersion::any());
                }
                if (s.taken >= s.capacity) throw std::runtime_error("full");
                return StudentSubscribed{student, "c1"};
            },
            no_wait(3));
    };
    const TraceContext request = trace(sample);
    {
        const orchestrix::TraceScope scope(request);
        CHECK(subscribe("a").attempts == 2);
    }
    CHECK_THROWS_WITH(subscribe("b"), "full");
    REQUIRE(recorder.commands.size() == 2);
    CHECK(recorder.commands[0].outcome == CommandOutcome::succeeded);
    CHECK(recorder.commands[0].attempts == 2);
    CHECK(recorder.commands[0].replayed == 1 + 2); // the course, then the course and the rival's seat
    CHECK(recorder.commands[0].stream == "course-c1");
    CHECK(recorder.commands[1].outcome == CommandOutcome::rejected);
    REQUIRE(recorder.spans.size() == 2);
    CHECK(recorder.spans[0].name == "orchestrix.decision");
    CHECK(recorder.spans[0].parent == request);
    const auto stored = store.read_stream("course-c1");
    REQUIRE(stored.size() == 3);
    CHECK(stored[2].metadata.trace == recorder.spans[0].context);

    // An event that brings its own trace context keeps it.
    const TraceContext own = trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    orchestrix::EventEnvelope<CourseEvent> envelope{CourseDefined{"c2", 5}};
    envelope.metadata.trace = own;
    const auto decision = decisions.load(Seats{"c2"});
    const orchestrix::TraceScope scope(request);
    (void)decisions.append("course-c2", std::span<const orchestrix::EventEnvelope<CourseEvent>>(&envelope, 1),
                           decision);
    CHECK(store.read_stream("course-c2").at(0).metadata.trace == own);
}

TEST_CASE("observer: ObserverSet tells every observer, and ends each one's own span") {
    Recorder first;
    Throwing throwing;
    Recorder second;
    first.tracing = true;
    second.tracing = true;
    orchestrix::ObserverSet set{&first, &throwing};
    set.add(second);
    CHECK(set.observers().size() == 3);
    CHECK_THROWS_AS(orchestrix::ObserverSet({&first, nullptr}), orchestrix::InvalidArgumentError);

    Store store;
    store.observe(&set);
    orchestrix::Repository<Account, Store> accounts(store);
    accounts.observe(&set);
    (void)second.start_span(orchestrix::SpanStart{}); // `second` now numbers its spans differently from `first`
    second.spans.clear();
    (void)accounts.execute("1", OpenAccount{"1", "ann"});

    for (const Recorder* r : {&first, &second}) {
        CHECK(r->appends.size() == 1);
        CHECK(r->reads.size() == 1);
        CHECK(r->commands.size() == 1);
        REQUIRE(r->spans.size() == 1);
        CHECK(r->spans[0].ended);
    }
    CHECK(first.spans[0].context != second.spans[0].context);
    // The set's context (stored with the event) is the first observer's.
    CHECK(store.read_stream("1").at(0).metadata.trace == first.spans[0].context);
}
