#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

using test_support::RawConnection;

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using orchestrix::ExpectedVersion;

struct PostgresStoreFactory {
    using store_type = Store;
    static constexpr int concurrency_threads = 8;
    static constexpr int concurrency_rounds = 60;
    std::unique_ptr<store_type> make() {
        return std::make_unique<store_type>(test_support::fresh_postgres_database(),
                                            orchestrix::PostgresOptions{8, true});
    }
};

// A raw libpq connection, for what the store does not offer: holding a transaction open, damaging a row.
// A PostgreSQL array literal of text elements (test values only).
std::string array_literal(const std::vector<std::string>& elements) {
    std::string out = "{";
    for (const auto& e : elements) {
        if (out.size() > 1) out += ',';
        out += '"';
        for (char ch : e) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    }
    return out + "}";
}

} // namespace

#define ORCHESTRIX_CONTRACT_STORES std::tuple<PostgresStoreFactory>
#include "support/event_store_contract.hpp"

static_assert(orchestrix::event_store<Store>);
static_assert(orchestrix::visitable_event_store<Store>);
static_assert(contract::has_head_position<Store> && contract::has_visit_all<Store>); // checked by the contract

TEST_CASE("postgres store: events survive reconnecting, and a second store sees the first one's events") {
    const auto url = test_support::fresh_postgres_database();
    std::vector<orchestrix::RecordedEvent<AccountEvent>> before;
    {
        Store store(url);
        REQUIRE(store
                    .append("acc-1", {AccountOpened{"acc-1", "Ada"}, MoneyDeposited{"acc-1", 50}},
                            ExpectedVersion::no_stream())
                    .written);
        before = store.read_all();
    }
    Store again(url);
    CHECK(again.read_all() == before);
    CHECK(again.head_position() == 2);
    CHECK(again.append("acc-1", {MoneyDeposited{"acc-1", 1}}, ExpectedVersion::exact(2)).first_position == 3);
}

TEST_CASE("postgres store: four processes appending to one stream with retry lose nothing") {
    const auto url = test_support::fresh_postgres_database();
    { Store create(url); } // the schema exists before the children start
    constexpr int processes = 4;
    constexpr int per_process = 25;
    std::vector<pid_t> children;
    for (int p = 0; p < processes; ++p) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            int code = 0;
            try {
                Store store(url, {1, false});
                for (int i = 0; i < per_process; ++i) {
                    for (;;) {
                        const auto version = store.stream_version("shared");
                        try {
                            (void)store.append("shared", {MoneyDeposited{"shared", p * 1000 + i}},
                                               ExpectedVersion::exact(version));
                            break;
                        } catch (const orchestrix::ConcurrencyError&) {
                        }
                    }
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "writer process %d failed: %s\n", p, e.what());
                code = 1;
            }
            ::_exit(code);
        }
        children.push_back(child);
    }
    for (const pid_t child : children) {
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    Store store(url);
    const auto events = store.read_stream("shared");
    REQUIRE(events.size() == processes * per_process);
    std::set<std::int64_t> amounts;
    for (std::size_t i = 0; i < events.size(); ++i) {
        CHECK(events[i].version == i + 1);
        CHECK(events[i].position == i + 1);
        amounts.insert(std::get<MoneyDeposited>(events[i].event).amount);
    }
    CHECK(amounts.size() == processes * per_process); // each append exactly once
}

