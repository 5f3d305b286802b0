#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/sqlite_raw.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using orchestrix::ExpectedVersion;

// Synchronous NORMAL keeps the contract's 16,000 concurrent appends quick; durability is tested apart.
struct SqliteStoreFactory {
    using store_type = Store;
    static constexpr int concurrency_threads = 8;
    static constexpr int concurrency_rounds = 250;
    test_support::TempDir dir{"orchestrix-sqlite"};
    std::unique_ptr<store_type> make() {
        return std::make_unique<store_type>(dir.file("events.db"),
                                            orchestrix::SqliteOptions{orchestrix::SqliteSynchronous::normal, {}});
    }
};

using test_support::raw_exec;

std::string raw_query(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
}

} // namespace

#define ORCHESTRIX_CONTRACT_STORES std::tuple<SqliteStoreFactory>
#include "support/event_store_contract.hpp"

static_assert(orchestrix::event_store<Store>);
static_assert(orchestrix::visitable_event_store<Store>);
static_assert(contract::has_head_position<Store> && contract::has_visit_all<Store>); // checked by the contract
static_assert(orchestrix::snapshot_store<orchestrix::SqliteSnapshotStore>);

TEST_CASE("sqlite store: events survive closing and reopening the file") {
    test_support::TempDir dir;
    const auto path = dir.file("bank.db");
    std::vector<orchestrix::RecordedEvent<AccountEvent>> before;
    {
        Store store(path);
        REQUIRE(store
                    .append("acc-1", {AccountOpened{"acc-1", "Ada"}, MoneyDeposited{"acc-1", 50}},
                            ExpectedVersion::no_stream())
                    .written);
        REQUIRE(store.append("acc-2", {AccountOpened{"acc-2", "Bob"}}, ExpectedVersion::no_stream()).written);
        before = store.read_all();
    }
    Store reopened(path);
    CHECK(reopened.read_all() == before);
    CHECK(reopened.stream_version("acc-1") == 2);
    CHECK(reopened.head_position() == 3);
    const auto next = reopened.append("acc-1", {MoneyDeposited{"acc-1", 5}}, ExpectedVersion::exact(2));
    CHECK(next.stream_version == 3);
    CHECK(next.first_position == 4);
    // An idempotent retry is recognised across reopening too.
    const std::vector<orchestrix::EventEnvelope<AccountEvent>> first{{before[0].event, before[0].metadata},
                                                                     {before[1].event, before[1].metadata}};
    CHECK_FALSE(reopened.append("acc-1", first, ExpectedVersion::no_stream()).written);
}

TEST_CASE("sqlite store: the file is in WAL mode with the synchronous level asked for") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        CHECK(store.journal_mode() == "wal");
        CHECK(store.synchronous() == orchestrix::SqliteSynchronous::full);
    }
    Store normal(path, {orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(100)});
    CHECK(normal.synchronous() == orchestrix::SqliteSynchronous::normal);
    CHECK(raw_query(path, "PRAGMA journal_mode") == "wal"); // persistent in the file
    CHECK(raw_query(path, "PRAGMA user_version") == "3");
}

