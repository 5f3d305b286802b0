// Writers racing Repository::execute on one stream in PostgreSQL with the default RetryPolicy: threads
// sharing one store (a connection each from its pool), and forked processes with a store each.

#include <orchestrix/core/repository.hpp>
#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/postgres_cluster.hpp"
#include "support/retry_contention.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace {

using Store = orchestrix::PostgresEventStore<test_domain::AccountEvent>;

int commands_per_writer(int fallback) {
    return static_cast<int>(
        test_support::env_count("ORCHESTRIX_RETRY_COMMANDS", static_cast<std::uint64_t>(fallback), 1, 100'000));
}

} // namespace

TEST_CASE("postgres retry: 8 threads executing on one stream with the default retry policy all succeed") {
    const int commands = commands_per_writer(10);
    constexpr int writers = 8;
    Store store(test_support::fresh_postgres_database(), orchestrix::PostgresOptions{writers, true});
    test_support::open_shared_account(store);
    const auto tally = test_support::race_threads(store, writers, commands);
    test_support::report_tally("postgres, 8 threads", tally);
    INFO(tally.summary());
    CHECK(tally.conflicts_given_up == 0);
    CHECK(tally.other_errors == 0);
    CHECK(tally.stored() == static_cast<std::uint64_t>(writers * commands));
    test_support::check_shared_stream(store, writers, commands);
}

TEST_CASE("postgres retry: 4 processes executing on one stream with the default retry policy all succeed") {
    const int commands = commands_per_writer(20);
    constexpr int processes = 4;
    const std::string url = test_support::fresh_postgres_database();
    {
        Store store(url); // the schema and the account exist before the children start
        test_support::open_shared_account(store);
    }
    auto make_store = [&] { return std::make_unique<Store>(url, orchestrix::PostgresOptions{1, false}); };
    const auto tally = test_support::race_processes(make_store, processes, commands);
    test_support::report_tally("postgres, 4 processes", tally);
    INFO(tally.summary());
    CHECK(tally.conflicts_given_up == 0);
    CHECK(tally.other_errors == 0);
    CHECK(tally.stored() == static_cast<std::uint64_t>(processes * commands));
    const Store store(url);
    test_support::check_shared_stream(store, processes, commands);
}
