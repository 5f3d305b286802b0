// The orchestrix inspector program on SQLite stores written by the real store.

#include "cli/run.hpp"
#include "support/catch.hpp"
#include "support/temp_dir.hpp"

#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>
#include <orchestrix/sqlite/inspector.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace {

using cli_test::run;
using cli_test::sqlite_exec;
using cli_test::Store;
using nlohmann::json;
using namespace std::chrono_literals;

// Whether `text` has a line holding every one of `parts`.
bool has_line(const std::string& text, std::initializer_list<std::string> parts) {
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string line = text.substr(start, end - start);
        bool all = true;
        for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
        if (all) return true;
        start = end + 1;
    }
    return false;
}

} // namespace

TEST_CASE("inspector verify: a store written by the store verifies clean with exit 0") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
        orchestrix::SqliteSnapshotStore snapshots(path);
        snapshots.save({"acc-1", "account", 3, 1, R"({"balance":70})", std::chrono::system_clock::now()});
    }
    const auto text = run({"verify", path});
    INFO(text.out << text.err);
    CHECK(text.status == 0);
    CHECK(text.out.find("verified 5 events in 2 streams and 1 snapshot: no findings") != std::string::npos);

    const auto doc = run({"verify", path, "--json"});
    REQUIRE(doc.status == 0);
    const json j = doc.json();
    CHECK(j.at("ok") == true);
    CHECK(j.at("events") == 5);
    CHECK(j.at("streams") == 2);
    CHECK(j.at("snapshots") == 1);
    CHECK(j.at("head") == 5);
    CHECK(j.at("findings").empty());
}

TEST_CASE("inspector verify: a version gap, a payload that is not JSON and an event id mismatch are each named") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
    }
    // acc-1's version 3 (position 4) becomes 5; position 3's payload is not JSON; position 5's metadata names
    // another event id.
    sqlite_exec(path, "UPDATE events SET version = 5 WHERE position = 4");
    sqlite_exec(path, "UPDATE events SET payload = 'not json' WHERE position = 3");
    sqlite_exec(path, "UPDATE events SET metadata = json_set(metadata, '$.event_id', "
                      "'00000000-0000-4000-8000-000000000001') WHERE position = 5");

    const auto text = run({"verify", path});
    INFO(text.out << text.err);
    CHECK(text.status == 1);
    CHECK(has_line(text.out, {"position 4", "stream 'acc-1'", "version 5", "version_gap", "follows version 2"}));
    CHECK(has_line(text.out, {"position 3", "stream 'acc-2'", "invalid_payload"}));
    CHECK(has_line(text.out,
                   {"position 5", "stream 'acc-2'", "event_id_mismatch", "00000000-0000-4000-8000-000000000001"}));
    CHECK(text.out.find("3 findings") != std::string::npos);

    const auto doc = run({"--json", "verify", path});
    CHECK(doc.status == 1);
    const json j = doc.json();
    CHECK(j.at("ok") == false);
    REQUIRE(j.at("findings").size() == 3);
    CHECK(j["findings"][0]["kind"] == "invalid_payload");
    CHECK(j["findings"][0]["position"] == 3);
    CHECK(j["findings"][1]["kind"] == "version_gap");
    CHECK(j["findings"][1]["stream_id"] == "acc-1");
    CHECK(j["findings"][2]["kind"] == "event_id_mismatch");
    CHECK(j["findings"][2]["position"] == 5);
}

TEST_CASE("inspector verify: a deleted row is a position gap, and snapshots ahead or empty are flagged") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
        orchestrix::SqliteSnapshotStore snapshots(path);
        snapshots.save({"acc-2", "account", 9, 1, R"({"balance":5})", std::chrono::system_clock::now()});
        snapshots.save({"acc-1", "account", 1, 1, R"({"balance":)", std::chrono::system_clock::now()});
    }
    sqlite_exec(path, "DELETE FROM events WHERE position = 2");
    const auto r = run({"verify", path, "--json"});
    CHECK(r.status == 1);
    const json j = r.json();
    REQUIRE(j.at("findings").size() == 4);
    CHECK(j["findings"][0]["kind"] == "position_gap");
    CHECK(j["findings"][0]["position"] == 3);
    CHECK(j["findings"][0]["message"] == "position 2 is missing");
    CHECK(j["findings"][1]["kind"] == "version_gap"); // acc-1: version 3 follows version 1
    CHECK(j["findings"][1]["position"] == 4);
    CHECK(j["findings"][2]["kind"] == "invalid_snapshot");
    CHECK(j["findings"][2]["stream_id"] == "acc-1");
    CHECK(j["findings"][3]["kind"] == "snapshot_ahead");
    CHECK(j["findings"][3]["stream_id"] == "acc-2");
}

