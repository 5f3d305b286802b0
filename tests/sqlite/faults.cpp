// Fault injection on the SQLite store: I/O errors on every write, sync and truncate an append (and the
// close after it) makes, allocation failures, and a full disk. Whatever fails, the append reports a typed
// orchestrix error (never a crash), the file holds the state before or after the append (never anything
// else), `PRAGMA integrity_check` says ok, a retry succeeds, and nothing leaks (LeakSanitizer in the asan
// preset). Each test prints how many fault points it survived.

#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/sqlite_faults.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using test_support::FaultyVfs;
using test_support::IoOperation;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;

const orchestrix::SqliteOptions full_sync{orchestrix::SqliteSynchronous::full, std::chrono::milliseconds(1000)};

// What a store holds, without the recording times (a retry keeps the original ones, a reference run has
// its own).
using Row = std::tuple<std::string, std::uint64_t, std::uint64_t, AccountEvent, std::string, std::string>;
std::vector<Row> contents(const Store& store) {
    std::vector<Row> rows;
    for (const auto& e : store.read_all()) {
        rows.emplace_back(e.stream_id, e.version, e.position, e.event, e.metadata.event_id.to_string(),
                          e.metadata.correlation_id);
    }
    return rows;
}

std::string integrity_check(const std::string& path) {
    sqlite3* db = nullptr;
    std::string result = "cannot open";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW) {
            result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        }
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return result;
}

void copy_database(const std::string& from, const std::string& to) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(to + suffix);
    std::filesystem::copy_file(from, to);
}

// A store file with three streams, closed (so the WAL is checkpointed into it), and the batch the tests
// append to it: four events, one of them large enough to need overflow pages.
struct Fixture {
    test_support::TempDir dir{"orchestrix-faults"};
    std::string baseline = dir.file("baseline.db");
    std::string work = dir.file("work.db");
    std::vector<Envelope> batch;
    std::vector<Row> before;
    std::vector<Row> after;
    const ExpectedVersion expected = ExpectedVersion::exact(2);

    Fixture() {
        {
            Store store(baseline, full_sync);
            for (int s = 0; s < 3; ++s) {
                const std::string id = "account-" + std::to_string(s);
                (void)store.append(id, {AccountOpened{id, "owner " + std::to_string(s)}, MoneyDeposited{id, 10 + s}},
                                   ExpectedVersion::no_stream());
            }
            before = contents(store);
        }
        batch = {Envelope{MoneyDeposited{"account-1", 5}, {orchestrix::Uuid::generate(), "fault-test", {}, {}, {}}},
                 Envelope{AccountOpened{"account-1", std::string(6000, 'x')},
                          {orchestrix::Uuid::generate(), {}, {}, {}, {}}},
                 MoneyDeposited{"account-1", 7}, MoneyDeposited{"account-1", 9}};
        copy_database(baseline, work);
        {
            Store store(work, full_sync);
            (void)store.append("account-1", batch, expected);
            after = contents(store);
        }
        REQUIRE(after.size() == before.size() + batch.size());
    }

    // Reopens the work file with the real VFS: its contents must be `before` or `after` (or exactly
    // `after` if `acknowledged`), the file intact; then the append, retried, must succeed.
    void check_file(bool acknowledged, std::uint64_t& unchanged, std::uint64_t& complete) const {
        FaultyVfs::instance().restore_default();
        REQUIRE(integrity_check(work) == "ok");
        Store store(work, full_sync);
        const auto found = contents(store);
        if (acknowledged) {
            REQUIRE(found == after);
        } else {
            REQUIRE((found == before || found == after));
        }
        ++(found == before ? unchanged : complete);
        REQUIRE_NOTHROW((void)store.append("account-1", batch, expected));
        REQUIRE(contents(store) == after);
    }
};

struct Tally {
    std::uint64_t fault_points = 0; // runs in which an injected fault fired
    std::uint64_t errors = 0;       // ... and the append reported an error
    std::uint64_t unchanged = 0;    // ... and the file held the state before the append
    std::uint64_t complete = 0;     // ... or after it
};

