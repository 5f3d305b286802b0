#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/projection.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::FailureAction;
using orchestrix::FailurePolicy;
using orchestrix::position_t;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using test_domain::MoneyWithdrawn;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::InMemoryCheckpointStore;
using Runner = orchestrix::Projection<Store, Checkpoints>;
using namespace std::chrono_literals;

void open_and_deposit(Store& store, const std::string& id, int deposits) {
    store.append(id, {AccountOpened{id, "owner of " + id}}, ExpectedVersion::no_stream());
    for (int i = 1; i <= deposits; ++i) store.append(id, {MoneyDeposited{id, i}}, ExpectedVersion::any());
}

// A read model: balances per account, and every position seen (to count duplicates).
struct Balances {
    std::mutex mutex;
    std::map<std::string, std::int64_t> balance;
    std::vector<position_t> seen;

    void apply(const Recorded& e) {
        std::lock_guard lock(mutex);
        seen.push_back(e.position);
        if (const auto* d = std::get_if<MoneyDeposited>(&e.event)) balance[d->account_id] += d->amount;
        if (const auto* w = std::get_if<MoneyWithdrawn>(&e.event)) balance[w->account_id] -= w->amount;
    }
    std::vector<position_t> positions() {
        std::lock_guard lock(mutex);
        return seen;
    }
};

} // namespace

static_assert(orchestrix::checkpoint_store<Checkpoints>);
static_assert(!orchestrix::checkpoint_store<Store>);
static_assert(!orchestrix::checkpoint_store<int>);

TEST_CASE("projection: catches up over stored events in global order and keeps its checkpoint") {
    Store store;
    open_and_deposit(store, "acc-1", 3);
    open_and_deposit(store, "acc-2", 2);
    Checkpoints checkpoints;
    Balances model;
    Runner runner("balances", store, checkpoints, [&](const Recorded& e) { model.apply(e); }, {.batch_size = 2});
    CHECK(runner.run_until_caught_up() == 7);
    CHECK(model.positions() == std::vector<position_t>{1, 2, 3, 4, 5, 6, 7});
    CHECK(model.balance["acc-1"] == 6);
    CHECK(model.balance["acc-2"] == 3);
    CHECK(runner.checkpoint() == 7);
    CHECK(checkpoints.load("balances") == 7);
    CHECK(runner.poll_once() == 0);

    SECTION("a new runner resumes after the stored checkpoint") {
        store.append("acc-1", {MoneyWithdrawn{"acc-1", 5}}, ExpectedVersion::any());
        Runner again("balances", store, checkpoints, [&](const Recorded& e) { model.apply(e); });
        CHECK(again.checkpoint() == 7);
        CHECK(again.run_until_caught_up() == 1);
        CHECK(model.positions().size() == 8);
        CHECK(model.balance["acc-1"] == 1);
    }
}

TEST_CASE("projection: on its own thread, catches up, then receives live events") {
    Store store;
    open_and_deposit(store, "acc-1", 10);
    Checkpoints checkpoints;
    Balances model;
    Runner runner("live", store, checkpoints, [&](const Recorded& e) { model.apply(e); },
                  {.batch_size = 4, .poll_interval = 10s}); // only the store's notification can wake it in time
    runner.start();
    CHECK(runner.running());
    REQUIRE(runner.wait_for(11, 10s));
    CHECK(model.balance["acc-1"] == 55);
    const auto appended = store.append("acc-1", {MoneyDeposited{"acc-1", 100}}, ExpectedVersion::any());
    REQUIRE(runner.wait_for(appended.last_position, 10s));
    CHECK(model.balance["acc-1"] == 155);
    runner.stop();
    CHECK_FALSE(runner.running());
    CHECK(model.positions().size() == 12);
}

