#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/saga.hpp>

#include "support/catch.hpp"
#include "support/saga_bank.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

using namespace saga_bank;
using orchestrix::ExpectedVersion;
using orchestrix::SagaStatus;
using Domain = orchestrix::InMemoryEventStore<BankEvent>;
using SagaStore = orchestrix::InMemoryEventStore<Transfer::event_type>;
using Runner = orchestrix::SagaRunner<Transfer, Domain, SagaStore, orchestrix::InMemoryCheckpointStore>;
using Accounts = orchestrix::Repository<Account, Domain>;

// A hand-moved clock.
struct TestClock {
    std::chrono::system_clock::time_point now =
        std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50));
};

// Everything a saga test needs, in memory.
struct Bank {
    Domain domain;
    SagaStore sagas;
    orchestrix::InMemoryCheckpointStore checkpoints;
    orchestrix::InMemoryDeadlineStore deadlines;
    orchestrix::CommandBus bus;
    Accounts accounts{domain, "account-"};
    std::pair<orchestrix::Subscription, orchestrix::Subscription> serving = serve_accounts(bus, accounts);
    TestClock clock;

    Bank() {
        open("a", 100);
        open("b", 0);
        open("frozen", 0, true);
    }
    void open(const std::string& id, std::int64_t balance, bool frozen = false) {
        domain.append("account-" + id, {AccountOpened{id, balance, frozen}}, ExpectedVersion::no_stream());
    }
    orchestrix::SagaOptions options() {
        orchestrix::SagaOptions o;
        o.clock = [this] { return clock.now; };
        o.compensation_retry.sleep = [](std::chrono::microseconds) {};
        return o;
    }
    std::unique_ptr<Runner> runner() {
        return std::make_unique<Runner>(domain, sagas, checkpoints, deadlines, bus, options());
    }
    std::int64_t balance(const std::string& id) { return accounts.load(id).balance(); }
    void request(const std::string& transfer, const std::string& from, const std::string& to, std::int64_t amount,
                 bool approval = false) {
        domain.append("transfer-requests", {TransferRequested{transfer, from, to, amount, approval}},
                      ExpectedVersion::any());
    }
    std::size_t events_of(std::string_view type) {
        std::size_t n = 0;
        for (const auto& e : domain.read_all()) n += e.type() == type ? 1U : 0U;
        return n;
    }
};

} // namespace

TEST_CASE("saga: a transfer debits, credits and completes") {
    Bank bank;
    auto runner = bank.runner();
    bank.request("t1", "a", "b", 30);
    runner->run_until_caught_up();
    const auto saga = runner->load("t1");
    REQUIRE(saga);
    CHECK(saga->status() == SagaStatus::completed);
    CHECK(saga->completed_steps() == std::vector<std::string>{"debit", "credit"});
    CHECK(saga->credited());
    CHECK(bank.balance("a") == 70);
    CHECK(bank.balance("b") == 30);
    // Its state is an auditable stream of its own.
    const auto stream = bank.sagas.read_stream("transfer-t1");
    REQUIRE(stream.size() == 6);
    CHECK(stream[0].type() == "orchestrix.saga.triggered");
    CHECK(stream[1].type() == "transfer.started");
    CHECK(stream.back().type() == "orchestrix.saga.completed");
    CHECK_FALSE(runner->load("nope"));
}