// The commit-order gap: with sequence-assigned positions, an append that took position N but commits after
// another that took N + 1 is skipped by a reader whose checkpoint already passed N + 1. The append function's
// table lock makes the second writer wait until the first commits, so positions follow commit order.
TEST_CASE("postgres store: a reader polling after its checkpoint never skips an append that commits late") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    REQUIRE(store.append("before", {MoneyDeposited{"before", 1}}, ExpectedVersion::no_stream()).written);
    orchestrix::position_t checkpoint = store.head_position();

    // A slow writer: its append runs in a transaction that stays open.
    RawConnection slow(url);
    const orchestrix::EventEnvelope<AccountEvent> late(MoneyDeposited{"late", 7});
    const auto row = store.codec().serialize(late.event, late.metadata);
    slow.exec("BEGIN");
    CHECK(slow.exec("SELECT status FROM orchestrix_append($1, 0, 0, $2::uuid[], $3::text[], $4::int[], $5::text[], "
                    "$6::text[])",
                    {"late", array_literal({late.metadata.event_id.to_string()}), array_literal({row.type}),
                     "{" + std::to_string(row.schema_version) + "}", array_literal({row.payload}),
                     array_literal({row.metadata})}) == "0");

    // A fast writer starts after it and must wait for the slow one's commit.
    std::atomic<bool> fast_done{false};
    orchestrix::AppendResult fast_result{};
    std::thread fast([&] {
        fast_result = store.append("fast", {MoneyDeposited{"fast", 8}}, ExpectedVersion::no_stream());
        fast_done = true;
    });
    RawConnection observer(url);
    bool waiting = false;
    for (int i = 0; i < 1000 && !waiting; ++i) {
        waiting =
            observer.exec("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass") == "1";
        if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(waiting);
    CHECK_FALSE(fast_done.load());

    // Readers are not blocked, and see neither uncommitted append.
    std::vector<orchestrix::position_t> seen;
    auto poll = [&] {
        for (const auto& e : store.read_all(checkpoint + 1)) {
            seen.push_back(e.position);
            checkpoint = e.position;
        }
    };
    poll();
    CHECK(seen.empty());

    slow.exec("COMMIT");
    fast.join();
    poll();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == 2);
    CHECK(seen[1] == 3);
    CHECK(fast_result.first_position == 3);
    const auto all = store.read_all();
    REQUIRE(all.size() == 3);
    CHECK(all[1].stream_id == "late");
    CHECK(all[2].stream_id == "fast");
}

TEST_CASE("postgres store: readers polling during concurrent appends see every event once, in order") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url, {8, true});
    // ORCHESTRIX_PG_ORDER_WRITERS=10 ORCHESTRIX_PG_ORDER_APPENDS=100 for the full size.
    const std::uint64_t writers = test_support::env_count("ORCHESTRIX_PG_ORDER_WRITERS", 4, 1, 64);
    const std::uint64_t appends = test_support::env_count("ORCHESTRIX_PG_ORDER_APPENDS", 25, 1, 100'000);
    constexpr std::uint64_t batch = 10;
    const std::uint64_t total = writers * appends * batch;
    std::atomic<bool> done{false};
    std::vector<std::vector<orchestrix::position_t>> read_positions(2);
    std::vector<std::thread> readers;
    for (std::size_t r = 0; r < read_positions.size(); ++r) {
        readers.emplace_back([&, r] {
            orchestrix::position_t checkpoint = 0;
            for (;;) {
                const bool last_round = done.load();
                const auto page = store.read_all(checkpoint + 1, 500);
                for (const auto& e : page) {
                    read_positions[r].push_back(e.position);
                    checkpoint = e.position;
                }
                if (page.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                if (last_round && read_positions[r].size() >= total) break;
                if (last_round && store.head_position() == checkpoint) break;
            }
        });
    }
    std::vector<std::thread> threads;
    for (std::uint64_t w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            const std::string stream = "writer-" + std::to_string(w);
            for (std::uint64_t a = 0; a < appends; ++a) {
                std::vector<orchestrix::EventEnvelope<AccountEvent>> events;
                for (std::uint64_t i = 0; i < batch; ++i) {
                    events.emplace_back(MoneyDeposited{stream, static_cast<std::int64_t>(a * batch + i)});
                }
                (void)store.append(stream, events, ExpectedVersion::any());
            }
        });
    }
    for (auto& t : threads) t.join();
    done = true;
    for (auto& t : readers) t.join();
    for (const auto& positions : read_positions) {
        REQUIRE(positions.size() == total);
        for (std::size_t i = 0; i < positions.size(); ++i) CHECK(positions[i] == i + 1);
    }
}

TEST_CASE("postgres store: LISTEN/NOTIFY wakes a waiting reader when an append commits") {
    const auto url = test_support::fresh_postgres_database(true); // no other test's appends in it
    Store store(url);
    auto listener = store.listen();
    CHECK_FALSE(listener.wait_for_notification(std::chrono::milliseconds(50)).has_value()); // nothing yet
    std::optional<orchestrix::position_t> woken;
    std::thread waiter([&] { woken = listener.wait_for_notification(std::chrono::seconds(30)); });
    const auto result =
        store.append("acc", {AccountOpened{"acc", "Ada"}, MoneyDeposited{"acc", 3}}, ExpectedVersion::no_stream());
    waiter.join();
    REQUIRE(woken.has_value());
    CHECK(*woken == result.last_position);
}

