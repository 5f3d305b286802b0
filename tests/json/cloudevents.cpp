// CloudEvents 1.0 (json/cloudevents.hpp): recorded events to and from the JSON event format, typed and raw,
// strict decoding naming the attribute, the specification's examples, and JSON Lines export and import.

#include <orchestrix/json.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ce_upcast {

// Schema version 2: version 1 had one field `name`.
struct Renamed {
    static constexpr std::string_view type_name = "user.renamed";
    static constexpr std::uint32_t schema_version = 2;
    std::string first;
    std::string last;
    bool operator==(const Renamed&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Renamed, first, last)

} // namespace ce_upcast

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Codec = orchestrix::JsonCodec<AccountEvent>;

orchestrix::TraceContext sample_trace() {
    return *orchestrix::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

orchestrix::RecordedEvent<AccountEvent> sample_recorded() {
    orchestrix::Metadata metadata;
    metadata.event_id = *orchestrix::Uuid::parse("0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d");
    metadata.correlation_id = "order-17";
    metadata.causation_id = "command-3";
    metadata.recorded_at = *orchestrix::from_rfc3339("2024-05-01T12:34:56.123456Z");
    metadata.trace = sample_trace();
    return {"account-1", 3, 42, AccountEvent{MoneyDeposited{"account-1", 250}}, metadata};
}

// A valid CloudEvent of a recorded event, to take apart in the refusal tests.
nlohmann::json sample_document() { return orchestrix::to_cloudevent(sample_recorded(), Codec{}); }

// Runs `f`, which must throw a DecodeError at `path` whose message names `attribute`.
template <class F>
void require_refused(F&& f, const std::string& path, const std::string& attribute) {
    try {
        f();
        FAIL("accepted; expected a DecodeError at " << path);
    } catch (const orchestrix::DecodeError& e) {
        INFO(e.what());
        CHECK(e.json_path() == path);
        CHECK(std::string(e.what()).find(attribute) != std::string::npos);
    }
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

// The stored events without the recording time (which is the importing store's own).
struct Stored {
    std::string stream_id;
    orchestrix::stream_version_t version = 0;
    orchestrix::position_t position = 0;
    AccountEvent event;
    orchestrix::Uuid id;
    std::string correlation_id;
    std::string causation_id;
    orchestrix::TraceContext trace;
    bool operator==(const Stored&) const = default;
};

std::vector<Stored> contents(const Store& store) {
    std::vector<Stored> out;
    for (const auto& e : store.read_all(1, orchestrix::unlimited)) {
        out.push_back({e.stream_id, e.version, e.position, e.event, e.metadata.event_id, e.metadata.correlation_id,
                       e.metadata.causation_id, e.metadata.trace});
    }
    return out;
}

// Two interleaved streams, five events, one with correlation, causation and a trace.
void fill(Store& store) {
    orchestrix::Metadata traced{orchestrix::Uuid::generate(), "corr-1", "cause-1", {}, sample_trace()};
    (void)store.append("account-1", {AccountEvent{AccountOpened{"account-1", "Ada"}}},
                       orchestrix::ExpectedVersion::no_stream());
    (void)store.append("account-2", {AccountEvent{AccountOpened{"account-2", "Grace"}}},
                       orchestrix::ExpectedVersion::no_stream());
    (void)store.append("account-1",
                       {orchestrix::EventEnvelope<AccountEvent>(AccountEvent{MoneyDeposited{"account-1", 10}}, traced),
                        orchestrix::EventEnvelope<AccountEvent>(AccountEvent{MoneyDeposited{"account-1", 20}})},
                       orchestrix::ExpectedVersion::exact(1));
    (void)store.append("account-2", {AccountEvent{MoneyDeposited{"account-2", 5}}},
                       orchestrix::ExpectedVersion::exact(1));
}

} // namespace

TEST_CASE("cloudevents: a recorded event becomes a CloudEvent with every attribute", "[json][cloudevents]") {
    const Codec codec;
    const nlohmann::json j = orchestrix::to_cloudevent(sample_recorded(), codec, {"https://bank.example/ledger"});
    CHECK(j.at("specversion") == "1.0");
    CHECK(j.at("id") == "0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d");
    CHECK(j.at("source") == "https://bank.example/ledger");
    CHECK(j.at("type") == "account.deposited");
    CHECK(j.at("subject") == "account-1");
    CHECK(j.at("time") == "2024-05-01T12:34:56.123456Z");
    CHECK(j.at("datacontenttype") == "application/json");
    CHECK(j.at("data") == nlohmann::json{{"account_id", "account-1"}, {"amount", 250}});
    CHECK(j.at("streamversion") == 3);
    CHECK(j.at("position") == 42);
    CHECK(j.at("schemaversion") == 1);
    CHECK(j.at("correlationid") == "order-17");
    CHECK(j.at("causationid") == "command-3");
    CHECK(j.at("traceparent") == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    CHECK(j.size() == 14);
    // The example of docs/operations.md ("CloudEvents"), as printed there.
    CHECK(j.dump() ==
          R"({"causationid":"command-3","correlationid":"order-17","data":{"account_id":"account-1","amount":250},)"
          R"("datacontenttype":"application/json","id":"0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d","position":42,)"
          R"("schemaversion":1,"source":"https://bank.example/ledger","specversion":"1.0","streamversion":3,)"
          R"("subject":"account-1","time":"2024-05-01T12:34:56.123456Z",)"
          R"("traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","type":"account.deposited"})");
    // Every attribute name follows the CloudEvents rule: lowercase letters and digits, at most 20 of them.
    for (const auto& [key, value] : j.items()) {
        if (key == "data") continue;
        CHECK(key.size() <= 20);
        CHECK(key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") == std::string::npos);
    }
}

TEST_CASE("cloudevents: a typed round trip gives the same recorded event", "[json][cloudevents]") {
    const Codec codec;
    const auto recorded = sample_recorded();
    CHECK(orchestrix::from_cloudevent(orchestrix::to_cloudevent(recorded, codec), codec) == recorded);
    const std::string text = orchestrix::to_cloudevent(recorded, codec).dump();
    CHECK(orchestrix::parse_recorded_cloudevent(text, codec) == recorded);

    // Without correlation, causation or trace, those extensions are absent and come back empty.
    auto plain = recorded;
    plain.metadata.correlation_id.clear();
    plain.metadata.causation_id.clear();
    plain.metadata.trace = {};
    const nlohmann::json j = orchestrix::to_cloudevent(plain, codec);
    CHECK_FALSE(j.contains("correlationid"));
    CHECK_FALSE(j.contains("causationid"));
    CHECK_FALSE(j.contains("traceparent"));
    CHECK(orchestrix::from_cloudevent(j, codec) == plain);
}

TEST_CASE("cloudevents: the source must not be empty", "[json][cloudevents]") {
    CHECK_THROWS_AS(orchestrix::to_cloudevent(sample_recorded(), Codec{}, {""}), orchestrix::InvalidArgumentError);
}

TEST_CASE("cloudevents: every required attribute that is missing is refused, naming it", "[json][cloudevents]") {
    const Codec codec;
    for (const std::string name : {"specversion", "id", "source", "type", "subject", "time", "data", "streamversion",
                                   "position", "schemaversion"}) {
        DYNAMIC_SECTION(name) {
            nlohmann::json j = sample_document();
            j.erase(name);
            require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/" + name, "\"" + name + "\"");
            require_refused([&] { (void)orchestrix::raw_from_cloudevent(j); }, "/" + name, "\"" + name + "\"");
        }
    }
}

TEST_CASE("cloudevents: every attribute of the wrong JSON type is refused, naming it", "[json][cloudevents]") {
    const Codec codec;
    const std::vector<std::pair<std::string, nlohmann::json>> wrong = {{"specversion", 1},
                                                                       {"id", 7},
                                                                       {"source", true},
                                                                       {"type", nlohmann::json::array()},
                                                                       {"subject", 3},
                                                                       {"time", 1714566896},
                                                                       {"datacontenttype", 1},
                                                                       {"data", "a string"},
                                                                       {"data", 12},
                                                                       {"streamversion", 2.5},
                                                                       {"streamversion", true},
                                                                       {"position", "forty-two"},
                                                                       {"position", 0},
                                                                       {"schemaversion", -1},
                                                                       {"correlationid", 5},
                                                                       {"causationid", false},
                                                                       {"traceparent", "00-zz"},
                                                                       {"dataschema", 2},
                                                                       {"streamversion", nlohmann::json::object()}};
    for (const auto& [name, value] : wrong) {
        DYNAMIC_SECTION(name << " = " << value.dump()) {
            nlohmann::json j = sample_document();
            j[name] = value;
            require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/" + name, "\"" + name + "\"");
        }
    }
}

TEST_CASE("cloudevents: specversion 0.3 and a non-UUID id are refused", "[json][cloudevents]") {
    const Codec codec;
    nlohmann::json j = sample_document();
    j["specversion"] = "0.3";
    require_refused([&] { (void)orchestrix::decode_cloudevent(j); }, "/specversion", "1.0");
    j = sample_document();
    j["id"] = "C234-1234-1234";
    require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/id", "UUID");
    j["id"] = "00000000-0000-0000-0000-000000000000";
    require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/id", "UUID");
}

TEST_CASE("cloudevents: data must be a JSON object of JSON content", "[json][cloudevents]") {
    const Codec codec;
    nlohmann::json j = sample_document();
    j["datacontenttype"] = "application/xml";
    require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/datacontenttype", "application/json");
    j.erase("datacontenttype"); // absent: JSON, as the format says
    CHECK(orchestrix::from_cloudevent(j, codec) == sample_recorded());
    j = sample_document();
    j.erase("data");
    j["data_base64"] = "AAEC";
    require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/data_base64", "data_base64");
    j["data"] = nlohmann::json::object();
    require_refused([&] { (void)orchestrix::decode_cloudevent(j); }, "/data_base64", "data");
}

TEST_CASE("cloudevents: the data goes through the codec, its errors at /data", "[json][cloudevents]") {
    const Codec codec;
    nlohmann::json j = sample_document();
    j["data"]["amount"] = "250";
    require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/data/amount", "amount");
    j = sample_document();
    j["type"] = "account.closed";
    try {
        (void)orchestrix::from_cloudevent(j, codec);
        FAIL("an unknown type was decoded");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.kind() == orchestrix::DecodeError::Kind::unknown_type);
        CHECK(e.json_path() == "/type");
    }
    j = sample_document();
    j["schemaversion"] = 2; // newer than the program knows
    try {
        (void)orchestrix::from_cloudevent(j, codec);
        FAIL("a newer schema version was decoded");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.kind() == orchestrix::DecodeError::Kind::newer_schema_version);
    }
}

