// Dead letters on SQLite: skipped events kept in orchestrix_dead_letters with the checkpoint move, listed,
// retried through the handler, discarded, retried on request by a tool, and kept across SIGKILL.

#include <orchestrix/projection/projection.hpp>
#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/kill_loop.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using orchestrix::DeadLetter;
using orchestrix::ExpectedVersion;
using orchestrix::FailurePolicy;
using orchestrix::position_t;
using orchestrix::SqliteTransaction;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::SqliteCheckpointStore;
using Runner = orchestrix::Projection<Store, Checkpoints>;
using namespace std::chrono_literals;

const orchestrix::SqliteOptions quick{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)};

// Appends deposits of first+1 .. first+count to streams acc-0..acc-9: the deposit at position p is of p.
void append_deposits(Store& store, std::uint64_t first, std::uint64_t count) {
    std::vector<orchestrix::EventEnvelope<AccountEvent>> batch;
    for (std::uint64_t i = first; i < first + count; ++i) {
        batch.emplace_back(MoneyDeposited{"acc-" + std::to_string(i % 10), static_cast<std::int64_t>(i + 1)});
        if (batch.size() == 100 || i + 1 == first + count) {
            store.append("deposits-" + std::to_string(i / 100), batch, ExpectedVersion::any());
            batch.clear();
        }
    }
}

void create_model(SqliteTransaction& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS projected (position INTEGER NOT NULL, amount INTEGER NOT NULL)");
}

// The read model's handler: writes the event, then fails for the positions in `poison` (so that the failed
// transaction has a write to roll back).
struct Projector {
    std::set<position_t>* poison;
    void operator()(SqliteTransaction& tx, const Recorded& e) const {
        tx.run("INSERT INTO projected (position, amount) VALUES (?1, ?2)", e.position,
               std::get<MoneyDeposited>(e.event).amount);
        if (poison->count(e.position) != 0) throw std::runtime_error("cannot project " + std::to_string(e.position));
    }
};

std::int64_t query(Checkpoints& model, const std::string& sql) {
    return model.read([&](SqliteTransaction& tx) { return tx.query_int64(sql).value_or(-1); });
}

// Runs SQL on a connection of its own, as a tool would.
void run_sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    INFO(sql << ": " << message);
    REQUIRE(rc == SQLITE_OK);
}

std::int64_t micros(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

struct Fixture {
    test_support::TempDir dir;
    std::string events_path = dir.file("events.db");
    std::string model_path = dir.file("model.db");
    Store store{events_path, quick};
    Checkpoints model{model_path, quick};
    std::set<position_t> poison;

    Fixture() { model.transact(create_model); }
    Runner runner(orchestrix::ProjectionOptions options = {.on_failure = FailurePolicy::skip()}) {
        return Runner("balances", store, model, Projector{&poison}, std::move(options));
    }
};

} // namespace

static_assert(orchestrix::dead_letter_store<Checkpoints>);

