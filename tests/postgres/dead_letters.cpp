// Dead letters on PostgreSQL: skipped events kept in orchestrix_dead_letters with the checkpoint move, listed,
// retried through the handler, discarded, and retried on request by a tool.

#include <orchestrix/postgres/checkpoint_store.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/projection/projection.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using test_support::RawConnection;

using orchestrix::DeadLetter;
using orchestrix::ExpectedVersion;
using orchestrix::FailurePolicy;
using orchestrix::position_t;
using orchestrix::PostgresTransaction;
using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::PostgresCheckpointStore;
using Runner = orchestrix::Projection<Store, Checkpoints>;
using namespace std::chrono_literals;

// Deposits 1..count to acc-1 (the deposit at position p is of p).
void append_deposits(Store& store, int count) {
    for (int i = 1; i <= count; ++i) store.append("acc-1", {MoneyDeposited{"acc-1", i}}, ExpectedVersion::any());
}

// The read model's handler: writes the event, then fails for the positions in `poison`.
struct Projector {
    std::set<position_t>* poison;
    void operator()(PostgresTransaction& tx, const Recorded& e) const {
        (void)tx.exec("INSERT INTO projected (position, amount) VALUES ($1, $2)", e.position,
                      std::get<MoneyDeposited>(e.event).amount);
        if (poison->count(e.position) != 0) throw std::runtime_error("cannot project " + std::to_string(e.position));
    }
};

std::int64_t micros(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

struct Fixture {
    std::string url = test_support::fresh_postgres_database(true); // its own NOTIFY channel
    Store store{url};
    Checkpoints model{url};
    RawConnection raw{url}; // what a tool does, with SQL
    std::set<position_t> poison;

    Fixture() { raw.exec("CREATE TABLE projected (position bigint NOT NULL, amount bigint NOT NULL)"); }
    Runner runner(orchestrix::ProjectionOptions options = {.on_failure = FailurePolicy::skip()}) {
        return Runner("balances", store, model, Projector{&poison}, std::move(options));
    }
    std::string sql(const std::string& statement) { return raw.exec(statement); }
};

} // namespace

static_assert(orchestrix::dead_letter_store<Checkpoints>);

TEST_CASE("postgres dead letters: a skipped event is kept with its stored form, error, attempts and time") {
    Fixture f;
    append_deposits(f.store, 6);
    f.poison = {2, 5};
    Runner runner = f.runner();
    const auto before = micros(std::chrono::system_clock::now());
    runner.run_until_caught_up();
    const auto after = micros(std::chrono::system_clock::now());
    CHECK(f.model.load("balances") == 6);
    CHECK(f.sql("SELECT count(*) FROM projected") == "4");
    CHECK(f.sql("SELECT count(*) FROM projected WHERE position IN (2, 5)") == "0");

    const auto raw = f.store.read_raw(2);
    REQUIRE(raw.has_value());
    const auto column = [&](const std::string& c) {
        return f.sql("SELECT " + c + " FROM orchestrix_dead_letters WHERE projection = 'balances' AND position = 2");
    };
    CHECK(column("stream_id") == "acc-1");
    CHECK(column("version") == "2");
    CHECK(column("event_id") == raw->event_id);
    CHECK(column("type") == "account.deposited");
    CHECK(column("schema_version") == std::to_string(raw->schema_version));
    CHECK(column("payload") == raw->payload);
    CHECK(column("metadata") == raw->metadata);
    CHECK(column("error") == "cannot project 2");
    CHECK(column("attempts") == "1");
    CHECK(column("retry_requested") == "f");
    const auto failed_at = std::stoll(column("(extract(epoch FROM failed_at) * 1000000)::bigint"));
    CHECK(failed_at >= before);
    CHECK(failed_at <= after);

    const auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 2);
    CHECK(letters[0].position == 2);
    CHECK(letters[1].position == 5);
    CHECK(letters[0].event_id == raw->event_id);
    CHECK(letters[0].schema_version == raw->schema_version);
    CHECK(letters[0].payload == raw->payload);
    CHECK(letters[0].metadata == raw->metadata);
    CHECK(letters[0].error == "cannot project 2");
    CHECK(letters[0].attempts == 1);
    CHECK(micros(letters[0].failed_at) == failed_at);
    CHECK_FALSE(letters[0].retry_requested);
    Checkpoints other(f.url);
    CHECK(other.dead_letters("balances") == letters);
    CHECK(other.dead_letters("someone-else").empty());
}

TEST_CASE("postgres dead letters: when the dead letter cannot be written, the checkpoint does not move either") {
    Fixture f;
    append_deposits(f.store, 4);
    f.poison = {3};
    f.raw.script("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$ BEGIN RAISE EXCEPTION 'no dead letters today'; END $$; "
                 "CREATE TRIGGER refuse BEFORE INSERT ON orchestrix_dead_letters "
                 "FOR EACH ROW EXECUTE FUNCTION refuse()");
    Runner runner = f.runner();
    REQUIRE_THROWS_AS(runner.run_until_caught_up(), orchestrix::ProjectionStoppedError);
    CHECK(f.model.load("balances") == 2);
    CHECK(runner.dead_letters().empty());

    f.raw.script("DROP TRIGGER refuse ON orchestrix_dead_letters");
    runner.resume();
    runner.run_until_caught_up();
    CHECK(f.model.load("balances") == 4);
    REQUIRE(runner.dead_letters().size() == 1);
    CHECK(f.sql("SELECT count(*) FROM projected") == "3");
}