TEST_CASE("inspector verify: removals by the store are no findings, a row lost besides them still is") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store); // acc-1 at positions 1, 2, 4; acc-2 at 3, 5
        store.truncate_stream("acc-1", 3);
        store.delete_stream("acc-2", orchestrix::ExpectedVersion::any(), {});
        store.append("acc-3", {test_domain::AccountOpened{"acc-3", "Cy"}, test_domain::MoneyDeposited{"acc-3", 1}},
                     orchestrix::ExpectedVersion::no_stream()); // 6, 7: the head, removed below
        store.delete_stream("acc-3", orchestrix::ExpectedVersion::any(), {orchestrix::DeleteMode::hard});
        orchestrix::SqliteSnapshotStore snapshots(path); // of a deleted stream, at a version it had
        snapshots.save({"acc-2", "account", 2, 1, R"({"balance":5})", std::chrono::system_clock::now()});
    }
    const auto clean = run({"verify", path});
    INFO(clean.out << clean.err);
    CHECK(clean.status == 0);
    CHECK(clean.out == "verified 1 event in 1 stream and 1 snapshot: no findings\n");
    const auto doc = run({"verify", path, "--json"});
    CHECK(doc.status == 0);
    CHECK(doc.json().at("head") == 7);
    {
        orchestrix::SqliteInspector inspector(path);
        CHECK(inspector.removed_count() == 6);
        CHECK(inspector.head() == 7);
        const auto report = orchestrix::inspection::verify(inspector);
        CHECK(report.ok());
        CHECK(report.head == 7);
    }

    {
        Store store(path);
        store.append("acc-4",
                     {test_domain::AccountOpened{"acc-4", "Di"}, test_domain::MoneyDeposited{"acc-4", 1},
                      test_domain::MoneyDeposited{"acc-4", 2}},
                     orchestrix::ExpectedVersion::no_stream()); // 8, 9, 10
    }
    CHECK(run({"verify", path}).status == 0);
    sqlite_exec(path, "DELETE FROM events WHERE position = 9"); // lost, not removed
    const auto lost = run({"verify", path});
    INFO(lost.out << lost.err);
    CHECK(lost.status == 1);
    CHECK(has_line(lost.out, {"position 10", "stream 'acc-4'", "version_gap", "version 3 follows version 1"}));
    CHECK(has_line(lost.out, {"position 10, stream 'acc-4'", "position_gap", "position 9 is missing"}));
    CHECK(has_line(lost.out, {"position 10: position_gap: 7 positions are missing, but the store records 6 events "
                              "removed"}));
    CHECK(lost.out.find("5 findings") != std::string::npos); // the gaps at 4, 8 and 10 stay: the count tells
    {
        orchestrix::SqliteInspector inspector(path);
        const auto report = orchestrix::inspection::verify(inspector);
        REQUIRE(report.findings.size() == 5);
        CHECK(report.findings[2].message == "position 9 is missing");
        CHECK(report.findings[3].kind == orchestrix::inspection::FindingKind::version_gap);
        CHECK(report.findings[4].message ==
              "7 positions are missing, but the store records 6 events removed: rows were lost or added");
    }

    // A truncated stream's events start at the first version its record keeps, not at 1, and not before.
    const auto other = dir.file("other.db");
    {
        Store store(other);
        cli_test::fill(store);
        store.truncate_stream("acc-1", 2); // position 1 removed: acc-1 starts at version 2 (position 2)
    }
    CHECK(run({"verify", other}).status == 0);
    sqlite_exec(other, "UPDATE orchestrix_streams SET first_version = 1 WHERE stream_id = 'acc-1'");
    const auto early = run({"verify", other});
    CHECK(early.status == 1);
    CHECK(has_line(early.out, {"position 2, stream 'acc-1'", "version_gap", "first event has version 2, not 1"}));
}

