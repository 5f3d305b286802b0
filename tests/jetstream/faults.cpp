// Faults on the JetStream store in a 3-node cluster (an R3 stream): the stream's leader killed (SIGKILL) and
// restarted over and over while writers append and a reader tails `read_all`, and a follower paused (SIGSTOP)
// for seconds (and the leader, on request). Writers retry a batch that throws JetStreamError with the same
// events until it is acknowledged. Afterwards every acknowledged event is stored exactly once at the
// position its acknowledgement named, nothing is stored that was never sent, versions and positions are
// contiguous, and the tailing reader saw every position once, in order.
//
// ORCHESTRIX_JETSTREAM_FAULT_ROUNDS sets the number of leader kills (default 20); each costs a leader
// election (4 to 9 s in nats-server 2.9), so that test runs for about 3 minutes ([slow]).
// ORCHESTRIX_JETSTREAM_PAUSE_SECONDS sets how long each node stays paused (default 15);
// ORCHESTRIX_JETSTREAM_PAUSE_LEADER=1 pauses the leader too, after the follower (not in CI: nats-server 2.9.10
// may then acknowledge two messages at one sequence, see docs/reliability.md).

#include <orchestrix/jetstream/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/nats_server.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using namespace std::chrono_literals;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::JetStreamEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::ExpectedVersion;
using orchestrix::Uuid;
using Clock = std::chrono::steady_clock;

constexpr const char* store_stream = "orchestrix_faults";
constexpr const char* shared_stream = "shared";

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

orchestrix::JetStreamOptions cluster_options(const test_support::NatsCluster& cluster) {
    orchestrix::JetStreamOptions options;
    options.url = cluster.urls();
    options.stream = store_stream;
    options.subject_prefix = store_stream;
    options.replicas = 3;
    options.request_timeout = 2000ms;
    options.retry_for = 20000ms;
    return options;
}

// Where the acknowledgement of an append said an event is stored.
struct Acknowledged {
    std::string stream;
    std::uint64_t version = 0; // 0: not known (the shared stream, appended with ExpectedVersion::any)
    std::uint64_t position = 0;
};

// What the writers sent and what was acknowledged, and the faults they met; shared by the threads.
class Ledger {
public:
    void sent(const std::vector<Envelope>& batch) {
        const std::lock_guard lock(mutex_);
        for (const auto& e : batch) sent_.insert(e.metadata.event_id);
    }
    void acknowledged(const std::string& stream, const std::vector<Envelope>& batch,
                      const orchestrix::AppendResult& result, bool versions_known) {
        const std::lock_guard lock(mutex_);
        ++batches_;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const std::uint64_t version = versions_known ? result.stream_version - batch.size() + 1 + i : 0;
            acknowledged_[batch[i].metadata.event_id] = Acknowledged{stream, version, result.first_position + i};
        }
    }
    void failure(const std::string& what) {
        const std::lock_guard lock(mutex_);
        failures_.push_back(what);
    }
    void stall(Clock::duration d) {
        const std::lock_guard lock(mutex_);
        longest_stall_ = std::max(longest_stall_, d);
    }
    // A JetStreamError a writer retried after: its message, with the numbers in it left out, counted.
    void retried(const std::string& message) {
        ++retries;
        std::string shape;
        for (const char c : message) {
            if (c < '0' || c > '9')
                shape += c;
            else if (shape.empty() || shape.back() != '#')
                shape += '#';
        }
        const std::lock_guard lock(mutex_);
        ++retried_after_[shape];
    }
    [[nodiscard]] Clock::duration longest_stall() {
        const std::lock_guard lock(mutex_);
        return longest_stall_;
    }

    // Read after the threads are joined.
    std::set<Uuid> sent_;
    std::unordered_map<Uuid, Acknowledged> acknowledged_;
    std::vector<std::string> failures_;
    std::map<std::string, int> retried_after_;
    std::size_t batches_ = 0;
    Clock::duration longest_stall_{};
    std::atomic<std::uint64_t> retries{0};
    std::atomic<std::uint64_t> reader_errors{0};

private:
    std::mutex mutex_;
};

