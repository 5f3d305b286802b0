#include <orchestrix/json.hpp>

#include "support/catch.hpp"
#include "support/codec_events.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace codec_domain;
using orchestrix::DecodeError;
using Kind = orchestrix::DecodeError::Kind;
using Codec = orchestrix::JsonCodec<CodecEvent>;

namespace {

// Random text: printable ASCII, quotes, backslashes, control characters and 2-, 3- and 4-byte UTF-8.
std::string random_text(std::mt19937& rng) {
    std::uniform_int_distribution<int> length(0, 24);
    std::uniform_int_distribution<int> kind(0, 5);
    std::string s;
    const int n = length(rng);
    auto append_code_point = [&](std::uint32_t cp) {
        if (cp < 0x80) {
            s.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            s.push_back(static_cast<char>(0xC0U | (cp >> 6U)));
            s.push_back(static_cast<char>(0x80U | (cp & 0x3FU)));
        } else if (cp < 0x10000) {
            s.push_back(static_cast<char>(0xE0U | (cp >> 12U)));
            s.push_back(static_cast<char>(0x80U | ((cp >> 6U) & 0x3FU)));
            s.push_back(static_cast<char>(0x80U | (cp & 0x3FU)));
        } else {
            s.push_back(static_cast<char>(0xF0U | (cp >> 18U)));
            s.push_back(static_cast<char>(0x80U | ((cp >> 12U) & 0x3FU)));
            s.push_back(static_cast<char>(0x80U | ((cp >> 6U) & 0x3FU)));
            s.push_back(static_cast<char>(0x80U | (cp & 0x3FU)));
        }
    };
    for (int i = 0; i < n; ++i) {
        switch (kind(rng)) {
        case 0:
            append_code_point(std::uniform_int_distribution<std::uint32_t>(0x20, 0x7E)(rng));
            break;
        case 1:
            s += "\"\\/"[std::uniform_int_distribution<int>(0, 2)(rng)];
            break;
        case 2:
            append_code_point(std::uniform_int_distribution<std::uint32_t>(0x00, 0x1F)(rng));
            break;
        case 3:
            append_code_point(std::uniform_int_distribution<std::uint32_t>(0x80, 0x7FF)(rng));
            break;
        case 4: {
            std::uint32_t cp = std::uniform_int_distribution<std::uint32_t>(0x800, 0xFFFF)(rng);
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x20AC; // no surrogates: the euro sign instead
            append_code_point(cp);
            break;
        }
        default:
            append_code_point(std::uniform_int_distribution<std::uint32_t>(0x10000, 0x10FFFF)(rng));
            break;
        }
    }
    return s;
}

CodecEvent random_event(std::mt19937& rng, int type) {
    switch (type) {
    case 0: {
        UserRegistered e{random_text(rng), random_text(rng), std::nullopt, (rng() & 1U) != 0};
        if ((rng() & 1U) != 0) e.email = random_text(rng);
        return e;
    }
    case 1:
        return ScoreRecorded{random_text(rng),
                             static_cast<std::int8_t>(std::uniform_int_distribution<int>(-128, 127)(rng)),
                             std::uniform_int_distribution<std::int32_t>(std::numeric_limits<std::int32_t>::min(),
                                                                         std::numeric_limits<std::int32_t>::max())(rng),
                             std::uniform_int_distribution<std::uint64_t>()(rng),
                             std::uniform_real_distribution<double>(-1e12, 1e12)(rng)};
    case 2: {
        ProfileTagged e{random_text(rng), {}, {}, {random_text(rng), random_text(rng)}};
        const int tags = std::uniform_int_distribution<int>(0, 4)(rng);
        for (int i = 0; i < tags; ++i) e.tags.push_back(random_text(rng));
        for (int i = 0; i < tags; ++i)
            e.counters[random_text(rng)] = std::uniform_int_distribution<std::int64_t>()(rng);
        return e;
    }
    default:
        return SessionEnded{};
    }
}

// Runs `decode` and returns the DecodeError it must throw.
template <class F>
DecodeError decode_error_of(F&& decode) {
    try {
        decode();
    } catch (const DecodeError& e) {
        return e;
    }
    FAIL("decoding succeeded where it had to fail");
    throw std::logic_error("unreachable");
}

std::string payload_document(std::string_view type, std::uint32_t version, std::string_view payload) {
    return R"({"type":")" + std::string(type) + R"(","schema_version":)" + std::to_string(version) + R"(,"payload":)" +
           std::string(payload) + "}";
}

} // namespace

