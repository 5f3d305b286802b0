#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/lease.hpp>
#include <orchestrix/projection/partitioned.hpp>
#include <orchestrix/projection/projection.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::FailurePolicy;
using orchestrix::PartitionLease;
using orchestrix::position_t;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::InMemoryCheckpointStore;
using Runner = orchestrix::PartitionedProjection<Store, Checkpoints>;
using Options = orchestrix::PartitionOptions<AccountEvent>;
using namespace std::chrono_literals;

// One committed handler call, as the read model saw it (written through `tx.on_commit`).
struct Commit {
    position_t position = 0;
    std::string stream{};
    std::uint32_t partition = 0;
    std::string runner{};
    std::uint64_t token = 0;
};

struct ReadModel {
    std::mutex mutex;
    std::vector<Commit> commits;
    std::atomic<std::uint64_t> calls{0};

    // The handler of runner `runner`.
    auto handler(const std::string& runner) {
        return [this, runner](Checkpoints::Transaction& tx, const Recorded& e, const PartitionLease& lease) {
            ++calls;
            tx.on_commit([this, runner, lease, position = e.position, stream = e.stream_id] {
                std::lock_guard lock(mutex);
                commits.push_back({position, stream, lease.partition, runner, lease.token});
            });
        };
    }
    std::vector<Commit> snapshot() {
        std::lock_guard lock(mutex);
        return commits;
    }
};

void append_events(Store& store, int streams, int per_stream, int first_stream = 0) {
    for (int s = first_stream; s < first_stream + streams; ++s) {
        const std::string id = "acc-" + std::to_string(s);
        store.append(id, {AccountOpened{id, "owner"}}, ExpectedVersion::any());
        for (int i = 1; i < per_stream; ++i) store.append(id, {MoneyDeposited{id, i}}, ExpectedVersion::any());
    }
}

Options options_for(const std::string& runner, std::chrono::milliseconds ttl = 600ms) {
    Options options;
    options.partitions = 8;
    options.runner_id = runner;
    options.lease_ttl = ttl;
    options.claim_interval = 20ms;
    options.projection.batch_size = 7;
    options.projection.poll_interval = 5ms;
    return options;
}

// Every event exactly once, in the global order within its partition, in the partition its key hashes
// to, and no partition committed by two runners under one token or with a token going back.
void check_exactly_once(const std::vector<Commit>& commits, position_t head) {
    std::map<position_t, int> count;
    std::map<std::uint32_t, Commit> last;
    std::map<std::pair<std::uint32_t, std::uint64_t>, std::string> token_owner;
    for (const Commit& c : commits) {
        ++count[c.position];
        CHECK(c.partition == orchestrix::partition_of(c.stream, 8));
        auto found = last.find(c.partition);
        if (found != last.end()) {
            INFO("partition " << c.partition << ": " << found->second.position << " then " << c.position);
            CHECK(c.position > found->second.position);
            CHECK(c.token >= found->second.token);
        }
        last[c.partition] = c;
        auto [owner, inserted] = token_owner.emplace(std::pair{c.partition, c.token}, c.runner);
        CHECK(owner->second == c.runner);
    }
    CHECK(count.size() == head);
    for (const auto& [position, n] : count) {
        INFO("position " << position);
        CHECK(n == 1);
    }
}

std::size_t held(const Runner& r) { return r.held().size(); }

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// A checkpoint store without leases.
struct PlainCheckpoints {
    struct Transaction {};
    using transaction_type = Transaction;
    position_t load(std::string_view) { return 0; }
    void save(std::string_view, position_t) {}
    template <class Body>
    void transact(Body&& body) {
        Transaction tx;
        body(tx);
    }
    void advance(Transaction&, std::string_view, position_t, position_t) {}
    void reset(Transaction&, std::string_view) {}
};

} // namespace

static_assert(orchestrix::lease_store<Checkpoints>);
static_assert(orchestrix::checkpoint_store<PlainCheckpoints>);
static_assert(!orchestrix::lease_store<PlainCheckpoints>);