// A writer: its own store object (its own connection), appending batches of 1 to 3 events to its own two
// streams (exact expected versions) and to the shared stream (any version) until told to stop. A batch that
// throws JetStreamError is sent again, the same events with the same expectation, until it is acknowledged.
void write(const test_support::NatsCluster& cluster, int writer, const std::atomic<bool>& stop, Ledger& ledger) {
    try {
        Store store(cluster_options(cluster));
        std::mt19937 random(static_cast<std::uint32_t>(1000 + writer));
        std::map<std::string, std::uint64_t> versions{{"writer-" + std::to_string(writer) + "-a", 0},
                                                      {"writer-" + std::to_string(writer) + "-b", 0}};
        std::int64_t amount = 0;
        while (!stop.load()) {
            const auto pick = random() % 4;
            const bool shared = pick == 0;
            const std::string stream =
                shared ? std::string(shared_stream) : std::next(versions.begin(), pick % 2)->first;
            std::vector<Envelope> batch;
            const auto size = 1 + random() % 3;
            for (std::uint32_t i = 0; i < size; ++i) batch.emplace_back(MoneyDeposited{stream, ++amount});
            const ExpectedVersion expected = shared ? ExpectedVersion::any() : ExpectedVersion::exact(versions[stream]);
            ledger.sent(batch);
            const auto started = Clock::now();
            std::optional<orchestrix::AppendResult> result;
            while (!result) {
                try {
                    result = store.append(stream, batch, expected);
                } catch (const orchestrix::JetStreamError& e) {
                    ledger.retried(e.what());
                    if (Clock::now() - started > 180s) {
                        ledger.failure("writer " + std::to_string(writer) +
                                       ": no acknowledgement for 180 s: " + e.what());
                        return;
                    }
                }
            }
            ledger.stall(Clock::now() - started);
            if (!shared) {
                if (result->stream_version != versions[stream] + batch.size()) {
                    ledger.failure("writer " + std::to_string(writer) + ": " + stream + " at version " +
                                   std::to_string(result->stream_version) + " after appending " +
                                   std::to_string(batch.size()) + " events at version " +
                                   std::to_string(versions[stream]));
                    return;
                }
                versions[stream] = result->stream_version;
            }
            if (result->last_position != result->first_position + batch.size() - 1) {
                ledger.failure("writer " + std::to_string(writer) + ": a batch of " + std::to_string(batch.size()) +
                               " events acknowledged at positions " + std::to_string(result->first_position) + " to " +
                               std::to_string(result->last_position));
            }
            ledger.acknowledged(stream, batch, *result, !shared);
        }
    } catch (const std::exception& e) {
        ledger.failure("writer " + std::to_string(writer) + ": " + e.what());
    }
}

// The tailing reader: its own store object, reading `read_all` after the last position it saw. It checks
// that the positions it is handed continue where it stopped, without a gap or a repeat.
class Tail {
public:
    Tail(const test_support::NatsCluster& cluster, Ledger& ledger)
        : store_(cluster_options(cluster)), ledger_(ledger) {}

    // Reads what is new; false if a read failed (a fault under way).
    bool step() {
        try {
            const auto events = store_.read_all(next_, 1000);
            for (const auto& e : events) {
                if (e.position != next_) {
                    ledger_.failure("the tailing reader expected position " + std::to_string(next_) + " and got " +
                                    std::to_string(e.position));
                    next_ = e.position;
                }
                ++next_;
                ++seen_;
            }
            return true;
        } catch (const orchestrix::JetStreamError&) {
            ++ledger_.reader_errors;
            return false;
        }
    }

    void run(const std::atomic<bool>& stop) {
        while (!stop.load()) {
            const auto before = seen_;
            if (step() && seen_ == before) std::this_thread::sleep_for(20ms);
        }
    }

    [[nodiscard]] std::uint64_t next() const noexcept { return next_; }
    [[nodiscard]] std::uint64_t seen() const noexcept { return seen_; }

private:
    Store store_;
    Ledger& ledger_;
    std::uint64_t next_ = 1;
    std::uint64_t seen_ = 0;
};

