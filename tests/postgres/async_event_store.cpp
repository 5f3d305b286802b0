// AsyncPostgresEventStore: the event-store contract over its completions, a thousand appends in flight at once,
// cancellation before, while and after an append runs, a backend terminated under load, and shutdown.

#include <orchestrix/postgres/async_event_store.hpp>

#include "support/blocking_store.hpp"
#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using AsyncStore = orchestrix::AsyncPostgresEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::ExpectedVersion;
using orchestrix::OperationCancelledError;
using test_support::RawConnection;
using namespace std::chrono_literals;

static_assert(orchestrix::async_event_store<AsyncStore>);
static_assert(orchestrix::event_store<test_support::BlockingStore<AsyncStore>>);

orchestrix::AsyncPostgresOptions options(std::size_t pool_size, std::size_t pipeline_depth) {
    orchestrix::AsyncPostgresOptions o;
    o.pool_size = pool_size;
    o.pipeline_depth = pipeline_depth;
    return o;
}

// One operation at a time per connection, and several in flight per connection (pipeline mode).
struct AsyncPostgresStoreFactory {
    using store_type = test_support::BlockingStore<AsyncStore>;
    static constexpr int concurrency_threads = 8;
    static constexpr int concurrency_rounds = 60;
    std::unique_ptr<store_type> make() {
        return std::make_unique<store_type>(
            std::make_unique<AsyncStore>(test_support::fresh_postgres_database(), options(4, 1)));
    }
};
struct AsyncPostgresPipelinedStoreFactory {
    using store_type = test_support::BlockingStore<AsyncStore>;
    static constexpr int concurrency_threads = 8;
    static constexpr int concurrency_rounds = 60;
    std::unique_ptr<store_type> make() {
        return std::make_unique<store_type>(
            std::make_unique<AsyncStore>(test_support::fresh_postgres_database(), options(2, 8)));
    }
};

std::vector<Envelope> deposit(const std::string& account, std::int64_t amount) {
    return {Envelope(MoneyDeposited{account, amount})};
}

// Waits until a backend waits for a lock that `locker_pid` holds; returns the pids of those that do.
std::vector<std::string> wait_for_blocked(RawConnection& admin, const std::string& locker_pid, std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (;;) {
        std::vector<std::string> pids;
        PGresult* r = PQexec(admin.get(), ("SELECT pid FROM pg_stat_activity WHERE " + locker_pid +
                                           " = ANY (pg_blocking_pids(pid)) ORDER BY pid")
                                              .c_str());
        for (int i = 0; i < PQntuples(r); ++i) pids.emplace_back(PQgetvalue(r, i, 0));
        PQclear(r);
        if (pids.size() >= count) return pids;
        if (std::chrono::steady_clock::now() > deadline) FAIL("no backend waited for the lock within 60 s");
        std::this_thread::sleep_for(5ms);
    }
}

std::int64_t count_events(RawConnection& c, const std::string& stream) {
    return std::stoll(c.exec("SELECT count(*) FROM events WHERE stream_id = $1", {stream}));
}

// Keeps the store's I/O thread inside a continuation until `release` is ready: an operation's continuation runs
// there, so while it waits, the store reads no result.
orchestrix::Completion<void> hold_io_thread(AsyncStore& store, std::thread::id caller, std::promise<void>& entered,
                                            std::shared_future<void> release) {
    for (;;) {
        (void)co_await store.head_position_async();
        if (std::this_thread::get_id() != caller) break; // resumed by the I/O thread (not ready at once)
    }
    entered.set_value();
    release.wait();
}

} // namespace

using AsyncPostgresStores = std::tuple<AsyncPostgresStoreFactory, AsyncPostgresPipelinedStoreFactory>;
#define ORCHESTRIX_CONTRACT_STORES AsyncPostgresStores
#include "support/event_store_contract.hpp"

