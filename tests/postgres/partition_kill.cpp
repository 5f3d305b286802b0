// The kill test of partitioned projections: runner processes over one PostgreSQL database, SIGKILLed and
// restarted at random while events arrive; the read model proves each event was committed once, in order,
// by one lease holder at a time, and shows how long each killed runner's partitions took to move.

#include <orchestrix/postgres/checkpoint_store.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/projection/partitioned.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/postgres_cluster.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <csignal>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

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

constexpr std::uint32_t partitions = 8;
constexpr const char* projection = "kill";

std::int64_t now_micros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Appends events first .. first + count - 1 to 500 streams, ten to a stream per append.
void append_events(Store& store, std::uint64_t first, std::uint64_t count) {
    for (std::uint64_t i = first; i < first + count; i += 10) {
        std::vector<orchestrix::EventEnvelope<AccountEvent>> batch;
        const std::string stream = "acc-" + std::to_string((i / 10) % 500);
        for (std::uint64_t j = i; j < i + 10 && j < first + count; ++j)
            batch.emplace_back(MoneyDeposited{stream, static_cast<std::int64_t>(j)});
        store.append(stream, batch, ExpectedVersion::any());
    }
}

// A runner process: opens its own connections, runs until it is killed.
[[noreturn]] void run_runner(const std::string& url, const std::string& id, std::chrono::milliseconds ttl,
                             std::chrono::milliseconds claim) {
    try {
        Store store(url);
        Checkpoints checkpoints(url);
        Options options;
        options.partitions = partitions;
        options.runner_id = id;
        options.lease_ttl = ttl;
        options.claim_interval = claim;
        options.projection.batch_size = 100;
        options.projection.poll_interval = 20ms;
        Runner runner(
            projection, store, checkpoints,
            [id](PostgresTransaction& tx, const Recorded& e, const PartitionLease& lease) {
                (void)tx.exec("INSERT INTO projected (position, stream, partition_no, runner, token, at) VALUES ($1, "
                              "$2, $3, $4, $5, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)",
                              e.position, e.stream_id, lease.partition, id, lease.token);
            },
            options);
        runner.start();
        for (;;) std::this_thread::sleep_for(1s);
    } catch (const std::exception& e) {
        std::cerr << "runner " << id << ": " << e.what() << "\n";
        ::_exit(3);
    }
}

struct Kill {
    std::string runner{};
    std::vector<std::uint32_t> held{};
    std::int64_t at = 0; // microseconds since 1970
};

std::int64_t query(Checkpoints& model, const std::string& sql) {
    return model.read([&](PostgresTransaction& tx) { return tx.query_int64(sql).value_or(-1); });
}

} // namespace

