// The orchestrix inspector program on PostgreSQL stores written by the real store, on the test cluster.

#include "cli/run.hpp"
#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <orchestrix/postgres/event_store.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace {

using cli_test::run;
using nlohmann::json;
using test_support::RawConnection;
using Store = orchestrix::PostgresEventStore<test_domain::AccountEvent>;

} // namespace

TEST_CASE("inspector on PostgreSQL: verify is clean on a store, and names each damage done with raw SQL") {
    const auto url = test_support::fresh_postgres_database();
    {
        Store store(url);
        cli_test::fill(store);
    }
    const auto clean = run({"verify", url, "--json"});
    INFO(clean.out << clean.err);
    REQUIRE(clean.status == 0);
    CHECK(clean.json().at("events") == 5);
    CHECK(clean.json().at("ok") == true);

    RawConnection raw(url);
    raw.script("UPDATE events SET version = 5 WHERE position = 4");
    // The json column keeps its text as written: a duplicate key passes PostgreSQL, not orchestrix's reader.
    raw.script(R"(UPDATE events SET payload = '{"amount": 1, "amount": 2}' WHERE position = 3)");
    raw.script(R"(UPDATE events SET metadata = '{"event_id": "00000000-0000-4000-8000-000000000001"}' )"
               "WHERE position = 5");
    const auto damaged = run({"verify", url});
    INFO(damaged.out << damaged.err);
    CHECK(damaged.status == 1);
    CHECK(damaged.out.find("position 3, stream 'acc-2', version 1: invalid_payload: payload: ") != std::string::npos);
    CHECK(damaged.out.find("position 4, stream 'acc-1', version 5: version_gap: version 5 follows version 2") !=
          std::string::npos);
    CHECK(damaged.out.find("position 5, stream 'acc-2', version 2: event_id_mismatch: ") != std::string::npos);
    CHECK(damaged.out.find("3 findings") != std::string::npos);
}

TEST_CASE("inspector on PostgreSQL: streams, show, tail and projections") {
    const auto url = test_support::fresh_postgres_database();
    {
        Store store(url);
        cli_test::fill(store);
    }
    const auto streams = run({"streams", url, "--limit", "1", "--json"});
    REQUIRE(streams.status == 0);
    CHECK(streams.json().at("streams").at(0).at("stream_id") == "acc-1");
    CHECK(streams.json().at("streams").at(0).at("version") == 3);
    CHECK(streams.json().at("next_after") == "acc-1");

    const auto show = run({"show", url, "acc-2", "--json"});
    REQUIRE(show.status == 0);
    CHECK(show.json().at("events").size() == 2);
    CHECK(show.json()["events"][1]["payload"] == json{{"account_id", "acc-2"}, {"amount", 5}});

    const auto tail = run({"tail", url, "-n", "1"});
    REQUIRE(tail.status == 0);
    CHECK(tail.out.find("#5 acc-2 v2 account.deposited") != std::string::npos);

    RawConnection raw(url);
    raw.script("CREATE TABLE orchestrix_checkpoints (name text PRIMARY KEY, position bigint NOT NULL);"
               "INSERT INTO orchestrix_checkpoints VALUES ('balances', 2)");
    const auto projections = run({"projections", url, "--json"});
    REQUIRE(projections.status == 0);
    CHECK(projections.json().at("projections").at(0) ==
          json{{"name", "balances"}, {"checkpoint", 2}, {"head", 5}, {"lag", 3}, {"dead_letters", 0}});
}

TEST_CASE("inspector on PostgreSQL: dead-letters list, retry and discard") {
    const auto url = test_support::fresh_postgres_database();
    {
        Store store(url);
        cli_test::fill(store);
    }
    RawConnection raw(url);
    raw.script("CREATE TABLE orchestrix_dead_letters (projection text NOT NULL, position bigint NOT NULL, "
               "stream_id text NOT NULL, version bigint NOT NULL, event_id text NOT NULL, type text NOT NULL, "
               "schema_version integer, payload text, metadata text, error text NOT NULL, attempts integer NOT NULL, "
               "failed_at timestamptz NOT NULL, retry_requested boolean NOT NULL DEFAULT false, "
               "PRIMARY KEY (projection, position));"
               "INSERT INTO orchestrix_dead_letters VALUES "
               "('balances', 2, 'acc-1', 2, '', '', NULL, NULL, NULL, 'boom', 3, '2026-01-01T00:00:00Z', false), "
               "('balances', 4, 'acc-1', 3, '', '', NULL, NULL, NULL, 'bad', 1, '2026-01-01T00:00:00Z', false)");
    const auto list = run({"dead-letters", "list", url, "--json"});
    REQUIRE(list.status == 0);
    const json j = list.json();
    REQUIRE(j.at("dead_letters").size() == 2);
    CHECK(j["dead_letters"][0]["failed_at"] == "2026-01-01T00:00:00.000000Z");
    CHECK(j["dead_letters"][0]["error"] == "boom");

    const auto retry = run({"dead-letters", "retry", url, "--projection", "balances", "4", "--json"});
    REQUIRE(retry.status == 0);
    CHECK(retry.json().at("retry_requested") == json::array({4}));
    CHECK(raw.exec("SELECT retry_requested::text FROM orchestrix_dead_letters WHERE position = 4") == "true");
    CHECK(raw.exec("SELECT retry_requested::text FROM orchestrix_dead_letters WHERE position = 2") == "false");

    const auto discard = run({"dead-letters", "discard", url, "--projection", "balances", "2", "7"});
    CHECK(discard.status == 1); // 7 is not there
    CHECK(discard.err.find("no dead letter at position 7") != std::string::npos);
    CHECK(raw.exec("SELECT count(*) FROM orchestrix_dead_letters") == "1");

    const auto projections = run({"projections", url, "--json"});
    CHECK(projections.json().at("projections").at(0).at("dead_letters") == 1);
}