TEST_CASE("projection: a filter by type or stream prefix passes over other events but moves the checkpoint") {
    Store store;
    open_and_deposit(store, "acc-1", 2);
    open_and_deposit(store, "other-1", 2);
    store.append("acc-1", {MoneyWithdrawn{"acc-1", 1}}, ExpectedVersion::any());
    Checkpoints checkpoints;
    std::vector<std::string> seen;
    auto record = [&](const Recorded& e) { seen.push_back(e.stream_id + ":" + std::string(e.type())); };

    SECTION("by type") {
        Runner runner("types", store, checkpoints, record,
                      {.filter = orchestrix::EventFilter::of_types({"account.deposited"})});
        runner.run_until_caught_up();
        CHECK(seen == std::vector<std::string>{"acc-1:account.deposited", "acc-1:account.deposited",
                                               "other-1:account.deposited", "other-1:account.deposited"});
        CHECK(runner.checkpoint() == 7);
    }
    SECTION("by stream prefix") {
        Runner runner("prefix", store, checkpoints, record, {.filter = orchestrix::EventFilter::stream_prefix("acc-")});
        runner.run_until_caught_up();
        CHECK(seen.size() == 4);
        for (const auto& s : seen) CHECK(s.rfind("acc-1:", 0) == 0);
        CHECK(runner.checkpoint() == 7);
    }
    SECTION("by both") {
        Runner runner(
            "both", store, checkpoints, record,
            {.filter =
                 orchestrix::EventFilter::of_types({"account.withdrawn", "account.opened"}).and_stream_prefix("acc-")});
        runner.run_until_caught_up();
        CHECK(seen == std::vector<std::string>{"acc-1:account.opened", "acc-1:account.withdrawn"});
    }
}

TEST_CASE("projection: wait_for lets a caller read its own write, also without a thread") {
    Store store;
    Checkpoints checkpoints;
    Balances model;
    Runner runner("own-writes", store, checkpoints, [&](const Recorded& e) { model.apply(e); });
    const auto written = store.append("acc-9", {AccountOpened{"acc-9", "Ada"}, MoneyDeposited{"acc-9", 42}},
                                      ExpectedVersion::no_stream());
    REQUIRE(runner.wait_for(written.last_position, 5s));
    CHECK(model.balance["acc-9"] == 42);
    CHECK_FALSE(runner.wait_for(written.last_position + 1, 20ms)); // nothing there: times out
}

TEST_CASE("projection failure policy: retry calls the handler again until it succeeds") {
    Store store;
    open_and_deposit(store, "acc-1", 3);
    Checkpoints checkpoints;
    int failures_left = 2;
    std::vector<position_t> seen;
    std::vector<std::pair<std::uint32_t, FailureAction>> reported;
    Runner runner("retry", store, checkpoints,
                  [&](const Recorded& e) {
                      if (e.position == 3 && failures_left > 0) {
                          --failures_left;
                          throw std::runtime_error("database busy");
                      }
                      seen.push_back(e.position);
                  },
                  {.on_failure = FailurePolicy::retry(5, 1ms),
                   .on_error = [&](const orchestrix::EventFailure& f, FailureAction a) {
                       reported.emplace_back(f.attempts, a);
                   }});
    runner.run_until_caught_up();
    CHECK(seen == std::vector<position_t>{1, 2, 3, 4});
    CHECK(runner.checkpoint() == 4);
    CHECK_FALSE(runner.failure());
    CHECK(runner.skipped().empty());
    REQUIRE(reported.size() == 2);
    CHECK(reported[0] == std::pair<std::uint32_t, FailureAction>{1, FailureAction::retry});
    CHECK(reported[1] == std::pair<std::uint32_t, FailureAction>{2, FailureAction::retry});
}