TEST_CASE("sqlite dead letters: a skipped event is kept with its stored form, error, attempts and time") {
    Fixture f;
    append_deposits(f.store, 0, 8);
    f.poison = {3, 6};
    Runner runner = f.runner();
    const auto before = micros(std::chrono::system_clock::now());
    runner.run_until_caught_up();
    const auto after = micros(std::chrono::system_clock::now());
    CHECK(f.model.load("balances") == 8);
    CHECK(query(f.model, "SELECT count(*) FROM projected") == 6);
    CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position IN (3, 6)") == 0);
    CHECK(runner.skipped().size() == 2);

    // The row, as a tool reads it.
    const auto raw = f.store.read_raw(3);
    REQUIRE(raw.has_value());
    const auto text = [&](const std::string& column) {
        return f.model.read([&](SqliteTransaction& tx) {
            return tx.query_text("SELECT " + column +
                                 " FROM orchestrix_dead_letters WHERE projection = 'balances' AND position = 3");
        });
    };
    CHECK(text("stream_id") == raw->stream_id);
    CHECK(text("version") == std::to_string(raw->version));
    CHECK(text("event_id") == raw->event_id);
    CHECK(text("type") == "account.deposited");
    CHECK(text("schema_version") == std::to_string(raw->schema_version));
    CHECK(text("payload") == raw->payload);
    CHECK(text("metadata") == raw->metadata);
    CHECK(text("error") == "cannot project 3");
    CHECK(text("attempts") == "1");
    CHECK(text("retry_requested") == "0");
    const auto failed_at = std::stoll(text("failed_at").value_or("0"));
    CHECK(failed_at >= before);
    CHECK(failed_at <= after);

    const auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 2);
    CHECK(letters[0].position == 3);
    CHECK(letters[1].position == 6);
    CHECK(letters[0].stream_id == raw->stream_id);
    CHECK(letters[0].version == raw->version);
    CHECK(letters[0].event_id == raw->event_id);
    CHECK(letters[0].schema_version == raw->schema_version);
    CHECK(letters[0].payload == raw->payload);
    CHECK(letters[0].metadata == raw->metadata);
    CHECK(letters[0].error == "cannot project 3");
    CHECK(letters[0].attempts == 1);
    CHECK(micros(letters[0].failed_at) == failed_at);
    CHECK_FALSE(letters[0].retry_requested);

    SECTION("they are in the file: another store on it lists the same") {
        Checkpoints reopened(f.model_path, quick);
        CHECK(reopened.dead_letters("balances") == letters);
        CHECK(reopened.dead_letters("other").empty());
    }
}

TEST_CASE("sqlite dead letters: when the dead letter cannot be written, the checkpoint does not move either") {
    Fixture f;
    append_deposits(f.store, 0, 5);
    f.poison = {3};
    run_sql(f.model_path, "CREATE TRIGGER refuse BEFORE INSERT ON orchestrix_dead_letters "
                          "BEGIN SELECT RAISE(ABORT, 'no dead letters today'); END");
    Runner runner = f.runner();
    REQUIRE_THROWS_AS(runner.run_until_caught_up(), orchestrix::ProjectionStoppedError);
    CHECK(f.model.load("balances") == 2);
    CHECK(runner.dead_letters().empty());
    CHECK(runner.skipped().empty());

    run_sql(f.model_path, "DROP TRIGGER refuse");
    runner.resume();
    runner.run_until_caught_up();
    CHECK(f.model.load("balances") == 5);
    REQUIRE(runner.dead_letters().size() == 1);
    CHECK(runner.dead_letters()[0].position == 3);
    CHECK(query(f.model, "SELECT count(*) FROM projected") == 4);
}

TEST_CASE("sqlite dead letters: retry through the handler, once fixed, and discard") {
    Fixture f;
    append_deposits(f.store, 0, 6);
    f.poison = {2, 4, 5};
    Runner runner = f.runner();
    runner.run_until_caught_up();
    REQUIRE(runner.dead_letters().size() == 3);
    const auto first_failure = runner.dead_letters()[0].failed_at;

    // Still failing: every one stays, with one more attempt, the new error and time; nothing is projected.
    auto result = runner.retry_dead_letters();
    CHECK(result.succeeded == 0);
    CHECK(result.failed == 3);
    auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 3);
    for (const auto& letter : letters) CHECK(letter.attempts == 2);
    CHECK(letters[0].failed_at > first_failure);
    CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position IN (2, 4, 5)") == 0);

    // 2 is fixed: retried, removed, projected exactly once.
    f.poison = {4, 5};
    result = runner.retry_dead_letters();
    CHECK(result.succeeded == 1);
    CHECK(result.failed == 2);
    letters = runner.dead_letters();
    REQUIRE(letters.size() == 2);
    CHECK(letters[0].position == 4);
    CHECK(letters[0].attempts == 3);
    CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position = 2") == 1);
    CHECK(runner.retry_dead_letters().succeeded == 0);
    CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position = 2") == 1);

    // Discarded: gone without being handled.
    CHECK(runner.discard_dead_letter(4));
    CHECK_FALSE(runner.discard_dead_letter(4));
    CHECK(runner.dead_letters().size() == 1);
    CHECK(runner.discard_dead_letters() == 1);
    CHECK(runner.dead_letters().empty());
    CHECK(query(f.model, "SELECT count(*) FROM orchestrix_dead_letters") == 0);
    CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position IN (4, 5)") == 0);
    CHECK(f.model.load("balances") == 6); // retries and discards leave the checkpoint alone
}