TEST_CASE("inspector on PostgreSQL: no store is a foreign schema, a lock past the timeout locked, a closed port "
          "unreachable") {
    const auto url = test_support::fresh_postgres_database();
    const auto foreign = run({"verify", url});
    CHECK(foreign.status == 5);
    CHECK(foreign.err.find("no events table") != std::string::npos);

    const auto closed =
        run({"verify", "postgresql://orchestrix@127.0.0.1:" + std::to_string(test_support::free_port()) + "/postgres"});
    CHECK(closed.status == 8);
    CHECK(closed.err.find("cannot connect") != std::string::npos);
}

TEST_CASE("inspector on PostgreSQL: export, then import into an empty database, gives the same events") {
    const auto url = test_support::fresh_postgres_database();
    {
        Store store(url);
        cli_test::fill(store);
    }
    const auto exported = run({"export", url});
    REQUIRE(exported.status == 0);
    const auto copy = test_support::fresh_postgres_database();
    const auto imported = run({"import", copy}, exported.out);
    INFO(imported.out << imported.err);
    REQUIRE(imported.status == 0);
    CHECK(imported.out == "imported 5 events (0 already present)\n");
    Store original(url);
    Store restored(copy);
    const auto x = original.read_all();
    const auto y = restored.read_all();
    REQUIRE(y.size() == 5);
    for (std::size_t i = 0; i < x.size(); ++i) {
        CHECK(y[i].event == x[i].event);
        CHECK(y[i].metadata.event_id == x[i].metadata.event_id);
        CHECK(y[i].stream_id == x[i].stream_id);
        CHECK(y[i].version == x[i].version);
        CHECK(y[i].position == x[i].position);
    }
    CHECK(run({"verify", copy}).status == 0);

    const auto bad = run({"import", "postgresql://localhost/db?no_such_option=1"}, exported.out);
    CHECK(bad.status == 7);
}

TEST_CASE("inspector on PostgreSQL: verify is clean on a store with deletions, truncations and removals at the "
          "head, and names rows lost past the store") {
    using orchestrix::ExpectedVersion;
    const auto url = test_support::fresh_postgres_database();
    {
        Store store(url);
        cli_test::fill(store); // acc-1: positions 1, 2, 4; acc-2: 3, 5
        store.append("acc-3", {test_domain::MoneyDeposited{"acc-3", 1}, test_domain::MoneyDeposited{"acc-3", 2}},
                     ExpectedVersion::no_stream());                                                     // 6, 7
        store.append("acc-4", {test_domain::MoneyDeposited{"acc-4", 1}}, ExpectedVersion::no_stream()); // 8
        CHECK(store.truncate_stream("acc-1", 3).events_removed == 2);                                   // 1, 2
        CHECK(store.delete_stream("acc-3").events_removed == 2);                                        // 6, 7
        CHECK(
            store
                .delete_stream("acc-4", ExpectedVersion::any(), orchestrix::DeleteOptions{orchestrix::DeleteMode::hard})
                .events_removed == 1); // 8, the head
        CHECK(store.removed_count() == 5);
    }
    const auto clean = run({"verify", url, "--json"});
    INFO(clean.out << clean.err);
    REQUIRE(clean.status == 0);
    CHECK(clean.json().at("events") == 3);
    CHECK(clean.json().at("ok") == true);

    // A row deleted past the store is not a removal: the missing positions no longer add up.
    RawConnection raw(url);
    raw.script("DELETE FROM events WHERE position = 3");
    const auto lost = run({"verify", url});
    INFO(lost.out << lost.err);
    CHECK(lost.status == 1);
    CHECK(lost.out.find("position_gap") != std::string::npos);

    // After a truncation a stream's events start where it left them (clean, though they do not start at 1);
    // its first event deleted past the store is a version gap.
    const auto url2 = test_support::fresh_postgres_database();
    {
        Store store(url2);
        cli_test::fill(store);
        CHECK(store.truncate_stream("acc-1", 2).events_removed == 1);
    }
    REQUIRE(run({"verify", url2}).status == 0);
    RawConnection raw2(url2);
    raw2.script("DELETE FROM events WHERE position = 2");
    const auto gap = run({"verify", url2});
    INFO(gap.out << gap.err);
    CHECK(gap.status == 1);
    CHECK(gap.out.find("version_gap") != std::string::npos);
}