TEST_CASE("async postgres store: a thousand appends in flight at once all commit, at contiguous positions") {
    const std::size_t depth = GENERATE(1U, 16U);
    INFO("pipeline depth " << depth);
    AsyncStore store(test_support::fresh_postgres_database(), options(4, depth));
    constexpr int appends = 1000;
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> pending;
    pending.reserve(appends);
    for (int i = 0; i < appends; ++i) {
        pending.push_back(store.append_async("account-" + std::to_string(i), deposit("account-" + std::to_string(i), i),
                                             ExpectedVersion::no_stream()));
    }
    std::vector<orchestrix::position_t> positions;
    for (auto& c : pending) {
        REQUIRE(c.wait_for(60s));
        const orchestrix::AppendResult r = c.get();
        CHECK(r.written);
        CHECK(r.stream_version == 1);
        CHECK(r.first_position == r.last_position);
        positions.push_back(r.first_position);
    }
    std::sort(positions.begin(), positions.end());
    for (std::size_t i = 0; i < positions.size(); ++i) REQUIRE(positions[i] == i + 1);
    CHECK(store.read_all_async().get().size() == appends);
    CHECK(store.head_position_async().get() == appends);
    CHECK(store.stream_version_async("account-999").get() == 1);
}

TEST_CASE("async postgres store: an append cancelled before it is sent reports not_committed and stores nothing") {
    const std::string url = test_support::fresh_postgres_database();
    AsyncStore store(url, options(1, 1));
    RawConnection raw(url);

    SECTION("stopped before the call") {
        std::stop_source stop;
        stop.request_stop();
        auto c = store.append_async("early", deposit("early", 1), ExpectedVersion::any(), stop.get_token());
        REQUIRE(c.ready());
        try {
            (void)c.get();
            FAIL("the cancelled append completed");
        } catch (const OperationCancelledError& e) {
            CHECK(e.not_committed());
            CHECK(e.outcome() == OperationCancelledError::Outcome::not_committed);
            CHECK(std::string(e.what()).find("append to stream 'early'") != std::string::npos);
        }
    }
    SECTION("stopped while it waits for the connection") {
        // The only connection runs an append held by our lock; the second waits, unsent, and is cancelled there.
        raw.exec("BEGIN");
        raw.exec("LOCK TABLE events IN EXCLUSIVE MODE");
        const std::string locker_pid = raw.exec("SELECT pg_backend_pid()");
        RawConnection admin(url);
        auto first = store.append_async("first", deposit("first", 1), ExpectedVersion::no_stream());
        (void)wait_for_blocked(admin, locker_pid, 1);
        std::stop_source stop;
        auto queued = store.append_async("early", deposit("early", 2), ExpectedVersion::any(), stop.get_token());
        std::this_thread::sleep_for(20ms);
        CHECK_FALSE(queued.ready());
        stop.request_stop();
        REQUIRE(queued.wait_for(10s)); // without waiting for the connection
        CHECK_THROWS_MATCHES(queued.get(), OperationCancelledError,
                             Catch::Matchers::Predicate<OperationCancelledError>(
                                 [](const OperationCancelledError& e) { return e.not_committed(); }));
        CHECK_FALSE(first.ready());
        raw.exec("COMMIT");
        CHECK(first.get().written);
    }
    CHECK(count_events(raw, "early") == 0);
    CHECK(store.append_async("later", deposit("later", 3), ExpectedVersion::no_stream()).get().written);
}

TEST_CASE("async postgres store: an append cancelled while it waits for the table lock is cancelled by the server") {
    const std::size_t depth = GENERATE(1U, 4U);
    INFO("pipeline depth " << depth);
    const std::string url = test_support::fresh_postgres_database();
    AsyncStore store(url, options(2, depth));
    RawConnection locker(url);
    RawConnection admin(url);
    const std::string locker_pid = locker.exec("SELECT pg_backend_pid()");
    locker.exec("BEGIN");
    locker.exec("LOCK TABLE events IN EXCLUSIVE MODE");

    std::stop_source stop;
    auto blocked = store.append_async("blocked", deposit("blocked", 1), ExpectedVersion::no_stream(), stop.get_token());
    (void)wait_for_blocked(admin, locker_pid, 1);
    CHECK_FALSE(blocked.ready());
    stop.request_stop();
    REQUIRE(blocked.wait_for(30s)); // the server cancelled it while we still hold the lock
    try {
        (void)blocked.get();
        FAIL("the cancelled append completed");
    } catch (const OperationCancelledError& e) {
        CHECK(e.not_committed());
    }
    locker.exec("COMMIT");
    CHECK(count_events(admin, "blocked") == 0);
    CHECK(store.stream_version_async("blocked").get() == 0);
    // The connection it ran on serves the next operations.
    for (int i = 0; i < 4; ++i) {
        CHECK(store.append_async("after-" + std::to_string(i), deposit("after", i), ExpectedVersion::no_stream())
                  .get()
                  .written);
    }
}

