#include <orchestrix/projection/projection.hpp>
#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/kill_loop.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::FailurePolicy;
using orchestrix::position_t;
using orchestrix::SqliteTransaction;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::SqliteCheckpointStore;
using Runner = orchestrix::Projection<Store, Checkpoints>;
using namespace std::chrono_literals;

const orchestrix::SqliteOptions quick{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)};

// Appends `count` deposits of 1..count (in batches) to streams acc-0..acc-9.
void append_deposits(Store& store, std::uint64_t first, std::uint64_t count) {
    std::vector<orchestrix::EventEnvelope<AccountEvent>> batch;
    for (std::uint64_t i = first; i < first + count; ++i) {
        batch.emplace_back(MoneyDeposited{"acc-" + std::to_string(i % 10), static_cast<std::int64_t>(i + 1)});
        if (batch.size() == 100 || i + 1 == first + count) {
            store.append("deposits-" + std::to_string(i / 100), batch, ExpectedVersion::any());
            batch.clear();
        }
    }
}

// The read model: one row per projected event (no unique key, so a duplicate would show).
void create_model(SqliteTransaction& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS projected (position INTEGER NOT NULL, account TEXT NOT NULL, "
            "amount INTEGER NOT NULL)");
}

void project(SqliteTransaction& tx, const Recorded& e) {
    const auto& d = std::get<MoneyDeposited>(e.event);
    tx.run("INSERT INTO projected (position, account, amount) VALUES (?1, ?2, ?3)", e.position, d.account_id, d.amount);
}

std::int64_t count(Checkpoints& model, const std::string& sql) {
    return model.read([&](SqliteTransaction& tx) { return tx.query_int64(sql).value_or(-1); });
}

} // namespace

static_assert(orchestrix::checkpoint_store<Checkpoints>);

TEST_CASE("sqlite projection: the read model and the checkpoint commit together, or neither does") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"), quick);
    append_deposits(store, 0, 6);
    Checkpoints model(dir.file("model.db"), quick);
    model.transact(create_model);
    Runner runner("stop-at-4", store, model,
                  [](SqliteTransaction& tx, const Recorded& e) {
                      project(tx, e); // written, then the handler fails: the write must not survive
                      if (e.position == 4) throw std::runtime_error("poison");
                  },
                  {.on_failure = FailurePolicy::stop(), .batch_size = 10});
    REQUIRE_THROWS_AS(runner.run_until_caught_up(), orchestrix::ProjectionStoppedError);
    CHECK(count(model, "SELECT count(*) FROM projected") == 3);
    CHECK(count(model, "SELECT max(position) FROM projected") == 3);
    CHECK(model.load("stop-at-4") == 3);
    CHECK(runner.failure()->position == 4);
}

TEST_CASE("sqlite projection: a failed batch is replayed one event at a time without duplicates") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"), quick);
    append_deposits(store, 0, 50);
    Checkpoints model(dir.file("model.db"), quick);
    model.transact(create_model);
    int failures = 1;
    Runner runner("retry", store, model,
                  [&](SqliteTransaction& tx, const Recorded& e) {
                      project(tx, e);
                      if (e.position == 17 && failures-- > 0) throw std::runtime_error("transient");
                  },
                  {.on_failure = FailurePolicy::retry(3, 1ms), .batch_size = 20});
    runner.run_until_caught_up();
    CHECK(count(model, "SELECT count(*) FROM projected") == 50);
    CHECK(count(model, "SELECT count(DISTINCT position) FROM projected") == 50);
    CHECK(model.load("retry") == 50);
}

TEST_CASE("sqlite projection: skip records the poison event and commits the rest") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"), quick);
    append_deposits(store, 0, 5);
    Checkpoints model(dir.file("model.db"), quick);
    model.transact(create_model);
    Runner runner("skip", store, model,
                  [](SqliteTransaction& tx, const Recorded& e) {
                      project(tx, e);
                      if (e.position == 2) throw std::runtime_error("bad row");
                  },
                  {.on_failure = FailurePolicy::skip()});
    runner.run_until_caught_up();
    CHECK(count(model, "SELECT count(*) FROM projected") == 4);
    CHECK(count(model, "SELECT count(*) FROM projected WHERE position = 2") == 0);
    REQUIRE(runner.skipped().size() == 1);
    CHECK(runner.skipped()[0].position == 2);
    CHECK(runner.skipped()[0].error == "bad row");
    CHECK(model.load("skip") == 5);
}

TEST_CASE("sqlite projection: polls for live events, and rebuild replays from zero") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"), quick);
    append_deposits(store, 0, 10);
    Checkpoints model(dir.file("model.db"), quick);
    model.transact(create_model);
    Runner runner("live", store, model, project, {.poll_interval = 2ms});
    runner.start();
    REQUIRE(runner.wait_for(10, 10s));
    append_deposits(store, 10, 5);
    REQUIRE(runner.wait_for(15, 10s));
    CHECK(count(model, "SELECT count(*) FROM projected") == 15);
    runner.rebuild([](SqliteTransaction& tx) { tx.exec("DELETE FROM projected"); });
    CHECK(runner.running());
    REQUIRE(runner.wait_for(15, 10s));
    runner.stop();
    CHECK(count(model, "SELECT count(*) FROM projected") == 15);
    CHECK(count(model, "SELECT sum(amount) FROM projected") == 120);
}