TEST_CASE("inspector streams: pages with --limit and --after, with versions and event counts") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
        store.append("acc-3", {test_domain::AccountOpened{"acc-3", "Cy"}}, orchestrix::ExpectedVersion::no_stream());
    }
    const auto first = run({"streams", path, "--limit", "2", "--json"});
    REQUIRE(first.status == 0);
    const json a = first.json();
    REQUIRE(a.at("streams").size() == 2);
    CHECK(a["streams"][0] ==
          json{{"stream_id", "acc-1"}, {"version", 3}, {"events", 3}, {"first_position", 1}, {"last_position", 4}});
    CHECK(a["streams"][1]["stream_id"] == "acc-2");
    CHECK(a.at("next_after") == "acc-2");

    const auto second = run({"streams", path, "--limit", "2", "--after", "acc-2", "--json"});
    const json b = second.json();
    REQUIRE(b.at("streams").size() == 1);
    CHECK(b["streams"][0]["stream_id"] == "acc-3");
    CHECK(b.at("next_after").is_null());

    const auto text = run({"streams", path});
    CHECK(text.status == 0);
    CHECK(has_line(text.out, {"acc-1", "3", "1..4"}));
    CHECK(has_line(text.out, {"acc-3", "1", "6..6"}));
}

TEST_CASE("inspector show: a stream's events as JSON, within --from and --to") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path);
    cli_test::fill(store);
    const auto events = store.read_stream("acc-1");

    const auto r = run({"show", path, "acc-1", "--from", "2", "--to", "3", "--json"});
    REQUIRE(r.status == 0);
    const json j = r.json();
    CHECK(j.at("stream_id") == "acc-1");
    REQUIRE(j.at("events").size() == 2);
    const json& e = j["events"][0];
    CHECK(e.at("position") == 2);
    CHECK(e.at("version") == 2);
    CHECK(e.at("type") == "account.deposited");
    CHECK(e.at("schema_version") == 1);
    CHECK(e.at("id") == events[1].metadata.event_id.to_string());
    CHECK(e.at("metadata").at("event_id") == events[1].metadata.event_id.to_string());
    CHECK(e.at("payload") == json{{"account_id", "acc-1"}, {"amount", 100}});
    CHECK(e.at("recorded_at").get<std::string>().size() == 27); // 2026-01-01T00:00:00.000000Z
    CHECK(j["events"][1].at("type") == "account.withdrawn");

    const auto text = run({"show", path, "acc-2"});
    CHECK(text.status == 0);
    CHECK(text.out.find("\"owner\": \"Bob\"") != std::string::npos); // pretty-printed

    const auto none = run({"show", path, "acc-9"});
    CHECK(none.status == 1);
    CHECK(none.err.find("stream 'acc-9' has no events") != std::string::npos);
}

TEST_CASE("inspector tail: the last events, and --follow prints appends until SIGINT") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path);
    cli_test::fill(store);

    const auto last = run({"tail", path, "-n", "2", "--json"});
    REQUIRE(last.status == 0);
    const json j = last.json();
    REQUIRE(j.at("events").size() == 2);
    CHECK(j["events"][0]["position"] == 4);
    CHECK(j["events"][1]["position"] == 5);

    cli_test::Background follow({"tail", path, "-n", "1", "--follow", "--interval", "50"}, dir);
    REQUIRE(follow.wait_for("#5 acc-2 v2 account.deposited", 10s));
    store.append("acc-3", {test_domain::AccountOpened{"acc-3", "Cy"}}, orchestrix::ExpectedVersion::no_stream());
    CHECK(follow.wait_for("#6 acc-3 v1 account.opened", 10s));
    CHECK(follow.interrupt() == 0);
    CHECK(follow.out().find("#4 ") == std::string::npos);
}