TEST_CASE("sqlite store: a damaged row is reported as a decode error naming its position") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path);
    REQUIRE(store
                .append("acc", {AccountOpened{"acc", "Ada"}, MoneyDeposited{"acc", 5}, MoneyDeposited{"acc", 6}},
                        ExpectedVersion::no_stream())
                .written);

    auto expect_error = [&](orchestrix::DecodeError::Kind kind, const std::string& says) {
        try {
            (void)store.read_stream("acc");
            FAIL("reading a damaged row should throw");
        } catch (const orchestrix::StoredEventDecodeError& e) {
            CHECK(e.position() == 2);
            CHECK(e.stream_id() == "acc");
            CHECK(e.kind() == kind);
            const std::string what = e.what();
            CHECK(what.find("position 2") != std::string::npos);
            CHECK(what.find(says) != std::string::npos);
        }
        // Events before the damaged one can still be read on their own.
        CHECK(store.read_stream("acc", 1, 1).size() == 1);
    };

    SECTION("truncated JSON") {
        raw_exec(path, "UPDATE events SET payload = '{\"account_id\": \"acc\", \"amo' WHERE position = 2");
        expect_error(orchestrix::DecodeError::Kind::malformed_json, "/payload");
    }
    SECTION("a field of the wrong type") {
        raw_exec(path, "UPDATE events SET payload = '{\"account_id\":\"acc\",\"amount\":\"five\"}' WHERE position = 2");
        expect_error(orchestrix::DecodeError::Kind::wrong_type, "amount");
    }
    SECTION("an unknown event type") {
        raw_exec(path, "UPDATE events SET type = 'account.vanished' WHERE position = 2");
        expect_error(orchestrix::DecodeError::Kind::unknown_type, "account.vanished");
    }
    SECTION("a schema version newer than the program") {
        raw_exec(path, "UPDATE events SET schema_version = 7 WHERE position = 2");
        expect_error(orchestrix::DecodeError::Kind::newer_schema_version, "schema version 7");
    }
    SECTION("a version column that is not a number") {
        raw_exec(path, "UPDATE events SET version = 'two' WHERE position = 2");
        try {
            (void)store.read_all();
            FAIL("reading a damaged row should throw");
        } catch (const orchestrix::StoredEventDecodeError& e) {
            CHECK(e.position() == 2);
            CHECK(std::string(e.what()).find("version column") != std::string::npos);
        }
    }
    SECTION("metadata that disagrees with the event id column") {
        raw_exec(path, "UPDATE events SET metadata = (SELECT metadata FROM events WHERE position = 1) "
                       "WHERE position = 2");
        expect_error(orchestrix::DecodeError::Kind::invalid_value, "event_id");
    }
}

TEST_CASE("sqlite store: two stores on one file (two connections) append concurrently without loss") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    const orchestrix::SqliteOptions options{orchestrix::SqliteSynchronous::normal, std::chrono::seconds(10)};
    Store first(path, options);
    Store second(path, options);
    constexpr int per_writer = 200;
    auto writer = [&](Store& store, const std::string& stream) {
        for (int i = 0; i < per_writer; ++i)
            (void)store.append(stream, {MoneyDeposited{stream, i}},
                               ExpectedVersion::exact(static_cast<std::uint64_t>(i)));
    };
    std::thread a(writer, std::ref(first), "a");
    std::thread b(writer, std::ref(second), "b");
    a.join();
    b.join();
    const auto all = first.read_all();
    REQUIRE(all.size() == 2 * per_writer);
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].position == i + 1);
    CHECK(second.stream_version("a") == per_writer);
    CHECK(first.stream_version("b") == per_writer);
}

TEST_CASE("sqlite store: an event JSON cannot carry is refused and nothing is written") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"));
    REQUIRE(store.append("acc", {AccountOpened{"acc", "Ada"}}, ExpectedVersion::no_stream()).written);
    CHECK_THROWS_AS(
        store.append("acc", {MoneyDeposited{"acc", 1}, AccountOpened{"acc", "bad\xC3("}}, ExpectedVersion::exact(1)),
        orchestrix::EncodeError);
    CHECK(store.stream_version("acc") == 1);
    CHECK(store.head_position() == 1);
}

// The contract's order (docs/event-stores.md): a retry of a stored batch is decided before the version limit.
TEST_CASE("sqlite store: contract order at the version limit: a retry is decided before the overflow") {
    test_support::TempDir dir;
    const std::string path = dir.file("events.db");
    Store store(path);
    const std::vector<orchestrix::EventEnvelope<AccountEvent>> batch{MoneyDeposited{"acc", 1}};
    REQUIRE(store.append("acc", batch, ExpectedVersion::no_stream()).written);
    raw_exec(path, "UPDATE events SET version = 9223372036854775807");
    CHECK_THROWS_AS(store.append("acc", {MoneyDeposited{"acc", 2}}, ExpectedVersion::any()),
                    orchestrix::InvalidArgumentError);
    CHECK(store.append("acc", batch, ExpectedVersion::any()) ==
          orchestrix::AppendResult{orchestrix::max_version, 1, 1, false});
    CHECK(store.head_position() == 1);
}

