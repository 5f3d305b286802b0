#include <orchestrix/postgres/checkpoint_store.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/projection/subscription.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using test_support::RawConnection;

using orchestrix::ExpectedVersion;
using orchestrix::FailurePolicy;
using orchestrix::position_t;
using orchestrix::PostgresTransaction;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::PostgresCheckpointStore;
using Runner = orchestrix::Projection<Store, Checkpoints>;
using namespace std::chrono_literals;

void create_model(PostgresTransaction& tx) {
    (void)tx.exec("CREATE TABLE IF NOT EXISTS projected (position bigint NOT NULL, account text NOT NULL)");
}

void project(PostgresTransaction& tx, const Recorded& e) {
    (void)tx.exec("INSERT INTO projected (position, account) VALUES ($1, $2)", e.position, e.stream_id);
}

std::int64_t query(Checkpoints& model, const std::string& sql) {
    return model.read([&](PostgresTransaction& tx) { return tx.query_int64(sql).value_or(-1); });
}

} // namespace

static_assert(orchestrix::checkpoint_store<Checkpoints>);

TEST_CASE("postgres subscription: a slow append that commits after a faster one is still delivered, in order") {
    const auto url = test_support::fresh_postgres_database(true); // a database of its own: its own NOTIFY channel
    Store store(url);
    store.append("acc-1", {AccountOpened{"acc-1", "Ada"}}, ExpectedVersion::no_stream());

    std::mutex mutex;
    std::vector<position_t> delivered;
    orchestrix::CatchUpSubscription<Store> subscription(store, 0, [&](const Recorded& e) {
        std::lock_guard lock(mutex);
        delivered.push_back(e.position);
    });
    subscription.start();
    REQUIRE(subscription.wait_for(1, 10s));

    // The slow writer: its append transaction takes position 2 and stays open.
    RawConnection slow(url);
    slow.exec("BEGIN");
    const std::string id = orchestrix::Uuid::generate().to_string();
    slow.exec(
        "SELECT * FROM orchestrix_append('acc-slow', 0, 0, ARRAY['" + id +
        "']::uuid[], ARRAY['account.opened'], ARRAY[1], ARRAY['{\"account_id\":\"acc-slow\",\"owner\":\"Slow\"}'],"
        " ARRAY['{\"event_id\":\"" +
        id + "\"}'])");
    const std::string slow_pid = slow.exec("SELECT pg_backend_pid()");
    // The fast writer starts later and would commit first if it could.
    auto fast = std::async(std::launch::async, [&] {
        return store.append("acc-fast", {AccountOpened{"acc-fast", "Fast"}}, ExpectedVersion::no_stream());
    });
    // The server shows it waiting for a lock the slow writer holds (not merely slow to start).
    RawConnection observer(url);
    bool waiting = false;
    for (const auto deadline = std::chrono::steady_clock::now() + 30s;
         !waiting && std::chrono::steady_clock::now() < deadline;) {
        waiting = observer.exec("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND " + slow_pid +
                                " = ANY (pg_blocking_pids(pid))") != "0";
        if (!waiting) std::this_thread::sleep_for(5ms);
    }
    if (!waiting) slow.exec("COMMIT"); // let the fast writer finish before failing
    REQUIRE(waiting);
    CHECK(fast.wait_for(0ms) == std::future_status::timeout); // it waits for the slow one's lock
    CHECK(subscription.checkpoint() == 1);                    // and nothing uncommitted was delivered
    slow.exec("COMMIT");
    const auto fast_result = fast.get();
    CHECK(fast_result.first_position == 3);
    REQUIRE(subscription.wait_for(3, 10s));
    subscription.stop();
    std::lock_guard lock(mutex);
    CHECK(delivered == std::vector<position_t>{1, 2, 3});
}

TEST_CASE("postgres projection: the read model and the checkpoint commit together, or neither does") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    for (int i = 0; i < 6; ++i)
        store.append("acc-" + std::to_string(i), {MoneyDeposited{"x", i}}, ExpectedVersion::any());
    Checkpoints model(url);
    model.transact(create_model);
    int failures = 1;
    Runner runner("pg", store, model,
                  [&](PostgresTransaction& tx, const Recorded& e) {
                      project(tx, e);
                      if (e.position == 4 && failures-- > 0) throw std::runtime_error("transient");
                      if (e.position == 6) throw std::runtime_error("poison");
                  },
                  {.on_failure = FailurePolicy::retry(2, 1ms), .batch_size = 10});
    REQUIRE_THROWS_AS(runner.run_until_caught_up(), orchestrix::ProjectionStoppedError);
    CHECK(query(model, "SELECT count(*) FROM projected") == 5);
    CHECK(query(model, "SELECT count(DISTINCT position) FROM projected") == 5);
    CHECK(model.load("pg") == 5);
    REQUIRE(runner.failure());
    CHECK(runner.failure()->position == 6);
    CHECK(runner.failure()->attempts == 2);
}

TEST_CASE("postgres projection: follows live appends, two runners never apply an event twice, rebuild") {
    const auto url = test_support::fresh_postgres_database(true);
    Store store(url);
    Checkpoints first(url);
    Checkpoints second(url);
    first.transact(create_model);
    Runner a("shared", store, first, project, {.batch_size = 3, .poll_interval = 20ms});
    Runner b("shared", store, second, project, {.batch_size = 2, .poll_interval = 20ms});
    a.start();
    b.start();
    position_t last = 0;
    for (int i = 0; i < 20; ++i) {
        last = store.append("acc-" + std::to_string(i % 3), {MoneyDeposited{"x", i}}, ExpectedVersion::any())
                   .last_position;
    }
    REQUIRE(a.wait_for(last, 20s));
    REQUIRE(b.wait_for(last, 20s));
    b.stop();
    CHECK(query(first, "SELECT count(*) FROM projected") == 20);
    CHECK(query(first, "SELECT count(DISTINCT position) FROM projected") == 20);
    a.rebuild([](PostgresTransaction& tx) { (void)tx.exec("DELETE FROM projected"); });
    REQUIRE(a.wait_for(last, 20s));
    a.stop();
    CHECK(query(first, "SELECT count(*) FROM projected") == 20);
}

TEST_CASE("postgres checkpoint store: a stale advance is refused and bad SQL is a typed error") {
    const auto url = test_support::fresh_postgres_database();
    Checkpoints model(url);
    model.save("p", 7);
    REQUIRE_THROWS_AS(model.transact([&](PostgresTransaction& tx) { model.advance(tx, "p", 3, 9); }),
                      orchestrix::CheckpointConflictError);
    REQUIRE_THROWS_AS(model.transact([](PostgresTransaction& tx) { (void)tx.exec("SELEC nonsense"); }),
                      orchestrix::PostgresError);
    CHECK(model.load("p") == 7);
    CHECK(model.load("none") == 0);
}