// For n = 1, 2, ...: a fresh copy of the baseline, opened through the faulty VFS; fail the nth `op` (or,
// if `persistent`, every one from the nth on) during the append and, if `through_close`, while closing the
// store too. Stops at the first n at which the operation is not called that often.
Tally run_io_faults(const Fixture& f, IoOperation op, bool persistent, bool through_close) {
    FaultyVfs& vfs = FaultyVfs::instance();
    Tally tally;
    for (std::uint64_t n = 1;; ++n) {
        INFO(name_of(op) << " fault at call " << n << (persistent ? " and after" : "")
                         << (through_close ? ", through close" : ", retry on the same connection"));
        copy_database(f.baseline, f.work);
        vfs.make_default();
        bool acknowledged = false;
        std::optional<std::string> error;
        {
            auto store = std::make_unique<Store>(f.work, full_sync);
            REQUIRE(contents(*store) == f.before);
            vfs.arm(op, n, persistent);
            try {
                (void)store->append("account-1", f.batch, f.expected);
                acknowledged = true;
            } catch (const orchestrix::Error& e) {
                error = e.what();
            }
            if (through_close) {
                store.reset(); // the close checkpoints the WAL into the database: more writes and syncs
                vfs.disarm();
            } else {
                vfs.disarm();
                const auto seen = contents(*store);
                REQUIRE((seen == f.before || seen == f.after));
                if (error) {
                    // The same connection must be usable again: the retry is idempotent or writes the batch.
                    REQUIRE_NOTHROW((void)store->append("account-1", f.batch, f.expected));
                }
                REQUIRE(contents(*store) == f.after);
                acknowledged = true;
            }
        }
        if (vfs.calls() < n) {
            REQUIRE(acknowledged);
            REQUIRE(!error);
            f.check_file(true, tally.unchanged, tally.complete);
            return tally;
        }
        ++tally.fault_points;
        if (error) {
            ++tally.errors;
            INFO(*error);
            CHECK(error->find("SQLite") != std::string::npos);
        }
        f.check_file(acknowledged, tally.unchanged, tally.complete);
    }
}

void report(const char* what, const Tally& t) {
    std::printf("fault injection: %-46s %3llu fault points survived (%llu append errors; file before: %llu, "
                "after: %llu)\n",
                what, static_cast<unsigned long long>(t.fault_points), static_cast<unsigned long long>(t.errors),
                static_cast<unsigned long long>(t.unchanged), static_cast<unsigned long long>(t.complete));
}

} // namespace

TEST_CASE("sqlite faults: a failing write, sync or truncate never loses or corrupts an append") {
    const Fixture f;
    Tally total;
    for (const IoOperation op : {IoOperation::write, IoOperation::sync, IoOperation::truncate}) {
        for (const bool persistent : {false, true}) {
            for (const bool through_close : {true, false}) {
                const Tally t = run_io_faults(f, op, persistent, through_close);
                const std::string what = std::string(name_of(op)) + (persistent ? " from call N on" : " call N") +
                                         (through_close ? ", append + close" : ", append + retry");
                report(what.c_str(), t);
                total.fault_points += t.fault_points;
                total.errors += t.errors;
                total.unchanged += t.unchanged;
                total.complete += t.complete;
            }
        }
    }
    report("all I/O faults", total);
    FaultyVfs::instance().restore_default();
    CHECK(total.errors > 0); // the faults did reach the append
}

TEST_CASE("sqlite faults: a failing allocation never loses or corrupts an append") {
    const Fixture f;
    Tally tally;
    {
        test_support::FaultyAllocator allocator;
        for (std::uint64_t n = 1;; ++n) {
            INFO("allocation " << n << " fails");
            copy_database(f.baseline, f.work);
            std::optional<std::string> error;
            {
                Store store(f.work, full_sync);
                REQUIRE(contents(store) == f.before);
                allocator.arm(n);
                try {
                    (void)store.append("account-1", f.batch, f.expected);
                } catch (const orchestrix::Error& e) {
                    error = e.what();
                }
                allocator.disarm();
                if (allocator.calls() < n) {
                    REQUIRE(!error);
                    break;
                }
                ++tally.fault_points;
                const auto seen = contents(store);
                REQUIRE((seen == f.before || seen == f.after));
                if (error) {
                    ++tally.errors;
                    INFO(*error);
                    CHECK(error->find("SQLite") != std::string::npos);
                    REQUIRE_NOTHROW((void)store.append("account-1", f.batch, f.expected));
                }
                REQUIRE(contents(store) == f.after);
            }
            f.check_file(true, tally.unchanged, tally.complete);
        }
    }
    report("sqlite3_malloc / sqlite3_realloc call N", tally);
    CHECK(tally.errors > 0);
}

TEST_CASE("sqlite faults: a full disk refuses the append with a typed error and appends resume after") {
    const Fixture f;
    FaultyVfs& vfs = FaultyVfs::instance();
    copy_database(f.baseline, f.work);
    vfs.make_default();
    std::uint64_t refused = 0;
    {
        Store store(f.work, full_sync);
        // Fill the disk: the files may not grow beyond what they are plus a little.
        vfs.limit_file_size(static_cast<std::int64_t>(std::filesystem::file_size(f.work)) + 32 * 1024);
        std::vector<Envelope> batch;
        orchestrix::stream_version_t version = store.stream_version("filler");
        for (;;) {
            batch.clear();
            for (int i = 0; i < 4; ++i) batch.push_back(AccountOpened{"filler", std::string(1500, 'f')});
            const auto before = contents(store);
            try {
                version = store.append("filler", batch, ExpectedVersion::exact(version)).stream_version;
            } catch (const orchestrix::SqliteError& e) {
                INFO(e.what());
                CHECK(e.primary_code() == SQLITE_FULL);
                CHECK(std::string(e.what()).find("full") != std::string::npos);
                CHECK(contents(store) == before);
                ++refused;
                break;
            }
            REQUIRE(version < 1000); // the limit must bite
        }
        // Still full: refused again, nothing written.
        const auto before = contents(store);
        REQUIRE_THROWS_AS(store.append("filler", batch, ExpectedVersion::exact(version)), orchestrix::SqliteError);
        ++refused;
        CHECK(contents(store) == before);
        // Space is freed: the same append goes through on the same store.
        vfs.lift_file_size_limit();
        const auto result = store.append("filler", batch, ExpectedVersion::exact(version));
        CHECK(result.written);
        CHECK(result.stream_version == version + batch.size());
    }
    vfs.restore_default();
    CHECK(integrity_check(f.work) == "ok");
    std::printf("fault injection: full disk: %llu appends refused with SQLITE_FULL, store unchanged, then resumed\n",
                static_cast<unsigned long long>(refused));
}