TEST_CASE("postgres store: a damaged row is reported as a decode error naming its position") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    REQUIRE(store.append("acc", {AccountOpened{"acc", "Ada"}, MoneyDeposited{"acc", 5}}, ExpectedVersion::no_stream())
                .written);
    RawConnection raw(url);
    raw.exec("UPDATE events SET payload = '{\"account_id\":\"acc\",\"amount\":\"five\"}' WHERE position = 2");
    try {
        (void)store.read_all();
        FAIL("reading a damaged row should throw");
    } catch (const orchestrix::StoredEventDecodeError& e) {
        CHECK(e.position() == 2);
        CHECK(e.kind() == orchestrix::DecodeError::Kind::wrong_type);
        CHECK(std::string(e.what()).find("position 2") != std::string::npos);
    }
    CHECK(store.read_all(1, 1).size() == 1);
}

// The contract's order (docs/event-stores.md): a retry of a stored batch is decided before the version limit.
TEST_CASE("postgres store: contract order at the version limit: a retry is decided before the overflow") {
    const auto url = test_support::fresh_postgres_database();
    Store store(url);
    const std::vector<orchestrix::EventEnvelope<AccountEvent>> batch{MoneyDeposited{"acc", 1}};
    REQUIRE(store.append("acc", batch, ExpectedVersion::no_stream()).written);
    RawConnection raw(url);
    raw.exec("UPDATE events SET version = 9223372036854775807");
    CHECK_THROWS_AS(store.append("acc", {MoneyDeposited{"acc", 2}}, ExpectedVersion::any()),
                    orchestrix::InvalidArgumentError);
    CHECK(store.append("acc", batch, ExpectedVersion::any()) ==
          orchestrix::AppendResult{orchestrix::max_version, 1, 1, false});
    CHECK(store.head_position() == 1);
}

TEST_CASE("postgres store: an unreachable server is a store error") {
    try {
        Store store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2");
        FAIL("connecting should fail");
    } catch (const orchestrix::PostgresError& e) {
        CHECK(std::string(e.what()).find("connect") != std::string::npos);
    }
}

TEST_CASE("postgres store: hostile stream ids are stored and read back byte for byte") {
    Store store(test_support::fresh_postgres_database());
    const std::vector<std::string> ids{"x'; DROP TABLE events;--",
                                       "%",
                                       "_",
                                       "\\",
                                       "\xF0\x9F\x92\xB8 money \xF0\x9F\x8F\xA6",
                                       "a\"b",
                                       "$1",
                                       "NULL",
                                       "{\"a\",\"b\"}"};
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
}

static_assert(orchestrix::snapshot_store<orchestrix::PostgresSnapshotStore>);

TEST_CASE("postgres snapshot store: keeps the latest snapshot per aggregate") {
    const auto url = test_support::fresh_postgres_database();
    const auto taken = std::chrono::system_clock::time_point(std::chrono::microseconds(1'700'000'000'123'456));
    const orchestrix::Snapshot v5{"acc-1", "account", 5, 1, R"({"balance":5})", taken};
    {
        orchestrix::PostgresSnapshotStore snapshots(url);
        CHECK_FALSE(snapshots.latest("acc-1").has_value());
        snapshots.save(v5);
        snapshots.save({"acc-1", "account", 3, 1, R"({"balance":3})", taken}); // older: ignored
        CHECK(snapshots.latest("acc-1") == v5);
        CHECK_THROWS_AS(snapshots.save({"acc-1", "account", 0, 1, "{}", taken}), orchestrix::InvalidArgumentError);
        CHECK_THROWS_AS(snapshots.save({"acc-1", "account", 6, 1, std::string("a\0b", 3), taken}),
                        orchestrix::InvalidArgumentError);
    }
    orchestrix::PostgresSnapshotStore again(url);
    CHECK(again.latest("acc-1") == v5);
    const orchestrix::Snapshot v2{"acc-1", "account", 2, 2, R"({"cents":2})", taken};
    again.save(v2); // a new schema version replaces it even at a lower version
    CHECK(again.latest("acc-1") == v2);
}