TEST_CASE("async postgres store: an append cancelled after it committed completes with its result") {
    const std::string url = test_support::fresh_postgres_database();
    AsyncStore store(url, options(2, 1));
    RawConnection locker(url);
    RawConnection admin(url);
    const std::string locker_pid = locker.exec("SELECT pg_backend_pid()");
    locker.exec("BEGIN");
    locker.exec("LOCK TABLE events IN EXCLUSIVE MODE");

    std::stop_source stop;
    auto append = store.append_async("late", deposit("late", 5), ExpectedVersion::no_stream(), stop.get_token());
    (void)wait_for_blocked(admin, locker_pid, 1);

    // Hold the I/O thread, let the append commit on the server, then cancel it before its answer is read.
    std::promise<void> entered;
    std::promise<void> release;
    auto held = hold_io_thread(store, std::this_thread::get_id(), entered, release.get_future().share());
    entered.get_future().wait();
    locker.exec("COMMIT");
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (count_events(admin, "late") == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    REQUIRE(count_events(admin, "late") == 1); // committed
    stop.request_stop();
    CHECK_FALSE(append.ready()); // its answer is unread: the I/O thread is held
    release.set_value();
    held.get();

    REQUIRE(append.wait_for(30s));
    const orchestrix::AppendResult r = append.get();
    CHECK(r.written);
    CHECK(r.first_position == 1);
    CHECK(r.stream_version == 1);
    CHECK(store.append_async("next", deposit("next", 1), ExpectedVersion::no_stream()).get().first_position == 2);
}

TEST_CASE("async postgres store: an operation cancelled and then cut off from the server reports what it knows") {
    const std::string url = test_support::fresh_postgres_database() + "&application_name=orchestrix_async_cut";
    AsyncStore store(url, options(2, 1));
    RawConnection locker(url);
    RawConnection admin(test_support::fresh_postgres_database());
    const std::string locker_pid = locker.exec("SELECT pg_backend_pid()");
    locker.exec("BEGIN");
    std::stop_source stop;
    orchestrix::Completion<orchestrix::AppendResult> append;
    orchestrix::Completion<orchestrix::stream_version_t> read;
    const bool appending = GENERATE(true, false);
    if (appending) { // waits for the events table's lock
        locker.exec("LOCK TABLE events IN EXCLUSIVE MODE");
        append = store.append_async("cut", deposit("cut", 1), ExpectedVersion::no_stream(), stop.get_token());
    } else { // waits for the streams table, which the read's statement reads too
        locker.exec("LOCK TABLE orchestrix_streams IN ACCESS EXCLUSIVE MODE");
        read = store.stream_version_async("cut", stop.get_token());
    }
    const auto blocked = wait_for_blocked(admin, locker_pid, 1);

    // Hold the I/O thread; meanwhile ask for the stop and terminate the operation's backend.
    std::promise<void> entered;
    std::promise<void> release;
    auto held = hold_io_thread(store, std::this_thread::get_id(), entered, release.get_future().share());
    entered.get_future().wait();
    stop.request_stop();
    REQUIRE(admin.exec("SELECT pg_terminate_backend(" + blocked[0] + ")") == "t");
    std::this_thread::sleep_for(50ms);
    release.set_value();
    held.get();

    OperationCancelledError::Outcome outcome = OperationCancelledError::Outcome::not_committed;
    bool cancelled = false;
    try {
        if (appending) {
            (void)append.get();
        } else {
            (void)read.get();
        }
    } catch (const OperationCancelledError& e) {
        cancelled = true;
        outcome = e.outcome();
    }
    REQUIRE(cancelled);
    // An append whose answer was lost may have committed; a read took no effect either way.
    CHECK(outcome ==
          (appending ? OperationCancelledError::Outcome::unknown : OperationCancelledError::Outcome::not_committed));
    locker.exec("ROLLBACK");
    CHECK(store.stream_version_async("cut").get() == 0); // the server had not run it
    CHECK(store.append_async("cut", deposit("cut", 2), ExpectedVersion::no_stream()).get().written);
}

TEST_CASE("async postgres store: a backend terminated under load fails its operations with PostgresError only") {
    const std::size_t depth = GENERATE(1U, 4U);
    INFO("pipeline depth " << depth);
    const std::string url = test_support::fresh_postgres_database() + "&application_name=orchestrix_async_victim";
    AsyncStore store(url, options(4, depth));
    RawConnection locker(url);
    RawConnection admin(test_support::fresh_postgres_database());
    const std::string locker_pid = locker.exec("SELECT pg_backend_pid()");
    locker.exec("BEGIN");
    locker.exec("LOCK TABLE events IN EXCLUSIVE MODE");

    constexpr int appends = 200;
    std::vector<std::vector<Envelope>> batches;
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> pending;
    for (int i = 0; i < appends; ++i) {
        batches.push_back(deposit("load-" + std::to_string(i), i));
        pending.push_back(
            store.append_async("load-" + std::to_string(i), batches.back(), ExpectedVersion::no_stream()));
    }
    // Every connection of the store waits for the lock; terminate one of them.
    const auto blocked = wait_for_blocked(admin, locker_pid, 4);
    REQUIRE(admin.exec("SELECT pg_terminate_backend(" + blocked[1] + ")") == "t");
    std::this_thread::sleep_for(50ms);
    locker.exec("COMMIT");

    int failed = 0;
    int terminated = 0;
    std::vector<int> retry;
    for (int i = 0; i < appends; ++i) {
        REQUIRE(pending[static_cast<std::size_t>(i)].wait_for(60s));
        bool written = false;
        try {
            written = pending[static_cast<std::size_t>(i)].get().written;
        } catch (const orchestrix::PostgresError& e) { // typed, as the blocking store's call on a lost connection
            INFO(e.what());
            CHECK(dynamic_cast<const OperationCancelledError*>(&e) == nullptr);
            if (e.sqlstate() == "57P01") ++terminated; // the statement the backend ran when it was terminated
            ++failed;
            retry.push_back(i);
            continue;
        }
        CHECK(written);
    }
    CHECK(terminated == 1);
    CHECK(failed >= 1);
    CHECK(failed <= static_cast<int>(depth));
    // What failed had not committed (it waited for the lock when its backend went): the retry writes it once.
    for (const int i : retry) {
        CHECK(store
                  .append_async("load-" + std::to_string(i), batches[static_cast<std::size_t>(i)],
                                ExpectedVersion::no_stream())
                  .get()
                  .written);
    }
    // Later operations get a connection that works.
    for (int i = 0; i < 50; ++i) {
        CHECK(store.append_async("later-" + std::to_string(i), deposit("later", i), ExpectedVersion::no_stream())
                  .get()
                  .written);
    }
    CHECK(store.read_all_async().get().size() == appends + 50);
}

TEST_CASE("async postgres store: shutdown lets every accepted operation finish and refuses later ones") {
    const std::string url = test_support::fresh_postgres_database();
    auto store = std::make_unique<AsyncStore>(url, options(3, 4));
    constexpr int appends = 300;
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> pending;
    for (int i = 0; i < appends; ++i) {
        pending.push_back(store->append_async("s-" + std::to_string(i), deposit("s", i), ExpectedVersion::no_stream()));
    }
    store->shutdown();
    for (auto& c : pending) {
        REQUIRE(c.ready());
        CHECK(c.get().written);
    }
    auto refused = store->append_async("after", deposit("after", 1), ExpectedVersion::any());
    REQUIRE(refused.ready());
    CHECK_THROWS_AS(refused.get(), orchestrix::StoreError);
    CHECK_THROWS_AS(store->read_all_async().get(), orchestrix::StoreError);
    store.reset(); // the destructor's shutdown is idempotent

    orchestrix::PostgresEventStore<AccountEvent> check(url);
    CHECK(check.read_all().size() == appends);
    CHECK(check.stream_version("after") == 0);
}

TEST_CASE("async postgres store: typed errors arrive through the completion") {
    const std::string url = test_support::fresh_postgres_database();
    AsyncStore store(url, options(2, 2));
    REQUIRE(store.append_async("acc", deposit("acc", 1), ExpectedVersion::no_stream()).get().written);
    CHECK_THROWS_AS(store.append_async("acc", deposit("acc", 2), ExpectedVersion::no_stream()).get(),
                    orchestrix::ConcurrencyError);
    auto malformed = store.append_async("", deposit("x", 2), ExpectedVersion::any());
    CHECK(malformed.ready()); // checked on the calling thread: nothing was sent
    CHECK_THROWS_AS(malformed.get(), orchestrix::InvalidArgumentError);
    CHECK(store.stream_version_async(std::string("bad\0id", 6)).get() == 0);
    CHECK(store.read_stream_async("acc", 1, 0).get().empty());

    // A damaged row is refused as the blocking store refuses it.
    RawConnection raw(url);
    raw.exec("UPDATE events SET schema_version = 0 WHERE stream_id = 'acc'");
    CHECK_THROWS_AS(store.read_stream_async("acc").get(), orchestrix::StoredEventDecodeError);
    CHECK_THROWS_AS(orchestrix::PostgresEventStore<AccountEvent>(url).read_stream("acc"),
                    orchestrix::StoredEventDecodeError);

    CHECK_THROWS_AS(AsyncStore(url, options(0, 1)), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(AsyncStore(url, options(1, 0)), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(AsyncStore("postgresql://nobody@127.0.0.1:1/none"), orchestrix::PostgresError);
}

TEST_CASE("async postgres store: a blocking and an asynchronous store read each other's events") {
    const std::string url = test_support::fresh_postgres_database();
    orchestrix::PostgresEventStore<AccountEvent> blocking(url);
    AsyncStore async(url, options(2, 1));
    REQUIRE(blocking.append("acc", deposit("acc", 1), ExpectedVersion::no_stream()).written);
    REQUIRE(async.append_async("acc", deposit("acc", 2), ExpectedVersion::exact(1)).get().written);
    CHECK(async.read_stream_async("acc").get() == blocking.read_stream("acc"));
    CHECK(async.read_all_async(2, 1).get() == blocking.read_all(2, 1));
    CHECK(async.head_position_async().get() == blocking.head_position());
    // A retry through the other store is idempotent (the asynchronous store looks the stored events up).
    const std::vector<Envelope> batch = deposit("acc", 3);
    const auto first = blocking.append("acc", batch, ExpectedVersion::exact(2));
    const auto again = async.append_async("acc", batch, ExpectedVersion::exact(2)).get();
    CHECK_FALSE(again.written);
    CHECK(again.first_position == first.first_position);
    CHECK(again.stream_version == 3);
}

TEST_CASE("async postgres store: when no connection can be opened, each waiting operation fails, none hangs") {
    const std::string url = test_support::fresh_postgres_database(true);
    const std::string name = url.substr(url.rfind('/') + 1);
    AsyncStore store(url, options(2, 1)); // connects once for the schema, then opens its pool on demand
    test_support::postgres_exec(test_support::postgres_server_url(),
                                "ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS false");
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> refused;
    for (int i = 0; i < 5; ++i) {
        refused.push_back(store.append_async("s-" + std::to_string(i), deposit("s", i), ExpectedVersion::no_stream()));
    }
    for (auto& c : refused) {
        REQUIRE(c.wait_for(60s));
        try {
            (void)c.get();
            FAIL("an append went through a connection that cannot be opened");
        } catch (const orchestrix::PostgresError& e) {
            CHECK(std::string(e.what()).find("cannot connect to PostgreSQL") != std::string::npos);
        }
    }
    test_support::postgres_exec(test_support::postgres_server_url(),
                                "ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS true");
    CHECK(store.append_async("later", deposit("later", 1), ExpectedVersion::no_stream()).get().written);
}
