// Fuzz target: event JSON decoding. Arbitrary bytes go through every decoding entry point of JsonCodec;
// whatever decodes must encode again, decode to an equal value and encode to the same bytes. Anything but
// a DecodeError on the way (another exception, a crash, a sanitizer report) is a bug.
//
// Input: the first byte picks the entry point, the rest is the text:
//   0 parse_recorded  1 parse_envelope  2 parse (event document)
//   3 deserialize of the four-column form: <schema version byte> type \x1f payload \x1f metadata
//   4 parse_json alone (strict parser: no duplicate keys, depth and size limits)

#include "fuzz_check.hpp"
#include "support/codec_events.hpp"

#include <orchestrix/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using codec_domain::CodecEvent;
using orchestrix::DecodeError;
using orchestrix::JsonCodec;
using orchestrix_fuzz::require;

const JsonCodec<CodecEvent>& codec() {
    static const JsonCodec<CodecEvent> instance = [] {
        JsonCodec<CodecEvent> c;
        c.add_upcaster("profile.tagged", 1, [](nlohmann::json p) {
            p["counters"] = nlohmann::json::object();
            return p;
        });
        c.add_upcaster("profile.tagged", 2, [](nlohmann::json p) {
            p["address"] = {{"street", ""}, {"city", "unknown"}};
            return p;
        });
        c.add_rename("user.signed_up", "user.registered");
        return c;
    }();
    return instance;
}

void recorded(std::string_view text) {
    const auto first = codec().parse_recorded(text);
    const std::string encoded = codec().dump(first);
    const auto second = codec().parse_recorded(encoded);
    require(second == first, "parse_recorded(dump(r)) != r");
    require(codec().dump(second) == encoded, "dump of a recorded event is not deterministic");
}

void envelope(std::string_view text) {
    const auto first = codec().parse_envelope(text);
    const std::string encoded = codec().dump(first);
    const auto second = codec().parse_envelope(encoded);
    require(second == first, "parse_envelope(dump(e)) != e");
    require(codec().dump(second) == encoded, "dump of an envelope is not deterministic");
}

void event_document(std::string_view text) {
    const auto first = codec().parse(text);
    const std::string encoded = codec().dump(first);
    const auto second = codec().parse(encoded);
    require(second == first, "parse(dump(e)) != e");
    require(codec().dump(second) == encoded, "dump of an event is not deterministic");
}

void four_columns(std::string_view text) {
    if (text.empty()) return;
    const auto schema_version = static_cast<std::uint32_t>(static_cast<unsigned char>(text[0]));
    text.remove_prefix(1);
    const auto a = text.find('\x1f');
    if (a == std::string_view::npos) return;
    const auto b = text.find('\x1f', a + 1);
    if (b == std::string_view::npos) return;
    const orchestrix::SerializedEventView row(text.substr(0, a), schema_version, text.substr(a + 1, b - a - 1),
                                              text.substr(b + 1));
    const auto when = std::chrono::system_clock::time_point(std::chrono::microseconds(1714566896123456));
    const auto first = codec().deserialize(row, "stream-1", 3, 7, when);
    const orchestrix::SerializedEvent columns = codec().serialize(first.event, first.metadata);
    const auto second = codec().deserialize(columns, "stream-1", 3, 7, when);
    require(second == first, "deserialize(serialize(r)) != r");
    require(codec().serialize(second.event, second.metadata) == columns, "serialize is not deterministic");
}

void strict_json(std::string_view text) {
    const nlohmann::json first = orchestrix::parse_json(text);
    const std::string encoded = first.dump();
    require(orchestrix::parse_json(encoded) == first, "parse_json(dump(j)) != j");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 5) {
        case 0:
            recorded(text);
            break;
        case 1:
            envelope(text);
            break;
        case 2:
            event_document(text);
            break;
        case 3:
            four_columns(text);
            break;
        default:
            strict_json(text);
            break;
        }
    } catch (const DecodeError&) { // the one expected failure: typed, and nothing was produced
    }
    return 0;
}