TEST_CASE("sqlite dead letters: retry_requested set with SQL, as a tool does, is retried at the next poll") {
    Fixture f;
    append_deposits(f.store, 0, 4);
    f.poison = {2, 3};
    Runner runner = f.runner({.on_failure = FailurePolicy::skip(), .poll_interval = 2ms});
    runner.run_until_caught_up();
    REQUIRE(runner.dead_letters().size() == 2);

    f.poison = {3};
    run_sql(f.model_path, "UPDATE orchestrix_dead_letters SET retry_requested = 1 WHERE projection = 'balances'");
    CHECK(f.model.dead_letter_retries_requested("balances") == std::vector<position_t>{2, 3});
    CHECK(runner.poll_once() == 0);
    auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 1); // 2 handled and removed; 3 failed again and stays
    CHECK(letters[0].position == 3);
    CHECK(letters[0].attempts == 2);
    CHECK_FALSE(letters[0].retry_requested); // the request was answered
    CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position = 2") == 1);
    CHECK(runner.poll_once() == 0); // no request, no retry
    CHECK(runner.dead_letters()[0].attempts == 2);

    SECTION("while the projection runs on its thread") {
        f.poison.clear(); // (the thread reads it only after the request below)
        runner.start();
        REQUIRE(runner.wait_for(4, 10s));
        REQUIRE(f.model.request_dead_letter_retry("balances", 3));
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!runner.dead_letters().empty() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(2ms);
        runner.stop();
        CHECK(runner.dead_letters().empty());
        CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position = 3") == 1);
        CHECK(query(f.model, "SELECT count(*) FROM projected") == 4);
    }
}

TEST_CASE("sqlite dead letters: an event the store cannot decode is kept as stored, and retried once repaired") {
    Fixture f;
    append_deposits(f.store, 0, 4);
    const auto original = f.store.read_raw(3);
    REQUIRE(original.has_value());
    run_sql(f.events_path, "UPDATE events SET payload = '{\"account_id\": 7' WHERE position = 3");
    Runner runner = f.runner();
    runner.run_until_caught_up();
    CHECK(f.model.load("balances") == 4);
    auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].position == 3);
    CHECK(letters[0].stream_id == original->stream_id);
    CHECK(letters[0].version == original->version);
    CHECK(letters[0].event_id == original->event_id);
    CHECK(letters[0].type == "account.deposited");
    CHECK(letters[0].schema_version == original->schema_version);
    CHECK(letters[0].payload == "{\"account_id\": 7");
    CHECK(letters[0].metadata == original->metadata);
    CHECK_FALSE(letters[0].error.empty());
    CHECK(letters[0].attempts == 1);

    // Still damaged: it stays, with the decoding error again.
    CHECK(runner.retry_dead_letters().failed == 1);
    letters = runner.dead_letters();
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].attempts == 2);
    CHECK_FALSE(letters[0].error.empty());

    // Repaired in the store: the retry reads it back and projects it.
    run_sql(f.events_path, "UPDATE events SET payload = '" + original->payload + "' WHERE position = 3");
    CHECK(runner.retry_dead_letters().succeeded == 1);
    CHECK(runner.dead_letters().empty());
    CHECK(query(f.model, "SELECT count(*) FROM projected WHERE position = 3") == 1);
    CHECK(query(f.model, "SELECT count(*) FROM projected") == 4);
}

TEST_CASE("sqlite dead letters: a row a tool left out of range is refused with a typed error") {
    Fixture f;
    append_deposits(f.store, 0, 2);
    f.poison = {2};
    Runner runner = f.runner();
    runner.run_until_caught_up();
    run_sql(f.model_path, "UPDATE orchestrix_dead_letters SET attempts = -1");
    CHECK_THROWS_AS(runner.dead_letters(), orchestrix::StoreError);
    run_sql(f.model_path, "UPDATE orchestrix_dead_letters SET attempts = 1, position = 0");
    CHECK_THROWS_AS(runner.dead_letters(), orchestrix::StoreError);
}