TEST_CASE("inspector projections: checkpoints, head, lag and dead letters, also from a --checkpoints file") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
    }
    sqlite_exec(path, "CREATE TABLE orchestrix_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL);"
                      "INSERT INTO orchestrix_checkpoints VALUES ('balances', 3), ('audit', 5);");
    sqlite_exec(path, cli_test::sqlite_dead_letters_sql);
    sqlite_exec(path, "INSERT INTO orchestrix_dead_letters (projection, position, stream_id, version, event_id, type, "
                      "error, attempts, failed_at) VALUES ('balances', 2, 'acc-1', 2, '', '', 'boom', 3, 0), "
                      "('ledger', 4, 'acc-1', 3, '', '', 'bad', 1, 0)");
    const auto r = run({"projections", path, "--json"});
    REQUIRE(r.status == 0);
    const json j = r.json();
    CHECK(j.at("head") == 5);
    REQUIRE(j.at("projections").size() == 3);
    CHECK(j["projections"][0] ==
          json{{"name", "audit"}, {"checkpoint", 5}, {"head", 5}, {"lag", 0}, {"dead_letters", 0}});
    CHECK(j["projections"][1] ==
          json{{"name", "balances"}, {"checkpoint", 3}, {"head", 5}, {"lag", 2}, {"dead_letters", 1}});
    CHECK(j["projections"][2]["name"] == "ledger");
    CHECK(j["projections"][2]["checkpoint"].is_null());
    CHECK(j["projections"][2]["dead_letters"] == 1);

    const auto text = run({"projections", path});
    CHECK(has_line(text.out, {"balances", "3", "5", "2", "1"}));

    // Checkpoints kept in the read model's own file, written by the checkpoint store.
    const auto model = dir.file("model.db");
    {
        orchestrix::SqliteCheckpointStore checkpoints(model);
        checkpoints.save("report", 4);
    }
    const auto other = run({"projections", path, "--checkpoints", model, "--json"});
    REQUIRE(other.status == 0);
    const json k = other.json();
    REQUIRE(k.at("projections").size() == 1);
    CHECK(k["projections"][0]["name"] == "report");
    CHECK(k["projections"][0]["lag"] == 1);

    const auto missing = run({"projections", path, "--checkpoints", dir.file("nope.db")});
    CHECK(missing.status == 3);
    CHECK_FALSE(std::filesystem::exists(dir.file("nope.db")));
}

TEST_CASE("inspector dead-letters: list, retry and discard rows of the dead-letter table") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
    }
    // No table yet: nothing to list, no projection, and no table created by looking.
    const auto empty = run({"dead-letters", "list", path, "--json"});
    REQUIRE(empty.status == 0);
    CHECK(empty.json().at("dead_letters").empty());
    const auto none = run({"projections", path});
    CHECK(none.status == 0);
    CHECK(none.out == "no projection has a checkpoint or dead letters (head 5)\n");
    CHECK_THROWS(sqlite_exec(path, "SELECT * FROM orchestrix_dead_letters"));
    CHECK_THROWS(sqlite_exec(path, "SELECT * FROM orchestrix_checkpoints"));

    sqlite_exec(path, cli_test::sqlite_dead_letters_sql);
    sqlite_exec(path, "INSERT INTO orchestrix_dead_letters VALUES "
                      "('balances', 2, 'acc-1', 2, 'e2', 'account.deposited', 1, '{\"amount\":100}', '{}', 'boom', 3, "
                      "1767225600000000, 0), "
                      "('balances', 4, 'acc-1', 3, '', '', NULL, NULL, NULL, 'undecodable', 1, 1767225600000000, 0), "
                      "('audit', 5, 'acc-2', 2, 'e5', 'account.deposited', 1, '{}', '{}', 'nope', 2, 0, 0)");

    const auto all = run({"dead-letters", "list", path, "--json"});
    REQUIRE(all.status == 0);
    const json a = all.json();
    REQUIRE(a.at("dead_letters").size() == 3);
    const json& first = a["dead_letters"][0];
    CHECK(first.at("projection") == "audit");
    const json& second = a["dead_letters"][1];
    CHECK(second.at("projection") == "balances");
    CHECK(second.at("position") == 2);
    CHECK(second.at("error") == "boom");
    CHECK(second.at("attempts") == 3);
    CHECK(second.at("failed_at") == "2026-01-01T00:00:00.000000Z");
    CHECK(second.at("payload") == "{\"amount\":100}");
    CHECK(second.at("retry_requested") == false);
    CHECK(a["dead_letters"][2].at("schema_version").is_null());

    const auto only = run({"dead-letters", "list", path, "--projection", "balances", "4", "--json"});
    REQUIRE(only.json().at("dead_letters").size() == 1);

    const auto retry = run({"dead-letters", "retry", path, "--projection", "balances", "2", "--json"});
    REQUIRE(retry.status == 0);
    CHECK(retry.json().at("retry_requested") == json::array({2}));
    const auto after_retry = run({"dead-letters", "list", path, "--projection", "balances", "--json"});
    const json b = after_retry.json();
    CHECK(b["dead_letters"][0]["retry_requested"] == true);
    CHECK(b["dead_letters"][1]["retry_requested"] == false);

    const auto unknown = run({"dead-letters", "retry", path, "--projection", "balances", "9"});
    CHECK(unknown.status == 1);
    CHECK(unknown.err.find("no dead letter at position 9") != std::string::npos);

    const auto discard = run({"dead-letters", "discard", path, "--projection", "balances"});
    REQUIRE(discard.status == 0);
    CHECK(discard.out.find("balances: discarded 2 dead letters (positions 2, 4)") != std::string::npos);
    const auto rest = run({"dead-letters", "list", path, "--json"});
    REQUIRE(rest.json().at("dead_letters").size() == 1);
    CHECK(rest.json()["dead_letters"][0]["projection"] == "audit");

    const auto no_projection = run({"dead-letters", "retry", path});
    CHECK(no_projection.status == 2);
}