TEST_CASE("serialization: thousands of random events of every type survive encode and decode") {
    const Codec codec;
    std::mt19937 rng(20240501);
    for (int i = 0; i < 4000; ++i) {
        const CodecEvent event = random_event(rng, i % 4);
        const std::string text = codec.dump(event);
        INFO("event #" << i << ": " << text);
        CHECK(codec.parse(text) == event);
        CHECK(codec.decode(codec.encode(event)) == event);

        // The four columns of a durable store.
        const auto row = codec.serialize(event, orchestrix::Metadata{orchestrix::Uuid::generate(), "c", "d", {}, {}});
        CHECK(row.type == orchestrix::event_name_of(event));
        CHECK(codec.deserialize_event(row.type, row.schema_version, row.payload) == event);
    }
}

TEST_CASE("serialization: envelopes and recorded events keep every piece of metadata") {
    const Codec codec;
    std::mt19937 rng(7);
    const auto now = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
    for (int i = 0; i < 500; ++i) {
        const CodecEvent event = random_event(rng, i % 4);
        const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), random_text(rng), random_text(rng), {}, {}};

        const orchestrix::EventEnvelope<CodecEvent> envelope{event, metadata};
        CHECK(codec.parse_envelope(codec.dump(envelope)) == envelope);

        orchestrix::RecordedEvent<CodecEvent> recorded{"stream-\"" + std::to_string(i) + "\"",
                                                       1U + static_cast<unsigned>(i), 1000U + static_cast<unsigned>(i),
                                                       event, metadata};
        recorded.metadata.recorded_at = now + std::chrono::microseconds(i * 1001);
        CHECK(codec.parse_recorded(codec.dump(recorded)) == recorded);

        const auto row = codec.serialize(envelope);
        const auto back = codec.deserialize(row, recorded.stream_id, recorded.version, recorded.position,
                                            recorded.metadata.recorded_at);
        CHECK(back == recorded);
    }
}