TEST_CASE("cloudevents: unknown extensions are ignored, malformed ones refused", "[json][cloudevents]") {
    const Codec codec;
    nlohmann::json j = sample_document();
    j["comexampleextension1"] = "value";
    j["comexampleothervalue"] = 5;
    j["unsetextension"] = nullptr;
    j["dataschema"] = "https://bank.example/schemas/deposited";
    CHECK(orchestrix::from_cloudevent(j, codec) == sample_recorded());
    const orchestrix::CloudEvent ce = orchestrix::decode_cloudevent(j);
    CHECK(ce.extensions.at("comexampleothervalue") == 5);
    CHECK_FALSE(ce.extensions.contains("unsetextension"));

    j = sample_document();
    j["Upper"] = "x";
    require_refused([&] { (void)orchestrix::decode_cloudevent(j); }, "/Upper", "Upper");
    j = sample_document();
    j["my-ext"] = "x";
    require_refused([&] { (void)orchestrix::decode_cloudevent(j); }, "/my-ext", "my-ext");
    j = sample_document();
    j["nested"] = nlohmann::json{{"a", 1}};
    require_refused([&] { (void)orchestrix::decode_cloudevent(j); }, "/nested", "nested");
    j = sample_document();
    j["ratio"] = 0.5;
    require_refused([&] { (void)orchestrix::decode_cloudevent(j); }, "/ratio", "ratio");
}