TEST_CASE("postgres dead letters: retry through the handler, once fixed, and discard") {
    Fixture f;
    append_deposits(f.store, 5);
    f.poison = {1, 3, 4};
    Runner runner = f.runner();
    runner.run_until_caught_up();
    REQUIRE(runner.dead_letters().size() == 3);
    const auto first_failure = runner.dead_letters()[0].failed_at;

    auto result = runner.retry_dead_letters();
    CHECK(result.succeeded == 0);
    CHECK(result.failed == 3);
    auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 3);
    for (const auto& letter : letters) CHECK(letter.attempts == 2);
    CHECK(letters[0].failed_at > first_failure);
    CHECK(f.sql("SELECT count(*) FROM projected WHERE position IN (1, 3, 4)") == "0");

    f.poison = {3, 4};
    result = runner.retry_dead_letters();
    CHECK(result.succeeded == 1);
    CHECK(result.failed == 2);
    letters = runner.dead_letters();
    REQUIRE(letters.size() == 2);
    CHECK(letters[0].position == 3);
    CHECK(letters[0].attempts == 3);
    CHECK(letters[0].error == "cannot project 3");
    CHECK(f.sql("SELECT count(*) FROM projected WHERE position = 1") == "1");
    CHECK(runner.retry_dead_letters().succeeded == 0);
    CHECK(f.sql("SELECT count(*) FROM projected WHERE position = 1") == "1");

    CHECK(runner.discard_dead_letter(3));
    CHECK_FALSE(runner.discard_dead_letter(3));
    CHECK(runner.discard_dead_letters() == 1);
    CHECK(runner.dead_letters().empty());
    CHECK(f.sql("SELECT count(*) FROM orchestrix_dead_letters") == "0");
    CHECK(f.sql("SELECT count(*) FROM projected WHERE position IN (3, 4)") == "0");
    CHECK(f.model.load("balances") == 5);
}

TEST_CASE("postgres dead letters: retry_requested set with SQL, as a tool does, is retried at the next poll") {
    Fixture f;
    append_deposits(f.store, 4);
    f.poison = {2, 3};
    Runner runner = f.runner({.on_failure = FailurePolicy::skip(), .poll_interval = 5ms});
    runner.run_until_caught_up();
    REQUIRE(runner.dead_letters().size() == 2);

    f.poison = {3};
    f.sql("UPDATE orchestrix_dead_letters SET retry_requested = true WHERE projection = 'balances'");
    CHECK(f.model.dead_letter_retries_requested("balances") == std::vector<position_t>{2, 3});
    CHECK(runner.poll_once() == 0);
    auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].position == 3);
    CHECK(letters[0].attempts == 2);
    CHECK_FALSE(letters[0].retry_requested);
    CHECK(f.sql("SELECT count(*) FROM projected WHERE position = 2") == "1");
    CHECK(runner.poll_once() == 0);
    CHECK(runner.dead_letters()[0].attempts == 2);

    SECTION("while the projection runs on its thread") {
        f.poison.clear(); // (the thread reads it only after the request below)
        runner.start();
        REQUIRE(runner.wait_for(4, 10s));
        f.sql("UPDATE orchestrix_dead_letters SET retry_requested = true WHERE position = 3");
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!runner.dead_letters().empty() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(5ms);
        runner.stop();
        CHECK(runner.dead_letters().empty());
        CHECK(f.sql("SELECT count(*) FROM projected WHERE position = 3") == "1");
        CHECK(f.sql("SELECT count(*) FROM projected") == "4");
    }
}

TEST_CASE("postgres dead letters: an event the store cannot decode is kept as stored, and retried once repaired") {
    Fixture f;
    append_deposits(f.store, 4);
    const auto original = f.store.read_raw(3);
    REQUIRE(original.has_value());
    f.sql("UPDATE events SET payload = '\"not a deposit\"'::json WHERE position = 3");
    Runner runner = f.runner();
    runner.run_until_caught_up();
    CHECK(f.model.load("balances") == 4);
    auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].position == 3);
    CHECK(letters[0].stream_id == "acc-1");
    CHECK(letters[0].version == 3);
    CHECK(letters[0].event_id == original->event_id);
    CHECK(letters[0].type == "account.deposited");
    CHECK(letters[0].schema_version == original->schema_version);
    CHECK(letters[0].payload == "\"not a deposit\"");
    CHECK(letters[0].metadata == original->metadata);
    CHECK_FALSE(letters[0].error.empty());
    CHECK(letters[0].attempts == 1);

    CHECK(runner.retry_dead_letters().failed == 1);
    REQUIRE(runner.dead_letters().size() == 1);
    CHECK(runner.dead_letters()[0].attempts == 2);

    f.raw.exec("UPDATE events SET payload = $1::json WHERE position = 3", {original->payload});
    CHECK(runner.retry_dead_letters().succeeded == 1);
    CHECK(runner.dead_letters().empty());
    CHECK(f.sql("SELECT count(*) FROM projected WHERE position = 3") == "1");
    CHECK(f.sql("SELECT count(*) FROM projected") == "4");
}

TEST_CASE("postgres dead letters: a row a tool left out of range is refused with a typed error") {
    Fixture f;
    append_deposits(f.store, 2);
    f.poison = {2};
    Runner runner = f.runner();
    runner.run_until_caught_up();
    f.sql("UPDATE orchestrix_dead_letters SET attempts = -1");
    CHECK_THROWS_AS(runner.dead_letters(), orchestrix::StoreError);
    f.sql("UPDATE orchestrix_dead_letters SET attempts = 1, version = -2");
    CHECK_THROWS_AS(runner.dead_letters(), orchestrix::StoreError);
}
