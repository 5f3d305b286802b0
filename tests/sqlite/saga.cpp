#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/deadline_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/saga_bank.hpp"
#include "support/saga_bank_json.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace saga_bank;
using orchestrix::ExpectedVersion;
using orchestrix::SagaStatus;
using Domain = orchestrix::SqliteEventStore<BankEvent>;
using SagaStore = orchestrix::SqliteEventStore<Transfer::event_type>;
using Runner = orchestrix::SagaRunner<Transfer, Domain, SagaStore, orchestrix::SqliteCheckpointStore,
                                      orchestrix::SqliteDeadlineStore>;
using Accounts = orchestrix::Repository<Account, Domain>;

const orchestrix::SqliteOptions quick{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)};
const auto epoch = std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50));

// The bank on SQLite files: the domain in one, the sagas with their deadlines in another, the runner's checkpoint in
// a third (a projection's checkpoint transaction stays open while it handles events, and the saga's appends go
// through other connections: they must not need that file's write lock).
struct DurableBank {
    Domain domain;
    SagaStore sagas;
    orchestrix::SqliteCheckpointStore checkpoints;
    orchestrix::SqliteDeadlineStore deadlines;
    orchestrix::CommandBus bus;
    Accounts accounts{domain, "account-"};
    std::pair<orchestrix::Subscription, orchestrix::Subscription> serving = serve_accounts(bus, accounts);

    explicit DurableBank(const test_support::TempDir& dir)
        : domain(dir.file("bank.db"), quick), sagas(dir.file("sagas.db"), quick),
          checkpoints(dir.file("checkpoints.db"), quick), deadlines(dir.file("sagas.db"), quick) {}

    std::unique_ptr<Runner> runner(std::chrono::system_clock::time_point now) {
        orchestrix::SagaOptions options;
        options.clock = [now] { return now; };
        options.compensation_retry.sleep = [](std::chrono::microseconds) {};
        return std::make_unique<Runner>(domain, sagas, checkpoints, deadlines, bus, options);
    }
    std::int64_t balance(const std::string& id) { return accounts.load(id).balance(); }
};

} // namespace

TEST_CASE("sqlite saga: deadline store keeps, moves, lists due, cancels and removes deadlines") {
    test_support::TempDir dir;
    orchestrix::SqliteDeadlineStore store(dir.file("d.db"), quick);
    const auto at = [](int minutes) { return epoch + std::chrono::minutes(minutes); };
    store.schedule({"transfer", "t1", "approval", at(10)});
    store.schedule({"transfer", "t2", "approval", at(5)});
    store.schedule({"order", "o1", "payment", at(1)});
    store.schedule({"transfer", "t1", "approval", at(20)}); // moved
    CHECK(store.size() == 3);
    CHECK(store.due("transfer", at(9), 10).size() == 1);
    const auto due = store.due("transfer", at(30), 10);
    REQUIRE(due.size() == 2);
    CHECK(due[0] == orchestrix::Deadline{"transfer", "t2", "approval", at(5)});
    CHECK(due[1].due == at(20));
    CHECK(store.due("transfer", at(30), 1).size() == 1);
    store.remove({"transfer", "t1", "approval", at(10)}); // an old due time: kept
    CHECK(store.size() == 3);
    store.remove(due[1]);
    store.cancel("order", "o1", "payment");
    store.cancel("order", "nope", "payment");
    CHECK(store.size() == 1);
    // Hostile names are kept byte for byte.
    store.schedule({"transfer", "it's \"quoted\" %_", "a'b", at(0)});
    CHECK(store.due("transfer", at(0), 10)[0].saga_key == "it's \"quoted\" %_");
}