TEST_CASE("cloudevents: null optional attributes are absent", "[json][cloudevents]") {
    const Codec codec;
    nlohmann::json j = sample_document();
    j["correlationid"] = nullptr;
    j["dataschema"] = nullptr;
    auto expected = sample_recorded();
    expected.metadata.correlation_id.clear();
    CHECK(orchestrix::from_cloudevent(j, codec) == expected);
    j["subject"] = nullptr; // orchestrix needs the stream id
    require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/subject", "subject");
}

TEST_CASE("cloudevents: counters beyond a CloudEvents integer are written as decimal strings", "[json][cloudevents]") {
    const Codec codec;
    auto recorded = sample_recorded();
    recorded.version = 2147483647;
    recorded.position = 2147483648;
    const nlohmann::json j = orchestrix::to_cloudevent(recorded, codec);
    CHECK(j.at("streamversion") == 2147483647);
    CHECK(j.at("position") == "2147483648");
    CHECK(orchestrix::from_cloudevent(j, codec) == recorded);
    nlohmann::json bad = j;
    for (const char* text : {"0", "-1", "01", "1e3", "", "9223372036854775808"}) {
        bad["position"] = text;
        CHECK_THROWS_AS(orchestrix::from_cloudevent(bad, codec), orchestrix::DecodeError);
    }
}