// Runs `writers` writers and a tailing reader while `faults` runs; then checks what the store holds against
// what was sent and acknowledged. Returns the number of events stored.
std::uint64_t run_and_check(const test_support::NatsCluster& cluster, int writers, const std::function<void()>& faults,
                            Ledger& ledger) {
    std::atomic<bool> stop{false};
    Tail tail(cluster, ledger);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) threads.emplace_back([&, w] { write(cluster, w, stop, ledger); });
    std::thread reader([&] { tail.run(stop); });
    try {
        faults();
    } catch (...) {
        stop = true;
        for (auto& t : threads) t.join();
        reader.join();
        throw;
    }
    stop = true;
    for (auto& t : threads) t.join();
    reader.join();
    if (!ledger.failures_.empty()) {
        const auto leader = cluster.leader_of(store_stream);
        UNSCOPED_INFO("the stream's leader now: " << (leader ? cluster.node(*leader).name() : "none") << "\n"
                                                  << cluster.describe(store_stream));
    }
    for (const auto& failure : ledger.failures_) FAIL_CHECK(failure);
    for (const auto& [message, count] : ledger.retried_after_) {
        std::cout << "jetstream faults: " << count << " appends threw and were sent again: " << message << "\n";
    }

    // A fresh store object reads the whole stream (its catalog built from scratch). A read that gets no message
    // within the request timeout (a cluster still busy after the faults) throws a retryable JetStreamError:
    // read again, as a reader would.
    Store check(cluster_options(cluster));
    std::vector<orchestrix::RecordedEvent<AccountEvent>> all;
    for (const auto deadline = Clock::now() + 120s;;) {
        try {
            all = check.read_all();
            break;
        } catch (const orchestrix::JetStreamError& e) {
            if (!e.retryable() || Clock::now() > deadline) throw;
            std::cout << "jetstream faults: the final read_all is read again after: " << e.what() << "\n";
            std::this_thread::sleep_for(500ms);
        }
    }
    const std::uint64_t head = check.head_position();
    CHECK(head == all.size());

    // Positions 1..N; each stream's versions 1..n; every event id once; every id was sent.
    std::map<std::string, std::uint64_t> versions;
    std::set<Uuid> stored;
    std::size_t position_errors = 0;
    std::size_t version_errors = 0;
    std::size_t duplicates = 0;
    std::size_t never_sent = 0;
    std::size_t misplaced = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto& e = all[i];
        if (e.position != i + 1) ++position_errors;
        if (e.version != ++versions[e.stream_id]) ++version_errors;
        if (!stored.insert(e.metadata.event_id).second) ++duplicates;
        if (ledger.sent_.count(e.metadata.event_id) == 0) ++never_sent;
        if (const auto ack = ledger.acknowledged_.find(e.metadata.event_id); ack != ledger.acknowledged_.end()) {
            const auto& where = ack->second;
            if (where.stream != e.stream_id || where.position != e.position ||
                (where.version != 0 && where.version != e.version)) {
                ++misplaced;
            }
        }
    }
    CHECK(position_errors == 0);
    CHECK(version_errors == 0);
    CHECK(duplicates == 0);
    CHECK(never_sent == 0);
    CHECK(misplaced == 0);

    // Every acknowledged event is stored; and since every batch was retried until acknowledged, nothing
    // else is.
    std::size_t lost = 0;
    for (const auto& [id, where] : ledger.acknowledged_) {
        if (stored.count(id) == 0) ++lost;
    }
    CHECK(lost == 0);
    CHECK(stored.size() == ledger.acknowledged_.size());
    CHECK(ledger.sent_.size() == ledger.acknowledged_.size());
    for (const auto& [stream, version] : versions) CHECK(check.stream_version(stream) == version);

    // The tailing reader, brought up to date, saw every position once and in order.
    const auto deadline = Clock::now() + 60s;
    while (tail.next() <= head && Clock::now() < deadline) {
        if (!tail.step()) std::this_thread::sleep_for(100ms);
    }
    CHECK(tail.seen() == head);
    CHECK(tail.next() == head + 1);
    return head;
}

// The leader kills and how long the cluster took to recover from them.
struct Faults {
    int kills = 0;
    Clock::duration longest_election{};
    Clock::duration total_election{};
    Clock::duration longest_catch_up{};
};

} // namespace

TEST_CASE("jetstream faults: the stream leader killed and restarted again and again loses and duplicates nothing",
          "[slow]") {
    const auto rounds = static_cast<int>(test_support::env_count("ORCHESTRIX_JETSTREAM_FAULT_ROUNDS", 20, 1, 10000));
    constexpr int writers = 3;
    test_support::NatsCluster cluster(3);
    {
        Store create(cluster_options(cluster)); // creates the R3 stream before the writers start
    }
    cluster.wait_for_replicas_current(store_stream, 30s);

    Ledger ledger;
    Faults faults;
    std::mt19937 random(20261130);
    const auto started = Clock::now();
    const auto stored = run_and_check(
        cluster, writers,
        [&] {
            for (int round = 0; round < rounds; ++round) {
                std::this_thread::sleep_for(std::chrono::milliseconds(300 + random() % 1200));
                const std::size_t leader = cluster.wait_for_leader(store_stream, 60s);
                const auto killed_at = Clock::now();
                cluster.node(leader).kill();
                ++faults.kills;
                cluster.wait_for_leader(store_stream, 60s, leader);
                const auto election = Clock::now() - killed_at;
                faults.longest_election = std::max(faults.longest_election, election);
                faults.total_election += election;
                std::this_thread::sleep_for(std::chrono::milliseconds(random() % 1000));
                cluster.node(leader).restart(60s);
                const auto restarted_at = Clock::now();
                cluster.wait_for_replicas_current(store_stream, 60s);
                faults.longest_catch_up = std::max(faults.longest_catch_up, Clock::now() - restarted_at);
            }
            std::this_thread::sleep_for(1s); // some appends after the last restart
        },
        ledger);

    CHECK(faults.kills == rounds);
    CHECK(faults.kills >= 1);
    CHECK(ledger.batches_ > static_cast<std::size_t>(rounds));
    std::cout << "jetstream faults: " << faults.kills << " leader kills (SIGKILL) and restarts in "
              << seconds(Clock::now() - started) << " s; " << ledger.batches_ << " appends (" << stored
              << " events) acknowledged by " << writers << " writers, " << ledger.retries
              << " retried after JetStreamError, 0 lost, 0 duplicated; longest stall of an append "
              << seconds(ledger.longest_stall_) << " s; a new leader after "
              << seconds(faults.total_election) / faults.kills << " s on average (longest "
              << seconds(faults.longest_election) << " s); a restarted node current again within "
              << seconds(faults.longest_catch_up) << " s; the tailing reader saw all " << stored
              << " positions in order (" << ledger.reader_errors << " reads retried)\n";
}