TEST_CASE("inspector errors: a missing file, a non-database, a foreign schema and a bad URL each have their status") {
    const test_support::TempDir dir;

    const auto missing_path = dir.file("missing.db");
    const auto missing = run({"verify", missing_path});
    CHECK(missing.status == 3);
    CHECK(missing.err.find("does not exist") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(missing_path)); // never created

    const auto text_path = dir.file("notes.txt");
    {
        std::ofstream f(text_path);
        f << "these are notes, not a database, and long enough to fill SQLite's header of one hundred bytes......\n";
    }
    const auto not_db = run({"streams", text_path});
    CHECK(not_db.status == 4);
    CHECK(not_db.err.find("is not an SQLite database") != std::string::npos);

    const auto foreign_path = dir.file("foreign.db");
    sqlite_exec(foreign_path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
    const auto foreign = run({"--json", "verify", foreign_path});
    CHECK(foreign.status == 5);
    CHECK(foreign.err.find("has no events table") != std::string::npos);
    CHECK(foreign.json().at("error").at("kind") == "foreign_schema");

    const auto layout_path = dir.file("layout.db");
    { Store store(layout_path); }
    sqlite_exec(layout_path, "PRAGMA user_version = 1"); // orchestrix 0.1's layout is read too
    CHECK(run({"verify", layout_path}).status == 0);
    sqlite_exec(layout_path, "PRAGMA user_version = 7");
    const auto layout = run({"verify", layout_path});
    CHECK(layout.status == 5);
    CHECK(layout.err.find("PRAGMA user_version 7") != std::string::npos);

    const auto url = run({"verify", "postgresql://localhost/db?no_such_option=1"});
    CHECK(url.status == 7);
    CHECK(url.err.find("not a valid PostgreSQL address") != std::string::npos);

    CHECK(run({"verify", "postgres://localhost/db?no_such_option=1"}).status == 7);

    const auto option = run({"streams", "host=localhost dbname=bank sslmode=sometimes"}); // refused before connecting
    CHECK(option.status == 7);
    CHECK(option.err.find("invalid sslmode value") != std::string::npos);

    const auto usage = run({"verify"});
    CHECK(usage.status == 2);
}

TEST_CASE("inspector errors: a database locked by another connection is reported after --busy-timeout") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
    }
    // An exclusive lock held by a connection of this process: no other connection may read the file.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; "
                         "UPDATE events SET type = type WHERE position = 1;",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    const auto r = run({"--busy-timeout", "100", "verify", path});
    CHECK(r.status == 6);
    CHECK(r.err.find("is locked") != std::string::npos);
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    CHECK(run({"verify", path}).status == 0);
}

