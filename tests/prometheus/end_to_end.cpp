// A known workload through the in-memory store, a repository, a bus and a projection, all observed by one
// PrometheusObserver; the scrape must show exactly what was done.

#include <orchestrix/core/repository.hpp>
#include <orchestrix/memory/bus.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/prometheus.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using namespace test_domain;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;

/// The value of the series `series` in `text` ("" if it is not there).
std::string sample(const std::string& text, std::string_view series) {
    const std::string prefix = std::string(series) + " ";
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        const std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
        if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return "";
}

} // namespace

TEST_CASE("prometheus end to end: a workload on the in-memory store, repository, bus and projection is counted "
          "exactly") {
    orchestrix::prometheus::Registry registry;
    orchestrix::PrometheusObserver observer(registry);

    Store store;
    store.observe(&observer);
    orchestrix::Repository<Account, Store> accounts(store);
    accounts.observe(&observer);
    orchestrix::InMemoryBus<AccountEvent> bus;
    bus.observe(&observer);
    int notified = 0;
    auto notify = bus.subscribe<MoneyDeposited>([&](const MoneyDeposited&) { ++notified; });
    auto flaky = bus.subscribe<MoneyDeposited>([&](const MoneyDeposited& e) {
        if (e.amount > 40) throw std::runtime_error("mail server down");
    });

    // Three commands that succeed, one the aggregate refuses.
    accounts.execute("acc-1", OpenAccount{"acc-1", "Ann"});
    accounts.execute("acc-1", Deposit{50});
    accounts.execute("acc-1", Deposit{25});
    CHECK_THROWS_AS(accounts.execute("acc-1", Withdraw{500}), InsufficientFunds);
    // An append with a stale expected version.
    CHECK_THROWS_AS(store.append("acc-1", {MoneyDeposited{"acc-1", 1}}, orchestrix::ExpectedVersion::exact(1)),
                    orchestrix::ConcurrencyError);

    // A projection that publishes each deposit it handles: one of the two handlers throws on the first.
    orchestrix::InMemoryCheckpointStore checkpoints;
    std::int64_t total = 0;
    int handler_errors = 0;
    orchestrix::Projection balances(
        "balances", store, checkpoints,
        [&](const Recorded& e) {
            if (const auto* d = std::get_if<MoneyDeposited>(&e.event)) {
                total += d->amount;
                try {
                    bus.publish(*d);
                } catch (const orchestrix::HandlerError&) {
                    ++handler_errors;
                }
            }
        },
        orchestrix::ProjectionOptions{.observer = &observer});
    CHECK(balances.run_until_caught_up() == 3);
    CHECK(total == 75);
    CHECK(notified == 2);
    CHECK(handler_errors == 1);

    const std::string text = registry.serialize();
    CAPTURE(text);
    CHECK(sample(text, R"(orchestrix_appends_total{store="memory",outcome="written"})") == "3");
    CHECK(sample(text, R"(orchestrix_appends_total{store="memory",outcome="conflict"})") == "1");
    CHECK(sample(text, R"(orchestrix_appended_events_total{store="memory"})") == "3");
    CHECK(sample(text, R"(orchestrix_append_duration_seconds_count{store="memory"})") == "4");
    // Each command loads its stream once; the projection read one batch, then found nothing more.
    CHECK(sample(text, R"(orchestrix_reads_total{store="memory",kind="stream"})") == "4");
    CHECK(sample(text, R"(orchestrix_read_events_total{store="memory",kind="stream"})") == "6");
    CHECK(sample(text, R"(orchestrix_reads_total{store="memory",kind="all"})") == "2");
    CHECK(sample(text, R"(orchestrix_read_events_total{store="memory",kind="all"})") == "3");
    CHECK(sample(text, R"(orchestrix_commands_total{aggregate="",outcome="succeeded"})") == "3");
    CHECK(sample(text, R"(orchestrix_commands_total{aggregate="",outcome="rejected"})") == "1");
    CHECK(sample(text, R"(orchestrix_command_duration_seconds_count{aggregate=""})") == "4");
    CHECK(sample(text, R"(orchestrix_command_retries_total{aggregate=""})") == "0");
    // Each command replays the events before it: 0 + 1 + 2 + 3.
    CHECK(sample(text, R"(orchestrix_command_replayed_events_total{aggregate=""})") == "6");
    CHECK(sample(text, R"(orchestrix_published_messages_total{bus="bus",type="account.deposited"})") == "2");
    CHECK(sample(text, R"(orchestrix_handler_calls_total{bus="bus",type="account.deposited"})") == "4");
    CHECK(sample(text, R"(orchestrix_handler_failures_total{bus="bus",type="account.deposited"})") == "1");
    CHECK(sample(text, R"(orchestrix_projection_events_total{projection="balances"})") == "3");
    CHECK(sample(text, R"(orchestrix_projection_checkpoint_position{projection="balances"})") == "3");
    CHECK(sample(text, R"(orchestrix_projection_head_position{projection="balances"})") == "3");
    CHECK(sample(text, R"(orchestrix_projection_lag_events{projection="balances"})") == "0");
    CHECK(sample(text, R"(orchestrix_projection_lag_seconds{projection="balances"})") == "0");
    CHECK(text.find("acc-1") == std::string::npos); // no stream id in any label
}
