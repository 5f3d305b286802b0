#include <orchestrix/projection/partitioned.hpp>
#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/temp_dir.hpp"
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
using orchestrix::SqliteTransaction;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::SqliteCheckpointStore;
using Runner = orchestrix::PartitionedProjection<Store, Checkpoints>;
using Options = orchestrix::PartitionOptions<AccountEvent>;
using namespace std::chrono_literals;

const orchestrix::SqliteOptions quick{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(10000)};

// Appends `count` deposits to streams acc-<first>..., ten events per stream.
void append_deposits(Store& store, std::uint64_t first, std::uint64_t count) {
    for (std::uint64_t i = first; i < first + count; i += 10) {
        std::vector<orchestrix::EventEnvelope<AccountEvent>> batch;
        for (std::uint64_t j = i; j < i + 10 && j < first + count; ++j)
            batch.emplace_back(MoneyDeposited{"acc-" + std::to_string(i), static_cast<std::int64_t>(j)});
        store.append("acc-" + std::to_string(i), batch, ExpectedVersion::any());
    }
}

// The read model: one row per committed event, with the runner and lease token that committed it (no
// unique key, so a duplicate would show).
void project(SqliteTransaction& tx, const Recorded& e, const PartitionLease& lease, const std::string& runner) {
    tx.run("INSERT INTO projected (position, stream, partition_no, runner, token) VALUES (?1, ?2, ?3, ?4, ?5)",
           e.position, e.stream_id, lease.partition, runner, lease.token);
}

Options options_for(const std::string& runner) {
    Options o;
    o.partitions = 8;
    o.runner_id = runner;
    o.lease_ttl = 600ms;
    o.claim_interval = 20ms;
    o.projection.batch_size = 50;
    o.projection.poll_interval = 5ms;
    return o;
}

// Each runner: its own connections to the event store and to the read model's file.
struct RunnerProcess {
    RunnerProcess(const std::string& events, const std::string& model, const std::string& id)
        : store(events, quick), checkpoints(model, quick),
          runner(
              "p", store, checkpoints,
              [id](SqliteTransaction& tx, const Recorded& e, const PartitionLease& lease) {
                  project(tx, e, lease, id);
              },
              options_for(id)) {}
    Store store;
    Checkpoints checkpoints;
    Runner runner;
};

std::int64_t query(Checkpoints& model, const std::string& sql) {
    return model.read([&](SqliteTransaction& tx) { return tx.query_int64(sql).value_or(-1); });
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// Every event once; within a partition, positions rise and tokens never go back; a token has one runner.
void check_read_model(Checkpoints& model, std::int64_t head) {
    CHECK(query(model, "SELECT count(*) FROM projected") == head);
    CHECK(query(model, "SELECT count(DISTINCT position) FROM projected") == head);
    CHECK(query(model, "SELECT count(*) FROM projected a JOIN projected b ON a.partition_no = b.partition_no AND "
                       "b.rowid > a.rowid AND (b.position <= a.position OR b.token < a.token)") == 0);
    CHECK(query(model, "SELECT count(*) FROM (SELECT partition_no, token FROM projected GROUP BY partition_no, token "
                       "HAVING count(DISTINCT runner) > 1)") == 0);
}

} // namespace

static_assert(orchestrix::lease_store<Checkpoints>);

TEST_CASE("sqlite partitioned projection: three runners with their own connections project each event once") {
    test_support::TempDir dir;
    const std::string events = dir.file("events.db");
    const std::string model_file = dir.file("model.db");
    Store store(events, quick);
    Checkpoints model(model_file, quick);
    model.transact([](SqliteTransaction& tx) {
        tx.exec("CREATE TABLE projected (position INTEGER NOT NULL, stream TEXT NOT NULL, partition_no INTEGER NOT "
                "NULL, runner TEXT NOT NULL, token INTEGER NOT NULL)");
    });
    append_deposits(store, 0, 2000);

    std::vector<std::unique_ptr<RunnerProcess>> runners;
    for (const char* id : {"a", "b", "c"}) {
        runners.push_back(std::make_unique<RunnerProcess>(events, model_file, id));
        runners.back()->runner.start();
    }
    append_deposits(store, 2000, 2000); // while they run
    const auto held = [&](std::size_t i) { return runners[i]->runner.held().size(); };
    REQUIRE(eventually([&] { return held(0) + held(1) + held(2) == 8 && held(0) <= 3 && held(1) <= 3; }));
    REQUIRE(runners[0]->runner.wait_for(store.head_position(), 60s));

    SECTION("a runner abandoned without releasing its leases loses them to the others after the lease time") {
        // Abandoned: its thread is stopped without the release a graceful stop does. Its object stays.
        auto abandoned = std::make_unique<RunnerProcess>(events, model_file, "d");
        runners[2]->runner.stop(); // c leaves gracefully: d and the two others share its partitions
        abandoned->runner.run_until_caught_up();
        REQUIRE(eventually([&] {
            abandoned->runner.poll_once();
            return !abandoned->runner.held().empty();
        }));
        const auto taken = abandoned->runner.held();
        const auto since = std::chrono::steady_clock::now();
        append_deposits(store, 4000, 1000);
        REQUIRE(runners[0]->runner.wait_for(store.head_position(), 60s));
        const auto elapsed = std::chrono::steady_clock::now() - since;
        INFO("takeover after " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
        CHECK(elapsed >= 300ms); // not before its leases expired (600 ms after its last renewal)
        CHECK(held(0) + held(1) == 8);
        abandoned->runner.poll_once(); // wakes up: its leases are gone, it commits nothing
        for (const PartitionLease& lease : abandoned->runner.held())
            for (const PartitionLease& before : taken) CHECK(lease.token != before.token);
    }
    for (auto& r : runners) r->runner.stop();
    check_read_model(model, static_cast<std::int64_t>(store.head_position()));
}