TEST_CASE("serialization: encoding is deterministic and names the type and schema version") {
    const Codec codec;
    const CodecEvent event = ProfileTagged{"u1", {"a"}, {{"z", 1}, {"a", 2}}, {"Main St", "Springfield"}};
    const auto j = codec.encode(event);
    CHECK(j.at("type") == "profile.tagged");
    CHECK(j.at("schema_version") == 3);
    CHECK(codec.dump(event) == codec.dump(event));
    const orchestrix::Metadata metadata{
        *orchestrix::Uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057"), "corr", "cause", {}, {}};
    const auto row = codec.serialize(event, metadata);
    CHECK(row.metadata ==
          R"({"causation_id":"cause","correlation_id":"corr","event_id":"01890a5d-ac96-774b-bcce-b302099a8057"})");
    CHECK(
        row.payload ==
        R"({"address":{"city":"Springfield","street":"Main St"},"counters":{"a":2,"z":1},"tags":["a"],"user_id":"u1"})");
}

TEST_CASE("serialization: every kind of bad input is a typed error naming the event type and the path") {
    const Codec codec;
    struct Case {
        const char* what;
        std::string text;
        Kind kind;
        std::string event_type;
        std::string path;
    };
    const std::string score = R"("user_id":"u","level":1,"points":2,"total":3,"ratio":0.5)";
    const std::vector<Case> cases{
        {"empty input", "", Kind::malformed_json, "", ""},
        {"only whitespace", "  \n ", Kind::malformed_json, "", ""},
        {"truncated JSON", R"({"type":"score.recorded","schema_version":1,"payload":{"user_id":"u)",
         Kind::malformed_json, "", "/payload/user_id"},
        {"trailing garbage", payload_document("session.ended", 1, "{}") + " x", Kind::malformed_json, "", ""},
        {"not an object", "[1,2]", Kind::wrong_type, "", ""},
        {"unknown type", payload_document("user.deleted", 1, "{}"), Kind::unknown_type, "user.deleted", "/type"},
        {"missing field (generated from_json)",
         payload_document("score.recorded", 1, R"({"user_id":"u","level":1,"points":2,"ratio":0.5})"),
         Kind::missing_field, "score.recorded", "/payload/total"},
        {"missing field (checked from_json)",
         payload_document("user.registered", 1, R"({"user_id":"u","active":true})"), Kind::missing_field,
         "user.registered", "/payload/name"},
        {"missing nested field",
         payload_document("profile.tagged", 3, R"({"user_id":"u","tags":[],"counters":{},"address":{"street":"s"}})"),
         Kind::missing_field, "profile.tagged", "/payload/address/city"},
        {"wrong JSON type (generated)",
         payload_document("score.recorded", 1, R"({"user_id":"u","level":1,"points":"2","total":3,"ratio":0.5})"),
         Kind::wrong_type, "score.recorded", "/payload/points"},
        {"wrong JSON type (checked)",
         payload_document("user.registered", 1, R"({"user_id":"u","name":7,"active":true})"), Kind::wrong_type,
         "user.registered", "/payload/name"},
        {"wrong type in an array",
         payload_document("profile.tagged", 3,
                          R"({"user_id":"u","tags":["a",5],"counters":{},"address":{"street":"s","city":"c"}})"),
         Kind::wrong_type, "profile.tagged", "/payload/tags/1"},
        {"fraction into an integer",
         payload_document("score.recorded", 1, R"({"user_id":"u","level":1,"points":3.7,"total":3,"ratio":0.5})"),
         Kind::wrong_type, "score.recorded", "/payload/points"},
        {"300 into an int8",
         payload_document("score.recorded", 1, R"({"user_id":"u","level":300,"points":2,"total":3,"ratio":0.5})"),
         Kind::out_of_range, "score.recorded", "/payload/level"},
        {"negative into an unsigned",
         payload_document("score.recorded", 1, R"({"user_id":"u","level":1,"points":2,"total":-3,"ratio":0.5})"),
         Kind::out_of_range, "score.recorded", "/payload/total"},
        {"beyond int32",
         payload_document("score.recorded", 1,
                          R"({"user_id":"u","level":1,"points":4294967296,"total":3,"ratio":0.5})"),
         Kind::out_of_range, "score.recorded", "/payload/points"},
        {"boolean into a number",
         payload_document("score.recorded", 1, R"({"user_id":"u","level":true,"points":2,"total":3,"ratio":0.5})"),
         Kind::wrong_type, "score.recorded", "/payload/level"},
        {"number too large for a double",
         payload_document("score.recorded", 1, R"({"user_id":"u","level":1,"points":2,"total":3,"ratio":1e400})"),
         Kind::out_of_range, "", "/payload/ratio"},
        {"unknown field", payload_document("score.recorded", 1, "{" + score + R"(,"bonus":1})"), Kind::unknown_field,
         "score.recorded", "/payload/bonus"},
        {"duplicate key", payload_document("score.recorded", 1, "{" + score + R"(,"level":2})"), Kind::duplicate_key,
         "", "/payload/level"},
        {"duplicate top-level key",
         R"({"type":"session.ended","type":"session.ended","schema_version":1,"payload":{}})", Kind::duplicate_key, "",
         "/type"},
        {"invalid UTF-8",
         payload_document("user.registered", 1, "{\"user_id\":\"u\",\"name\":\"a\xC3\x28\",\"active\":true}"),
         Kind::invalid_utf8, "", "/payload/name"},
        {"lone surrogate escape",
         payload_document("user.registered", 1, R"({"user_id":"u","name":"\ud800","active":true})"), Kind::invalid_utf8,
         "", "/payload/name"},
        {"payload not an object", payload_document("session.ended", 1, "[]"), Kind::wrong_type, "session.ended",
         "/payload"},
        {"schema version 0", payload_document("session.ended", 0, "{}"), Kind::invalid_value, "session.ended",
         "/schema_version"},
        {"schema version from the future", payload_document("score.recorded", 2, "{" + score + "}"),
         Kind::newer_schema_version, "score.recorded", "/schema_version"},
        {"schema version not a number", R"({"type":"session.ended","schema_version":"1","payload":{}})",
         Kind::wrong_type, "session.ended", "/schema_version"},
        {"missing payload", R"({"type":"session.ended","schema_version":1})", Kind::missing_field, "", "/payload"},
        {"unknown top-level field", R"({"type":"session.ended","schema_version":1,"payload":{},"x":1})",
         Kind::unknown_field, "", "/x"},
    };
    for (const auto& c : cases) {
        INFO(c.what << ": " << c.text);
        const DecodeError error = decode_error_of([&] { (void)codec.parse(c.text); });
        INFO("error: " << error.what());
        CHECK(error.kind() == c.kind);
        CHECK(error.event_type() == c.event_type);
        CHECK(error.json_path() == c.path);
        CHECK(std::string(error.what()).find(c.path) != std::string::npos);
    }
}