TEST_CASE("cloudevents: text is parsed as strictly as the codec parses", "[json][cloudevents]") {
    const Codec codec;
    std::string text = sample_document().dump();
    const std::string duplicated = text.substr(0, text.size() - 1) + R"(,"subject":"account-2"})";
    try {
        (void)orchestrix::parse_recorded_cloudevent(duplicated, codec);
        FAIL("a duplicate key was accepted");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.kind() == orchestrix::DecodeError::Kind::duplicate_key);
        CHECK(e.json_path() == "/subject");
    }
    const std::string bad_utf8 = text.substr(0, text.size() - 1) + ",\"note\":\"\xc3\x28\"}";
    try {
        (void)orchestrix::parse_recorded_cloudevent(bad_utf8, codec);
        FAIL("invalid UTF-8 was accepted");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.kind() == orchestrix::DecodeError::Kind::invalid_utf8);
    }
    CHECK_THROWS_AS(orchestrix::parse_recorded_cloudevent(text, codec, 100), orchestrix::DecodeError);
    try {
        (void)orchestrix::parse_recorded_cloudevent("[1]", codec);
        FAIL("an array was accepted");
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.kind() == orchestrix::DecodeError::Kind::wrong_type);
    }
    // The data may nest as deep as the codec reads payloads: the envelope adds one level.
    orchestrix::DecodeOptions shallow;
    shallow.max_depth = 2;
    const Codec shallow_codec(shallow);
    CHECK_NOTHROW(orchestrix::parse_recorded_cloudevent(text, shallow_codec));
}

// The examples of cloudevents/formats/json-format.md (CloudEvents 1.0), section 3.2, verbatim.
TEST_CASE("cloudevents: the specification's examples decode", "[json][cloudevents][conformance]") {
    const std::string object_data = R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "C234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/json",
    "data" : {
        "appinfoA" : "abc",
        "appinfoB" : 123,
        "appinfoC" : true
    }
})";
    const std::string xml_data = R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "B234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "unsetextension": null,
    "datacontenttype" : "application/xml",
    "data" : "<much wow=\"xml\"/>"
})";
    const std::string binary_data = R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "A234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/vnd.apache.thrift.binary",
    "data_base64" : "... base64 encoded string ..."
})";

    const orchestrix::CloudEvent object_event = orchestrix::parse_cloudevent(object_data);
    CHECK(object_event.specversion == "1.0");
    CHECK(object_event.type == "com.example.someevent");
    CHECK(object_event.source == "/mycontext");
    CHECK(object_event.id == "C234-1234-1234");
    CHECK_FALSE(object_event.subject.has_value());
    CHECK(object_event.time == "2018-04-05T17:31:00Z");
    CHECK(object_event.datacontenttype == "application/json");
    CHECK(object_event.data == nlohmann::json{{"appinfoA", "abc"}, {"appinfoB", 123}, {"appinfoC", true}});
    CHECK(object_event.extensions.size() == 2);
    CHECK(object_event.extensions.at("comexampleextension1") == "value");
    // Encoding it again and decoding gives the same event.
    CHECK(orchestrix::decode_cloudevent(orchestrix::encode_cloudevent(object_event)) == object_event);

    const orchestrix::CloudEvent xml_event = orchestrix::parse_cloudevent(xml_data);
    CHECK(xml_event.data == "<much wow=\"xml\"/>");
    CHECK_FALSE(xml_event.extensions.contains("unsetextension"));
    const orchestrix::CloudEvent binary_event = orchestrix::parse_cloudevent(binary_data);
    CHECK(binary_event.data_base64 == "... base64 encoded string ...");
    CHECK_FALSE(binary_event.data.has_value());

    // As an orchestrix event, the example lacks what a recorded event has: its id is not a UUID first.
    require_refused([&] { (void)orchestrix::raw_from_cloudevent(orchestrix::parse_json(object_data)); }, "/id", "UUID");
    // With a UUID, a subject and orchestrix's extensions, the example with object data is an event.
    nlohmann::json completed = orchestrix::parse_json(object_data);
    completed["id"] = "0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d";
    completed["subject"] = "larger-context";
    completed["streamversion"] = 1;
    completed["position"] = 7;
    completed["schemaversion"] = 1;
    const orchestrix::RawRecordedEvent row = orchestrix::raw_from_cloudevent(completed);
    CHECK(row.type == "com.example.someevent");
    CHECK(row.stream_id == "larger-context");
    CHECK(row.payload == R"({"appinfoA":"abc","appinfoB":123,"appinfoC":true})");
    CHECK(row.recorded_at == *orchestrix::from_rfc3339("2018-04-05T17:31:00Z"));
    // The XML example's data is not JSON content: refused, naming the attribute.
    nlohmann::json xml = orchestrix::parse_json(xml_data);
    xml["id"] = "0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d";
    xml["subject"] = "s";
    xml["streamversion"] = 1;
    xml["position"] = 1;
    xml["schemaversion"] = 1;
    require_refused([&] { (void)orchestrix::raw_from_cloudevent(xml); }, "/datacontenttype", "datacontenttype");
}

