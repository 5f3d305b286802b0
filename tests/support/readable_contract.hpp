#pragma once

// "What append accepts, every reader can read": the durable stores' side of the event-store contract,
// shared by the SQLite and PostgreSQL tests. Before including this header, define
// ORCHESTRIX_READABLE_STORES as a std::tuple of factories, each with
//
//     using store_type = ...;                                   // a store of readable::Events
//     std::unique_ptr<store_type> make(orchestrix::JsonCodec<readable::Events> codec);   // a new, empty store
//     std::string insert_raw(const readable::RawRow& row);      // writes a row with SQL, past the store;
//                                                               // returns the payload text as stored

#include <orchestrix/json.hpp>
#include <orchestrix/orchestrix.hpp>
#include <orchestrix/projection.hpp>

#include "support/catch.hpp"
#include "support/readable_events.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

TEMPLATE_LIST_TEST_CASE("readable: an event over the size limit is an EncodeError and nothing is written", "[readable]",
                        ORCHESTRIX_READABLE_STORES) {
    TestType factory;
    auto store = factory.make(orchestrix::JsonCodec<readable::Events>{});
    (void)store->append("s", {readable::Envelope{readable::Noted{"before"}}}, orchestrix::ExpectedVersion::any());

    readable::Blob big;
    big.text.assign(1536 * 1024, 'x'); // 1.5 MiB: over the default limit of 1 MiB
    try {
        (void)store->append("s", {readable::Envelope{big}}, orchestrix::ExpectedVersion::exact(1));
        FAIL("a 1.5 MiB event was accepted");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::too_large);
        CHECK(e.event_type() == "test.blob");
        CHECK(e.json_path() == "/payload");
        CHECK(e.limit() == std::size_t{1} << 20U);
        // The message of docs/serialization.md, to the byte.
        CHECK(std::string(e.what()) ==
              "cannot encode 'test.blob' at /payload: the text is 1572899 bytes long; the limit is 1048576");
    }
    CHECK(store->stream_version("s") == 1);
    CHECK(store->head_position() == 1);
    REQUIRE(store->read_all().size() == 1);
    // The store goes on: the next event takes the next position.
    const auto next =
        store->append("s", {readable::Envelope{readable::Noted{"after"}}}, orchestrix::ExpectedVersion::exact(1));
    CHECK(next.first_position == 2);
}

TEMPLATE_LIST_TEST_CASE("readable: too deep, not representable or not decodable is refused before writing",
                        "[readable]", ORCHESTRIX_READABLE_STORES) {
    TestType factory;
    auto store = factory.make(orchestrix::JsonCodec<readable::Events>{});

    readable::Blob deep;
    deep.doc = readable::nested(64); // the payload object adds a level: 65 > 64
    try {
        (void)store->append("s", {readable::Envelope{deep}}, orchestrix::ExpectedVersion::any());
        FAIL("an event nested 65 levels deep was accepted");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::too_deep);
        CHECK(e.limit() == 64);
        CHECK_THAT(e.json_path(), Catch::Matchers::StartsWith("/payload/doc/0/0"));
    }
    readable::Blob nan;
    nan.number = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(store->append("s", {readable::Envelope{nan}}, orchestrix::ExpectedVersion::any()),
                    orchestrix::EncodeError);
    readable::Blob bad_utf8;
    bad_utf8.text = "\xff\xfe";
    CHECK_THROWS_AS(store->append("s", {readable::Envelope{bad_utf8}}, orchestrix::ExpectedVersion::any()),
                    orchestrix::EncodeError);
    // A batch with one bad event writes none of it.
    CHECK_THROWS_AS(store->append("s", {readable::Envelope{readable::Noted{"ok"}}, readable::Envelope{deep}},
                                  orchestrix::ExpectedVersion::any()),
                    orchestrix::EncodeError);
    CHECK(store->head_position() == 0);
}

TEMPLATE_LIST_TEST_CASE("readable: a codec whose write limits exceed its read limits is refused", "[readable]",
                        ORCHESTRIX_READABLE_STORES) {
    orchestrix::DecodeOptions read;
    read.max_bytes = 1000;
    orchestrix::EncodeOptions write;
    write.max_bytes = 2000;
    CHECK_THROWS_AS(orchestrix::JsonCodec<readable::Events>(read, write), orchestrix::InvalidArgumentError);
    write.max_bytes = 0; // the read limit
    const orchestrix::JsonCodec<readable::Events> codec(read, write);
    CHECK(codec.write_options().max_bytes == 1000);
    CHECK(codec.write_options().max_depth == read.max_depth);
}

