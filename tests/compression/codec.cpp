// CompressingCodec (compression/codec.hpp) and the compressed payload's form (compression/payload.hpp), alone
// and over SqliteEventStore.

#include <orchestrix/compression.hpp>
#include <orchestrix/durable/store_base.hpp>
#ifdef ORCHESTRIX_COMPRESSION_TEST_CRYPTO
#include <orchestrix/crypto/codec.hpp>
#endif
#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/temp_dir.hpp"

#include <nlohmann/json.hpp>
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace notes {

struct NoteWritten {
    static constexpr std::string_view type_name = "note.written";
    std::string note_id;
    std::string text;
    bool operator==(const NoteWritten&) const = default;
};

// An event whose own payload has a "$zstd" member (which sorts first: '$' is before letters and digits).
struct Tagged {
    static constexpr std::string_view type_name = "note.tagged";
    std::string zstd;
    bool operator==(const Tagged&) const = default;
};

inline void to_json(nlohmann::json& j, const NoteWritten& e) { j = {{"note_id", e.note_id}, {"text", e.text}}; }
inline void from_json(const nlohmann::json& j, NoteWritten& e) {
    e.note_id = j.at("note_id").get<std::string>();
    e.text = j.at("text").get<std::string>();
}
inline void to_json(nlohmann::json& j, const Tagged& e) { j = {{"$zstd", e.zstd}}; }
inline void from_json(const nlohmann::json& j, Tagged& e) { e.zstd = j.at("$zstd").get<std::string>(); }

using NoteEvent = std::variant<NoteWritten, Tagged>;

} // namespace notes

namespace {

using notes::NoteEvent;
using notes::NoteWritten;
using notes::Tagged;
using orchestrix::CompressingCodec;
using orchestrix::DecodeError;
using orchestrix::ExpectedVersion;
using Codec = CompressingCodec<NoteEvent>;
using Plain = orchestrix::JsonCodec<NoteEvent>;
using Store = orchestrix::SqliteEventStore<NoteEvent, Codec>;
using Envelope = orchestrix::EventEnvelope<NoteEvent>;

const orchestrix::SqliteOptions fast{orchestrix::SqliteSynchronous::off, std::chrono::seconds(5)};

// A note of `size` bytes of text that compresses well (a sentence repeated).
NoteWritten long_note(std::string id, std::size_t size = 4000) {
    std::string text;
    while (text.size() < size) text += "the quick brown fox jumps over the lazy dog " + std::to_string(text.size() % 7);
    text.resize(size);
    return {std::move(id), std::move(text)};
}

// `size` printable ASCII characters (no quote, no backslash) drawn at random: 6.5 bits of entropy each, so
// zstd's frame in base64 is larger than the text.
std::string random_text(std::size_t size) {
    std::mt19937 random(42);
    std::uniform_int_distribution<int> pick('#', '~');
    std::string text;
    while (text.size() < size) {
        const char c = static_cast<char>(pick(random));
        if (c != '\\') text += c;
    }
    return text;
}

bool mentions(const std::exception& e, std::string_view words) {
    return std::string_view(e.what()).find(words) != std::string_view::npos;
}

Envelope envelope(NoteEvent event) { return Envelope(std::move(event)); }

// The frame text inside a compact wrapper.
std::string frame_text(const std::string& wrapper) {
    return nlohmann::json::parse(wrapper).at("$zstd").get<std::string>();
}

std::string frame_base64(const std::string& bytes);

// The frame of `base64` with its last byte (of the content checksum) altered, in base64.
std::string damage(const std::string& base64) {
    std::string bytes = *orchestrix::detail::compression::base64_decode(base64);
    bytes.back() = static_cast<char>(bytes.back() ^ 0x5A);
    return frame_base64(bytes);
}

std::string wrap(const std::string& base64) { return R"({"$zstd":")" + base64 + R"("})"; }

std::string frame_base64(const std::string& bytes) {
    return orchestrix::detail::compression::base64_encode(reinterpret_cast<const unsigned char*>(bytes.data()),
                                                          bytes.size());
}

// A zstd frame of `content` that does not declare its content size.
std::string frame_without_size(const std::string& content) {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    (void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    std::string out(ZSTD_compressBound(content.size()), '\0');
    const std::size_t size = ZSTD_compress2(cctx, out.data(), out.size(), content.data(), content.size());
    ZSTD_freeCCtx(cctx);
    REQUIRE(ZSTD_isError(size) == 0U);
    out.resize(size);
    REQUIRE(ZSTD_getFrameContentSize(out.data(), out.size()) == ZSTD_CONTENTSIZE_UNKNOWN);
    return out;
}

orchestrix::RawEventData raw_event(std::string payload) {
    const auto id = orchestrix::Uuid::generate().to_string();
    return {id, std::string(NoteWritten::type_name), 1, std::move(payload),
            R"({"causation_id":"","correlation_id":"","event_id":")" + id + R"("})"};
}

} // namespace

// ---- the durable stores' codec concepts, structurally ------------------------------------------------------

struct NoLimits { // a codec without read and write limits
    [[nodiscard]] orchestrix::SerializedEvent serialize(const NoteEvent&, const orchestrix::Metadata&) const;
    [[nodiscard]] orchestrix::RecordedEvent<NoteEvent> deserialize(const orchestrix::SerializedEventView&, std::string,
                                                                   orchestrix::stream_version_t, orchestrix::position_t,
                                                                   std::chrono::system_clock::time_point) const;
    [[nodiscard]] NoteEvent deserialize_event(std::string_view, std::uint32_t, std::string_view) const;
};

static_assert(orchestrix::event_codec<Codec, NoteEvent>);
static_assert(orchestrix::durable::raw_append_codec<Codec>);
static_assert(orchestrix::compressible_codec<Plain, NoteEvent>);
static_assert(orchestrix::compressible_codec<Codec, NoteEvent>);
static_assert(orchestrix::event_codec<NoLimits, NoteEvent>);
static_assert(!orchestrix::compressible_codec<NoLimits, NoteEvent>);

// ---- the stored form ------------------------------------------------------------------------------------------

TEST_CASE("compression base64: canonical padded text round-trips and anything else is refused") {
    using orchestrix::detail::compression::base64_decode;
    for (const std::string& bytes : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                                     std::string("foob"), std::string("\0\xff\x10", 3)}) {
        const std::string text = frame_base64(bytes);
        CHECK(text.size() % 4 == 0);
        CHECK(base64_decode(text) == bytes);
    }
    CHECK(frame_base64("foobar") == "Zm9vYmFy");
    CHECK(frame_base64("fo") == "Zm8=");
    CHECK_FALSE(base64_decode("Zm8"));      // not a multiple of 4
    CHECK_FALSE(base64_decode("Zm9=Zm8=")); // padding before the end
    CHECK_FALSE(base64_decode("Zm9v*m8=")); // outside the alphabet
    CHECK_FALSE(base64_decode("Zm9="));     // non-zero bits after the last byte
    CHECK_FALSE(base64_decode("Z==="));
}