TEST_CASE("cloudevents: raw rows give the same CloudEvents as typed events, and back the same bytes",
          "[json][cloudevents][raw]") {
    const Codec codec;
    for (const bool traced : {false, true}) {
        auto recorded = sample_recorded();
        if (!traced) recorded.metadata.trace = {};
        const orchestrix::SerializedEvent columns = codec.serialize(recorded.event, recorded.metadata);
        const orchestrix::RawRecordedEvent row{recorded.position,
                                               recorded.stream_id,
                                               recorded.version,
                                               recorded.metadata.event_id.to_string(),
                                               columns.type,
                                               columns.schema_version,
                                               columns.payload,
                                               columns.metadata,
                                               recorded.metadata.recorded_at};
        const nlohmann::json from_row = orchestrix::to_cloudevent(row);
        CHECK(from_row == orchestrix::to_cloudevent(recorded, codec));
        CHECK(orchestrix::raw_from_cloudevent(from_row) == row);
        CHECK(orchestrix::from_cloudevent(from_row, codec) == recorded);
    }
}

TEST_CASE("cloudevents: a raw row that cannot be a CloudEvent is refused, naming the column",
          "[json][cloudevents][raw]") {
    const orchestrix::RawRecordedEvent good{
        5,
        "s",
        2,
        "0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d",
        "t.x",
        1,
        R"({"a":1})",
        R"({"causation_id":"","correlation_id":"","event_id":"0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d"})",
        {}};
    CHECK_NOTHROW(orchestrix::to_cloudevent(good));
    auto row = good;
    row.payload = "[1]";
    require_refused([&] { (void)orchestrix::to_cloudevent(row); }, "/payload", "object");
    row = good;
    row.payload = R"({"a":1,"a":2})";
    require_refused([&] { (void)orchestrix::to_cloudevent(row); }, "/payload/a", "twice");
    row = good;
    row.metadata = R"({"event_id":"0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d","tenant":"x"})";
    require_refused([&] { (void)orchestrix::to_cloudevent(row); }, "/metadata/tenant", "tenant");
    row = good;
    row.event_id = "0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8e";
    require_refused([&] { (void)orchestrix::to_cloudevent(row); }, "/metadata/event_id", "event id");
    row = good;
    row.version = 0;
    require_refused([&] { (void)orchestrix::to_cloudevent(row); }, "/version", "version");
    row = good;
    row.metadata = R"({"event_id":"0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d","traceparent":"00-0"})";
    require_refused([&] { (void)orchestrix::to_cloudevent(row); }, "/metadata/traceparent", "traceparent");
}

