#pragma once

// The events, the aggregate and the random payloads of the readable contract (readable_contract.hpp).

#include <orchestrix/json.hpp>
#include <orchestrix/orchestrix.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <variant>

namespace readable {

// An event whose payload can be anything JSON can hold: a string of any size, a document of any depth,
// a number.
struct Blob {
    static constexpr std::string_view type_name = "test.blob";
    std::string text;
    nlohmann::json doc;
    double number = 0;
    bool operator==(const Blob&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Blob, text, doc, number)

struct Noted {
    static constexpr std::string_view type_name = "test.noted";
    std::string note;
    bool operator==(const Noted&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Noted, note)

using Events = std::variant<Blob, Noted>;
using Envelope = orchestrix::EventEnvelope<Events>;

// An aggregate of those events, for the repository's side.
class Board : public orchestrix::AggregateRoot<Board, Events> {
public:
    void apply(const Blob& /*e*/) { ++count; }
    void apply(const Noted& /*e*/) { ++count; }
    int count = 0;
};

// A row written past the store, as another program, an older version or a damaged disk would leave it.
struct RawRow {
    orchestrix::position_t position = 0;
    std::string stream_id;
    orchestrix::stream_version_t version = 0;
    std::string event_id;
    std::string type;
    std::uint32_t schema_version = 1;
    std::string payload;
    std::string metadata;
};

// Nested arrays `depth` levels deep around one number: [[[...1...]]].
inline nlohmann::json nested(std::size_t depth) {
    nlohmann::json doc = 1;
    for (std::size_t i = 0; i < depth; ++i) doc = nlohmann::json::array({doc});
    return doc;
}

// The seed of the random payloads: ORCHESTRIX_TEST_SEED when set, a fresh one otherwise (printed on failure).
inline std::uint64_t seed() {
    if (const char* text = std::getenv("ORCHESTRIX_TEST_SEED")) return std::strtoull(text, nullptr, 10);
    return std::random_device{}();
}

// A random payload around one of the limits (bytes, depth), or with what JSON cannot carry (invalid UTF-8,
// NaN, infinity), or with what it can but a careless store might not (NUL, control characters, big numbers).
inline Blob random_blob(std::mt19937_64& rng, std::size_t max_bytes, std::size_t max_depth) {
    Blob b;
    std::uniform_int_distribution<int> kind(0, 5);
    switch (kind(rng)) {
    case 0: { // a text around the byte limit (the payload also holds its field names and the other fields)
        std::uniform_int_distribution<std::size_t> size(max_bytes - 80, max_bytes + 40);
        b.text.assign(size(rng), 'x');
        break;
    }
    case 1: { // a document around the depth limit (the payload object is one level itself)
        std::uniform_int_distribution<std::size_t> depth(max_depth - 3, max_depth + 2);
        b.doc = nested(depth(rng));
        break;
    }
    case 2: { // random bytes: often invalid UTF-8
        std::uniform_int_distribution<int> byte(0, 255);
        for (int i = 0; i < 8; ++i) b.text.push_back(static_cast<char>(byte(rng)));
        break;
    }
    case 3: { // numbers at the edges, NaN and infinity among them
        const double values[] = {std::numeric_limits<double>::quiet_NaN(),
                                 std::numeric_limits<double>::infinity(),
                                 std::numeric_limits<double>::max(),
                                 std::numeric_limits<double>::denorm_min(),
                                 -0.0,
                                 0.1,
                                 1e308};
        std::uniform_int_distribution<std::size_t> pick(0, std::size(values) - 1);
        b.number = values[pick(rng)];
        b.doc = nlohmann::json::array(
            {std::numeric_limits<std::uint64_t>::max(), std::numeric_limits<std::int64_t>::min(), 0.5});
        break;
    }
    case 4: { // NUL, control characters, quotes, non-ASCII
        static constexpr char tricky[] = "a\0b\x01\x1f\"\\/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
        b.text.assign(tricky, sizeof tricky - 1); // the embedded NUL included
        break;
    }
    default: { // a document with many keys, around the byte limit
        std::uniform_int_distribution<std::size_t> keys(max_bytes / 12 - 10, max_bytes / 12 + 10);
        const std::size_t n = keys(rng);
        for (std::size_t i = 0; i < n; ++i) b.doc["k" + std::to_string(100000 + i)] = 1;
        break;
    }
    }
    return b;
}

} // namespace readable