TEST_CASE("inspector export and import: CloudEvents JSON Lines into a new file give the same events") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
    }
    const auto file = dir.file("events.jsonl");
    const auto exported = run({"export", path, file});
    INFO(exported.out << exported.err);
    REQUIRE(exported.status == 0);
    CHECK(exported.out == "exported 5 events to " + file + "\n");
    const std::string lines = cli_test::slurp(file);
    CHECK(std::count(lines.begin(), lines.end(), '\n') == 5);
    CHECK(json::parse(lines.substr(0, lines.find('\n'))).at("specversion") == "1.0");

    // The same lines on stdout.
    const auto to_stdout = run({"export", path});
    REQUIRE(to_stdout.status == 0);
    CHECK(to_stdout.out == lines);

    const auto copy = dir.file("copy.db");
    const auto imported = run({"--json", "import", copy, file});
    INFO(imported.out << imported.err);
    REQUIRE(imported.status == 0);
    CHECK(imported.json() == json{{"imported", 5}, {"already_present", 0}});

    // The copy holds the same events: streams, versions, positions, types, ids, metadata and payloads.
    const auto strip_time = [](json events) {
        for (auto& e : events) e.erase("recorded_at");
        return events;
    };
    for (const std::string stream : {"acc-1", "acc-2"}) {
        const auto a = run({"show", path, stream, "--json"});
        const auto b = run({"show", copy, stream, "--json"});
        REQUIRE(b.status == 0);
        CHECK(strip_time(a.json().at("events")) == strip_time(b.json().at("events")));
    }
    {
        Store original(path);
        Store restored(copy);
        CHECK(original.read_all().size() == 5);
        const auto x = original.read_all();
        const auto y = restored.read_all();
        REQUIRE(y.size() == x.size());
        for (std::size_t i = 0; i < x.size(); ++i) {
            CHECK(y[i].event == x[i].event);
            CHECK(y[i].metadata.event_id == x[i].metadata.event_id);
            CHECK(y[i].stream_id == x[i].stream_id);
            CHECK(y[i].version == x[i].version);
        }
    }
    CHECK(run({"verify", copy}).status == 0);

    // Again from stdin: every event is there already.
    const auto again = run({"import", copy}, lines);
    REQUIRE(again.status == 0);
    CHECK(again.out == "imported 0 events (5 already present)\n");

    // A line that is no CloudEvent stops the import, naming the line.
    const auto bad = run({"import", dir.file("bad.db")}, lines.substr(0, lines.find('\n') + 1) + "{\"id\": 1}\n");
    CHECK(bad.status == 10);
    CHECK(bad.err.find("line 2") != std::string::npos);

    // Into a file that is not a store: refused before anything is written.
    const auto foreign = dir.file("foreign.db");
    sqlite_exec(foreign, "CREATE TABLE customers (id INTEGER PRIMARY KEY)");
    CHECK(run({"import", foreign, file}).status == 5);
}

TEST_CASE("inspector output: --progress reports on stderr, tail --follow --json prints JSON Lines") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path);
    cli_test::fill(store);

    const auto quiet = run({"verify", path});
    CHECK(quiet.err.empty()); // stderr is no terminal here: no progress unless asked
    const auto progress = run({"--progress", "verify", path});
    CHECK(progress.status == 0);
    CHECK(progress.err == "verify: 5/5 events\n");
    CHECK(progress.out == quiet.out);
    // On a terminal, progress is on by default, rewritten in place.
    const std::string terminal = cli_test::run_on_terminal({"verify", path});
    CHECK(terminal.find("\rverify: 5/5 events") != std::string::npos);
    CHECK(terminal.find("no findings") != std::string::npos);

    cli_test::Background follow({"--json", "tail", path, "-n", "1", "--follow", "--interval", "50"}, dir);
    REQUIRE(follow.wait_for("\n", 10s));
    store.append("acc-3", {test_domain::AccountOpened{"acc-3", "Cy"}}, orchestrix::ExpectedVersion::no_stream());
    REQUIRE(follow.wait_for("acc-3", 10s));
    CHECK(follow.interrupt() == 0);
    const std::string out = follow.out();
    const std::string first = out.substr(0, out.find('\n'));
    CHECK(json::parse(first).at("position") == 5);
    const std::string second = out.substr(out.find('\n') + 1);
    CHECK(json::parse(second.substr(0, second.find('\n'))).at("stream_id") == "acc-3");
}

TEST_CASE("inspector export: a row that cannot be a CloudEvent stops it with the store-error status") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        Store store(path);
        cli_test::fill(store);
    }
    sqlite_exec(path, "UPDATE events SET payload = 'not json' WHERE position = 2");
    const auto r = run({"export", path, dir.file("out.jsonl")});
    CHECK(r.status == 9);
    CHECK(r.err.find("account.deposited") != std::string::npos);
}
