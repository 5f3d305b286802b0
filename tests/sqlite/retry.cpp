// Writers racing Repository::execute on one stream of an SQLite file with the default RetryPolicy: threads
// sharing one store, and forked processes with a store (a connection) each.

#include <orchestrix/core/repository.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/retry_contention.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace {

using Store = orchestrix::SqliteEventStore<test_domain::AccountEvent>;

// synchronous = NORMAL: the contention is what is tested here, not the disk (durability is tested apart).
const orchestrix::SqliteOptions options{orchestrix::SqliteSynchronous::normal, std::chrono::seconds(10)};

int commands_per_writer(int fallback) {
    return static_cast<int>(
        test_support::env_count("ORCHESTRIX_RETRY_COMMANDS", static_cast<std::uint64_t>(fallback), 1, 100'000));
}

} // namespace

TEST_CASE("sqlite retry: 8 threads executing on one stream with the default retry policy all succeed") {
    const int commands = commands_per_writer(10);
    constexpr int writers = 8;
    test_support::TempDir dir("orchestrix-retry");
    Store store(dir.file("events.db"), options);
    test_support::open_shared_account(store);
    const auto tally = test_support::race_threads(store, writers, commands);
    test_support::report_tally("sqlite, 8 threads", tally);
    INFO(tally.summary());
    CHECK(tally.conflicts_given_up == 0);
    CHECK(tally.other_errors == 0);
    CHECK(tally.stored() == static_cast<std::uint64_t>(writers * commands));
    test_support::check_shared_stream(store, writers, commands);
}

TEST_CASE("sqlite retry: 4 processes executing on one stream of one file with the default retry policy all "
          "succeed") {
    const int commands = commands_per_writer(20);
    constexpr int processes = 4;
    test_support::TempDir dir("orchestrix-retry");
    const std::string path = dir.file("events.db");
    {
        Store store(path, options); // the file and the account exist before the children start
        test_support::open_shared_account(store);
    }
    const auto tally =
        test_support::race_processes([&] { return std::make_unique<Store>(path, options); }, processes, commands);
    test_support::report_tally("sqlite, 4 processes", tally);
    INFO(tally.summary());
    CHECK(tally.conflicts_given_up == 0);
    CHECK(tally.other_errors == 0);
    CHECK(tally.stored() == static_cast<std::uint64_t>(processes * commands));
    const Store store(path, options);
    test_support::check_shared_stream(store, processes, commands);
}
