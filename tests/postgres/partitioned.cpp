#include <orchestrix/postgres/checkpoint_store.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/projection/partitioned.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::PartitionLease;
using orchestrix::PostgresTransaction;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::PostgresCheckpointStore;
using Runner = orchestrix::PartitionedProjection<Store, Checkpoints>;
using Options = orchestrix::PartitionOptions<AccountEvent>;
using namespace std::chrono_literals;

void append_deposits(Store& store, std::uint64_t first, std::uint64_t count) {
    for (std::uint64_t i = first; i < first + count; i += 10) {
        std::vector<orchestrix::EventEnvelope<AccountEvent>> batch;
        for (std::uint64_t j = i; j < i + 10 && j < first + count; ++j)
            batch.emplace_back(MoneyDeposited{"acc-" + std::to_string(i), static_cast<std::int64_t>(j)});
        store.append("acc-" + std::to_string(i), batch, ExpectedVersion::any());
    }
}

void create_model(Checkpoints& model) {
    model.transact([](PostgresTransaction& tx) {
        (void)tx.exec("CREATE TABLE projected (seq bigserial PRIMARY KEY, position bigint NOT NULL, stream text NOT "
                      "NULL, partition_no integer NOT NULL, runner text NOT NULL, token bigint NOT NULL)");
    });
}

auto handler_of(const std::string& runner) {
    return [runner](PostgresTransaction& tx, const Recorded& e, const PartitionLease& lease) {
        (void)tx.exec(
            "INSERT INTO projected (position, stream, partition_no, runner, token) VALUES ($1, $2, $3, $4, $5)",
            e.position, e.stream_id, lease.partition, runner, lease.token);
    };
}

Options options_for(const std::string& runner, std::chrono::milliseconds ttl = 1000ms) {
    Options o;
    o.partitions = 8;
    o.runner_id = runner;
    o.lease_ttl = ttl;
    o.claim_interval = 20ms;
    o.projection.batch_size = 100;
    o.projection.poll_interval = 10ms;
    return o;
}

struct RunnerProcess {
    RunnerProcess(const std::string& url, const std::string& id, std::chrono::milliseconds ttl = 1000ms)
        : store(url), checkpoints(url), runner("p", store, checkpoints, handler_of(id), options_for(id, ttl)) {}
    Store store;
    Checkpoints checkpoints;
    Runner runner;
};

std::int64_t query(Checkpoints& model, const std::string& sql) {
    return model.read([&](PostgresTransaction& tx) { return tx.query_int64(sql).value_or(-1); });
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

} // namespace

static_assert(orchestrix::lease_store<Checkpoints>);

TEST_CASE("postgres partitioned projection: three runners with their own connections project each event once") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    Checkpoints model(url);
    create_model(model);
    append_deposits(store, 0, 1500);
    std::vector<std::unique_ptr<RunnerProcess>> runners;
    for (const char* id : {"a", "b", "c"}) {
        runners.push_back(std::make_unique<RunnerProcess>(url, id));
        runners.back()->runner.start();
    }
    append_deposits(store, 1500, 1500);
    const auto held = [&](std::size_t i) { return runners[i]->runner.held().size(); };
    REQUIRE(eventually([&] { return held(0) + held(1) + held(2) == 8 && held(0) <= 3 && held(1) <= 3; }));
    REQUIRE(runners[0]->runner.wait_for(store.head_position(), 60s));
    runners[1]->runner.stop(); // its partitions go to the two others at once
    REQUIRE(eventually([&] { return held(0) + held(2) == 8; }, 5s));
    append_deposits(store, 3000, 500);
    REQUIRE(runners[2]->runner.wait_for(store.head_position(), 60s));
    for (auto& r : runners) r->runner.stop();

    const auto head = static_cast<std::int64_t>(store.head_position());
    CHECK(query(model, "SELECT count(*) FROM projected") == head);
    CHECK(query(model, "SELECT count(DISTINCT position) FROM projected") == head);
    CHECK(query(model,
                "SELECT count(*) FROM (SELECT position, token, lag(position) OVER w AS p, lag(token) OVER w AS t "
                "FROM projected WINDOW w AS (PARTITION BY partition_no ORDER BY seq)) x "
                "WHERE position <= p OR token < t") == 0);
    CHECK(query(model, "SELECT count(*) FROM (SELECT 1 FROM projected GROUP BY partition_no, token "
                       "HAVING count(DISTINCT runner) > 1) x") == 0);
    CHECK(query(model, "SELECT count(DISTINCT runner) FROM projected") == 3);
}

TEST_CASE("postgres partitioned projection: a runner whose lease was taken cannot commit to that partition") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    Checkpoints model(url);
    create_model(model);
    append_deposits(store, 0, 100);
    RunnerProcess a(url, "a", 30s); // renews every 10 s: it believes in its leases meanwhile
    a.runner.run_until_caught_up();
    REQUIRE(a.runner.held().size() == 8);
    const std::uint32_t stolen = orchestrix::partition_of("acc-100", 8);
    // Another runner takes the partition (as it would after the lease expired).
    (void)model.read([&](PostgresTransaction& tx) {
        return tx.exec("UPDATE orchestrix_partition_leases SET owner = 'thief', token = token + 1, expires_at = "
                       "clock_timestamp() + interval '1 hour' WHERE projection = 'p' AND partition_no = $1",
                       stolen);
    });
    append_deposits(store, 100, 10); // stream acc-100: partition `stolen`
    const auto checkpoint_before = model.load(orchestrix::partition_checkpoint_name("p", stolen));
    a.runner.run_until_caught_up();
    CHECK(a.runner.leases_lost() == 1);
    CHECK(a.runner.held().size() == 7);
    CHECK(query(model, "SELECT count(*) FROM projected WHERE stream = 'acc-100'") == 0);
    CHECK(model.load(orchestrix::partition_checkpoint_name("p", stolen)) == checkpoint_before);
    CHECK(query(model, "SELECT count(*) FROM projected") == 100);
}

TEST_CASE("postgres partitioned projection: a runner with another partition count is refused") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    Checkpoints model(url);
    Runner eight(
        "p", store, model, [](const Recorded&) {}, options_for("a"));
    Options four = options_for("b");
    four.partitions = 4;
    CHECK_THROWS_AS((Runner(
                        "p", store, model, [](const Recorded&) {}, four)),
                    orchestrix::PartitionCountMismatchError);
}