TEST_CASE("cloudevents: JSON Lines export then import gives the same streams, and again nothing",
          "[json][cloudevents][jsonl]") {
    const Codec codec;
    Store source;
    fill(source);
    std::ostringstream out;
    CHECK(orchestrix::export_cloudevents(source, out, codec) == 5);
    const std::string file = out.str();
    CHECK(lines_of(file).size() == 5);

    Store copy;
    std::istringstream in(file);
    const auto result = orchestrix::import_cloudevents(copy, in, codec);
    CHECK(result == orchestrix::CloudEventImportResult{5, 0});
    CHECK(contents(copy) == contents(source));

    std::istringstream again(file);
    CHECK(orchestrix::import_cloudevents(copy, again, codec) == orchestrix::CloudEventImportResult{0, 5});
    CHECK(contents(copy) == contents(source));

    // Exporting from a position gives the tail, and one event at a time imports the same way.
    std::ostringstream tail;
    CHECK(orchestrix::export_cloudevents(source, tail, codec, {}, 4) == 2);
    const auto all = lines_of(file);
    CHECK(lines_of(tail.str()) == std::vector<std::string>(all.begin() + 3, all.end()));
    Store one_by_one;
    std::istringstream in2(file);
    orchestrix::CloudEventImportOptions single;
    single.batch_size = 1;
    CHECK(orchestrix::import_cloudevents(one_by_one, in2, codec, single) == orchestrix::CloudEventImportResult{5, 0});
    CHECK(contents(one_by_one) == contents(source));
}

TEST_CASE("cloudevents: an import of a file that overlaps what is stored appends the rest",
          "[json][cloudevents][jsonl]") {
    const Codec codec;
    Store source;
    fill(source);
    std::ostringstream out;
    (void)orchestrix::export_cloudevents(source, out, codec);
    const auto lines = lines_of(out.str());
    Store copy;
    std::istringstream first(lines[0] + "\n" + lines[2] + "\n"); // account-1 version 1 and 2
    CHECK(orchestrix::import_cloudevents(copy, first, codec) == orchestrix::CloudEventImportResult{2, 0});
    std::istringstream all(out.str()); // lines 3 and 4 (account-1 v2, v3) go as one batch, half stored
    CHECK(orchestrix::import_cloudevents(copy, all, codec) == orchestrix::CloudEventImportResult{3, 2});
    CHECK(contents(copy).size() == 5);
    for (const auto& e : contents(source)) {
        const auto stream = copy.read_stream(e.stream_id, e.version, 1);
        REQUIRE(stream.size() == 1);
        CHECK(stream[0].metadata.event_id == e.id);
        CHECK(stream[0].event == e.event);
    }
}

TEST_CASE("cloudevents: an import stops at the first bad line, naming it, and keeps what came before",
          "[json][cloudevents][jsonl]") {
    const Codec codec;
    Store source;
    fill(source);
    std::ostringstream out;
    (void)orchestrix::export_cloudevents(source, out, codec);
    auto lines = lines_of(out.str());
    nlohmann::json bad = nlohmann::json::parse(lines[2]);
    bad["specversion"] = "0.3";
    // Line 1, a blank line 2, line 3, then the bad event on line 4 and two good ones after it.
    const std::string file =
        lines[0] + "\n\n" + lines[1] + "\n" + bad.dump() + "\n" + lines[3] + "\n" + lines[4] + "\n";
    Store copy;
    std::istringstream in(file);
    try {
        (void)orchestrix::import_cloudevents(copy, in, codec);
        FAIL("the import went past a bad line");
    } catch (const orchestrix::CloudEventImportError& e) {
        INFO(e.what());
        CHECK(e.line() == 4);
        CHECK(e.done() == orchestrix::CloudEventImportResult{2, 0});
        CHECK(std::string(e.what()).find("line 4") != std::string::npos);
        CHECK(std::string(e.what()).find("specversion") != std::string::npos);
        CHECK_THROWS_AS(std::rethrow_exception(e.cause()), orchestrix::DecodeError);
    }
    CHECK(copy.read_all(1, orchestrix::unlimited).size() == 2);

    // A line that is not JSON at all.
    Store other;
    std::istringstream garbage(lines[0] + "\n{not json\n" + lines[1] + "\n");
    try {
        (void)orchestrix::import_cloudevents(other, garbage, codec);
        FAIL("the import went past a bad line");
    } catch (const orchestrix::CloudEventImportError& e) {
        CHECK(e.line() == 2);
        CHECK(e.done().imported == 1);
    }
    CHECK(other.read_all(1, orchestrix::unlimited).size() == 1);
}