TEST_CASE("serialization: nesting and size caps refuse oversized input before building it") {
    orchestrix::DecodeOptions options;
    options.max_depth = 8;
    options.max_bytes = 256;
    const Codec codec(options);
    const std::string deep = std::string(20, '[') + std::string(20, ']');
    const auto too_deep = decode_error_of(
        [&] { (void)codec.parse(payload_document("profile.tagged", 3, R"({"user_id":"u","tags":)" + deep + "}")); });
    CHECK(too_deep.kind() == Kind::too_deep);
    CHECK(too_deep.json_path().rfind("/payload/tags/0/0/0", 0) == 0);

    const auto too_large = decode_error_of([&] {
        (void)codec.parse(payload_document(
            "user.registered", 1, R"({"user_id":"u","name":")" + std::string(300, 'x') + R"(","active":true})"));
    });
    CHECK(too_large.kind() == Kind::too_large);

    // The same caps hold for the durable-store API, where the payload is its own text.
    const auto column = decode_error_of([&] { (void)codec.deserialize_event("profile.tagged", 3, deep); });
    CHECK(column.kind() == Kind::too_deep);
    CHECK(column.event_type() == "profile.tagged");
    CHECK(column.json_path().rfind("/payload", 0) == 0);

    // A document parsed elsewhere is checked for depth too.
    const auto parsed =
        nlohmann::json::parse(payload_document("profile.tagged", 3, R"({"user_id":"u","tags":)" + deep + "}"));
    CHECK(decode_error_of([&] { (void)codec.decode(parsed); }).kind() == Kind::too_deep);
}

TEST_CASE("serialization: the durable-store API refuses bad columns with typed errors") {
    const Codec codec;
    const std::string metadata = R"({"event_id":"01890a5d-ac96-774b-bcce-b302099a8057"})";
    const auto t = std::chrono::system_clock::time_point{};

    CHECK(codec.deserialize(orchestrix::SerializedEventView{"session.ended", 1, "{}", metadata}, "s", 1, 1, t).event ==
          CodecEvent{SessionEnded{}});

    auto error = decode_error_of([&] { (void)codec.deserialize_event("nope", 1, "{}"); });
    CHECK(error.kind() == Kind::unknown_type);
    CHECK(error.event_type() == "nope");

    error = decode_error_of([&] { (void)codec.deserialize_event("session.ended", 1, "{} {}"); });
    CHECK(error.kind() == Kind::malformed_json);
    CHECK(error.event_type() == "session.ended");
    CHECK(error.json_path() == "/payload");

    error = decode_error_of([&] { (void)codec.deserialize_metadata(R"({"event_id":"not-a-uuid"})", "session.ended"); });
    CHECK(error.kind() == Kind::invalid_value);
    CHECK(error.json_path() == "/metadata/event_id");
    CHECK(error.event_type() == "session.ended");

    error = decode_error_of(
        [&] { (void)codec.deserialize_metadata(R"({"event_id":"00000000-0000-0000-0000-000000000000"})"); });
    CHECK(error.kind() == Kind::invalid_value);

    error = decode_error_of([&] { (void)codec.deserialize_metadata(R"({"correlation_id":"x"})"); });
    CHECK(error.kind() == Kind::missing_field);
    CHECK(error.json_path() == "/metadata/event_id");

    error = decode_error_of(
        [&] { (void)codec.deserialize_metadata(R"({"event_id":"01890a5d-ac96-774b-bcce-b302099a8057","user":"x"})"); });
    CHECK(error.kind() == Kind::unknown_field);
    CHECK(error.json_path() == "/metadata/user");

    error = decode_error_of([&] { (void)codec.deserialize_metadata(R"({"event_id":1})"); });
    CHECK(error.kind() == Kind::wrong_type);
    CHECK(error.json_path() == "/metadata/event_id");
}

TEST_CASE("serialization: recorded-event documents check stream id, version, position and time") {
    const Codec codec;
    orchestrix::RecordedEvent<CodecEvent> recorded{
        "s", 1, 1, SessionEnded{}, {orchestrix::Uuid::generate(), "", "", {}, {}}};
    const auto good = codec.encode(recorded);
    CHECK(codec.decode_recorded(good) == recorded);
    struct Case {
        const char* field;
        nlohmann::json value;
        Kind kind;
    };
    const std::vector<Case> cases{
        {"version", 0, Kind::out_of_range},
        {"version", -1, Kind::out_of_range},
        {"version", 1.5, Kind::wrong_type},
        {"position", "1", Kind::wrong_type},
        {"stream_id", "", Kind::invalid_value},
        {"recorded_at", "2024-02-30T00:00:00Z", Kind::invalid_value},
        {"recorded_at", "yesterday", Kind::invalid_value},
    };
    for (const auto& c : cases) {
        INFO(c.field << " = " << c.value.dump());
        auto bad = good;
        bad[c.field] = c.value;
        const auto error = decode_error_of([&] { (void)codec.decode_recorded(bad); });
        CHECK(error.kind() == c.kind);
        CHECK(error.json_path() == "/" + std::string(c.field));
        CHECK(error.event_type() == "session.ended");
    }
}