TEST_CASE("sqlite store: an unusable file is a store error with SQLite's message") {
    test_support::TempDir dir;
    try {
        Store store(dir.file("missing-dir/events.db"));
        FAIL("opening a file in a missing directory should fail");
    } catch (const orchestrix::SqliteError& e) {
        CHECK(e.code() == SQLITE_CANTOPEN);
        CHECK(std::string(e.what()).find("missing-dir") != std::string::npos);
    }
    // A file of another format.
    raw_exec(dir.file("other.db"), "PRAGMA user_version = 99; CREATE TABLE t(x)");
    CHECK_THROWS_AS(Store(dir.file("other.db")), orchestrix::StoreError);
}

TEST_CASE("sqlite snapshot store: keeps the latest snapshot per aggregate across reopening") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    const auto taken = std::chrono::system_clock::time_point(std::chrono::microseconds(1'700'000'000'123'456));
    const orchestrix::Snapshot v5{"acc-1", "account", 5, 1, R"({"balance":5})", taken};
    {
        orchestrix::SqliteSnapshotStore snapshots(path);
        CHECK_FALSE(snapshots.latest("acc-1").has_value());
        snapshots.save(v5);
        snapshots.save({"acc-1", "account", 3, 1, R"({"balance":3})", taken}); // older: ignored
        CHECK(snapshots.latest("acc-1") == v5);
        CHECK_THROWS_AS(snapshots.save({"acc-1", "account", 0, 1, "{}", taken}), orchestrix::InvalidArgumentError);
        CHECK_THROWS_AS(snapshots.save({"", "account", 1, 1, "{}", taken}), orchestrix::InvalidArgumentError);
    }
    orchestrix::SqliteSnapshotStore reopened(path);
    CHECK(reopened.latest("acc-1") == v5);
    // A new schema version replaces the snapshot even at a lower version.
    const orchestrix::Snapshot v2{"acc-1", "account", 2, 2, R"({"cents":2})", taken};
    reopened.save(v2);
    CHECK(reopened.latest("acc-1") == v2);
    // The event store shares the file.
    Store events(path);
    CHECK(events.head_position() == 0);
}

// A child appends at the given synchronous level and reports each acknowledged append over a pipe; the parent
// kills it (SIGKILL) at a random moment while it appends. Every acknowledged event must be there, no batch
// partly, and the file intact. A process crash loses nothing at any level: the committed WAL frames are in the
// operating system's page cache, which the kill does not touch (what the levels differ in is a power loss:
// tests/sqlite/power_loss.cpp).
namespace {
void kill_the_writer(orchestrix::SqliteSynchronous level, const char* level_name) {
    const std::uint64_t rounds = test_support::env_count("ORCHESTRIX_CRASH_ROUNDS", 12, 1);
    const orchestrix::SqliteOptions options{level, {}};
    test_support::TempDir dir;
    const auto path = dir.file("crash.db");
    {
        Store create(path, options);
        REQUIRE(create.synchronous() == level);
    }
    std::mt19937 random(12345);
    std::uniform_int_distribution<int> delay_ms(1, 50);
    std::set<std::int64_t> acknowledged;
    std::int64_t next = 0; // the first amount the next child writes
    for (std::uint64_t round = 0; round < rounds; ++round) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(fds[0]);
            try {
                Store store(path, options);
                for (std::int64_t amount = next;; amount += 3) {
                    (void)store.append("crash",
                                       {MoneyDeposited{"crash", amount}, MoneyDeposited{"crash", amount + 1},
                                        MoneyDeposited{"crash", amount + 2}},
                                       ExpectedVersion::any());
                    if (::write(fds[1], &amount, sizeof amount) != static_cast<ssize_t>(sizeof amount)) ::_exit(3);
                }
            } catch (...) {
                ::_exit(2);
            }
        }
        ::close(fds[1]);
        // Wait for the child's first acknowledged append (opening may be slow under a sanitizer), then kill
        // it at a random moment of its run.
        std::int64_t amount = 0;
        if (::read(fds[0], &amount, sizeof amount) == static_cast<ssize_t>(sizeof amount)) {
            acknowledged.insert(amount);
        } else {
            int status = 0;
            ::waitpid(child, &status, 0);
            FAIL("the writer process ended before its first append, status " << status);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
        ::kill(child, SIGKILL);
        while (::read(fds[0], &amount, sizeof amount) == static_cast<ssize_t>(sizeof amount))
            acknowledged.insert(amount);
        ::close(fds[0]);
        int status = 0;
        ::waitpid(child, &status, 0);
        REQUIRE(WIFSIGNALED(status));
        next += 1'000'000;
    }
    const std::string integrity = raw_query(path, "PRAGMA integrity_check");
    CHECK(integrity == "ok");
    Store store(path, options);
    std::set<std::int64_t> stored;
    for (const auto& e : store.read_stream("crash")) stored.insert(std::get<MoneyDeposited>(e.event).amount);
    CHECK(stored.size() % 3 == 0);
    for (const auto amount : stored) { // whole batches only: each child's batches start at 0, 3, 6, ...
        const auto first = amount - (amount % 1'000'000) % 3;
        CHECK((stored.contains(first) && stored.contains(first + 1) && stored.contains(first + 2)));
    }
    std::size_t missing = 0;
    for (const auto amount : acknowledged) {
        if (!stored.contains(amount) || !stored.contains(amount + 1) || !stored.contains(amount + 2)) ++missing;
    }
    INFO("synchronous=" << level_name << ", acknowledged batches: " << acknowledged.size()
                        << ", stored events: " << stored.size());
    CHECK(missing == 0);
    CHECK(!acknowledged.empty());
    std::printf("kill -9: synchronous=%-6s %llu SIGKILLs mid-append, %zu acknowledged batches, %zu lost, "
                "integrity_check %s\n",
                level_name, static_cast<unsigned long long>(rounds), acknowledged.size(), missing, integrity.c_str());
}
} // namespace