TEST_CASE("compression payload: compress_payload wraps one frame that decompress_payload gives back") {
    const std::string text = nlohmann::json(long_note("n-1")).dump();
    const std::string stored = orchestrix::compress_payload(text, 3);
    CHECK(stored.starts_with(R"({"$zstd":")"));
    CHECK(stored.size() < text.size());
    CHECK(nlohmann::json::parse(stored).is_object());
    CHECK(orchestrix::is_compressed_payload(stored));
    CHECK(orchestrix::decompress_payload(stored) == text);
    CHECK(orchestrix::compress_payload(text, 3) == stored); // the same text and level, the same bytes

    // Plain payloads are their own text.
    CHECK_FALSE(orchestrix::decompress_payload(text));
    CHECK_FALSE(orchestrix::decompress_payload("{}"));
    CHECK_FALSE(orchestrix::decompress_payload(R"({"note_id":"$zstd"})"));
    CHECK_FALSE(orchestrix::is_compressed_payload(R"({"$zstd":1})"));
    CHECK_FALSE(orchestrix::is_compressed_payload(R"({"$zstd":"a","b":1})"));
    CHECK_FALSE(orchestrix::is_compressed_payload(R"(["$zstd"])"));

    // Any spacing of the one-member object is the same wrapper.
    const std::string spaced = R"( { "$zstd" :  ")" + frame_text(stored) + "\" }";
    CHECK(orchestrix::decompress_payload(spaced) == text);

    CHECK_THROWS_AS(orchestrix::compress_payload(text, ZSTD_maxCLevel() + 1), orchestrix::InvalidArgumentError);
}