TEST_CASE("serialization: an upcaster chain v1 -> v2 -> v3 loads old JSON as the current type") {
    Codec codec;
    codec.add_upcaster("profile.tagged", 1, [](nlohmann::json p) {
        p["counters"] = nlohmann::json::object();
        return p;
    });
    codec.add_upcaster("profile.tagged", 2, [](nlohmann::json p) {
        p["address"] = {{"street", ""}, {"city", "unknown"}};
        return p;
    });
    const ProfileTagged expected{"u1", {"x", "y"}, {}, {"", "unknown"}};
    CHECK(codec.parse(payload_document("profile.tagged", 1, R"({"user_id":"u1","tags":["x","y"]})")) ==
          CodecEvent{expected});
    ProfileTagged from_v2 = expected;
    from_v2.counters = {{"visits", 4}};
    CHECK(codec.parse(
              payload_document("profile.tagged", 2, R"({"user_id":"u1","tags":["x","y"],"counters":{"visits":4}})")) ==
          CodecEvent{from_v2});
    CHECK(codec.deserialize_event("profile.tagged", 1, R"({"user_id":"u1","tags":["x","y"]})") == CodecEvent{expected});

    SECTION("an upcaster's output is held to the same strictness") {
        const auto error = decode_error_of(
            [&] { (void)codec.parse(payload_document("profile.tagged", 1, R"({"user_id":"u1","tags":[1]})")); });
        CHECK(error.kind() == Kind::wrong_type);
        CHECK(error.json_path() == "/payload/tags/0");
    }
    SECTION("a throwing upcaster is a typed error") {
        Codec failing;
        failing.add_upcaster("profile.tagged", 1, [](nlohmann::json p) { return p.at("missing"); });
        failing.add_upcaster("profile.tagged", 2, [](nlohmann::json p) { return p; });
        const auto error = decode_error_of(
            [&] { (void)failing.parse(payload_document("profile.tagged", 1, R"({"user_id":"u1","tags":[]})")); });
        CHECK(error.kind() == Kind::upcast_failed);
        CHECK(error.event_type() == "profile.tagged");
    }
}

TEST_CASE("serialization: a gap in the upcaster chain and misuse of the registry are reported") {
    Codec codec;
    codec.add_upcaster("profile.tagged", 2, [](nlohmann::json p) { return p; });
    const auto error = decode_error_of(
        [&] { (void)codec.parse(payload_document("profile.tagged", 1, R"({"user_id":"u1","tags":[]})")); });
    CHECK(error.kind() == Kind::missing_upcaster);
    CHECK(error.json_path() == "/schema_version");
    CHECK(std::string(error.what()).find("from version 1 to 2") != std::string::npos);

    CHECK_THROWS_AS(codec.add_upcaster("profile.tagged", 2, [](nlohmann::json p) { return p; }),
                    orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.add_upcaster("profile.tagged", 3, [](nlohmann::json p) { return p; }),
                    orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.add_upcaster("profile.tagged", 0, [](nlohmann::json p) { return p; }),
                    orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.add_upcaster("no.such.type", 1, [](nlohmann::json p) { return p; }),
                    orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.add_upcaster("profile.tagged", 1, orchestrix::Upcaster{}), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.add_rename("score.recorded", "session.ended"), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.add_rename("old.name", "no.such.type"), orchestrix::InvalidArgumentError);
}

TEST_CASE("serialization: a renamed event type loads under its new name") {
    Codec codec;
    codec.add_rename("session.closed", "session.ended");
    CHECK(codec.parse(payload_document("session.closed", 1, "{}")) == CodecEvent{SessionEnded{}});
    CHECK(codec.dump(CodecEvent{SessionEnded{}}).find("session.ended") != std::string::npos);
}