TEST_CASE("sqlite saga: a deadline set before a restart fires once after it") {
    test_support::TempDir dir;
    {
        DurableBank bank(dir);
        bank.domain.append("account-a", {AccountOpened{"a", 100, false}}, ExpectedVersion::no_stream());
        bank.domain.append("account-b", {AccountOpened{"b", 0, false}}, ExpectedVersion::no_stream());
        bank.domain.append("requests", {TransferRequested{"t", "a", "b", 40, true}}, ExpectedVersion::any());
        bank.runner(epoch)->run_until_caught_up();
        CHECK(bank.balance("a") == 60);
        CHECK(bank.deadlines.size() == 1);
    }
    {
        DurableBank bank(dir); // a new process, later
        auto runner = bank.runner(epoch + approval_time);
        CHECK(runner->fire_deadlines() == 1);
        CHECK(runner->load("t")->status() == SagaStatus::compensated);
        CHECK(runner->fire_deadlines() == 0);
        CHECK(bank.balance("a") == 100);
    }
    {
        DurableBank bank(dir);
        auto runner = bank.runner(epoch + approval_time * 2);
        runner->run_until_caught_up(); // the refund's event, which concerns no saga
        CHECK(runner->fire_deadlines() == 0);
        CHECK(runner->load("t")->status() == SagaStatus::compensated);
        CHECK(bank.balance("a") == 100);
        std::vector<std::string> types;
        for (const auto& e : bank.sagas.read_stream("transfer-t")) types.emplace_back(e.type());
        CHECK(std::count(types.begin(), types.end(), "orchestrix.saga.deadline_reached") == 1);
        CHECK(types.back() == "orchestrix.saga.step_compensated");
    }
}