TEST_CASE("jetstream faults: a paused follower stalls appends but loses and duplicates nothing") {
    constexpr int writers = 3;
    const auto pause_for =
        std::chrono::seconds(test_support::env_count("ORCHESTRIX_JETSTREAM_PAUSE_SECONDS", 15, 1, 600));
    const bool pause_leader = test_support::env_count("ORCHESTRIX_JETSTREAM_PAUSE_LEADER", 0, 0, 1) == 1;
    test_support::NatsCluster cluster(3);
    { Store create(cluster_options(cluster)); }
    cluster.wait_for_replicas_current(store_stream, 30s);

    Ledger ledger;
    std::optional<std::size_t> follower;
    std::size_t leader = 0;
    std::optional<std::size_t> leader_after;
    Clock::duration election{};
    Clock::duration follower_phase_stall{};
    const auto stored = run_and_check(
        cluster, writers,
        [&] {
            std::this_thread::sleep_for(2s);
            // A follower: the two others keep a majority, so appends go on.
            leader = cluster.wait_for_leader(store_stream, 30s);
            follower = (leader + 1) % cluster.size();
            cluster.node(*follower).pause();
            std::this_thread::sleep_for(pause_for);
            cluster.node(*follower).resume();
            cluster.wait_for_replicas_current(store_stream, 60s);
            follower_phase_stall = ledger.longest_stall();
            std::this_thread::sleep_for(2s);

            // The leader, only when asked (ORCHESTRIX_JETSTREAM_PAUSE_LEADER=1): the others elect a new one;
            // resumed, the old leader must step down and catch up. nats-server 2.9.10 does not always: it may
            // acknowledge two messages at one sequence (docs/reliability.md), so this phase is not part of CI.
            if (!pause_leader) return;
            leader = cluster.wait_for_leader(store_stream, 30s);
            const auto paused_at = Clock::now();
            cluster.node(leader).pause();
            while (Clock::now() - paused_at < pause_for) {
                if (!leader_after) {
                    if (const auto now = cluster.leader_of(store_stream); now && *now != leader) {
                        leader_after = now;
                        election = Clock::now() - paused_at;
                    }
                }
                std::this_thread::sleep_for(25ms);
            }
            cluster.node(leader).resume();
            cluster.wait_for_leader(store_stream, 60s);
            cluster.wait_for_replicas_current(store_stream, 60s);
            std::this_thread::sleep_for(2s);
        },
        ledger);

    // nats-server 2.9 elects a new leader 4 to 9 s after the old one falls silent: a pause of 15 s or more
    // (the default) must have seen one; a shorter pause (ORCHESTRIX_JETSTREAM_PAUSE_SECONDS) may not.
    if (pause_leader && pause_for >= 15s) CHECK(leader_after.has_value());
    CHECK(ledger.batches_ > 0);
    std::cout << "jetstream faults: a follower paused (SIGSTOP) for " << pause_for.count() << " s"
              << (pause_leader ? ", then the leader; " : "; ")
              << (!pause_leader  ? std::string()
                  : leader_after ? "a new leader " + std::to_string(seconds(election)) + " s after the leader's pause; "
                                 : std::string("no new leader during the leader's pause; "))
              << ledger.batches_ << " appends (" << stored << " events) acknowledged by " << writers << " writers, "
              << ledger.retries << " retried after JetStreamError, 0 lost, 0 duplicated; longest stall of an append "
              << seconds(ledger.longest_stall_) << " s (" << seconds(follower_phase_stall)
              << " s until the follower was current again)\n";
}