TEST_CASE("sqlite faults: opening a store while writes, syncs or allocations fail is a typed error, never damage") {
    test_support::TempDir dir{"orchestrix-open-faults"};
    const std::string path = dir.file("new.db");
    FaultyVfs& vfs = FaultyVfs::instance();
    std::uint64_t points = 0;
    std::uint64_t errors = 0;
    // Open (creating the file and its tables), append, reopen: whatever fails, a later open works and the
    // file is intact.
    auto open_and_append = [&] {
        Store store(path, full_sync);
        (void)store.append("account-1", {AccountOpened{"account-1", "owner"}}, ExpectedVersion::any());
    };
    auto check_recovered = [&] {
        if (std::filesystem::exists(path)) REQUIRE(integrity_check(path) == "ok"); // it may not be created yet
        Store store(path, full_sync);
        const auto version = store.stream_version("account-1");
        CHECK(version <= 1);
        (void)store.append("account-1", {MoneyDeposited{"account-1", 1}}, ExpectedVersion::exact(version));
        CHECK(store.stream_version("account-1") == version + 1);
    };
    for (const IoOperation op : {IoOperation::write, IoOperation::sync, IoOperation::truncate}) {
        for (std::uint64_t n = 1;; ++n) {
            INFO(name_of(op) << " fault at call " << n << " while creating a store");
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
            vfs.make_default();
            vfs.arm(op, n, false);
            bool failed = false;
            try {
                open_and_append();
            } catch (const orchestrix::Error& e) {
                failed = true;
                CHECK(std::string(e.what()).find("SQLite") != std::string::npos);
            }
            vfs.disarm();
            vfs.restore_default();
            const bool fired = vfs.calls() >= n;
            if (fired) ++points;
            if (failed) ++errors;
            CHECK((fired || !failed));
            check_recovered();
            if (!fired) break;
        }
    }
    {
        test_support::FaultyAllocator allocator;
        for (std::uint64_t n = 1;; ++n) {
            INFO("allocation " << n << " fails while creating a store");
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
            allocator.arm(n);
            bool failed = false;
            try {
                open_and_append();
            } catch (const orchestrix::Error& e) {
                failed = true;
                INFO(e.what());
                CHECK(std::string(e.what()).find("SQLite") != std::string::npos);
            }
            allocator.disarm();
            const bool fired = allocator.calls() >= n;
            if (fired) ++points;
            if (failed) ++errors;
            check_recovered();
            if (!fired) break;
        }
    }
    std::printf("fault injection: %-46s %3llu fault points survived (%llu errors)\n", "creating a store + first append",
                static_cast<unsigned long long>(points), static_cast<unsigned long long>(errors));
    CHECK(errors > 0);
}

TEST_CASE("sqlite faults: a failing allocation while reading is a store error, never a damaged row or a "
          "refused retry") {
    const Fixture f;
    copy_database(f.baseline, f.work);
    {
        Store store(f.work, full_sync);
        (void)store.append("account-1", f.batch, f.expected);
    }
    std::uint64_t points = 0;
    {
        test_support::FaultyAllocator allocator;
        Store store(f.work, full_sync);
        for (const bool retry : {false, true}) {
            for (std::uint64_t n = 1;; ++n) {
                INFO((retry ? "an idempotent retry" : "read_all") << " with allocation " << n << " failing");
                allocator.arm(n);
                std::optional<std::vector<Row>> seen;
                std::optional<orchestrix::AppendResult> result;
                try {
                    if (retry) {
                        result = store.append("account-1", f.batch, f.expected);
                    } else {
                        seen = contents(store);
                    }
                } catch (const orchestrix::SqliteError& e) {
                    INFO(e.what());
                    CHECK(e.primary_code() == SQLITE_NOMEM);
                } // any other exception (a decode error, an IdempotencyError) fails the test
                allocator.disarm();
                if (allocator.calls() < n) break;
                ++points;
                if (seen) CHECK(*seen == f.after);
                if (result) CHECK_FALSE(result->written);
            }
        }
        CHECK(contents(store) == f.after);
    }
    std::printf("fault injection: %-46s %3llu fault points survived\n", "allocation N while reading or retrying",
                static_cast<unsigned long long>(points));
    CHECK(points > 0);
}