TEST_CASE("serialization: what JSON cannot carry is refused on encode") {
    const Codec codec;
    try {
        (void)codec.encode(CodecEvent{UserRegistered{"u", "bad \xFF byte", std::nullopt, true}});
        FAIL("invalid UTF-8 was encoded");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.event_type() == "user.registered");
        CHECK(e.json_path() == "/name");
    }
    try {
        (void)codec.serialize(CodecEvent{ScoreRecorded{"u", 1, 1, 1, std::numeric_limits<double>::quiet_NaN()}}, {});
        FAIL("NaN was encoded");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.json_path() == "/ratio");
    }
}

TEST_CASE("serialization: json_field reads fields with range and type checks") {
    const auto j = nlohmann::json::parse(
        R"({"small":200,"neg":-1,"big":18446744073709551615,"frac":2.5,"whole":3,"s":"x","list":[1,"2"],"nothing":null})");
    CHECK(orchestrix::json_field<std::uint8_t>(j, "small") == 200);
    CHECK(orchestrix::json_field<std::uint64_t>(j, "big") == std::numeric_limits<std::uint64_t>::max());
    CHECK(orchestrix::json_field<double>(j, "whole") == 3.0);
    CHECK(orchestrix::json_field<float>(j, "frac") == 2.5F);
    CHECK(orchestrix::json_field_or<int>(j, "absent", 42) == 42);
    CHECK(orchestrix::json_field_or<int>(j, "nothing", 7) == 7);
    CHECK_FALSE(orchestrix::json_field<std::optional<int>>(j, "nothing").has_value());

    auto kind_of = [&](auto read) { return decode_error_of(read); };
    CHECK(kind_of([&] { (void)orchestrix::json_field<std::int8_t>(j, "small"); }).kind() == Kind::out_of_range);
    CHECK(kind_of([&] { (void)orchestrix::json_field<unsigned>(j, "neg"); }).kind() == Kind::out_of_range);
    CHECK(kind_of([&] { (void)orchestrix::json_field<std::int64_t>(j, "big"); }).kind() == Kind::out_of_range);
    CHECK(kind_of([&] { (void)orchestrix::json_field<int>(j, "frac"); }).kind() == Kind::wrong_type);
    CHECK(kind_of([&] { (void)orchestrix::json_field<std::string>(j, "whole"); }).kind() == Kind::wrong_type);
    CHECK(kind_of([&] { (void)orchestrix::json_field<bool>(j, "whole"); }).kind() == Kind::wrong_type);
    CHECK(kind_of([&] { (void)orchestrix::json_field<int>(j, "absent"); }).json_path() == "/absent");
    const auto in_list = kind_of([&] { (void)orchestrix::json_field<std::vector<int>>(j, "list"); });
    CHECK(in_list.json_path() == "/list/1");
    CHECK(in_list.kind() == Kind::wrong_type);
}

TEST_CASE("serialization: parse_json reports the path of a duplicate key and escapes it") {
    const auto error = decode_error_of([] { (void)orchestrix::parse_json(R"({"a":[{"x/y":1,"x/y":2}]})"); });
    CHECK(error.kind() == Kind::duplicate_key);
    CHECK(error.json_path() == "/a/0/x~1y");
    CHECK(orchestrix::parse_json(R"({"a":{"b":[1,{"c":null}]}})") ==
          nlohmann::json::parse(R"({"a":{"b":[1,{"c":null}]}})"));
}

TEST_CASE("serialization: times are RFC 3339 UTC with microseconds") {
    using namespace std::chrono;
    const system_clock::time_point t =
        sys_days{year{2024} / 5 / 1} + hours{12} + minutes{34} + seconds{56} + microseconds{123456} + nanoseconds{789};
    CHECK(orchestrix::to_rfc3339(t) == "2024-05-01T12:34:56.123456Z");
    CHECK(orchestrix::from_rfc3339("2024-05-01T12:34:56.123456Z") == floor<microseconds>(t));
    CHECK(orchestrix::from_rfc3339("2024-05-01T12:34:56Z") == floor<seconds>(t));
    CHECK(orchestrix::from_rfc3339("2024-05-01t12:34:56.1+00:00") == floor<seconds>(t) + milliseconds{100});
    CHECK(orchestrix::to_rfc3339(system_clock::time_point{} - microseconds{1}) == "1969-12-31T23:59:59.999999Z");
    for (const char* bad : {"", "2024-05-01", "2024-05-01T12:34:56", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
                            "2024-05-01T24:00:00Z", "2024-05-01T12:34:60Z", "2024-05-01T12:34:56.Z",
                            "2024-05-01T12:34:56.1234567Z", "2024-05-01T12:34:56+01:00", "2024-05-01 12:34:56Z"}) {
        INFO(bad);
        CHECK_FALSE(orchestrix::from_rfc3339(bad).has_value());
    }
}