TEST_CASE("projection failure policy: skip records the event, its position, type and error, and goes on") {
    Store store;
    open_and_deposit(store, "acc-1", 3);
    Checkpoints checkpoints;
    std::vector<position_t> seen;
    Runner runner("skip", store, checkpoints,
                  [&](const Recorded& e) {
                      if (e.position == 2) throw std::runtime_error("poison deposit");
                      seen.push_back(e.position);
                  },
                  {.on_failure = FailurePolicy::skip()});
    runner.run_until_caught_up();
    CHECK(seen == std::vector<position_t>{1, 3, 4});
    CHECK(runner.checkpoint() == 4);
    const auto skipped = runner.skipped();
    REQUIRE(skipped.size() == 1);
    CHECK(skipped[0].position == 2);
    CHECK(skipped[0].type == "account.deposited");
    CHECK(skipped[0].stream_id == "acc-1");
    CHECK(skipped[0].version == 2);
    CHECK(skipped[0].error == "poison deposit");
    CHECK(skipped[0].attempts == 1);
    CHECK(skipped[0].describe().find("event 2 (account.deposited in stream 'acc-1', version 2)") != std::string::npos);

    SECTION("retries used up, then skip") {
        store.append("acc-1", {MoneyWithdrawn{"acc-1", 1}}, ExpectedVersion::any());
        int calls = 0;
        Runner other("retry-then-skip", store, checkpoints,
                     [&](const Recorded& e) {
                         if (e.position == 5) {
                             ++calls;
                             throw std::runtime_error("always");
                         }
                     },
                     {.on_failure = FailurePolicy::retry(3, 1ms, FailureAction::skip)});
        other.run_until_caught_up();
        CHECK(calls == 3);
        REQUIRE(other.skipped().size() == 1);
        CHECK(other.skipped()[0].attempts == 3);
        CHECK(other.checkpoint() == 5);
    }
}

TEST_CASE("projection failure policy: stop halts at the poison event and reports it") {
    Store store;
    open_and_deposit(store, "acc-1", 4);
    Checkpoints checkpoints;
    std::vector<position_t> seen;
    bool poison = true;
    Runner runner("stop", store, checkpoints,
                  [&](const Recorded& e) {
                      if (e.position == 3 && poison) throw std::runtime_error("cannot apply");
                      seen.push_back(e.position);
                  },
                  {.on_failure = FailurePolicy::stop()});

    SECTION("driven by the caller: poll_once throws with the event and the error") {
        try {
            runner.run_until_caught_up();
            FAIL("the projection should have stopped");
        } catch (const orchestrix::ProjectionStoppedError& e) {
            CHECK(e.failure().position == 3);
            CHECK(e.failure().error == "cannot apply");
            CHECK(std::string(e.what()).find("projection 'stop' stopped: event 3") != std::string::npos);
        }
        // The events before the poison one are committed; nothing after it.
        CHECK(seen == std::vector<position_t>{1, 2});
        CHECK(runner.checkpoint() == 2);
        CHECK(checkpoints.load("stop") == 2);
        REQUIRE_THROWS_AS(runner.poll_once(), orchestrix::ProjectionStoppedError);

        poison = false; // the cause is fixed: resume at the failed event
        runner.resume();
        runner.run_until_caught_up();
        CHECK(seen == std::vector<position_t>{1, 2, 3, 4, 5});
    }
    SECTION("on its thread: the thread ends, failure() reports, wait_for throws") {
        runner.start();
        REQUIRE_THROWS_AS((void)runner.wait_for(5, 10s), orchestrix::ProjectionStoppedError);
        CHECK_FALSE(runner.running());
        REQUIRE(runner.failure());
        CHECK(runner.failure()->position == 3);
        CHECK(runner.failure()->type == "account.deposited");
        poison = false;
        runner.start();
        CHECK(runner.wait_for(5, 10s));
        runner.stop();
    }
}

TEST_CASE("projection: rebuild resets the read model and replays from position zero") {
    Store store;
    open_and_deposit(store, "acc-1", 3);
    Checkpoints checkpoints;
    Balances model;
    Runner runner("rebuild", store, checkpoints, [&](const Recorded& e) { model.apply(e); });
    runner.run_until_caught_up();
    CHECK(model.balance["acc-1"] == 6);
    runner.rebuild([&] {
        model.balance.clear();
        model.seen.clear();
    });
    CHECK(runner.checkpoint() == 0);
    CHECK(checkpoints.load("rebuild") == 0);
    runner.run_until_caught_up();
    CHECK(model.balance["acc-1"] == 6);
    CHECK(model.positions().size() == 4);
}