TEST_CASE("cloudevents: an import whose append is refused names the line of that event", "[json][cloudevents][jsonl]") {
    const Codec codec;
    Store source;
    fill(source);
    std::ostringstream out;
    (void)orchestrix::export_cloudevents(source, out, codec);
    // The target already has another event as account-1's version 2: the file's version 2 conflicts.
    Store target;
    std::istringstream first(lines_of(out.str())[0] + "\n");
    (void)orchestrix::import_cloudevents(target, first, codec);
    (void)target.append("account-1", {AccountEvent{MoneyDeposited{"account-1", 99}}},
                        orchestrix::ExpectedVersion::exact(1));
    std::istringstream in(out.str());
    try {
        (void)orchestrix::import_cloudevents(target, in, codec);
        FAIL("a conflicting import went through");
    } catch (const orchestrix::CloudEventImportError& e) {
        INFO(e.what());
        CHECK(e.line() == 3);
        CHECK(e.done() == orchestrix::CloudEventImportResult{1, 1});
        CHECK_THROWS_AS(std::rethrow_exception(e.cause()), orchestrix::ConcurrencyError);
    }

    // Without keep_versions, the events go at the end of their streams instead.
    Store loose;
    (void)loose.append("account-1", {AccountEvent{MoneyDeposited{"account-1", 1}}},
                       orchestrix::ExpectedVersion::no_stream());
    orchestrix::CloudEventImportOptions options;
    options.keep_versions = false;
    std::istringstream in2(out.str());
    CHECK(orchestrix::import_cloudevents(loose, in2, codec, options) == orchestrix::CloudEventImportResult{5, 0});
    CHECK(loose.stream_version("account-1") == 4);
}

TEST_CASE("cloudevents: ids in either case, times in UTC only", "[json][cloudevents]") {
    const Codec codec;
    nlohmann::json j = sample_document();
    j["id"] = "0190F3C2-7C4E-7A1B-9C3D-2E4F5A6B7C8D";
    CHECK(orchestrix::from_cloudevent(j, codec) == sample_recorded());
    CHECK(orchestrix::raw_from_cloudevent(j).event_id == "0190f3c2-7c4e-7a1b-9c3d-2e4f5a6b7c8d");
    j = sample_document();
    j["time"] = "2024-05-01T12:34:56.123456+00:00";
    CHECK(orchestrix::from_cloudevent(j, codec) == sample_recorded());
    j["time"] = "2024-05-01T14:34:56.123456+02:00";
    require_refused([&] { (void)orchestrix::from_cloudevent(j, codec); }, "/time", "UTC");
}

TEST_CASE("cloudevents: old type names and old schema versions go through the codec's renames and upcasters",
          "[json][cloudevents]") {
    Codec renaming;
    renaming.add_rename("account.credited", "account.deposited");
    nlohmann::json j = sample_document();
    j["type"] = "account.credited";
    CHECK(orchestrix::from_cloudevent(j, renaming) == sample_recorded());

    using Events = std::variant<ce_upcast::Renamed>;
    orchestrix::JsonCodec<Events> codec;
    codec.add_upcaster("user.renamed", 1, [](nlohmann::json p) {
        const std::string name = p.at("name").get<std::string>();
        const auto space = name.find(' ');
        return nlohmann::json{{"first", name.substr(0, space)}, {"last", name.substr(space + 1)}};
    });
    j = sample_document();
    j["type"] = "user.renamed";
    j["schemaversion"] = 1;
    j["data"] = nlohmann::json{{"name", "Ada Lovelace"}};
    const auto recorded = orchestrix::from_cloudevent(j, codec);
    CHECK(recorded.event == Events{ce_upcast::Renamed{"Ada", "Lovelace"}});
    CHECK(orchestrix::to_cloudevent(recorded, codec).at("schemaversion") == 2);
}

TEST_CASE("cloudevents: an import refuses a line over max_line_bytes, naming it", "[json][cloudevents][jsonl]") {
    const Codec codec;
    Store source;
    fill(source);
    std::ostringstream out;
    (void)orchestrix::export_cloudevents(source, out, codec);
    orchestrix::CloudEventImportOptions options;
    options.max_line_bytes = lines_of(out.str())[0].size();
    Store copy;
    std::istringstream in(out.str());
    try {
        (void)orchestrix::import_cloudevents(copy, in, codec, options);
        FAIL("a line over the limit was imported");
    } catch (const orchestrix::CloudEventImportError& e) {
        INFO(e.what());
        CHECK(e.line() > 1);
        CHECK(std::string(e.what()).find("limit") != std::string::npos);
        CHECK(copy.read_all(1, orchestrix::unlimited).size() == e.line() - 1);
    }
}