TEST_CASE("sqlite projection: two runners of one projection never apply an event twice") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"), quick);
    append_deposits(store, 0, 30);
    Checkpoints first(dir.file("model.db"), quick);
    Checkpoints second(dir.file("model.db"), quick);
    first.transact(create_model);
    Runner a("shared", store, first, project, {.batch_size = 7});
    Runner b("shared", store, second, project, {.batch_size = 5});
    CHECK(a.poll_once() == 7);
    b.run_until_caught_up(); // its first commit expects checkpoint 0 and is refused, then it reloads
    a.run_until_caught_up();
    CHECK(count(first, "SELECT count(*) FROM projected") == 30);
    CHECK(count(first, "SELECT count(DISTINCT position) FROM projected") == 30);
}

TEST_CASE("sqlite checkpoint store: bad input is refused with a typed error and changes nothing") {
    test_support::TempDir dir;
    Checkpoints model(dir.file("model.db"), quick);
    model.save("p", 4);
    REQUIRE_THROWS_AS(model.transact([](SqliteTransaction& tx) { tx.run("INSERT INTO nowhere VALUES (1)"); }),
                      orchestrix::SqliteError);
    REQUIRE_THROWS_AS(model.transact([](SqliteTransaction& tx) { tx.run("SELECT ?1", std::uint64_t{1} << 63U); }),
                      orchestrix::InvalidArgumentError);
    try {
        model.transact([&](SqliteTransaction& tx) { model.advance(tx, "p", 3, 9); });
        FAIL("expected a conflict");
    } catch (const orchestrix::CheckpointConflictError& e) {
        CHECK(e.expected() == 3);
        CHECK(e.actual() == 4);
        CHECK(std::string(e.what()).find("'p'") != std::string::npos);
    }
    CHECK(model.load("p") == 4);
    CHECK(model.read([](SqliteTransaction& tx) {
        return tx.query_text("SELECT 'it''s ' || ?1", std::string("quoted \"'%_"));
    }) == std::optional<std::string>("it's quoted \"'%_"));
}

TEST_CASE("sqlite projection: exactly once while the projector is killed with SIGKILL at random points") {
    const std::uint64_t rounds = test_support::env_count("ORCHESTRIX_KILL_ROUNDS", 10, 1);
    const std::uint64_t total = test_support::env_count("ORCHESTRIX_KILL_EVENTS", 5000, 1);
    test_support::TempDir dir;
    const std::string events_path = dir.file("events.db");
    const std::string model_path = dir.file("model.db");
    {
        Checkpoints model(model_path, quick);
        model.transact(create_model);
    }
    // A random seed unless ORCHESTRIX_KILL_SEED gives one; every failure names it, so the run can be replayed.
    const std::uint64_t seed = test_support::env_count("ORCHESTRIX_KILL_SEED", std::random_device{}());
    INFO("seed " << seed << " (replay: ORCHESTRIX_KILL_SEED=" << seed << ")");
    std::mt19937_64 random(seed);
    test_support::KillLoopResult result = test_support::kill_loop(
        rounds, total, random,
        [&](std::uint64_t first, std::uint64_t count) {
            Store store(events_path, quick);
            append_deposits(store, first, count);
        },
        [&](std::uint64_t batch, const test_support::KillReporter& report) {
            Store store(events_path, quick);
            Checkpoints model(model_path, quick);
            Runner runner("exactly-once", store, model, project, {.batch_size = batch});
            report.started();
            while (runner.poll_once() != 0) report.committed(runner.checkpoint());
            report.finished();
        },
        [&] {
            Checkpoints model(model_path, quick);
            return model.load("exactly-once");
        });
    std::vector<std::uint64_t>& observed = result.observed;
    const std::uint64_t appended = result.appended;
    const std::uint64_t killed_projecting = result.killed_projecting;
    const std::uint64_t killed_opening = result.killed_opening;
    const std::uint64_t not_killed = result.not_killed;
    {
        Store store(events_path, quick);
        if (appended < total) append_deposits(store, appended, total - appended);
        Checkpoints model(model_path, quick);
        Runner runner("exactly-once", store, model, project, {.batch_size = 256});
        runner.run_until_caught_up();
        observed.push_back(model.load("exactly-once"));
    }
    CAPTURE(killed_projecting, killed_opening, not_killed);
    if (std::getenv("ORCHESTRIX_KILL_VERBOSE") != nullptr) {
        for (auto p : observed) std::printf("%llu ", static_cast<unsigned long long>(p));
        std::printf("\n");
    }
    std::printf("projection kill -9: seed %llu, %llu rounds: %llu SIGKILLs mid-projection, %llu while opening, %llu "
                "children finished first; %llu events\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(rounds),
                static_cast<unsigned long long>(killed_projecting), static_cast<unsigned long long>(killed_opening),
                static_cast<unsigned long long>(not_killed), static_cast<unsigned long long>(total));
    CHECK(killed_projecting > 0); // the kills did land while the child was projecting
    for (std::size_t i = 1; i < observed.size(); ++i) {
        INFO("checkpoint " << i << ": " << observed[i - 1] << " then " << observed[i]);
        CHECK(observed[i] >= observed[i - 1]);
    }
    Checkpoints model(model_path, quick);
    CHECK(observed.back() == total);
    CHECK(count(model, "SELECT count(*) FROM projected") == static_cast<std::int64_t>(total));
    CHECK(count(model, "SELECT count(DISTINCT position) FROM projected") == static_cast<std::int64_t>(total));
    CHECK(count(model, "SELECT count(*) FROM (SELECT position FROM projected GROUP BY position HAVING count(*) > 1)") ==
          0);
    CHECK(count(model, "SELECT sum(amount) FROM projected") == static_cast<std::int64_t>(total * (total + 1) / 2));
}
