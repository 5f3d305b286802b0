// What append accepts, every reader can read: the JetStream store (tests/support/readable_contract.hpp).

#include <orchestrix/jetstream.hpp>
#include <orchestrix/projection.hpp>

#include "support/catch.hpp"
#include "support/nats_server.hpp"

#include <nats/nats.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "support/readable_events.hpp"

namespace {

struct JetStreamReadableFactory {
    using store_type = orchestrix::JetStreamEventStore<readable::Events>;
    orchestrix::JetStreamOptions options = [] {
        orchestrix::JetStreamOptions o;
        o.url = test_support::nats_test_url();
        o.stream = test_support::fresh_jetstream_stream_name();
        o.subject_prefix = o.stream;
        return o;
    }();

    std::unique_ptr<store_type> make(orchestrix::JsonCodec<readable::Events> codec) {
        return std::make_unique<store_type>(options, std::move(codec));
    }

    // Publishes the row as a batch of one event with plain libnats, past the store and its checks.
    std::string insert_raw(const readable::RawRow& row) {
        const auto id = orchestrix::Uuid::parse(row.event_id);
        REQUIRE(id.has_value());
        const std::vector<orchestrix::Uuid> ids = {*id};
        const std::vector<orchestrix::SerializedEvent> events = {
            orchestrix::SerializedEvent{row.type, row.schema_version, row.payload, row.metadata}};
        const std::string body = orchestrix::jetstream::encode_batch(row.position, row.version, 0, ids, events, {});
        const std::string subject =
            options.subject_prefix + "." + orchestrix::jetstream::encode_subject_token(row.stream_id);
        natsConnection* connection = nullptr;
        REQUIRE(natsConnection_ConnectTo(&connection, options.url.c_str()) == NATS_OK);
        jsCtx* js = nullptr;
        REQUIRE(natsConnection_JetStream(&js, connection, nullptr) == NATS_OK);
        jsPubAck* ack = nullptr;
        const natsStatus s =
            js_Publish(&ack, js, subject.c_str(), body.data(), static_cast<int>(body.size()), nullptr, nullptr);
        jsPubAck_Destroy(ack);
        jsCtx_Destroy(js);
        natsConnection_Destroy(connection);
        REQUIRE(s == NATS_OK);
        return row.payload;
    }
};

} // namespace

#define ORCHESTRIX_READABLE_STORES std::tuple<JetStreamReadableFactory>
#include "support/readable_contract.hpp"