// In memory nothing rolls a handler's writes back, so a runner commits event by event: the stale runner
// handles the one event whose commit is then refused (that write stands), reloads, and handles nothing the
// winner committed. With a store that rolls writes back the refused write disappears too (the SQLite and
// PostgreSQL tests "two runners ... never apply an event twice").
// (No ';' in a test name: catch_discover_tests splits the name there, and CTest then runs two names that match
// no test case, and passes.)
TEST_CASE("projection: the runner that moves the checkpoint first wins, and a stale one handles one event, is "
          "refused and reloads") {
    Store store;
    open_and_deposit(store, "acc-1", 3);
    Checkpoints checkpoints;
    std::vector<position_t> applied_a;
    std::vector<position_t> applied_b;
    Runner a("shared", store, checkpoints, [&](const Recorded& e) { applied_a.push_back(e.position); });
    Runner b("shared", store, checkpoints, [&](const Recorded& e) { applied_b.push_back(e.position); });
    a.run_until_caught_up();
    CHECK(applied_a == std::vector<position_t>{1, 2, 3, 4});
    b.run_until_caught_up(); // b believed the checkpoint was 0: its first commit is refused, it reloads
    CHECK(applied_b == std::vector<position_t>{1});
    CHECK(b.checkpoint() == 4);
    CHECK(checkpoints.load("shared") == 4);
    // b is now in step: it handles the next event once, and a handled nothing more.
    store.append("acc-1", {MoneyDeposited{"acc-1", 4}}, ExpectedVersion::any());
    CHECK(b.run_until_caught_up() == 1);
    CHECK(applied_b == std::vector<position_t>{1, 5});
    CHECK(checkpoints.load("shared") == 5);
    CHECK(applied_a.size() == 4);
}

TEST_CASE("checkpoint store in memory: a conflicting advance rolls back the whole transaction") {
    Checkpoints checkpoints;
    checkpoints.save("a", 5);
    REQUIRE_THROWS_AS(checkpoints.transact([&](Checkpoints::Transaction& tx) {
        checkpoints.advance(tx, "b", 0, 3);
        checkpoints.advance(tx, "a", 4, 9);
    }),
                      orchestrix::CheckpointConflictError);
    CHECK(checkpoints.load("a") == 5);
    CHECK(checkpoints.load("b") == 0);
    REQUIRE_THROWS_AS(checkpoints.transact([&](Checkpoints::Transaction& tx) {
        checkpoints.advance(tx, "a", 5, 6);
        throw std::runtime_error("handler failed");
    }),
                      std::runtime_error);
    CHECK(checkpoints.load("a") == 5);
}

TEST_CASE("projection: bad input is refused") {
    Store store;
    Checkpoints checkpoints;
    REQUIRE_THROWS_AS(Runner("", store, checkpoints, [](const Recorded&) {}), orchestrix::InvalidArgumentError);
}

TEST_CASE("failure policy: backoff grows by the multiplier up to the limit") {
    auto p = FailurePolicy::retry(6, 10ms);
    p.max_backoff = 35ms;
    CHECK(p.backoff_before(1) == 0ms);
    CHECK(p.backoff_before(2) == 10ms);
    CHECK(p.backoff_before(3) == 20ms);
    CHECK(p.backoff_before(4) == 35ms);
    CHECK(p.attempts() == 6);
    CHECK(p.final_action() == FailureAction::stop);
    CHECK(FailurePolicy::skip().attempts() == 1);
    CHECK(FailurePolicy::retry(0).attempts() == 1);
    CHECK(FailurePolicy::retry(2, 1ms, FailureAction::retry).final_action() == FailureAction::stop);
}

TEST_CASE("event filter: matches by type names and stream prefix") {
    const auto all = orchestrix::EventFilter::all();
    CHECK(all.matches("anything", "any-stream"));
    const auto types = orchestrix::EventFilter::of_types({"a.b", "c.d"});
    CHECK(types.matches("c.d", "s"));
    CHECK_FALSE(types.matches("c.de", "s"));
    const auto prefix = orchestrix::EventFilter::stream_prefix("order-");
    CHECK(prefix.matches("x", "order-1"));
    CHECK_FALSE(prefix.matches("x", "orde"));
    CHECK_FALSE(prefix.matches("x", "ORDER-1"));
}
