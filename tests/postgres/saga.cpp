#include <orchestrix/postgres/checkpoint_store.hpp>
#include <orchestrix/postgres/deadline_store.hpp>
#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/saga_bank.hpp"
#include "support/saga_bank_json.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace saga_bank;
using orchestrix::ExpectedVersion;
using orchestrix::SagaStatus;
using Domain = orchestrix::PostgresEventStore<BankEvent>;
using SagaStore = orchestrix::PostgresEventStore<Transfer::event_type>;
using Runner = orchestrix::SagaRunner<Transfer, Domain, SagaStore, orchestrix::PostgresCheckpointStore,
                                      orchestrix::PostgresDeadlineStore>;
using Accounts = orchestrix::Repository<Account, Domain>;

const auto epoch = std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50));

} // namespace

TEST_CASE("postgres saga: deadline store keeps, moves, lists due, cancels and removes deadlines") {
    orchestrix::PostgresDeadlineStore store(test_support::fresh_postgres_database());
    const auto at = [](int minutes) { return epoch + std::chrono::minutes(minutes); };
    store.schedule({"transfer", "t1", "approval", at(10)});
    store.schedule({"transfer", "t2", "approval", at(5)});
    store.schedule({"order", "o1", "payment", at(1)});
    store.schedule({"transfer", "t1", "approval", at(20)});
    CHECK(store.size() == 3);
    const auto due = store.due("transfer", at(30), 10);
    REQUIRE(due.size() == 2);
    CHECK(due[0] == orchestrix::Deadline{"transfer", "t2", "approval", at(5)});
    CHECK(due[1].due == at(20));
    CHECK(store.due("transfer", at(9), 10).size() == 1);
    store.remove({"transfer", "t1", "approval", at(10)});
    CHECK(store.size() == 3);
    store.remove(due[1]);
    store.cancel("order", "o1", "payment");
    CHECK(store.size() == 1);
}

TEST_CASE("postgres saga: runners on two connections handle a transfer and fire its deadline once") {
    const std::string domain_url = test_support::fresh_postgres_database();
    const std::string saga_url = test_support::fresh_postgres_database();
    Domain domain(domain_url);
    domain.append("account-a", {AccountOpened{"a", 100, false}}, ExpectedVersion::no_stream());
    domain.append("account-b", {AccountOpened{"b", 0, false}}, ExpectedVersion::no_stream());
    domain.append("requests", {TransferRequested{"t", "a", "b", 40, true}}, ExpectedVersion::any());
    Accounts accounts(domain, "account-");
    orchestrix::CommandBus bus;
    auto serving = serve_accounts(bus, accounts);

    // Two runners, each with its own connections, as two processes would have.
    struct Side {
        SagaStore sagas;
        orchestrix::PostgresCheckpointStore checkpoints;
        orchestrix::PostgresDeadlineStore deadlines;
        explicit Side(const std::string& url) : sagas(url), checkpoints(url), deadlines(url) {}
    };
    Side one(saga_url);
    Side two(saga_url);
    orchestrix::SagaOptions options;
    std::atomic<std::int64_t> clock{0};
    options.clock = [&] { return epoch + std::chrono::minutes(clock.load()); };
    Runner first(domain, one.sagas, one.checkpoints, one.deadlines, bus, options);
    first.run_until_caught_up();
    CHECK(first.load("t")->status() == SagaStatus::running);
    CHECK(accounts.load("a").balance() == 60);

    clock = 15;
    Runner second(domain, two.sagas, two.checkpoints, two.deadlines, bus, options);
    std::atomic<std::size_t> fired{0};
    std::thread a([&] { fired += first.fire_deadlines(); });
    std::thread b([&] { fired += second.fire_deadlines(); });
    a.join();
    b.join();
    CHECK(fired.load() == 1);
    CHECK(first.load("t")->status() == SagaStatus::compensated);
    CHECK(accounts.load("a").balance() == 100);
    std::size_t refunds = 0;
    for (const auto& e : domain.read_all()) refunds += std::holds_alternative<Deposited>(e.event) ? 1U : 0U;
    CHECK(refunds == 1);
    CHECK(one.deadlines.size() == 0);
}
