// Projections and subscriptions over JetStreamEventStore: woken by its listener (an ordered, headers-only
// consumer), with the checkpoint in the read model's database (SQLite here): every event projected exactly
// once, across restarts of the projection, while several store objects (processes) append.

#include <orchestrix/jetstream.hpp>
#include <orchestrix/projection.hpp>
#include <orchestrix/sqlite.hpp>

#include "support/catch.hpp"
#include "support/nats_server.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::JetStreamEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using orchestrix::ExpectedVersion;
using namespace std::chrono_literals;

orchestrix::JetStreamOptions fresh_options() {
    orchestrix::JetStreamOptions options;
    options.url = test_support::nats_test_url();
    options.stream = test_support::fresh_jetstream_stream_name();
    options.subject_prefix = options.stream;
    return options;
}

TEST_CASE("jetstream: the listener reports the last position of what was stored since it was made", "[jetstream]") {
    Store store(fresh_options());
    (void)store.append("a", {MoneyDeposited{"a", 1}}, ExpectedVersion::any());
    auto listener = store.listen();
    CHECK_FALSE(listener.wait_for_notification(50ms).has_value()); // the earlier append is not news
    Store other(store.options());
    (void)other.append("b", {MoneyDeposited{"b", 1}, MoneyDeposited{"b", 2}}, ExpectedVersion::any());
    const auto woken = listener.wait_for_notification(5s);
    REQUIRE(woken.has_value());
    CHECK(*woken == 3);
}

TEST_CASE("jetstream: a live projection with its checkpoint in SQLite projects every event exactly once",
          "[jetstream]") {
    test_support::TempDir dir;
    const std::string read_model_path = (dir.path() / "read-model.db").string();
    const orchestrix::JetStreamOptions options = fresh_options();
    Store reader(options);

    orchestrix::SqliteCheckpointStore read_model(read_model_path);
    read_model.transact([](orchestrix::SqliteTransaction& tx) {
        tx.exec("CREATE TABLE seen (event_id TEXT PRIMARY KEY, position INTEGER NOT NULL)");
    });
    const auto handler = [](orchestrix::SqliteTransaction& tx, const Recorded& e) {
        // A second delivery of an event would break the primary key and fail the projection.
        tx.run("INSERT INTO seen (event_id, position) VALUES (?1, ?2)", e.metadata.event_id.to_string(),
               static_cast<std::int64_t>(e.position));
    };
    constexpr int writers = 3;
    constexpr int per_writer = 40;
    {
        orchestrix::Projection projection("seen", reader, read_model, handler, {.poll_interval = 2s});
        projection.start();
        std::vector<std::thread> threads;
        for (int w = 0; w < writers; ++w) {
            threads.emplace_back([&, w] {
                Store writer(options);
                for (int i = 0; i < per_writer / 2; ++i) {
                    (void)writer.append("w" + std::to_string(w), {MoneyDeposited{"w", i}}, ExpectedVersion::any());
                }
            });
        }
        for (auto& t : threads) t.join();
        // Woken by the listener, not by the 2 s poll interval.
        const auto started = std::chrono::steady_clock::now();
        REQUIRE(projection.wait_for(reader.head_position(), 10s));
        CHECK(std::chrono::steady_clock::now() - started < 1500ms);
        projection.stop();
    }
    // The projection restarts from its checkpoint: more appends, only they are projected.
    Store writer(options);
    for (int i = 0; i < writers * per_writer / 2; ++i) {
        (void)writer.append("late", {MoneyDeposited{"late", i}}, ExpectedVersion::any());
    }
    orchestrix::Projection again("seen", reader, read_model, handler);
    (void)again.run_until_caught_up();
    const auto count =
        read_model.read([](orchestrix::SqliteTransaction& tx) { return tx.query_int64("SELECT count(*) FROM seen"); });
    const auto highest = read_model.read(
        [](orchestrix::SqliteTransaction& tx) { return tx.query_int64("SELECT max(position) FROM seen"); });
    CHECK(count == writers * per_writer);
    CHECK(highest == writers * per_writer);
    CHECK(again.checkpoint() == static_cast<orchestrix::position_t>(writers * per_writer));
}

} // namespace