TEST_CASE("compression payload: a damaged frame is a DecodeError at /payload naming the type") {
    const std::string text = nlohmann::json(long_note("n-1")).dump();
    const std::string good = frame_text(orchestrix::compress_payload(text, 3));
    const auto refused = [&](const std::string& stored, DecodeError::Kind kind, std::string_view words) {
        try {
            (void)orchestrix::decompress_payload(stored, 1 << 20, "note.written");
            FAIL("decompressed " << stored);
        } catch (const DecodeError& e) {
            CHECK(e.kind() == kind);
            CHECK(e.json_path() == "/payload");
            CHECK(e.event_type() == "note.written");
            CHECK(mentions(e, std::string(words)));
        }
    };
    refused(wrap(damage(good)), DecodeError::Kind::invalid_value, "damaged zstd frame");
    refused(wrap(good.substr(0, good.size() - 8)), DecodeError::Kind::invalid_value, "");
    refused(wrap("not base64!"), DecodeError::Kind::invalid_value, "base64");
    refused(wrap(frame_base64("not a zstd frame")), DecodeError::Kind::invalid_value, "not a zstd frame");
    const std::string bytes = *orchestrix::detail::compression::base64_decode(good);
    refused(wrap(frame_base64(bytes + bytes)), DecodeError::Kind::invalid_value, "after its zstd frame");
    refused(wrap(frame_base64(frame_without_size(text))), DecodeError::Kind::invalid_value, "content size");
}

TEST_CASE("compression payload: a frame that would decompress past the read limit is refused unread") {
    // 64 MiB of zeros: a frame of a few kilobytes.
    const std::string zeros(std::size_t{64} << 20U, '0');
    const std::string bomb = orchestrix::compress_payload(R"({"text":")" + zeros + "\"}", 1);
    REQUIRE(bomb.size() < 10000);
    try {
        (void)orchestrix::decompress_payload(bomb, std::size_t{1} << 20U, "note.written");
        FAIL("the bomb decompressed");
    } catch (const DecodeError& e) {
        CHECK(e.kind() == DecodeError::Kind::too_large);
        CHECK(mentions(e, "67108875 bytes; the limit is 1048576"));
    }
    // A wrapper text over the limit is refused before it is decoded.
    CHECK_THROWS_AS(orchestrix::decompress_payload(bomb, 100), DecodeError);

    // A frame whose header claims a terabyte: refused by that claim, so nothing of that size is allocated (an
    // allocation would throw std::bad_alloc, not DecodeError). The header's 2-byte content size becomes an
    // 8-byte one (frame header descriptor: content size flag 3, single segment, checksum).
    const std::string small = R"({"text":")" + std::string(1000, 'y') + "\"}";
    std::string frame =
        *orchestrix::detail::compression::base64_decode(frame_text(orchestrix::compress_payload(small)));
    REQUIRE(static_cast<unsigned char>(frame[4]) == 0x64U);
    std::string claimed = frame.substr(0, 4) + '\xE4';
    for (int i = 0; i < 8; ++i) claimed += static_cast<char>(i == 5 ? 1 : 0); // 2^40, little endian
    claimed += frame.substr(7);
    REQUIRE(ZSTD_getFrameContentSize(claimed.data(), claimed.size()) == (1ULL << 40U));
    try {
        (void)orchestrix::decompress_payload(wrap(frame_base64(claimed)), std::size_t{1} << 20U, "note.written");
        FAIL("a frame claiming a terabyte was decompressed");
    } catch (const DecodeError& e) {
        CHECK(e.kind() == DecodeError::Kind::too_large);
        CHECK(mentions(e, "1099511627776 bytes"));
    }
}

// ---- the codec --------------------------------------------------------------------------------------------

TEST_CASE("compression CompressingCodec: payloads below the threshold are stored as the inner codec writes them") {
    const Codec codec;
    const Plain plain;
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), "c", "d", {}, {}};
    const NoteEvent small = NoteWritten{"n-1", "short"};
    CHECK(codec.serialize(small, metadata) == plain.serialize(small, metadata));
    CHECK(codec.compression_options().threshold == 1024);
    CHECK(codec.compression_options().level == 3);

    const NoteEvent large = long_note("n-2");
    const orchestrix::SerializedEvent stored = codec.serialize(large, metadata);
    const orchestrix::SerializedEvent unpacked = plain.serialize(large, metadata);
    CHECK(stored.type == unpacked.type);
    CHECK(stored.metadata == unpacked.metadata); // never compressed
    CHECK(orchestrix::is_compressed_payload(stored.payload));
    CHECK(stored.payload.size() * 5 < unpacked.payload.size());
    CHECK(orchestrix::decompress_payload(stored.payload) == unpacked.payload);
    CHECK(codec.deserialize_event(stored.type, 1, stored.payload) == large);
    const auto recorded = codec.deserialize(stored, "notes", 3, 7, {});
    CHECK(recorded.event == large);
    CHECK(recorded.metadata.event_id == metadata.event_id);
    CHECK(recorded.version == 3);
    // Both forms read alike.
    CHECK(codec.deserialize_event(unpacked.type, 1, unpacked.payload) == large);
}