TEST_CASE("sqlite dead letters: every failing event is a dead letter exactly once while the projector is killed "
          "with SIGKILL") {
    const std::uint64_t rounds = test_support::env_count("ORCHESTRIX_KILL_ROUNDS", 10, 1);
    const std::uint64_t total = test_support::env_count("ORCHESTRIX_KILL_EVENTS", 2000, 1);
    constexpr std::uint64_t every = 23; // the deposit at position p fails when p is a multiple of this
    test_support::TempDir dir;
    const std::string events_path = dir.file("events.db");
    const std::string model_path = dir.file("model.db");
    {
        Checkpoints model(model_path, quick);
        model.transact(create_model);
    }
    const auto handler = [](SqliteTransaction& tx, const Recorded& e) {
        tx.run("INSERT INTO projected (position, amount) VALUES (?1, ?2)", e.position,
               std::get<MoneyDeposited>(e.event).amount);
        if (e.position % every == 0) throw std::runtime_error("poison");
    };
    const orchestrix::ProjectionOptions options{.on_failure = FailurePolicy::skip()};
    const std::uint64_t seed = test_support::env_count("ORCHESTRIX_KILL_SEED", std::random_device{}());
    INFO("seed " << seed << " (replay: ORCHESTRIX_KILL_SEED=" << seed << ")");
    std::mt19937_64 random(seed);
    test_support::KillLoopResult result = test_support::kill_loop(
        rounds, total, random,
        [&](std::uint64_t first, std::uint64_t count) {
            Store store(events_path, quick);
            append_deposits(store, first, count);
        },
        [&](std::uint64_t batch, const test_support::KillReporter& report) {
            Store store(events_path, quick);
            Checkpoints model(model_path, quick);
            orchestrix::ProjectionOptions child = options;
            child.batch_size = batch;
            Runner runner("dead-letters", store, model, handler, child);
            report.started();
            while (runner.poll_once() != 0) report.committed(runner.checkpoint());
            report.finished();
        },
        [&] {
            Checkpoints model(model_path, quick);
            return model.load("dead-letters");
        });
    {
        Store store(events_path, quick);
        if (result.appended < total) append_deposits(store, result.appended, total - result.appended);
        Checkpoints model(model_path, quick);
        Runner runner("dead-letters", store, model, handler, options);
        runner.run_until_caught_up();
        result.observed.push_back(model.load("dead-letters"));
    }
    std::printf("dead letters kill -9: seed %llu, %llu rounds: %llu SIGKILLs mid-projection, %llu while opening, %llu "
                "children finished first; %llu events\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(rounds),
                static_cast<unsigned long long>(result.killed_projecting),
                static_cast<unsigned long long>(result.killed_opening),
                static_cast<unsigned long long>(result.not_killed), static_cast<unsigned long long>(total));
    CHECK(result.killed_projecting > 0);
    for (std::size_t i = 1; i < result.observed.size(); ++i) {
        INFO("checkpoint " << i << ": " << result.observed[i - 1] << " then " << result.observed[i]);
        CHECK(result.observed[i] >= result.observed[i - 1]);
    }
    CHECK(result.observed.back() == total);

    Checkpoints model(model_path, quick);
    const auto failing = static_cast<std::int64_t>(total / every);
    const auto fine = static_cast<std::int64_t>(total) - failing;
    const std::string e = std::to_string(every);
    // Every other event projected exactly once, none of the failing ones.
    CHECK(query(model, "SELECT count(*) FROM projected") == fine);
    CHECK(query(model, "SELECT count(DISTINCT position) FROM projected") == fine);
    CHECK(query(model, "SELECT count(*) FROM projected WHERE position % " + e + " = 0") == 0);
    // Every failing event a dead letter exactly once (the key makes two impossible), with its stored form.
    const auto letters = model.dead_letters("dead-letters");
    CHECK(static_cast<std::int64_t>(letters.size()) == failing);
    std::uint64_t expected = every;
    for (const DeadLetter& letter : letters) {
        CHECK(letter.position == expected);
        CHECK(letter.attempts == 1);
        CHECK(letter.error == "poison");
        CHECK(letter.payload.has_value());
        expected += every;
    }
    CHECK(query(model, "SELECT count(*) FROM orchestrix_dead_letters WHERE projection = 'dead-letters' AND "
                       "position % " +
                           e + " <> 0") == 0);
}
