// The codec's write limits (json/document.hpp EncodeOptions, JsonCodec::serialize): what serialize
// returns, deserialize reads; everything else is an EncodeError naming the event, the field and the limit.

#include <orchestrix/json.hpp>

#include "support/catch.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace write_limits {

struct Note {
    static constexpr std::string_view type_name = "test.note";
    std::string text;
    nlohmann::json doc;
    bool operator==(const Note&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Note, text, doc)

// A conversion pair that disagrees: to_json writes the level as text, from_json reads a number.
struct Level {
    static constexpr std::string_view type_name = "test.level";
    int level = 0;
    bool operator==(const Level&) const = default;
};
inline void to_json(nlohmann::json& j, const Level& e) { j = nlohmann::json{{"level", std::to_string(e.level)}}; }
inline void from_json(const nlohmann::json& j, Level& e) { e.level = j.at("level").get<int>(); }

using Events = std::variant<Note, Level>;

} // namespace write_limits

using write_limits::Events;
using write_limits::Note;

TEST_CASE("write limits: what serialize returns, deserialize reads", "[json][write]") {
    const orchestrix::JsonCodec<Events> codec;
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), "corr", "cause", {}, {}};
    const Note note{"h\xc3\xa9llo", nlohmann::json::array({1, 2.5, "x"})};
    const auto row = codec.serialize(Events{note}, metadata);
    const auto back = codec.deserialize(orchestrix::SerializedEventView(row), "s", 1, 1, {});
    CHECK(back.event == Events{note});
    CHECK(back.metadata.correlation_id == "corr");
}

TEST_CASE("write limits: a text over max_bytes is too_large, naming the field and the limit", "[json][write]") {
    orchestrix::DecodeOptions read;
    read.max_bytes = 100;
    const orchestrix::JsonCodec<Events> codec(read);
    CHECK(codec.write_options().max_bytes == 100);
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    CHECK_NOTHROW(codec.serialize(Events{Note{std::string(60, 'x'), nullptr}}, metadata));
    try {
        (void)codec.serialize(Events{Note{std::string(100, 'x'), nullptr}}, metadata);
        FAIL("a payload over the limit was serialized");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::too_large);
        CHECK(e.event_type() == "test.note");
        CHECK(e.json_path() == "/payload");
        CHECK(e.limit() == 100);
    }
    // The metadata text has the same limit.
    const orchestrix::Metadata long_ids{orchestrix::Uuid::generate(), std::string(80, 'c'), {}, {}, {}};
    try {
        (void)codec.serialize(Events{Note{"x", nullptr}}, long_ids);
        FAIL("metadata over the limit was serialized");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::too_large);
        CHECK(e.json_path() == "/metadata");
    }
}

TEST_CASE("write limits: nesting over max_depth is too_deep at the first value too deep", "[json][write]") {
    orchestrix::DecodeOptions read;
    read.max_depth = 4;
    const orchestrix::JsonCodec<Events> codec(read);
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    using nlohmann::json;
    // The payload object is level 1, the array in "doc" level 2: two more arrays reach 4.
    CHECK_NOTHROW(codec.serialize(Events{Note{"", json::array({json::array({json::array({1})})})}}, metadata));
    try {
        (void)codec.serialize(Events{Note{"", json::array({json::array({json::array({json::array({1})})})})}},
                              metadata);
        FAIL("a payload nested 5 deep was serialized");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::too_deep);
        CHECK(e.limit() == 4);
        CHECK(e.json_path() == "/payload/doc/0/0/0");
    }
}

TEST_CASE("write limits: an encoding the codec would not read back is not_decodable", "[json][write]") {
    const orchestrix::JsonCodec<Events> codec;
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    try {
        (void)codec.serialize(Events{write_limits::Level{3}}, metadata);
        FAIL("an event whose to_json and from_json disagree was serialized");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::not_decodable);
        CHECK(e.event_type() == "test.level");
        CHECK_THAT(e.what(), Catch::Matchers::Contains("could not be read back"));
    }
    // With the check off, serialize writes it (and a reader would refuse it).
    orchestrix::EncodeOptions write;
    write.verify_decodable = false;
    const orchestrix::JsonCodec<Events> unchecked({}, write);
    const auto row = unchecked.serialize(Events{write_limits::Level{3}}, metadata);
    CHECK_THROWS_AS(unchecked.deserialize(orchestrix::SerializedEventView(row), "s", 1, 1, {}),
                    orchestrix::DecodeError);
}

TEST_CASE("write limits: invalid UTF-8 and NaN are not_representable", "[json][write]") {
    const orchestrix::JsonCodec<Events> codec;
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    try {
        (void)codec.serialize(Events{Note{"\xc3", nullptr}}, metadata);
        FAIL("invalid UTF-8 was serialized");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::not_representable);
        CHECK(e.limit() == 0);
    }
}

TEST_CASE("write limits: a write limit above the read limit is refused, 0 means the read limit", "[json][write]") {
    orchestrix::DecodeOptions read;
    read.max_depth = 10;
    orchestrix::EncodeOptions write;
    write.max_depth = 11;
    CHECK_THROWS_AS(orchestrix::JsonCodec<Events>(read, write), orchestrix::InvalidArgumentError);
    write.max_depth = 9;
    const orchestrix::JsonCodec<Events> codec(read, write);
    CHECK(codec.write_options().max_depth == 9);
    CHECK(codec.write_options().max_bytes == read.max_bytes);
}
