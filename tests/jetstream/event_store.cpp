// JetStreamEventStore: the event-store contract on a single nats-server and on a 3-node cluster (an R3
// stream), and what is the JetStream store's own: the subject encoding, the batch framing, the catalog
// shared by several store objects (processes), idempotency after the de-duplication window, and its
// refusals.

#include <orchestrix/jetstream.hpp>

#include "support/catch.hpp"
#include "support/nats_server.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::JetStreamEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::ExpectedVersion;

orchestrix::JetStreamOptions single_server_options() {
    orchestrix::JetStreamOptions options;
    options.url = test_support::nats_test_url();
    options.stream = test_support::fresh_jetstream_stream_name();
    options.subject_prefix = options.stream; // the streams of one server cannot share subjects
    return options;
}

struct JetStreamSingleServerFactory {
    using store_type = Store;
    static constexpr int concurrency_threads = 4;
    static constexpr int concurrency_rounds = 40;
    std::unique_ptr<store_type> make() { return std::make_unique<store_type>(single_server_options()); }
};

struct JetStreamClusterFactory {
    using store_type = Store;
    static constexpr int concurrency_threads = 4;
    static constexpr int concurrency_rounds = 20;
    std::unique_ptr<store_type> make() {
        orchestrix::JetStreamOptions options;
        options.url = test_support::nats_test_cluster_urls();
        options.stream = test_support::fresh_jetstream_stream_name();
        options.subject_prefix = options.stream;
        options.replicas = 3;
        return std::make_unique<store_type>(options);
    }
};

// Publishes `body` on `subject` past the store, with plain libnats.
void publish_raw(const std::string& url, const std::string& subject, const std::string& body) {
    natsConnection* connection = nullptr;
    REQUIRE(natsConnection_ConnectTo(&connection, url.c_str()) == NATS_OK);
    jsCtx* js = nullptr;
    REQUIRE(natsConnection_JetStream(&js, connection, nullptr) == NATS_OK);
    jsPubAck* ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_Publish(&ack, js, subject.c_str(), body.data(), static_cast<int>(body.size()), nullptr, &code);
    INFO(natsStatus_GetText(s) << " " << static_cast<int>(code));
    CHECK(s == NATS_OK);
    jsPubAck_Destroy(ack);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
}

} // namespace

using JetStreamStores = std::tuple<JetStreamSingleServerFactory, JetStreamClusterFactory>;
#define ORCHESTRIX_CONTRACT_STORES JetStreamStores
#include "support/event_store_contract.hpp"