TEST_CASE("compression CompressingCodec: a payload that compression would not make smaller is stored plain") {
    const Codec codec;
    const NoteEvent noise = NoteWritten{"n-1", random_text(4000)};
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    const auto stored = codec.serialize(noise, metadata);
    CHECK(stored.payload == Plain{}.serialize(noise, metadata).payload);
    CHECK(orchestrix::compress_payload(stored.payload).size() >= stored.payload.size());
}

TEST_CASE("compression CompressingCodec: the threshold counts the JSON text's bytes") {
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    const NoteEvent event = long_note("n-1", 300);
    const std::size_t size = Plain{}.serialize(event, metadata).payload.size();
    CHECK(orchestrix::is_compressed_payload(Codec({size, 3}).serialize(event, metadata).payload));
    CHECK_FALSE(orchestrix::is_compressed_payload(Codec({size + 1, 3}).serialize(event, metadata).payload));
    CHECK(orchestrix::is_compressed_payload(Codec({0, 3}).serialize(event, metadata).payload));
    // The largest threshold writes everything plain and still reads compressed payloads.
    const Codec never({static_cast<std::size_t>(-1), 3});
    const auto packed = Codec().serialize(long_note("n-2"), metadata);
    CHECK_FALSE(orchestrix::is_compressed_payload(never.serialize(long_note("n-2"), metadata).payload));
    CHECK(never.deserialize_event(packed.type, 1, packed.payload) == NoteEvent{long_note("n-2")});
}

TEST_CASE("compression CompressingCodec: the level is zstd's") {
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    std::string text;
    for (int i = 0; i < 2000; ++i) text += std::to_string(i * 7919 % 1000) + ",";
    const NoteEvent event = NoteWritten{"n-1", text};
    const std::string json = Plain{}.serialize(event, metadata).payload;
    for (const int level : {-5, 0, 1, 3, 19, ZSTD_maxCLevel()}) {
        const Codec codec({0, level});
        const auto stored = codec.serialize(event, metadata);
        CHECK(stored.payload == orchestrix::compress_payload(json, level));
        CHECK(codec.deserialize_event(stored.type, 1, stored.payload) == event);
    }
    CHECK(Codec({0, 19}).serialize(event, metadata).payload.size() <
          Codec({0, 1}).serialize(event, metadata).payload.size());
    // The fastest level barely compresses: what it would not make smaller is stored plain, and reads.
    const Codec fastest({0, ZSTD_minCLevel()});
    const auto stored = fastest.serialize(event, metadata);
    CHECK(stored.payload.size() <= json.size());
    CHECK(fastest.deserialize_event(stored.type, 1, stored.payload) == event);
}

TEST_CASE("compression CompressingCodec: a level zstd does not have is refused") {
    for (const int level : {ZSTD_maxCLevel() + 1, ZSTD_minCLevel() - 1, 1000}) {
        try {
            const Codec codec({1024, level});
            FAIL("accepted level " << level);
        } catch (const orchestrix::InvalidArgumentError& e) {
            CHECK(e.argument() == "options");
            CHECK(mentions(e, std::to_string(level)));
        }
    }
}

TEST_CASE("compression CompressingCodec: write limits hold for the uncompressed JSON") {
    orchestrix::EncodeOptions write;
    write.max_bytes = 2000;
    const Codec codec(Plain({}, write));
    const NoteEvent large = long_note("n-1", 3000); // compresses to far less than 2000 bytes
    try {
        (void)codec.serialize(large, {orchestrix::Uuid::generate(), {}, {}, {}, {}});
        FAIL("a payload over the write limit was written");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::too_large);
        CHECK(e.limit() == 2000);
    }
    CHECK(codec.write_options().max_bytes == 2000);
}