TEST_CASE("partitioned projection: the partition hash is FNV-1a 64 and never changes") {
    STATIC_REQUIRE(orchestrix::fnv1a_64("") == 0xcbf29ce484222325ULL);
    STATIC_REQUIRE(orchestrix::fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
    STATIC_REQUIRE(orchestrix::fnv1a_64("foobar") == 0x85944171f73967e8ULL);
    CHECK(orchestrix::fnv1a_64("acc-1") == 0x9474513984cc9e8cULL);
    CHECK(orchestrix::partition_of("acc-1", 8) == 4);
    CHECK(orchestrix::partition_of("acc-2", 8) == 5);
    CHECK(orchestrix::partition_of("order-42", 8) == 4);
    CHECK(orchestrix::partition_of("order-42", 3) == 2);
    CHECK(orchestrix::partition_of("anything", 1) == 0);
    CHECK_THROWS_AS(orchestrix::partition_of("x", 0), orchestrix::InvalidArgumentError);
    CHECK(orchestrix::partition_checkpoint_name("balances", 3) == "balances#3");
}

TEST_CASE("partitioned projection: bad options are refused, naming the option") {
    Store store;
    Checkpoints checkpoints;
    ReadModel model;
    const auto refused = [&](Options options, const std::string& name, const std::string& option) {
        try {
            Runner r(name, store, checkpoints, model.handler("r"), std::move(options));
            FAIL("accepted a bad " << option);
        } catch (const orchestrix::InvalidArgumentError& e) {
            CHECK(e.argument() == option);
            CHECK(std::string(e.what()).find(option) != std::string::npos);
        }
    };
    Options o = options_for("r");
    o.partitions = 0;
    refused(o, "p", "partitions");
    o.partitions = 5000;
    refused(o, "p", "partitions");
    o = options_for("r");
    o.lease_ttl = 0ms;
    refused(o, "p", "lease_ttl");
    o = options_for("r");
    o.renew_interval = o.lease_ttl;
    refused(o, "p", "renew_interval");
    o = options_for("r");
    o.claim_interval = -1ms;
    refused(o, "p", "claim_interval");
    o = options_for("r");
    o.projection.batch_size = 0;
    refused(o, "p", "batch_size");
    o = options_for("r");
    o.projection.poll_interval = 0ms;
    refused(o, "p", "poll_interval");
    refused(options_for("r"), "", "name");
    refused(options_for("r"), "a#b", "name");

    // An ordinary projection cannot take a name that could be a partition's checkpoint key.
    CHECK_THROWS_AS(
        (orchestrix::Projection<Store, Checkpoints>("balances#3", store, checkpoints, [](const Recorded&) {})),
        orchestrix::InvalidArgumentError);

    SECTION("the defaults derive the renewal and claim intervals from the lease time") {
        Options d;
        d.lease_ttl = 900ms;
        Runner r("p", store, checkpoints, model.handler("r"), d);
        CHECK(r.options().renew_interval == 300ms);
        CHECK(r.options().claim_interval == 300ms);
        CHECK(r.options().partitions == 8);
        CHECK(!r.runner_id().empty());
        Runner other("p", store, checkpoints, model.handler("r"), d);
        CHECK(other.runner_id() != r.runner_id());
    }
}

TEST_CASE("partitioned projection: a runner started with another partition count is refused") {
    Store store;
    Checkpoints checkpoints;
    ReadModel model;
    Runner first("p", store, checkpoints, model.handler("a"), options_for("a"));
    Options four = options_for("b");
    four.partitions = 4;
    try {
        Runner second("p", store, checkpoints, model.handler("b"), four);
        FAIL("a runner with 4 partitions joined a projection of 8");
    } catch (const orchestrix::PartitionCountMismatchError& e) {
        CHECK(e.stored() == 8);
        CHECK(e.requested() == 4);
        CHECK(std::string(e.what()).find("has 8 partitions") != std::string::npos);
        CHECK(std::string(e.what()).find("started with 4") != std::string::npos);
    }
}

TEST_CASE("partitioned projection: one runner alone claims every partition and projects each event once") {
    Store store;
    append_events(store, 20, 5);
    Checkpoints checkpoints;
    ReadModel model;
    Runner runner("p", store, checkpoints, model.handler("a"), options_for("a"));
    CHECK(runner.run_until_caught_up() > 0);
    CHECK(held(runner) == 8);
    CHECK(runner.wait_for(store.head_position(), 5s));
    check_exactly_once(model.snapshot(), store.head_position());
    for (const position_t c : runner.checkpoints()) CHECK(c == store.head_position());
    CHECK(checkpoints.load("p#0") == store.head_position());

    SECTION("a graceful stop releases the leases at once") {
        runner.stop();
        CHECK(held(runner) == 0);
        CHECK(checkpoints.claimable_partitions("p").size() == 8);
    }
}

TEST_CASE("partitioned projection: three runners share eight partitions, rebalance on join and stop, each event once") {
    Store store;
    append_events(store, 40, 10);
    Checkpoints checkpoints;
    ReadModel model;
    auto a = std::make_unique<Runner>("p", store, checkpoints, model.handler("a"), options_for("a"));
    auto b = std::make_unique<Runner>("p", store, checkpoints, model.handler("b"), options_for("b"));
    a->start();
    b->start();
    REQUIRE(eventually([&] { return held(*a) == 4 && held(*b) == 4; }));

    append_events(store, 40, 10, 40); // while they run
    auto c = std::make_unique<Runner>("p", store, checkpoints, model.handler("c"), options_for("c"));
    c->start();
    // Fair share with three runners: ceil(8 / 3) = 3; the two first release their extras, the third claims.
    REQUIRE(eventually([&] { return held(*c) == 2 && held(*a) + held(*b) == 6; }));
    CHECK(held(*a) == 3);
    CHECK(held(*b) == 3);
    append_events(store, 20, 10, 80);
    REQUIRE(a->wait_for(store.head_position(), 20s));

    // One runner leaves: its partitions go to the two others at once, without waiting for the lease time.
    const auto stopped_at = std::chrono::steady_clock::now();
    b->stop();
    REQUIRE(eventually([&] { return held(*a) + held(*c) == 8; }));
    CHECK(std::chrono::steady_clock::now() - stopped_at < 600ms);
    CHECK(held(*a) == 4);
    CHECK(held(*c) == 4);
    append_events(store, 20, 10, 100);
    REQUIRE(c->wait_for(store.head_position(), 20s));
    a->stop();
    c->stop();
    check_exactly_once(model.snapshot(), store.head_position());
    std::set<std::string> runners;
    for (const Commit& commit : model.snapshot()) runners.insert(commit.runner);
    CHECK(runners == std::set<std::string>{"a", "b", "c"});
}

TEST_CASE("partitioned projection: a runner paused past its lease time cannot commit, and the partition moves") {
    Store store;
    append_events(store, 10, 2);
    Checkpoints checkpoints;
    ReadModel model;
    std::atomic<bool> paused_once{false};
    std::atomic<bool> pausing{false};
    const auto sleeper = [&](Checkpoints::Transaction& tx, const Recorded& e, const PartitionLease& lease) {
        if (!paused_once.exchange(true)) { // the first event this runner handles: a pause past the lease time
            pausing = true;
            std::this_thread::sleep_for(1500ms);
        }
        model.handler("a")(tx, e, lease);
    };
    Runner a("p", store, checkpoints, sleeper, options_for("a", 400ms));
    a.start();
    REQUIRE(eventually([&] { return pausing.load(); }));
    Runner b("p", store, checkpoints, model.handler("b"), options_for("b", 400ms));
    b.start();
    // While a sleeps, its heartbeat and leases expire: b is the only live runner and takes all 8.
    REQUIRE(eventually([&] { return held(b) == 8; }));
    REQUIRE(b.wait_for(store.head_position(), 10s));
    // a wakes up: its commit is refused, it gives the partition up; then the two share the partitions.
    REQUIRE(eventually([&] { return a.leases_lost() >= 1; }));
    REQUIRE(eventually([&] { return held(a) == 4 && held(b) == 4; }));
    append_events(store, 10, 2, 10);
    REQUIRE(b.wait_for(store.head_position(), 10s));
    a.stop();
    b.stop();
    const auto commits = model.snapshot();
    check_exactly_once(commits, store.head_position());
    CHECK(model.calls.load() > commits.size()); // a's refused handler call is not in the read model
}

TEST_CASE("partitioned projection: an abandoned runner's partitions move after the lease time") {
    Store store;
    append_events(store, 10, 3);
    Checkpoints checkpoints;
    ReadModel model;
    Runner a("p", store, checkpoints, model.handler("a"), options_for("a", 300ms));
    a.run_until_caught_up(); // holds all 8; then nothing drives it: no renewal, no release
    REQUIRE(held(a) == 8);
    append_events(store, 10, 3, 10);
    Runner b("p", store, checkpoints, model.handler("b"), options_for("b", 300ms));
    CHECK(b.poll_once() == 0); // everything is held
    CHECK(held(b) == 0);
    const auto abandoned = std::chrono::steady_clock::now();
    b.start();
    REQUIRE(b.wait_for(store.head_position(), 10s));
    CHECK(std::chrono::steady_clock::now() - abandoned >= 150ms);
    CHECK(held(b) == 8);
    // a, driven again, finds its leases gone and commits nothing.
    a.run_until_caught_up();
    CHECK(held(a) <= 4);
    b.stop();
    a.stop();
    check_exactly_once(model.snapshot(), store.head_position());
}

TEST_CASE("partitioned projection: the failure policy applies per event, as for a plain projection") {
    Store store;
    append_events(store, 6, 3);
    Checkpoints checkpoints;
    const position_t poison = 5;
    std::vector<position_t> seen;
    const auto handler = [&](const Recorded& e) {
        if (e.position == poison) throw std::runtime_error("poison");
        seen.push_back(e.position);
    };

    SECTION("skip: kept in skipped() and as a dead letter of the partition, and the rest goes on") {
        Options o = options_for("a");
        o.projection.on_failure = FailurePolicy::retry(2, 1ms, orchestrix::FailureAction::skip);
        Runner r("p", store, checkpoints, handler, o);
        r.run_until_caught_up();
        REQUIRE(r.skipped().size() == 1);
        CHECK(r.skipped().front().position == poison);
        CHECK(r.skipped().front().attempts == 2);
        CHECK(seen.size() == store.head_position() - 1);
        const auto e = store.read_all(poison, 1).front();
        const auto key = orchestrix::partition_checkpoint_name("p", orchestrix::partition_of(e.stream_id, 8));
        REQUIRE(checkpoints.dead_letters(key).size() == 1);
        CHECK(checkpoints.dead_letters(key).front().position == poison);
        CHECK(r.wait_for(store.head_position(), 1s));
    }
    SECTION("stop: the runner stops, names the event and releases its partitions") {
        Runner r("p", store, checkpoints, handler, options_for("a"));
        CHECK_THROWS_AS(r.run_until_caught_up(), orchestrix::ProjectionStoppedError);
        REQUIRE(r.failure());
        CHECK(r.failure()->position == poison);
        CHECK(held(r) == 0);
        CHECK_THROWS_AS(r.poll_once(), orchestrix::ProjectionStoppedError);
        CHECK_THROWS_AS((void)r.wait_for(store.head_position(), 100ms), orchestrix::ProjectionStoppedError);
    }
}

TEST_CASE("partitioned projection: a custom partition key puts related streams together") {
    Store store;
    store.append("order-1", {AccountOpened{"order-1", "x"}}, ExpectedVersion::any());
    store.append("order-2", {AccountOpened{"order-2", "x"}}, ExpectedVersion::any());
    Checkpoints checkpoints;
    std::map<std::uint32_t, std::vector<std::string>> by_partition;
    Options o = options_for("a");
    o.partition_by = [](const Recorded&) { return std::string("tenant-1"); };
    Runner r(
        "p", store, checkpoints,
        [&](Checkpoints::Transaction&, const Recorded& e, const PartitionLease& lease) {
            by_partition[lease.partition].push_back(e.stream_id);
        },
        o);
    r.run_until_caught_up();
    REQUIRE(by_partition.size() == 1);
    CHECK(by_partition.begin()->first == orchestrix::partition_of("tenant-1", 8));
    CHECK(by_partition.begin()->second == std::vector<std::string>{"order-1", "order-2"});
}

TEST_CASE("partitioned projection: a runner restarted under the same id takes back the leases it still owns") {
    Store store;
    append_events(store, 10, 2);
    Checkpoints checkpoints;
    ReadModel model;
    std::vector<PartitionLease> before;
    // A crash: the first runner is left as it is, neither stopped nor destroyed, so it releases nothing; it
    // is destroyed only at the end of the test, after the checks.
    auto first = std::make_unique<Runner>("p", store, checkpoints, model.handler("a"), options_for("a", 5s));
    first->run_until_caught_up();
    before = first->held();
    REQUIRE(before.size() == 8);
    append_events(store, 10, 2, 10);
    Runner again("p", store, checkpoints, model.handler("a"), options_for("a", 5s));
    again.run_until_caught_up();
    CHECK(again.held() == before); // the same partitions, the same tokens: nobody claimed them meanwhile
    CHECK(again.leases_lost() == 0);
    again.stop();
    check_exactly_once(model.snapshot(), store.head_position());
}

TEST_CASE("partitioned projection: a partition key function that throws stops the runner at that event") {
    Store store;
    append_events(store, 3, 2);
    Checkpoints checkpoints;
    ReadModel model;
    Options o = options_for("a");
    o.partition_by = [](const Recorded& e) -> std::string {
        if (e.position == 4) throw std::runtime_error("no tenant");
        return e.stream_id;
    };
    Runner r("p", store, checkpoints, model.handler("a"), o);
    CHECK_THROWS_AS(r.run_until_caught_up(), orchestrix::ProjectionStoppedError);
    REQUIRE(r.failure());
    CHECK(r.failure()->position == 4);
    CHECK(r.failure()->error == "no tenant");
    CHECK(held(r) == 0);
}