namespace {

TEST_CASE("jetstream: every stream id maps to a valid subject token and back", "[jetstream]") {
    const std::vector<std::string> ids = {"orders-42",
                                          "a.b",
                                          "*",
                                          ">",
                                          "with space\tand tab",
                                          "=",
                                          "=2E",
                                          "\xc3\xa9t\xc3\xa9",
                                          "quote\"back\\slash",
                                          std::string(1024, '.'),
                                          "$JS.API"};
    std::set<std::string> tokens;
    for (const std::string& id : ids) {
        const std::string token = orchestrix::jetstream::encode_subject_token(id);
        INFO(id << " -> " << token);
        CHECK_FALSE(token.empty());
        for (const char ch : token) {
            const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                            ch == '-' || ch == '_' || ch == '=';
            CHECK(ok);
        }
        CHECK(orchestrix::jetstream::decode_subject_token(token) == id);
        CHECK(tokens.insert(token).second);
    }
    CHECK(orchestrix::jetstream::encode_subject_token("orders-42") == "orders-42");
    CHECK(orchestrix::jetstream::encode_subject_token("a.b") == "a=2Eb");
    // Tokens the encoding never writes decode to nothing: one stream id, one token.
    CHECK_FALSE(orchestrix::jetstream::decode_subject_token("a.b").has_value());
    CHECK_FALSE(orchestrix::jetstream::decode_subject_token("=61").has_value()); // 'a' is kept, never escaped
    CHECK_FALSE(orchestrix::jetstream::decode_subject_token("=2e").has_value()); // lower-case hex
    CHECK_FALSE(orchestrix::jetstream::decode_subject_token("=2").has_value());
    CHECK_THROWS_AS(orchestrix::jetstream::validate_subject_prefix("a..b"), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(orchestrix::jetstream::validate_subject_prefix("a.*"), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(orchestrix::jetstream::validate_subject_prefix(""), orchestrix::InvalidArgumentError);
    CHECK_NOTHROW(orchestrix::jetstream::validate_subject_prefix("bank.events-1"));
}

TEST_CASE("jetstream: the batch framing decodes what it encodes and refuses damage", "[jetstream]") {
    const std::vector<orchestrix::Uuid> ids = {orchestrix::Uuid::generate(), orchestrix::Uuid::generate()};
    const std::vector<orchestrix::SerializedEvent> events = {{"a.b", 1, R"({"x":1})", R"({"event_id":"1"})"},
                                                             {"c", 7, "{}", "{}"}};
    const std::vector<std::vector<std::string>> tags = {{"t:1", "t:2"}, {}};
    const std::string body = orchestrix::jetstream::encode_batch(5, 3, -42, ids, events, tags);
    const auto batch = orchestrix::jetstream::decode_batch(body);
    REQUIRE(batch.has_value());
    CHECK(batch->first_position == 5);
    CHECK(batch->first_version == 3);
    CHECK(batch->recorded_at_micros == -42);
    REQUIRE(batch->events.size() == 2);
    CHECK(batch->events[0].id == ids[0]);
    CHECK(batch->events[0].type == "a.b");
    CHECK(batch->events[0].payload == R"({"x":1})");
    CHECK(batch->events[0].tags == std::vector<std::string_view>{"t:1", "t:2"});
    CHECK(batch->events[1].schema_version == 7);
    CHECK(batch->events[1].tags.empty());
    for (std::size_t cut = 0; cut < body.size(); ++cut) {
        INFO("cut at " << cut);
        CHECK_FALSE(orchestrix::jetstream::decode_batch(body.substr(0, cut)).has_value());
    }
    CHECK_FALSE(orchestrix::jetstream::decode_batch(body + "x").has_value());
    CHECK_FALSE(orchestrix::jetstream::decode_batch("OXJ2" + body.substr(4)).has_value());
}

TEST_CASE("jetstream: store objects on one stream see each other's appends and conflicts", "[jetstream]") {
    const orchestrix::JetStreamOptions options = single_server_options();
    Store first(options);
    Store second(options);
    (void)first.append("acc", {Envelope{AccountOpened{"acc", "Ann"}}}, ExpectedVersion::no_stream());
    CHECK(second.stream_version("acc") == 1);
    CHECK(second.read_stream("acc").size() == 1);
    // `second` appends with the version it read; `first` still expects the old one and conflicts.
    (void)second.append("acc", {Envelope{MoneyDeposited{"acc", 5}}}, ExpectedVersion::exact(1));
    CHECK_THROWS_AS(first.append("acc", {Envelope{MoneyDeposited{"acc", 6}}}, ExpectedVersion::exact(1)),
                    orchestrix::ConcurrencyError);
    const auto result = first.append("other", {Envelope{MoneyDeposited{"other", 1}}}, ExpectedVersion::any());
    CHECK(result.first_position == 3); // after `second`'s event, which `first` had not read before
    CHECK(first.head_position() == 3);
    CHECK(second.head_position() == 3);
    CHECK(second.stream_count() == 2);
    // A store object whose catalog is behind checks against the server before it refuses: `second` has not
    // read `first`'s last append, and an append expecting the version it made is accepted.
    (void)first.append("other", {Envelope{MoneyDeposited{"other", 2}}}, ExpectedVersion::exact(1));
    const auto behind = second.append("other", {Envelope{MoneyDeposited{"other", 3}}}, ExpectedVersion::exact(2));
    CHECK(behind.written);
    CHECK(behind.first_position == 5);
    CHECK(behind.stream_version == 3);

    // A new store object (a restarted process) rebuilds the catalog from the stream: versions, positions
    // and the ids of every stored event.
    Store third(options);
    CHECK(third.head_position() == 5);
    CHECK(third.stream_version("acc") == 2);
    const auto all = third.read_all();
    REQUIRE(all.size() == 5);
    CHECK(all[2].stream_id == "other");
    orchestrix::Metadata metadata;
    metadata.event_id = all[1].metadata.event_id;
    const Envelope again(MoneyDeposited{"acc", 5}, metadata);
    const auto retry = third.append("acc", std::vector<Envelope>{again}, ExpectedVersion::exact(1));
    CHECK_FALSE(retry.written);
    CHECK(retry.first_position == 2);
}

TEST_CASE("jetstream: a retry long after the de-duplication window is still idempotent", "[jetstream]") {
    orchestrix::JetStreamOptions options = single_server_options();
    options.duplicate_window = std::chrono::seconds(1);
    Store store(options);
    const std::vector<Envelope> batch = {Envelope{AccountOpened{"acc", "Ann"}}, Envelope{MoneyDeposited{"acc", 3}}};
    const auto first = store.append("acc", batch, ExpectedVersion::no_stream());
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const auto again = store.append("acc", batch, ExpectedVersion::no_stream());
    CHECK_FALSE(again.written);
    CHECK(again.first_position == first.first_position);
    CHECK(again.stream_version == 2);
    // And from a store object that never saw the first append.
    Store fresh(options);
    CHECK_FALSE(fresh.append("acc", batch, ExpectedVersion::any()).written);
    CHECK(fresh.read_all().size() == 2);
}

TEST_CASE("jetstream: a message the store did not write is reported, naming it", "[jetstream]") {
    const orchestrix::JetStreamOptions options = single_server_options();
    Store store(options);
    (void)store.append("acc", {Envelope{AccountOpened{"acc", "Ann"}}}, ExpectedVersion::any());
    publish_raw(options.url, store.subject_of("acc"), "not a batch");
    try {
        (void)store.read_all();
        FAIL("read_all accepted a foreign message");
    } catch (const orchestrix::JetStreamError& e) {
        CHECK(std::string(e.what()).find("message 2") != std::string::npos);
        CHECK_FALSE(e.retryable());
    }
    CHECK_THROWS_AS(store.append("acc", {Envelope{MoneyDeposited{"acc", 1}}}, ExpectedVersion::any()),
                    orchestrix::JetStreamError);
}

TEST_CASE("jetstream: a batch larger than the server takes is refused before anything is written", "[jetstream]") {
    const orchestrix::JetStreamOptions options = single_server_options();
    Store store(options);
    std::vector<Envelope> batch;
    // 16 events of ~600 KiB each: every event is within the codec's limit, the batch over max_payload (8 MiB).
    for (int i = 0; i < 16; ++i) batch.emplace_back(AccountOpened{"acc", std::string(600 * 1024, 'x')});
    try {
        (void)store.append("acc", batch, ExpectedVersion::any());
        FAIL("the batch was accepted");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(std::string(e.what()).find("max_payload") != std::string::npos);
    }
    CHECK(store.head_position() == 0);
}

TEST_CASE("jetstream: options and a missing stream are refused with what was wrong", "[jetstream]") {
    orchestrix::JetStreamOptions options = single_server_options();
    options.subject_prefix = "bad..prefix";
    CHECK_THROWS_AS(Store(options), orchestrix::InvalidArgumentError);
    options = single_server_options();
    options.stream = "has.dot";
    CHECK_THROWS_AS(Store(options), orchestrix::InvalidArgumentError);
    options = single_server_options();
    options.replicas = 0;
    CHECK_THROWS_AS(Store(options), orchestrix::InvalidArgumentError);
    options = single_server_options();
    options.ping_interval = std::chrono::milliseconds(0);
    CHECK_THROWS_AS(Store(options), orchestrix::InvalidArgumentError);
    options = single_server_options();
    options.create_stream = false;
    try {
        Store store(options);
        FAIL("a missing stream was accepted");
    } catch (const orchestrix::JetStreamError& e) {
        CHECK(std::string(e.what()).find(options.stream) != std::string::npos);
    }
    // A stream with other subjects is not the store's.
    orchestrix::JetStreamOptions first = single_server_options();
    Store store(first);
    first.subject_prefix = first.stream + "-elsewhere";
    CHECK_THROWS_AS(Store(first), orchestrix::JetStreamError);
    // Two stores on one server cannot share subjects.
    orchestrix::JetStreamOptions overlapping = single_server_options();
    overlapping.subject_prefix = first.stream;
    CHECK_THROWS_AS(Store(overlapping), orchestrix::JetStreamError);
    // No server: a JetStreamError, not a hang.
    orchestrix::JetStreamOptions nowhere;
    nowhere.url = "nats://127.0.0.1:" + std::to_string(test_support::free_port());
    nowhere.retry_for = std::chrono::milliseconds(200);
    CHECK_THROWS_AS(Store(nowhere), orchestrix::JetStreamError);
}

TEST_CASE("jetstream: the store's stream keeps every message, and one that would not is refused", "[jetstream]") {
    const orchestrix::JetStreamOptions options = single_server_options();
    Store store(options);
    natsConnection* connection = nullptr;
    REQUIRE(natsConnection_ConnectTo(&connection, options.url.c_str()) == NATS_OK);
    jsCtx* js = nullptr;
    REQUIRE(natsConnection_JetStream(&js, connection, nullptr) == NATS_OK);
    jsStreamInfo* info = nullptr;
    REQUIRE(js_GetStreamInfo(&info, js, options.stream.c_str(), nullptr, nullptr) == NATS_OK);
    CHECK(info->Config->DenyDelete);
    CHECK(info->Config->DenyPurge);
    CHECK(info->Config->Storage == js_FileStorage);
    CHECK(info->Config->MaxAge == 0);
    jsStreamInfo_Destroy(info);

    // A stream made elsewhere with a maximum age would remove events: refused, naming the limit.
    const std::string name = test_support::fresh_jetstream_stream_name();
    const std::string subjects = name + ".>";
    const char* subject_list[] = {subjects.c_str()};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = name.c_str();
    config.Subjects = subject_list;
    config.SubjectsLen = 1;
    config.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::hours(24)).count();
    REQUIRE(js_AddStream(nullptr, js, &config, nullptr, nullptr) == NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
    orchestrix::JetStreamOptions aged = single_server_options();
    aged.stream = name;
    aged.subject_prefix = name;
    try {
        Store refused(aged);
        FAIL("a stream with a maximum age was accepted");
    } catch (const orchestrix::JetStreamError& e) {
        CHECK(std::string(e.what()).find("maximum age") != std::string::npos);
    }
}

} // namespace