TEST_CASE("saga: a refused credit compensates the debit") {
    Bank bank;
    auto runner = bank.runner();
    bank.request("t2", "a", "frozen", 40);
    runner->run_until_caught_up();
    const auto saga = runner->load("t2");
    REQUIRE(saga);
    CHECK(saga->status() == SagaStatus::compensated);
    CHECK(saga->compensated_steps() == std::vector<std::string>{"debit"});
    CHECK(saga->failure().find("step 'credit' was refused: account frozen is frozen") != std::string::npos);
    CHECK(bank.balance("a") == 100);
    CHECK(bank.balance("frozen") == 0);
    // A first step refused leaves nothing to compensate.
    bank.request("t3", "b", "a", 1'000);
    runner->run_until_caught_up();
    CHECK(runner->load("t3")->status() == SagaStatus::compensated);
    CHECK(runner->load("t3")->completed_steps().empty());
}

TEST_CASE("saga: a deadline fires once after its time and compensates, and a cancelled one never fires") {
    Bank bank;
    auto runner = bank.runner();
    bank.request("slow", "a", "b", 10, true);
    bank.request("fast", "a", "b", 20, true);
    runner->run_until_caught_up();
    CHECK(bank.deadlines.size() == 2);
    CHECK(runner->load("slow")->deadlines().contains("approval"));

    bank.domain.append("approvals", {TransferApproved{"fast"}}, ExpectedVersion::any());
    runner->run_until_caught_up();
    CHECK(runner->load("fast")->status() == SagaStatus::completed);
    CHECK(bank.deadlines.size() == 1); // the approved transfer's deadline is cancelled

    bank.clock.now += approval_time - std::chrono::seconds(1);
    CHECK(runner->fire_deadlines() == 0);
    CHECK(runner->load("slow")->status() == SagaStatus::running);

    bank.clock.now += std::chrono::seconds(1);
    CHECK(runner->fire_deadlines() == 1);
    CHECK(runner->load("slow")->status() == SagaStatus::compensated);
    CHECK(runner->load("slow")->failure() == "not approved in time");
    CHECK(runner->fire_deadlines() == 0);
    CHECK(bank.deadlines.size() == 0);
    CHECK(bank.balance("a") == 80);
    CHECK(bank.balance("b") == 20);
    // A late approval of a compensated transfer changes nothing.
    bank.domain.append("approvals", {TransferApproved{"slow"}}, ExpectedVersion::any());
    runner->run_until_caught_up();
    CHECK(bank.balance("b") == 20);
}

TEST_CASE("saga: a deadline seen due by two runners fires once") {
    Bank bank;
    auto first = bank.runner();
    bank.request("t", "a", "b", 10, true);
    first->run_until_caught_up();
    orchestrix::InMemoryCheckpointStore other_checkpoints;
    Runner second(bank.domain, bank.sagas, other_checkpoints, bank.deadlines, bank.bus, bank.options());
    bank.clock.now += approval_time;
    const auto due = bank.deadlines.due("transfer", bank.clock.now, 10);
    REQUIRE(due.size() == 1);
    CHECK(first->fire_deadlines() == 1);
    // The second runner saw the deadline before the first removed it: it finds it reached.
    bank.deadlines.schedule(due[0]);
    CHECK(second.fire_deadlines() == 0);
    CHECK(bank.events_of("bank.deposited") == 1); // one refund
    CHECK(bank.balance("a") == 100);
}

TEST_CASE("saga: an event handled again after a restart changes nothing and sends nothing twice") {
    Bank bank;
    {
        auto runner = bank.runner();
        bank.request("t", "a", "b", 30);
        runner->run_until_caught_up();
    }
    // A runner whose checkpoint was lost reads every event again.
    orchestrix::InMemoryCheckpointStore fresh;
    Runner again(bank.domain, bank.sagas, fresh, bank.deadlines, bank.bus, bank.options());
    again.run_until_caught_up();
    CHECK(bank.sagas.read_stream("transfer-t").size() == 6);
    CHECK(bank.events_of("bank.withdrawn") == 1);
    CHECK(bank.events_of("bank.deposited") == 1);
    CHECK(bank.balance("b") == 30);
}

namespace {
// A saga store whose first appends fail, as a crash between the commands and the saga's append would.
struct FlakySagaStore : SagaStore {
    int failures = 1;
    orchestrix::AppendResult append(std::string_view stream,
                                    std::span<const orchestrix::EventEnvelope<Transfer::event_type>> events,
                                    ExpectedVersion expected) {
        if (failures > 0) {
            --failures;
            throw orchestrix::StoreError("lost the saga store");
        }
        return SagaStore::append(stream, events, expected);
    }
};
} // namespace

TEST_CASE("saga: commands sent before a failed save are sent again with the same ids and take effect once") {
    Bank bank;
    FlakySagaStore flaky;
    orchestrix::SagaOptions options = bank.options();
    options.projection.on_failure = orchestrix::FailurePolicy::stop();
    orchestrix::SagaRunner<Transfer, Domain, FlakySagaStore, orchestrix::InMemoryCheckpointStore> runner(
        bank.domain, flaky, bank.checkpoints, bank.deadlines, bank.bus, options);
    bank.request("t", "a", "b", 30);
    CHECK_THROWS(runner.run_until_caught_up());
    CHECK(bank.balance("a") == 70); // the commands went out before the save failed
    orchestrix::SagaRunner<Transfer, Domain, FlakySagaStore, orchestrix::InMemoryCheckpointStore> restarted(
        bank.domain, flaky, bank.checkpoints, bank.deadlines, bank.bus, bank.options());
    restarted.run_until_caught_up();
    CHECK(restarted.load("t")->status() == SagaStatus::completed);
    CHECK(bank.balance("a") == 70);
    CHECK(bank.balance("b") == 30);
    CHECK(bank.events_of("bank.withdrawn") == 1);
}

namespace {
// A refund that fails until the bank is repaired.
struct Outage {
    bool down = true;
    int refunds_tried = 0;
};
} // namespace

TEST_CASE("saga: a compensation is retried by policy, then needs attention, and resumes when asked") {
    Bank bank;
    Outage outage;
    // Deposits to "a" fail while the outage lasts (the refund), others go through.
    orchestrix::CommandBus bus;
    auto withdraw =
        bus.register_handler<Withdraw>([&](const Withdraw& c) { (void)bank.accounts.execute(c.account, c); });
    auto deposit = bus.register_handler<Deposit>([&](const Deposit& c) {
        if (c.account == "a" && outage.down) {
            ++outage.refunds_tried;
            throw std::runtime_error("core banking is down");
        }
        (void)bank.accounts.execute(c.account, c);
    });
    orchestrix::SagaOptions options = bank.options();
    std::vector<std::chrono::microseconds> waits;
    options.compensation_retry.max_attempts = 3;
    options.compensation_retry.sleep = [&](std::chrono::microseconds w) { waits.push_back(w); };
    Runner runner(bank.domain, bank.sagas, bank.checkpoints, bank.deadlines, bus, options);
    bank.request("t", "a", "frozen", 25);
    runner.run_until_caught_up();
    auto saga = runner.load("t");
    CHECK(saga->status() == SagaStatus::needs_attention);
    CHECK(outage.refunds_tried == 3);
    CHECK(waits.size() == 2);
    CHECK(bank.balance("a") == 75);
    const auto stream = bank.sagas.read_stream("transfer-t");
    CHECK(stream.back().type() == "orchestrix.saga.needs_attention");

    outage.down = false;
    CHECK(runner.retry_compensation("t") == SagaStatus::compensated);
    CHECK(bank.balance("a") == 100);
    CHECK(runner.load("t")->compensated_steps() == std::vector<std::string>{"debit"});
}

TEST_CASE("saga: calls outside a handling are refused with a clear error") {
    Transfer t;
    CHECK(t.status() == SagaStatus::not_started);
    CHECK(std::string(orchestrix::to_string(SagaStatus::needs_attention)) == "needs_attention");
}

namespace {
// Three steps; the third is refused: the first two are compensated, latest first.
struct Trip {
    static constexpr std::string_view type_name = "trip.requested";
    std::string id{};
    bool operator==(const Trip&) const = default;
};
struct Book {
    std::string what;
};
struct Unbook {
    std::string what;
};
struct TripStarted {
    static constexpr std::string_view type_name = "trip.started";
    bool operator==(const TripStarted&) const = default;
};
using TripEvent = std::variant<Trip>;

class Booking : public orchestrix::Saga<Booking, std::variant<TripStarted>> {
public:
    static constexpr std::string_view saga_type = "trip";
    static std::optional<std::string> correlate(const TripEvent& e) { return std::get<Trip>(e).id; }
    void handle(const Trip&) {
        raise(TripStarted{});
        (void)(step("flight", Book{"flight"}) && step("hotel", Book{"hotel"}) && step("car", Book{"car"}));
    }
    void compensate(std::string_view step_name) { send(Unbook{std::string(step_name)}); }
    void apply(const TripStarted&) {}
};
} // namespace

TEST_CASE("saga: completed steps are compensated in reverse order") {
    orchestrix::InMemoryEventStore<TripEvent> trips;
    orchestrix::InMemoryEventStore<Booking::event_type> sagas;
    orchestrix::InMemoryCheckpointStore checkpoints;
    orchestrix::InMemoryDeadlineStore deadlines;
    orchestrix::CommandBus bus;
    std::vector<std::string> log;
    auto book = bus.register_handler<Book>([&](const Book& c) {
        if (c.what == "car") throw std::runtime_error("no car left");
        log.push_back("book " + c.what);
    });
    auto unbook = bus.register_handler<Unbook>([&](const Unbook& c) { log.push_back("unbook " + c.what); });
    auto runner = orchestrix::make_saga_runner<Booking>(trips, sagas, checkpoints, deadlines, bus);
    trips.append("trips", {Trip{"x"}}, ExpectedVersion::any());
    runner->run_until_caught_up();
    CHECK(log == std::vector<std::string>{"book flight", "book hotel", "unbook hotel", "unbook flight"});
    const auto saga = runner->load("x");
    CHECK(saga->status() == SagaStatus::compensated);
    CHECK(saga->completed_steps() == std::vector<std::string>{"flight", "hotel"});
    CHECK(saga->compensated_steps() == std::vector<std::string>{"hotel", "flight"});
    CHECK(saga->failure() == "step 'car' was refused: no car left");
}

TEST_CASE("saga: the runner's thread handles events as they come and fires deadlines by its clock") {
    Bank bank;
    std::atomic<std::int64_t> minutes{0};
    orchestrix::SagaOptions options = bank.options();
    options.clock = [&] { return bank.clock.now + std::chrono::minutes(minutes.load()); };
    options.poll_interval = std::chrono::milliseconds(1);
    Runner runner(bank.domain, bank.sagas, bank.checkpoints, bank.deadlines, bank.bus, options);
    runner.start();
    bank.request("live", "a", "b", 5);
    bank.request("late", "a", "b", 7, true);
    const auto wait_until = [&](auto done) {
        for (int i = 0; i < 5000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return done();
    };
    CHECK(wait_until([&] {
        const auto s = runner.load("live");
        return s && s->status() == SagaStatus::completed;
    }));
    CHECK(wait_until([&] { return runner.load("late").has_value(); }));
    minutes = 16;
    CHECK(wait_until([&] { return runner.load("late")->status() == SagaStatus::compensated; }));
    runner.stop();
    CHECK_FALSE(runner.failure());
    CHECK(bank.balance("a") == 95);
}