TEST_CASE("compression CompressingCodec: the read limit bounds the decompressed text") {
    orchestrix::DecodeOptions read;
    read.max_bytes = 3000;
    const Codec writer;
    const Codec reader(Plain(read, {}));
    const auto stored = writer.serialize(long_note("n-1", 5000), {orchestrix::Uuid::generate(), {}, {}, {}, {}});
    REQUIRE(stored.payload.size() < 3000);
    try {
        (void)reader.deserialize_event(stored.type, 1, stored.payload);
        FAIL("decoded past the read limit");
    } catch (const DecodeError& e) {
        CHECK(e.kind() == DecodeError::Kind::too_large);
        CHECK(e.event_type() == "note.written");
        CHECK(e.json_path() == "/payload");
    }
}

TEST_CASE("compression CompressingCodec: a payload of the wrapper's own shape is stored compressed and reads back") {
    const Codec codec;
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), {}, {}, {}, {}};
    // Small, and a valid wrapper of another payload: read plain, it would be taken for that payload.
    const std::string other = orchestrix::compress_payload(R"({"note_id":"x","text":"y"})");
    for (const std::string& value : {frame_text(other), std::string("plain words"), std::string()}) {
        const NoteEvent event = Tagged{value};
        const auto stored = codec.serialize(event, metadata);
        CHECK(Plain{}.serialize(event, metadata).payload.starts_with(R"({"$zstd":)"));
        CHECK(orchestrix::is_compressed_payload(stored.payload));
        CHECK(orchestrix::decompress_payload(stored.payload) == Plain{}.serialize(event, metadata).payload);
        CHECK(codec.deserialize_event(stored.type, 1, stored.payload) == event);
    }
    // Too large in that form: refused, naming the event.
    orchestrix::EncodeOptions write;
    write.max_bytes = 1000;
    const Codec tight(Plain({}, write));
    const NoteEvent noisy = Tagged{random_text(950)};
    REQUIRE(Plain({}, write).serialize(noisy, metadata).payload.size() <= 1000);
    try {
        (void)tight.serialize(noisy, metadata);
        FAIL("stored a lookalike payload plain or over the limit");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.kind() == orchestrix::EncodeError::Kind::too_large);
        CHECK(e.event_type() == "note.tagged");
        CHECK(mentions(e, "$zstd"));
    }
}

// ---- over SqliteEventStore ----------------------------------------------------------------------------------

TEST_CASE("compression over SQLite: every reader gets back what was appended, compressed or not") {
    test_support::TempDir dir("orchestrix-compression");
    Store store(dir.file("events.db"), fast);
    const std::vector<Envelope> batch{envelope(NoteWritten{"n-1", "short"}), envelope(long_note("n-1")),
                                      envelope(Tagged{"x"})};
    const auto result = store.append("notes-1", std::span<const Envelope>(batch), ExpectedVersion::no_stream());
    CHECK(result.written);
    (void)store.append("notes-2", {envelope(long_note("n-2", 20000))}, ExpectedVersion::no_stream());

    const auto stream = store.read_stream("notes-1");
    REQUIRE(stream.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(stream[i].event == batch[i].event);
        CHECK(stream[i].metadata.event_id == batch[i].metadata.event_id);
    }
    const auto all = store.read_all();
    REQUIRE(all.size() == 4);
    CHECK(all[3].event == NoteEvent{long_note("n-2", 20000)});
    std::vector<NoteEvent> visited;
    (void)store.visit_stream("notes-1", 2,
                             [&](const orchestrix::RecordedEventView<NoteEvent>& e) { visited.push_back(e.event()); });
    CHECK(visited == std::vector<NoteEvent>{batch[1].event, batch[2].event});
    visited.clear();
    (void)store.visit_all(1, [&](const orchestrix::RecordedEventView<NoteEvent>& e) { visited.push_back(e.event()); });
    CHECK(visited.size() == 4);

    // As stored: the small payload plain, the others compressed, every one a JSON object.
    const auto raw = store.read_all_raw();
    REQUIRE(raw.size() == 4);
    CHECK(raw[0].payload == R"({"note_id":"n-1","text":"short"})");
    CHECK(orchestrix::is_compressed_payload(raw[1].payload));
    CHECK(orchestrix::is_compressed_payload(raw[2].payload));
    CHECK(orchestrix::is_compressed_payload(raw[3].payload));
    CHECK(raw[3].payload.size() < 1000);
    for (const auto& row : raw) CHECK(nlohmann::json::parse(row.payload).is_object());
}