TEMPLATE_LIST_TEST_CASE("readable: whatever append accepts, read_stream, read_all and a projection return equal",
                        "[readable]", ORCHESTRIX_READABLE_STORES) {
    // Small limits keep the payloads small; the property is the same at the default 1 MiB and 64 levels.
    orchestrix::DecodeOptions limits;
    limits.max_bytes = 2048;
    limits.max_depth = 8;
    TestType factory;
    auto store = factory.make(orchestrix::JsonCodec<readable::Events>(limits));

    const std::uint64_t seed = readable::seed();
    CAPTURE(seed); // ORCHESTRIX_TEST_SEED=<seed> replays a failure
    std::mt19937_64 rng(seed);
    std::vector<readable::Events> accepted;
    std::size_t refused = 0;
    const int rounds = 150;
    for (int i = 0; i < rounds; ++i) {
        const readable::Blob blob = readable::random_blob(rng, limits.max_bytes, limits.max_depth);
        try {
            (void)store->append("p", {readable::Envelope{blob}}, orchestrix::ExpectedVersion::any());
            accepted.emplace_back(blob);
        } catch (const orchestrix::EncodeError&) {
            ++refused;
        }
    }
    CAPTURE(accepted.size(), refused);
    // Both sides of each limit were reached.
    CHECK(accepted.size() > 30);
    CHECK(refused > 30);

    const auto by_stream = store->read_stream("p");
    const auto all = store->read_all();
    REQUIRE(by_stream.size() == accepted.size());
    REQUIRE(all.size() == accepted.size());
    std::vector<readable::Events> projected;
    orchestrix::InMemoryCheckpointStore checkpoints;
    orchestrix::Projection projection(
        "readable", *store, checkpoints,
        [&](const orchestrix::RecordedEvent<readable::Events>& e) { projected.push_back(e.event); });
    (void)projection.run_until_caught_up();
    REQUIRE(projected.size() == accepted.size());
    for (std::size_t i = 0; i < accepted.size(); ++i) {
        CAPTURE(i);
        CHECK(by_stream[i].event == accepted[i]);
        CHECK(all[i].event == accepted[i]);
        CHECK(projected[i] == accepted[i]);
    }
}