TEST_CASE("serialization: DecodeError is an orchestrix::Error whose message names type, path and kind") {
    const Codec codec;
    try {
        (void)codec.parse(
            payload_document("score.recorded", 1, R"({"user_id":"u","level":300,"points":2,"total":3,"ratio":0.5})"));
        FAIL("no error");
    } catch (const orchestrix::Error& e) {
        const std::string message = e.what();
        CHECK(message.find("score.recorded") != std::string::npos);
        CHECK(message.find("/payload/level") != std::string::npos);
        CHECK(message.find("out of range") != std::string::npos);
        CHECK(message.find("300") != std::string::npos);
    }
}

namespace options_domain {
enum class Unit { celsius, fahrenheit };
NLOHMANN_JSON_SERIALIZE_ENUM(Unit, {{Unit::celsius, "celsius"}, {Unit::fahrenheit, "fahrenheit"}})

struct Measured {
    static constexpr std::string_view type_name = "sensor.measured";
    float reading = 0.0F;
    double precise = 0.0;
    Unit unit = Unit::celsius;
    bool operator==(const Measured&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Measured, reading, precise, unit)
using SensorEvent = std::variant<Measured>;
} // namespace options_domain

TEST_CASE("serialization: the round-trip check accepts float precision and refuses silent mappings") {
    using namespace options_domain;
    const orchestrix::JsonCodec<SensorEvent> codec;
    const auto ok = codec.deserialize_event("sensor.measured", 1, R"({"reading":0.1,"precise":2,"unit":"fahrenheit"})");
    CHECK(ok == SensorEvent{Measured{0.1F, 2.0, Unit::fahrenheit}});

    auto error = decode_error_of(
        [&] { (void)codec.deserialize_event("sensor.measured", 1, R"({"reading":0.1,"precise":1,"unit":"kelvin"})"); });
    CHECK(error.kind() == Kind::lossy_conversion);
    CHECK(error.json_path() == "/payload/unit");

    error = decode_error_of([&] {
        (void)codec.deserialize_event("sensor.measured", 1, R"({"reading":1e39,"precise":1,"unit":"celsius"})");
    });
    CHECK(error.kind() == Kind::out_of_range);
    CHECK(error.json_path() == "/payload/reading");

    error = decode_error_of([&] { // 2^53 + 1 has no exact double
        (void)codec.deserialize_event("sensor.measured", 1,
                                      R"({"reading":1,"precise":9007199254740993,"unit":"celsius"})");
    });
    CHECK(error.kind() == Kind::out_of_range);
    CHECK(error.json_path() == "/payload/precise");
}

TEST_CASE("serialization: unknown fields and the round-trip check can be relaxed") {
    using namespace options_domain;
    orchestrix::DecodeOptions lenient;
    lenient.reject_unknown_fields = false;
    const orchestrix::JsonCodec<SensorEvent> tolerant(lenient);
    CHECK(
        tolerant.deserialize_event("sensor.measured", 1, R"({"reading":1,"precise":1,"unit":"celsius","extra":[1]})") ==
        SensorEvent{Measured{1.0F, 1.0, Unit::celsius}});
    // Still strict about values.
    CHECK(decode_error_of([&] {
              (void)tolerant.deserialize_event("sensor.measured", 1, R"({"reading":1,"precise":1,"unit":"kelvin"})");
          }).kind() == Kind::lossy_conversion);

    orchestrix::DecodeOptions unchecked;
    unchecked.verify_round_trip = false;
    const orchestrix::JsonCodec<SensorEvent> trusting(unchecked);
    CHECK(trusting.deserialize_event("sensor.measured", 1, R"({"reading":1,"precise":1,"unit":"kelvin"})") ==
          SensorEvent{Measured{1.0F, 1.0, Unit::celsius}});
}

namespace exact_domain {
struct Exact {
    static constexpr std::string_view type_name = "exact.event";
    std::int32_t n = 0;
    bool operator==(const Exact&) const = default;
};
inline void to_json(nlohmann::json& j, const Exact& e) { j = nlohmann::json{{"n", e.n}}; }
inline void from_json(const nlohmann::json& j, Exact& e) { e.n = orchestrix::json_field<std::int32_t>(j, "n"); }
} // namespace exact_domain
template <>
inline constexpr bool orchestrix::json_round_trip_check<exact_domain::Exact> = false;

TEST_CASE("serialization: a type with an exact from_json can skip the round-trip check") {
    const orchestrix::JsonCodec<std::variant<exact_domain::Exact>> codec;
    // No round trip: an unknown field is ignored ...
    CHECK(codec.deserialize_event("exact.event", 1, R"({"n":5,"extra":1})") ==
          std::variant<exact_domain::Exact>{exact_domain::Exact{5}});
    // ... but json_field still refuses what does not fit.
    const auto error = decode_error_of([&] { (void)codec.deserialize_event("exact.event", 1, R"({"n":5000000000})"); });
    CHECK(error.kind() == Kind::out_of_range);
    CHECK(error.json_path() == "/payload/n");
    CHECK(error.event_type() == "exact.event");
}

// Found by fuzzing (fuzz/corpus/event_json/regression_*): nlohmann converts a JSON fraction to an integer
// field with a plain cast, undefined when the value does not fit; and system_clock cannot hold every year
// RFC 3339 can write.
TEST_CASE("serialization: a fraction too large for an integer field is a wrong type, not a wrapped number") {
    const Codec codec;
    for (const char* amount : {"18446744873709551615", "1e300", "-1e300", "-3.5", "300.5", "128.0"}) {
        INFO(amount);
        const std::string payload =
            std::string(R"({"user_id":"u","level":)") + amount + R"(,"points":2,"total":3,"ratio":0.5})";
        const auto error = decode_error_of([&] { (void)codec.parse(payload_document("score.recorded", 1, payload)); });
        CHECK(error.kind() == Kind::wrong_type);
        CHECK(error.json_path() == "/payload/level");
        CHECK(error.event_type() == "score.recorded");
        const auto in_total = decode_error_of([&] {
            (void)codec.deserialize_event("score.recorded", 1,
                                          std::string(R"({"user_id":"u","level":1,"points":2,"total":)") + amount +
                                              R"(,"ratio":0.5})");
        });
        CHECK(in_total.kind() == Kind::wrong_type);
        CHECK(in_total.json_path() == "/payload/total");
    }
    SECTION("inside a container the element is named") {
        const auto error = decode_error_of([&] {
            (void)codec.deserialize_event("profile.tagged", 3,
                                          R"({"user_id":"u","tags":[],"counters":{"visits":1e19},)"
                                          R"("address":{"street":"s","city":"c"}})");
        });
        CHECK(error.kind() == Kind::wrong_type);
        CHECK(error.json_path() == "/payload/counters/visits");
    }
    SECTION("a large fraction in a floating-point field still decodes") {
        const auto event = codec.deserialize_event("score.recorded", 1,
                                                   R"({"user_id":"u","level":1,"points":2,"total":3,"ratio":-1e300})");
        CHECK(std::get<ScoreRecorded>(event).ratio == -1e300);
    }
    SECTION("a structural error next to a large fraction is a wrong type at one of the two fields") {
        const auto error = decode_error_of([] {
            (void)Codec{}.deserialize_event("score.recorded", 1,
                                            R"({"user_id":7,"level":1e300,"points":2,"total":3,"ratio":0.5})");
        });
        CHECK(error.kind() == Kind::wrong_type);
        CHECK((error.json_path() == "/payload/user_id" || error.json_path() == "/payload/level"));
    }
}

TEST_CASE("serialization: a recorded_at outside system_clock's range is an invalid value") {
    using namespace std::chrono;
    for (const char* text :
         {"9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2262-04-12T00:00:00Z", "1677-09-21T00:00:00Z"}) {
        INFO(text);
        CHECK_FALSE(orchestrix::from_rfc3339(text).has_value());
    }
    CHECK(orchestrix::from_rfc3339("2262-04-11T00:00:00Z").has_value());
    CHECK(orchestrix::from_rfc3339("1677-09-22T00:00:00Z").has_value());
    const Codec codec;
    nlohmann::json document = codec.encode(orchestrix::RecordedEvent<CodecEvent>{
        "s", 1, 1, SessionEnded{}, orchestrix::Metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}}});
    document["recorded_at"] = "9999-12-31T23:59:59Z";
    const auto error = decode_error_of([&] { (void)codec.decode_recorded(document); });
    CHECK(error.kind() == Kind::invalid_value);
    CHECK(error.json_path() == "/recorded_at");
}