TEST_CASE("sqlite store: acknowledged appends survive kill -9 of the writer under synchronous=full") {
    kill_the_writer(orchestrix::SqliteSynchronous::full, "full");
}

TEST_CASE("sqlite store: acknowledged appends survive kill -9 of the writer under synchronous=extra") {
    kill_the_writer(orchestrix::SqliteSynchronous::extra, "extra");
}

TEST_CASE("sqlite store: acknowledged appends survive kill -9 of the writer under synchronous=normal") {
    kill_the_writer(orchestrix::SqliteSynchronous::normal, "normal");
}

TEST_CASE("sqlite store: acknowledged appends survive kill -9 of the writer under synchronous=off") {
    kill_the_writer(orchestrix::SqliteSynchronous::off, "off");
}

TEST_CASE("sqlite store: hostile stream ids are stored and read back byte for byte") {
    test_support::TempDir dir;
    Store store(dir.file("events.db"));
    const std::vector<std::string> ids{
        "x'; DROP TABLE events;--", "%", "_", "\\", "\xF0\x9F\x92\xB8 money \xF0\x9F\x8F\xA6", "a\"b", "?1", "NULL"};
    for (const auto& id : ids) {
        REQUIRE(store.append(id, {MoneyDeposited{id, 1}}, ExpectedVersion::no_stream()).written);
    }
    for (const auto& id : ids) {
        const auto events = store.read_stream(id);
        REQUIRE(events.size() == 1);
        CHECK(events[0].stream_id == id);
        CHECK(std::get<MoneyDeposited>(events[0].event).account_id == id);
    }
    CHECK(store.head_position() == ids.size());
    CHECK(store.stream_version("x") == 0);
}
