#pragma once

// CompressingCodec: a durable store's codec that stores large payloads compressed with zstd and reads
// compressed and plain payloads alike (docs/lifecycle.md, "Compression").

#include <orchestrix/compression/payload.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/errors.hpp>

#include <zstd.h>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

/// When and how `CompressingCodec` compresses.
struct CompressionOptions {
    /// Payloads whose JSON text is at least this many bytes are stored compressed, if that makes them
    /// smaller. 0 tries every payload; a threshold above the write limit (`std::size_t(-1)`) stores every
    /// payload plain and still reads compressed ones: the way to stop compressing a store.
    std::size_t threshold = 1024;
    /// The zstd level: 1 (fastest) to `ZSTD_maxCLevel()` (22), negative levels down to `ZSTD_minCLevel()`
    /// for faster and larger output, 0 for zstd's default (3).
    int level = 3;
};

/// What `CompressingCodec` needs of the codec it wraps: the columns of a durable store's codec
/// (`serialize`, `deserialize`, `deserialize_event`), its read and write limits and its metadata reader
/// (`JsonCodec<Events>` has them all).
template <class C, class Events>
concept compressible_codec = requires(const C& codec, const Events& event, const Metadata& metadata,
                                      const SerializedEventView& row, std::string stream, stream_version_t version,
                                      position_t position, std::chrono::system_clock::time_point time,
                                      std::string_view text, std::uint32_t schema_version) {
    { codec.serialize(event, metadata) } -> std::same_as<SerializedEvent>;
    { codec.deserialize(row, stream, version, position, time) } -> std::same_as<RecordedEvent<Events>>;
    { codec.deserialize_event(text, schema_version, text) } -> std::same_as<Events>;
    { codec.options() } -> std::convertible_to<DecodeOptions>;
    { codec.write_options() } -> std::convertible_to<EncodeOptions>;
    { codec.deserialize_metadata(text, text) } -> std::same_as<Metadata>;
};

/// A durable store's codec (SQLite, PostgreSQL: `SqliteEventStore<Events, CompressingCodec<Events>>`) that
/// wraps `Inner` and stores each payload whose JSON text is at least `CompressionOptions::threshold` bytes
/// as one zstd frame, `{"$zstd":"<base64 of the frame>"}` (`compress_payload`), when that is smaller;
/// smaller payloads are stored as `Inner` writes them. Every read decompresses what is compressed, so a
/// store may hold both, and turning compression on or off needs no migration.
///
/// - The payload column stays a JSON object text: raw readers, CloudEvents export and `verify` take it.
/// - A payload that itself has the wrapper's shape (an object whose first member is `"$zstd"`) is always
///   stored compressed, so that it reads back as itself (`EncodeError{too_large}` if that form would be
///   over the write limit).
/// - Write limits hold for the uncompressed JSON (`Inner::serialize` checks them); reads are bounded by
///   `Inner`'s read limit `max_bytes`: a frame that would decompress to more is refused before anything is
///   allocated for it. A damaged or oversized frame is a `DecodeError` at `/payload` (a store reports it as
///   `StoredEventDecodeError` naming the event).
/// - The metadata column is never compressed.
///
/// Read-only after construction and safe to share between threads (each thread keeps its own zstd context).
template <event_variant Events, class Inner = JsonCodec<Events>>
class CompressingCodec {
    static_assert(compressible_codec<Inner, Events>,
                  "orchestrix::CompressingCodec<Events, Inner>: Inner must be a durable store's codec with "
                  "options(), write_options() and deserialize_metadata(text, type), as JsonCodec<Events> is");

public:
    using event_type = Events;
    using inner_type = Inner;

    /// Wraps a default `Inner` (`JsonCodec<Events>`: the default read and write limits).
    explicit CompressingCodec(CompressionOptions options = {}) requires std::default_initializable<Inner>
        : CompressingCodec(Inner{}, options) {}