TEST_CASE("compression over SQLite: an idempotent retry of compressed events is recognised") {
    test_support::TempDir dir("orchestrix-compression");
    Store store(dir.file("events.db"), fast);
    const std::vector<Envelope> batch{envelope(long_note("n-1")), envelope(long_note("n-2"))};
    const auto first = store.append("notes", std::span<const Envelope>(batch), ExpectedVersion::no_stream());
    const auto again = store.append("notes", std::span<const Envelope>(batch), ExpectedVersion::no_stream());
    CHECK_FALSE(again.written);
    CHECK(again.stream_version == first.stream_version);
    CHECK(again.first_position == first.first_position);
    CHECK(store.read_all().size() == 2);

    // The same ids with another payload are not a retry.
    std::vector<Envelope> changed = batch;
    changed[1].event = long_note("n-3");
    CHECK_THROWS_AS(store.append("notes", std::span<const Envelope>(changed), ExpectedVersion::no_stream()),
                    orchestrix::IdempotencyError);

    // Retried through another store on the same file (another process, say): the same bytes.
    Store other(dir.file("events.db"), fast);
    CHECK_FALSE(other.append("notes", std::span<const Envelope>(batch), ExpectedVersion::no_stream()).written);
    CHECK(other.read_all().size() == 2);

    // Retried after the settings changed (another level, or compression off): other bytes, the same events.
    Store relevelled(dir.file("events.db"), fast, Codec({1024, 19}));
    CHECK_FALSE(relevelled.append("notes", std::span<const Envelope>(batch), ExpectedVersion::no_stream()).written);
    Store off(dir.file("events.db"), fast, Codec({static_cast<std::size_t>(-1), 3}));
    CHECK_FALSE(off.append("notes", std::span<const Envelope>(batch), ExpectedVersion::no_stream()).written);
    CHECK_THROWS_AS(off.append("notes", std::span<const Envelope>(changed), ExpectedVersion::no_stream()),
                    orchestrix::IdempotencyError);
    CHECK(off.read_all().size() == 2);
}

TEST_CASE("compression over SQLite: a store written plain is read with compression on, and the reverse") {
    test_support::TempDir dir("orchestrix-compression");
    const std::string path = dir.file("events.db");
    {
        orchestrix::SqliteEventStore<NoteEvent> plain(path, fast);
        (void)plain.append("notes", {envelope(long_note("n-1"))}, ExpectedVersion::no_stream());
    }
    {
        Store compressing(path, fast);
        (void)compressing.append("notes", {envelope(long_note("n-2"))}, ExpectedVersion::exact(1));
        const auto events = compressing.read_stream("notes");
        REQUIRE(events.size() == 2);
        CHECK(events[0].event == NoteEvent{long_note("n-1")});
        CHECK(events[1].event == NoteEvent{long_note("n-2")});
    }
    // Compression turned off for writing (the largest threshold): the compressed event still reads.
    Store stopped(path, fast, Codec({static_cast<std::size_t>(-1), 3}));
    (void)stopped.append("notes", {envelope(long_note("n-3"))}, ExpectedVersion::exact(2));
    const auto raw = stopped.read_all_raw();
    CHECK_FALSE(orchestrix::is_compressed_payload(raw[0].payload));
    CHECK(orchestrix::is_compressed_payload(raw[1].payload));
    CHECK_FALSE(orchestrix::is_compressed_payload(raw[2].payload));
    CHECK(stopped.read_stream("notes").size() == 3);
}