TEST_CASE("postgres partition kill: 4 runner processes, killed and restarted at random, project each event once") {
    const std::uint64_t total = test_support::env_count("ORCHESTRIX_PARTITION_EVENTS", 20'000, 1'000);
    const std::uint64_t kills = test_support::env_count("ORCHESTRIX_PARTITION_KILLS", 20, 1);
    const auto ttl = std::chrono::milliseconds(test_support::env_count("ORCHESTRIX_PARTITION_TTL_MS", 1'000, 100));
    const auto claim = std::chrono::milliseconds(100);
    const std::uint64_t seed = test_support::env_count("ORCHESTRIX_PARTITION_SEED", std::random_device{}());
    std::mt19937_64 random(seed);
    INFO("seed " << seed << " (ORCHESTRIX_PARTITION_SEED repeats the run)");
    const auto started = std::chrono::steady_clock::now();

    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    Checkpoints model(url);
    model.transact([](PostgresTransaction& tx) {
        (void)tx.exec("CREATE TABLE projected (seq bigserial PRIMARY KEY, position bigint NOT NULL, stream text NOT "
                      "NULL, partition_no integer NOT NULL, runner text NOT NULL, token bigint NOT NULL, "
                      "at bigint NOT NULL)");
    });
    REQUIRE(model.register_partitions(projection, partitions) == partitions);
    append_events(store, 0, total / 2);

    constexpr int slots = 4;
    std::vector<pid_t> pids(slots, -1);
    struct KillAll { // whatever happens, no runner is left behind
        std::vector<pid_t>& pids;
        ~KillAll() {
            for (const pid_t pid : pids) {
                if (pid <= 0) continue;
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
        }
    } kill_all{pids};
    std::vector<std::string> ids(slots);
    std::uint64_t generation = 0;
    const auto spawn = [&](int slot) {
        ids[static_cast<std::size_t>(slot)] = "r" + std::to_string(slot) + "-" + std::to_string(++generation);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL); // a runner never outlives the test
            run_runner(url, ids[static_cast<std::size_t>(slot)], ttl, claim);
        }
        pids[static_cast<std::size_t>(slot)] = child;
    };
    for (int slot = 0; slot < slots; ++slot) spawn(slot);

    // The other half arrives while the runners run and die: spread over the kills, and one more interval.
    std::vector<Kill> killed;
    std::uint64_t appended = total / 2;
    std::map<int, std::chrono::steady_clock::time_point> restart_at;
    for (std::uint64_t k = 0; k <= kills; ++k) {
        const auto interval = ttl + claim + std::chrono::milliseconds(500 + random() % 1000);
        const auto until = std::chrono::steady_clock::now() + interval;
        const std::uint64_t target = total / 2 + (total - total / 2) * (k + 1) / (kills + 1);
        while (std::chrono::steady_clock::now() < until || appended < target) {
            if (appended < target) {
                const std::uint64_t n = std::min<std::uint64_t>(100, target - appended);
                append_events(store, appended, n);
                appended += n;
            } else {
                std::this_thread::sleep_for(5ms);
            }
            for (auto it = restart_at.begin(); it != restart_at.end();) {
                if (std::chrono::steady_clock::now() < it->second) {
                    ++it;
                    continue;
                }
                spawn(it->first);
                it = restart_at.erase(it);
            }
        }
        if (k == kills) break;
        // Kill a random live runner: note what it held, SIGKILL it, restart it a random moment later.
        int slot = static_cast<int>(random() % slots);
        while (restart_at.count(slot) != 0) slot = (slot + 1) % slots;
        Kill kill;
        kill.runner = ids[static_cast<std::size_t>(slot)];
        model.read([&](PostgresTransaction& tx) {
            const auto r = tx.exec("SELECT partition_no FROM orchestrix_partition_leases WHERE projection = $1 AND "
                                   "owner = $2 AND expires_at > clock_timestamp()",
                                   std::string(projection), kill.runner);
            for (int row = 0; row < r.rows(); ++row) kill.held.push_back(static_cast<std::uint32_t>(r.int64(row, 0)));
        });
        REQUIRE(::kill(pids[static_cast<std::size_t>(slot)], SIGKILL) == 0);
        kill.at = now_micros();
        int status = 0;
        REQUIRE(::waitpid(pids[static_cast<std::size_t>(slot)], &status, 0) == pids[static_cast<std::size_t>(slot)]);
        CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)); // not dead of anything else before
        killed.push_back(kill);
        restart_at[slot] = std::chrono::steady_clock::now() + std::chrono::milliseconds(random() % 1000);
    }
    for (const auto& [slot, at] : restart_at) spawn(slot);
    REQUIRE(appended == total);
    REQUIRE(store.head_position() == total);

    // Every partition catches up.
    const auto caught_up = [&] {
        return query(model, "SELECT count(*) FROM orchestrix_checkpoints WHERE name LIKE 'kill#%' AND position >= " +
                                std::to_string(total)) == partitions;
    };
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    while (!caught_up() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
    for (pid_t& pid : pids) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    REQUIRE(caught_up());

    // Exactly once, in order per partition, one runner per token, tokens never going back.
    const auto n = static_cast<std::int64_t>(total);
    CHECK(query(model, "SELECT count(*) FROM projected") == n);
    CHECK(query(model, "SELECT count(DISTINCT position) FROM projected") == n);
    CHECK(query(model,
                "SELECT count(*) FROM (SELECT position, token, lag(position) OVER w AS p, lag(token) OVER w AS t "
                "FROM projected WINDOW w AS (PARTITION BY partition_no ORDER BY seq)) x "
                "WHERE position <= p OR token < t") == 0);
    CHECK(query(model, "SELECT count(*) FROM (SELECT 1 FROM projected GROUP BY partition_no, token "
                       "HAVING count(DISTINCT runner) > 1) x") == 0);
    std::uint64_t wrong_partition = 0;
    model.read([&](PostgresTransaction& tx) {
        const auto r = tx.exec("SELECT DISTINCT stream, partition_no FROM projected");
        for (int row = 0; row < r.rows(); ++row) {
            if (orchestrix::partition_of(r.text(row, 0), partitions) != static_cast<std::uint32_t>(r.int64(row, 1)))
                ++wrong_partition;
        }
    });
    CHECK(wrong_partition == 0);

    // Takeover: from the SIGKILL to the first commit by another runner on each partition the killed one held.
    std::vector<double> takeovers; // milliseconds, the slowest partition of each kill
    // The lease time, one claim interval, and the time of a batch or two (more on a machine too loaded for
    // the runners to keep up with the writer: ORCHESTRIX_PARTITION_SLACK_MS).
    const auto bound =
        ttl + claim + std::chrono::milliseconds(test_support::env_count("ORCHESTRIX_PARTITION_SLACK_MS", 1'000));
    for (const Kill& kill : killed) {
        double slowest = 0;
        for (const std::uint32_t p : kill.held) {
            const std::int64_t first =
                query(model, "SELECT min(at) FROM projected WHERE partition_no = " + std::to_string(p) +
                                 " AND runner <> '" + kill.runner + "' AND at > " + std::to_string(kill.at));
            INFO("kill of " << kill.runner << ", partition " << p);
            REQUIRE(first > 0);
            slowest = std::max(slowest, static_cast<double>(first - kill.at) / 1000.0);
        }
        if (kill.held.empty()) continue;
        INFO("kill of " << kill.runner << ": takeover " << slowest << " ms");
        CHECK(slowest <= static_cast<double>(bound.count()));
        takeovers.push_back(slowest);
    }
    REQUIRE(!takeovers.empty());
    double sum = 0;
    for (const double t : takeovers) sum += t;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << "postgres partition kill: " << total << " events, " << killed.size() << " kills (" << takeovers.size()
              << " of runners holding partitions), lease ttl " << ttl.count() << " ms, takeover avg "
              << sum / static_cast<double>(takeovers.size()) << " ms, max "
              << *std::max_element(takeovers.begin(), takeovers.end()) << " ms, run " << seconds << " s, seed " << seed
              << "\n";
    CHECK(killed.size() == kills);
}