TEST_CASE("sqlite saga: transfers end completed or compensated while the runner is killed with SIGKILL") {
    const std::uint64_t rounds = test_support::env_count("ORCHESTRIX_SAGA_KILL_ROUNDS", 50, 1);
    const std::uint64_t per_round = test_support::env_count("ORCHESTRIX_SAGA_KILL_TRANSFERS", 6, 1);
    const std::uint64_t seed = test_support::env_count("ORCHESTRIX_KILL_SEED", std::random_device{}());
    INFO("seed " << seed << " (replay: ORCHESTRIX_KILL_SEED=" << seed << ")");
    std::mt19937_64 random(seed);
    test_support::TempDir dir;
    const std::vector<std::string> accounts{"a", "b", "c", "d", "e", "frozen"};
    std::int64_t total = 0;
    {
        DurableBank bank(dir);
        for (const auto& id : accounts) {
            const std::int64_t balance = id == "frozen" ? 0 : 500;
            bank.domain.append("account-" + id, {AccountOpened{id, balance, id == "frozen"}},
                               ExpectedVersion::no_stream());
            total += balance;
        }
    }
    std::map<std::string, TransferRequested> requested;
    constexpr std::uint64_t started = ~std::uint64_t{0} - 1;
    constexpr std::uint64_t finished = ~std::uint64_t{0};
    std::uint64_t killed_working = 0;
    std::uint64_t killed_opening = 0;
    std::uint64_t not_killed = 0;
    for (std::uint64_t round = 0; round < rounds; ++round) {
        {
            DurableBank bank(dir);
            for (std::uint64_t k = 0; k < per_round; ++k) {
                const std::string id = "t" + std::to_string(round) + "-" + std::to_string(k);
                const auto from = accounts[random() % 5];
                auto to = accounts[random() % accounts.size()];
                if (to == from) to = "frozen";
                const TransferRequested r{id, from, to, static_cast<std::int64_t>(1 + random() % 300),
                                          random() % 3 == 0};
                bank.domain.append("requests", {r}, ExpectedVersion::any());
                if (r.needs_approval && random() % 2 == 0) {
                    bank.domain.append("approvals", {TransferApproved{id}}, ExpectedVersion::any());
                }
                requested.emplace(id, r);
            }
        }
        // Time moves on a little each round: the approval deadlines of earlier rounds come due.
        const auto now = epoch + std::chrono::minutes(5 * round);
        int progress[2];
        REQUIRE(::pipe(progress) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(progress[0]);
            const auto report = [&](std::uint64_t message) {
                if (::write(progress[1], &message, sizeof message) != static_cast<ssize_t>(sizeof message)) ::_exit(4);
            };
            try {
                DurableBank bank(dir);
                orchestrix::SagaOptions options;
                options.clock = [now] { return now; };
                options.projection.batch_size = 1;
                Runner runner(bank.domain, bank.sagas, bank.checkpoints, bank.deadlines, bank.bus, options);
                report(started);
                std::uint64_t steps = 0;
                while (runner.poll_once() != 0) report(++steps);
                while (runner.fire_deadlines() != 0) report(++steps);
                report(finished);
                ::_exit(0);
            } catch (...) {
                ::_exit(3);
            }
        }
        ::close(progress[1]);
        bool was_started = false;
        bool was_finished = false;
        std::uint64_t steps = 0;
        const auto next_report = [&] {
            std::uint64_t message = 0;
            if (::read(progress[0], &message, sizeof message) != static_cast<ssize_t>(sizeof message)) return false;
            if (message == started) {
                was_started = true;
            } else if (message == finished) {
                was_finished = true;
            } else {
                steps = message;
            }
            return true;
        };
        if (round % 5 != 4) {
            const std::uint64_t wait_for = random() % (per_round * 2);
            while ((!was_started || steps < wait_for) && !was_finished && next_report()) {
            }
            std::this_thread::sleep_for(std::chrono::microseconds(random() % 3'000));
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(random() % 5'000));
        }
        ::kill(child, SIGKILL);
        while (next_report()) {
        }
        ::close(progress[0]);
        int status = 0;
        ::waitpid(child, &status, 0);
        const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        INFO("round " << round << ": exit status " << status);
        CHECK((killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
        if (killed && was_started && !was_finished) {
            ++killed_working;
        } else if (killed && !was_started) {
            ++killed_opening;
        } else {
            ++not_killed;
        }
    }
    // The last runner handles what is left, and later, after every deadline, fires them.
    DurableBank bank(dir);
    bank.runner(epoch + std::chrono::hours(24))->run_until_caught_up();
    auto runner = bank.runner(epoch + std::chrono::hours(48));
    runner->run_until_caught_up();
    while (runner->fire_deadlines() != 0) {
    }
    CHECK(bank.deadlines.size() == 0);
    std::printf("saga kill -9: seed %llu, %llu rounds: %llu SIGKILLs mid-work, %llu while opening, %llu children "
                "finished first; %zu transfers\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(rounds),
                static_cast<unsigned long long>(killed_working), static_cast<unsigned long long>(killed_opening),
                static_cast<unsigned long long>(not_killed), requested.size());
    CAPTURE(killed_working, killed_opening, not_killed);
    CHECK(killed_working + killed_opening >= rounds * 3 / 5); // most rounds end in a SIGKILL
    CHECK(killed_working > 0);

    // Every transfer ended completed or fully compensated; balances follow from the outcomes alone.
    std::map<std::string, std::int64_t> expected;
    for (const auto& id : accounts) expected[id] = id == "frozen" ? 0 : 500;
    std::size_t completed = 0;
    std::size_t compensated = 0;
    for (const auto& [id, r] : requested) {
        const auto saga = runner->load(id);
        REQUIRE(saga);
        std::string history;
        for (const auto& e : bank.sagas.read_stream(Runner::stream_of(id))) history += std::string(e.type()) + " ";
        INFO("transfer " << id << " is " << orchestrix::to_string(saga->status()) << ": " << history
                         << (r.needs_approval ? "(needs approval)" : ""));
        REQUIRE((saga->status() == SagaStatus::completed || saga->status() == SagaStatus::compensated));
        if (saga->status() == SagaStatus::completed) {
            ++completed;
            expected[r.from] -= r.amount;
            expected[r.to] += r.amount;
            CHECK(saga->completed_steps() == std::vector<std::string>{"debit", "credit"});
        } else {
            ++compensated;
            CHECK(saga->compensated_steps().size() == saga->completed_steps().size());
        }
    }
    std::int64_t sum = 0;
    for (const auto& id : accounts) {
        INFO("account " << id);
        CHECK(bank.balance(id) == expected[id]);
        sum += bank.balance(id);
    }
    CHECK(sum == total); // money is conserved
    // No command took effect twice: each command id is on one stored event at most.
    std::set<std::string> command_ids;
    std::size_t movements = 0;
    for (const auto& e : bank.domain.read_all()) {
        std::string command;
        if (const auto* w = std::get_if<Withdrawn>(&e.event)) command = w->command_id;
        if (const auto* d = std::get_if<Deposited>(&e.event)) command = d->command_id;
        if (command.empty()) continue;
        ++movements;
        command_ids.insert(command);
    }
    CHECK(command_ids.size() == movements);
    CHECK(completed > 0);
    CHECK(compensated > 0);
    std::printf("saga kill -9: %zu completed, %zu compensated, %zu account movements, 0 twice\n", completed,
                compensated, movements);
}