TEST_CASE("compression over SQLite: a damaged or oversized frame is a StoredEventDecodeError naming the event") {
    test_support::TempDir dir("orchestrix-compression");
    orchestrix::DecodeOptions read;
    read.max_bytes = 8192;
    Store store(dir.file("events.db"), fast, Codec(Plain(read, {})));
    (void)store.append("notes", {envelope(long_note("n-1"))}, ExpectedVersion::no_stream());
    const std::string damaged = damage(frame_text(store.read_all_raw()[0].payload));
    const std::string bomb = orchestrix::compress_payload(R"({"text":")" + std::string(1 << 20, 'x') + "\"}");
    const std::vector<orchestrix::RawEventData> rows{raw_event(wrap(damaged)), raw_event(bomb)};
    (void)store.append_raw("notes", rows, ExpectedVersion::exact(1));
    // A sound compressed payload appended raw reads like any other.
    const std::string sound = orchestrix::compress_payload(R"({"note_id":"n-4","text":"raw"})");
    (void)store.append_raw("notes", std::vector<orchestrix::RawEventData>{raw_event(sound)}, ExpectedVersion::exact(3));
    CHECK(store.read_all(4).at(0).event == NoteEvent{NoteWritten{"n-4", "raw"}});

    for (const orchestrix::position_t position : {orchestrix::position_t{2}, orchestrix::position_t{3}}) {
        try {
            (void)store.read_all(position, 1);
            FAIL("decoded position " << position);
        } catch (const orchestrix::StoredEventDecodeError& e) {
            CHECK(e.position() == position);
            CHECK(e.stream_id() == "notes");
            CHECK(e.version() == position);
            CHECK(e.event_type() == "note.written");
            CHECK(e.json_path() == "/payload");
            CHECK(e.kind() == (position == 2 ? DecodeError::Kind::invalid_value : DecodeError::Kind::too_large));
        }
    }
    CHECK(store.read_stream("notes", 1, 1).size() == 1);
    CHECK(store.read_all_raw().size() == 4); // raw readers take every row as it is stored
}

TEST_CASE("compression over SQLite: threads read and write compressed events at once") {
    test_support::TempDir dir("orchestrix-compression");
    Store store(dir.file("events.db"), fast);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            const std::string stream = "notes-" + std::to_string(t);
            for (int i = 0; i < 20; ++i) {
                (void)store.append(stream, {envelope(long_note(stream + "-" + std::to_string(i)))},
                                   ExpectedVersion::exact(static_cast<orchestrix::stream_version_t>(i)));
                (void)store.read_stream(stream);
            }
        });
    }
    for (auto& thread : threads) thread.join();
    for (int t = 0; t < 4; ++t) {
        const std::string stream = "notes-" + std::to_string(t);
        const auto events = store.read_stream(stream);
        REQUIRE(events.size() == 20);
        CHECK(events[19].event == NoteEvent{long_note(stream + "-19")});
    }
}

#ifdef ORCHESTRIX_COMPRESSION_TEST_CRYPTO
// Stacked on crypto-shredding (tests/CMakeLists.txt defines ORCHESTRIX_COMPRESSION_TEST_CRYPTO and links
// orchestrix::crypto where it was made): personal data sealed first, then the payload compressed.

namespace notes {

struct ClientNoted {
    static constexpr std::string_view type_name = "note.client";
    orchestrix::Personal<std::string> name;
    std::string text;
    bool operator==(const ClientNoted&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ClientNoted, name, text)
using ClientEvent = std::variant<ClientNoted>;

} // namespace notes

TEST_CASE("compression over SQLite: stacked on a ShreddingCodec, compressed events read back and forget erases") {
    using Shredding = orchestrix::ShreddingCodec<notes::ClientEvent, orchestrix::InMemoryKeyStore>;
    using Stacked = CompressingCodec<notes::ClientEvent, Shredding>;
    test_support::TempDir dir("orchestrix-compression");
    orchestrix::InMemoryKeyStore keys;
    orchestrix::SqliteEventStore<notes::ClientEvent, Stacked> store(dir.file("events.db"), fast,
                                                                    Stacked(Shredding(keys)));
    const notes::ClientEvent event = notes::ClientNoted{{"client-7", "Ada Lovelace"}, long_note("n-1").text};
    const orchestrix::EventEnvelope<notes::ClientEvent> e(event);
    (void)store.append("clients", std::span(&e, 1), ExpectedVersion::no_stream());
    CHECK_FALSE(store.append("clients", std::span(&e, 1), ExpectedVersion::no_stream()).written); // a retry

    const auto raw = store.read_all_raw();
    REQUIRE(raw.size() == 1);
    CHECK(orchestrix::is_compressed_payload(raw[0].payload));
    const std::string inside = *orchestrix::decompress_payload(raw[0].payload);
    CHECK(inside.find("$personal") != std::string::npos);
    CHECK(inside.find("Ada Lovelace") == std::string::npos);
    CHECK(store.read_stream("clients").at(0).event == event);

    (void)store.codec().inner().forget("client-7");
    const auto after = store.read_stream("clients");
    REQUIRE(after.size() == 1);
    CHECK(std::get<notes::ClientNoted>(after[0].event).name.is_erased());
    CHECK(std::get<notes::ClientNoted>(after[0].event).text == long_note("n-1").text);
}
#endif
