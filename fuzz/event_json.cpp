// Fuzz target: event JSON decoding. Arbitrary bytes go through every decoding entry point of JsonCodec;
// whatever decodes must encode again, decode to an equal value and encode to the same bytes. Anything but
// a DecodeError of the input itself (another exception, a failure to decode what the library encoded, a crash,
// a sanitizer report) is a bug.
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
#include <cstdio>
#include <cstdlib>
#include <optional>
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

// Decodes the fuzz input: the one step where a DecodeError is the expected outcome (typed, nothing produced).
template <class Decode>
auto decode_input(Decode decode) -> std::optional<decltype(decode())> {
    try {
        return decode();
    } catch (const DecodeError&) {
        return std::nullopt;
    }
}

// Decodes what the library itself encoded: a DecodeError here is a bug, and aborts with its message.
template <class Decode>
auto decode_own(Decode decode, const char* what) -> decltype(decode()) {
    try {
        return decode();
    } catch (const DecodeError& e) {
        std::fprintf(stderr, "fuzz property violated: %s threw DecodeError: %s\n", what, e.what());
        std::abort();
    }
}

void recorded(std::string_view text) {
    const auto input = decode_input([&] { return codec().parse_recorded(text); });
    if (!input) return;
    const auto& first = *input;
    const std::string encoded = codec().dump(first);
    const auto second = decode_own([&] { return codec().parse_recorded(encoded); }, "parse_recorded(dump(r))");
    require(second == first, "parse_recorded(dump(r)) != r");
    require(codec().dump(second) == encoded, "dump of a recorded event is not deterministic");
}

void envelope(std::string_view text) {
    const auto input = decode_input([&] { return codec().parse_envelope(text); });
    if (!input) return;
    const auto& first = *input;
    const std::string encoded = codec().dump(first);
    const auto second = decode_own([&] { return codec().parse_envelope(encoded); }, "parse_envelope(dump(e))");
    require(second == first, "parse_envelope(dump(e)) != e");
    require(codec().dump(second) == encoded, "dump of an envelope is not deterministic");
}

void event_document(std::string_view text) {
    const auto input = decode_input([&] { return codec().parse(text); });
    if (!input) return;
    const auto& first = *input;
    const std::string encoded = codec().dump(first);
    const auto second = decode_own([&] { return codec().parse(encoded); }, "parse(dump(e))");
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
    const auto input = decode_input([&] { return codec().deserialize(row, "stream-1", 3, 7, when); });
    if (!input) return;
    const auto& first = *input;
    const orchestrix::SerializedEvent columns = codec().serialize(first.event, first.metadata);
    const auto second =
        decode_own([&] { return codec().deserialize(columns, "stream-1", 3, 7, when); }, "deserialize(serialize(r))");
    require(second == first, "deserialize(serialize(r)) != r");
    require(codec().serialize(second.event, second.metadata) == columns, "serialize is not deterministic");
}

void strict_json(std::string_view text) {
    const auto input = decode_input([&] { return orchestrix::parse_json(text); });
    if (!input) return;
    const nlohmann::json& first = *input;
    const std::string encoded = first.dump();
    require(decode_own([&] { return orchestrix::parse_json(encoded); }, "parse_json(dump(j))") == first,
            "parse_json(dump(j)) != j");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    // No catch here: only decode_input may swallow a DecodeError; any other exception ends the run as a crash.
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
    return 0;
}