    /// Wraps `inner`. Throws `InvalidArgumentError("options")` for a level outside `ZSTD_minCLevel()` to
    /// `ZSTD_maxCLevel()`.
    explicit CompressingCodec(Inner inner, CompressionOptions options = {})
        : inner_(std::move(inner)), options_(options) {
        if (options_.level < ZSTD_minCLevel() || options_.level > ZSTD_maxCLevel()) {
            throw InvalidArgumentError("options", "CompressingCodec: the zstd level " + std::to_string(options_.level) +
                                                      " is not between " + std::to_string(ZSTD_minCLevel()) + " and " +
                                                      std::to_string(ZSTD_maxCLevel()));
        }
    }

    /// The wrapped codec.
    [[nodiscard]] const Inner& inner() const noexcept { return inner_; }
    /// The threshold and level.
    [[nodiscard]] const CompressionOptions& compression_options() const noexcept { return options_; }
    /// The read limits: `Inner`'s (`max_bytes` bounds the decompressed text).
    [[nodiscard]] decltype(auto) options() const noexcept(noexcept(std::declval<const Inner&>().options())) {
        return inner_.options();
    }
    /// The write limits: `Inner`'s, held by the uncompressed JSON.
    [[nodiscard]] decltype(auto) write_options() const
        noexcept(noexcept(std::declval<const Inner&>().write_options())) {
        return inner_.write_options();
    }

    /// The four columns of an event: `Inner`'s, the payload compressed as the class comment says. Throws what
    /// `Inner::serialize` throws (`EncodeError` for a payload over the write limits, ...).
    [[nodiscard]] SerializedEvent serialize(const Events& event, const Metadata& metadata) const {
        SerializedEvent out = inner_.serialize(event, metadata);
        const bool lookalike = detail::compression::opens_like_wrapper(out.payload);
        if (!lookalike && out.payload.size() < options_.threshold) return out;
        std::string packed = compress_payload(out.payload, options_.level);
        if (lookalike) {
            const std::size_t limit = EncodeOptions(inner_.write_options()).max_bytes;
            if (packed.size() > limit) {
                throw EncodeError(out.type, "/payload",
                                  "the payload opens with a \"$zstd\" member, so it is stored compressed, and that "
                                  "form is " +
                                      std::to_string(packed.size()) + " bytes long; the limit is " +
                                      std::to_string(limit),
                                  EncodeError::Kind::too_large, limit);
            }
        } else if (packed.size() >= out.payload.size()) {
            return out;
        }
        out.payload = std::move(packed);
        return out;
    }

    /// The four columns of an envelope.
    [[nodiscard]] SerializedEvent serialize(const EventEnvelope<Events>& envelope) const {
        return serialize(envelope.event, envelope.metadata);
    }

    /// The event of a stored row, its payload decompressed if it is compressed, decoded by `Inner`. Throws
    /// `DecodeError` (a damaged or oversized frame at `/payload`, or what `Inner` refuses).
    [[nodiscard]] RecordedEvent<Events> deserialize(const SerializedEventView& row, std::string stream_id,
                                                    stream_version_t version, position_t position,
                                                    std::chrono::system_clock::time_point recorded_at) const {
        const std::optional<std::string> text = expand(row.payload, row.type);
        if (!text) return inner_.deserialize(row, std::move(stream_id), version, position, recorded_at);
        return inner_.deserialize(SerializedEventView(row.type, row.schema_version, *text, row.metadata),
                                  std::move(stream_id), version, position, recorded_at);
    }

    /// The event alone, from the type, schema version and payload columns (compressed or not).
    [[nodiscard]] Events deserialize_event(std::string_view type, std::uint32_t schema_version,
                                           std::string_view payload) const {
        const std::optional<std::string> text = expand(payload, type);
        return inner_.deserialize_event(type, schema_version, text ? std::string_view(*text) : payload);
    }

    /// The metadata column, as `Inner` reads it.
    [[nodiscard]] Metadata deserialize_metadata(std::string_view metadata, std::string_view type = {}) const {
        return inner_.deserialize_metadata(metadata, type);
    }

private:
    std::optional<std::string> expand(std::string_view payload, std::string_view type) const {
        return decompress_payload(payload, DecodeOptions(inner_.options()).max_bytes, type);
    }

    Inner inner_;
    CompressionOptions options_;
};

} // namespace orchestrix