TEMPLATE_LIST_TEST_CASE("readable: an undecodable stored row never stalls a reader", "[readable]",
                        ORCHESTRIX_READABLE_STORES) {
    using Recorded = orchestrix::RecordedEvent<readable::Events>;
    struct Poison {
        const char* what;
        std::string type;
        std::string payload;
    };
    const std::vector<Poison> poisons = {
        {"an unknown event type", "test.retired", R"({"note":"old"})"},
        {"malformed JSON", "test.noted", R"({"note":)"},
        {"a payload over the read limit", "test.noted", R"({"note":")" + std::string(1100, 'x') + R"("})"},
        {"a field the type does not have", "test.noted", R"({"note":"n","extra":1})"},
    };
    for (const auto& poison : poisons) {
        DYNAMIC_SECTION(poison.what) {
            orchestrix::DecodeOptions limits;
            limits.max_bytes = 1024;
            TestType factory;
            auto store = factory.make(orchestrix::JsonCodec<readable::Events>(limits));
            (void)store->append("good", {readable::Envelope{readable::Noted{"one"}}},
                                orchestrix::ExpectedVersion::any());
            const std::string bad_id = orchestrix::Uuid::generate().to_string();
            const std::string stored = factory.insert_raw(
                readable::RawRow{2, "bad", 1, bad_id, poison.type, 1, poison.payload,
                                 R"({"causation_id":"","correlation_id":"","event_id":")" + bad_id + R"("})"});
            (void)store->append("good", {readable::Envelope{readable::Noted{"three"}}},
                                orchestrix::ExpectedVersion::exact(1));

            // Decoding readers are told where the bad row is.
            try {
                (void)store->read_all();
                FAIL("read_all decoded the bad row");
            } catch (const orchestrix::StoredEventDecodeError& e) {
                CHECK(e.position() == 2);
                CHECK(e.stream_id() == "bad");
                CHECK(e.version() == 1);
            }
            CHECK(store->read_all(3).size() == 1); // the rows after it are readable

            // The raw form of every row is available, decodable or not.
            const auto raw = store->read_raw(2);
            REQUIRE(raw.has_value());
            CHECK(raw->type == poison.type);
            CHECK(raw->payload == stored);
            CHECK(raw->stream_id == "bad");
            CHECK(raw->version == 1);
            CHECK(raw->event_id == bad_id);
            CHECK(store->read_all_raw().size() == 3);
            CHECK_FALSE(store->read_raw(4).has_value());

            // Skip: the projection goes past it, records it with its stored form, and handles the rest.
            {
                std::vector<orchestrix::position_t> seen;
                orchestrix::InMemoryCheckpointStore checkpoints;
                orchestrix::ProjectionOptions options;
                options.on_failure = orchestrix::FailurePolicy::skip();
                orchestrix::Projection projection(
                    "skipper", *store, checkpoints, [&](const Recorded& e) { seen.push_back(e.position); }, options);
                (void)projection.run_until_caught_up();
                CHECK(seen == std::vector<orchestrix::position_t>{1, 3});
                CHECK(projection.checkpoint() == 3);
                const auto skipped = projection.skipped();
                REQUIRE(skipped.size() == 1);
                CHECK(skipped[0].position == 2);
                CHECK(skipped[0].stream_id == "bad");
                CHECK(skipped[0].version == 1);
                CHECK(skipped[0].type == poison.type);
                REQUIRE(skipped[0].raw.has_value());
                CHECK(skipped[0].raw->payload == stored);
                CHECK(skipped[0].event_id.to_string() == bad_id);
            }
            // Stop: the projection reports position, stream, version and reason, and keeps what it did.
            {
                std::vector<orchestrix::position_t> seen;
                orchestrix::InMemoryCheckpointStore checkpoints;
                orchestrix::ProjectionOptions options;
                options.on_failure = orchestrix::FailurePolicy::stop();
                orchestrix::Projection projection(
                    "stopper", *store, checkpoints, [&](const Recorded& e) { seen.push_back(e.position); }, options);
                try {
                    (void)projection.run_until_caught_up();
                    FAIL("the projection went past the bad row under the stop policy");
                } catch (const orchestrix::ProjectionStoppedError& e) {
                    CHECK(e.failure().position == 2);
                    CHECK_THAT(e.what(), Catch::Matchers::Contains("stream 'bad', version 1"));
                    CHECK_THAT(e.what(), Catch::Matchers::Contains("cannot be decoded"));
                }
                CHECK(seen == std::vector<orchestrix::position_t>{1});
                CHECK(projection.checkpoint() == 1);
                REQUIRE(projection.failure().has_value());
                CHECK(projection.failure()->position == 2);
            }
            // A subscription is a projection: the same policies apply.
            {
                std::vector<orchestrix::position_t> seen;
                orchestrix::ProjectionOptions options;
                options.on_failure = orchestrix::FailurePolicy::skip();
                orchestrix::CatchUpSubscription feed(
                    *store, 0, [&](const Recorded& e) { seen.push_back(e.position); }, options);
                (void)feed.run_until_caught_up();
                CHECK(seen == std::vector<orchestrix::position_t>{1, 3});
                CHECK(feed.skipped().size() == 1);
            }
            // Loading the aggregate of that stream fails naming the position; other streams load.
            orchestrix::Repository<readable::Board, typename TestType::store_type> boards(*store);
            CHECK(boards.load("good").count == 2);
            try {
                (void)boards.load("bad");
                FAIL("the repository loaded a stream with an undecodable event");
            } catch (const orchestrix::StoredEventDecodeError& e) {
                CHECK(e.position() == 2);
                CHECK_THAT(e.what(), Catch::Matchers::Contains("position 2"));
            }
            try {
                (void)store->read_stream("bad");
                FAIL("read_stream decoded the bad row");
            } catch (const orchestrix::StoredEventDecodeError& e) {
                CHECK(e.position() == 2);
                CHECK_THAT(e.what(), Catch::Matchers::Contains("position 2"));
            }
        }
    }
}
