#pragma once

// A stored payload compressed with zstd: the JSON object text `{"$zstd":"<base64 of one zstd frame>"}` that
// stands for the JSON text inside the frame, and the bounded, checked way back (docs/lifecycle.md).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/errors.hpp>

#include <nlohmann/json.hpp>

#include <zstd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>

namespace orchestrix {

/// The one member of a compressed payload's object: `{"$zstd":"<base64 of one zstd frame>"}`.
inline constexpr std::string_view compressed_payload_member = "$zstd";

namespace detail::compression {

inline constexpr std::string_view base64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 section 4) with padding.
[[nodiscard]] inline std::string base64_encode(const unsigned char* data, std::size_t size) {
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const std::uint32_t n = (std::uint32_t{data[i]} << 16U) | (std::uint32_t{data[i + 1]} << 8U) | data[i + 2];
        out += base64_alphabet[(n >> 18U) & 63U];
        out += base64_alphabet[(n >> 12U) & 63U];
        out += base64_alphabet[(n >> 6U) & 63U];
        out += base64_alphabet[n & 63U];
    }
    if (i < size) {
        const bool two = i + 1 < size;
        const std::uint32_t n = (std::uint32_t{data[i]} << 16U) | (two ? std::uint32_t{data[i + 1]} << 8U : 0U);
        out += base64_alphabet[(n >> 18U) & 63U];
        out += base64_alphabet[(n >> 12U) & 63U];
        out += two ? base64_alphabet[(n >> 6U) & 63U] : '=';
        out += '=';
    }
    return out;
}

// The value of a base64 digit, or 64 for anything else.
[[nodiscard]] constexpr std::uint32_t base64_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') return static_cast<std::uint32_t>(c - 'A');
    if (c >= 'a' && c <= 'z') return static_cast<std::uint32_t>(c - 'a') + 26U;
    if (c >= '0' && c <= '9') return static_cast<std::uint32_t>(c - '0') + 52U;
    if (c == '+') return 62U;
    if (c == '/') return 63U;
    return 64U;
}

/// The bytes of canonical padded base64 (what `base64_encode` writes), or nothing for any other text:
/// a length that is not a multiple of 4, a character outside the alphabet, padding before the end, or
/// non-zero bits after the last byte.
[[nodiscard]] inline std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        const std::size_t padding = last ? (text[i + 3] == '=' ? (text[i + 2] == '=' ? 2U : 1U) : 0U) : 0U;
        std::uint32_t n = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const std::uint32_t v = k >= 4 - padding ? 0U : base64_value(text[i + k]);
            if (v > 63U) return std::nullopt;
            n = (n << 6U) | v;
        }
        out += static_cast<char>((n >> 16U) & 255U);
        if (padding < 2) out += static_cast<char>((n >> 8U) & 255U);
        if (padding < 1) out += static_cast<char>(n & 255U);
        if ((padding == 1 && (n & 255U) != 0) || (padding == 2 && (n & 0xFFFFU) != 0)) return std::nullopt;
    }
    return out;
}

struct cctx_deleter {
    void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
};
struct dctx_deleter {
    void operator()(ZSTD_DCtx* d) const noexcept { ZSTD_freeDCtx(d); }
};

/// This thread's compression context, made on first use and kept (zstd reuses its tables across calls).
[[nodiscard]] inline ZSTD_CCtx* thread_cctx() {
    thread_local const std::unique_ptr<ZSTD_CCtx, cctx_deleter> cctx(ZSTD_createCCtx());
    if (!cctx) throw std::bad_alloc();
    return cctx.get();
}

/// This thread's decompression context.
[[nodiscard]] inline ZSTD_DCtx* thread_dctx() {
    thread_local const std::unique_ptr<ZSTD_DCtx, dctx_deleter> dctx(ZSTD_createDCtx());
    if (!dctx) throw std::bad_alloc();
    return dctx.get();
}

inline constexpr std::string_view wrapper_prefix = R"({"$zstd":")";
inline constexpr std::string_view wrapper_suffix = R"("})";

/// Whether `payload` opens like a compressed payload: `{`, then (after any spacing) the member name
/// `"$zstd"`. A wrapper has one member, so its first is `"$zstd"`; any other payload is told apart here
/// without reading further.
[[nodiscard]] constexpr bool opens_like_wrapper(std::string_view payload) noexcept {
    const auto skip = [&](std::size_t i) {
        while (i < payload.size() &&
               (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n' || payload[i] == '\r')) {
            ++i;
        }
        return i;
    };
    std::size_t i = skip(0);
    if (i >= payload.size() || payload[i] != '{') return false;
    i = skip(i + 1);
    return payload.substr(i).starts_with(R"("$zstd")");
}

/// The base64 text of a wrapper: straight from the compact form `compress_payload` writes, otherwise (any
/// spacing) from the parsed object; nothing if `payload` is not a compressed payload.
[[nodiscard]] inline std::optional<std::string> wrapped_frame_text(std::string_view payload) {
    if (!opens_like_wrapper(payload)) return std::nullopt;
    if (payload.size() >= wrapper_prefix.size() + wrapper_suffix.size() && payload.starts_with(wrapper_prefix) &&
        payload.ends_with(wrapper_suffix)) {
        const std::string_view inner =
            payload.substr(wrapper_prefix.size(), payload.size() - wrapper_prefix.size() - wrapper_suffix.size());
        bool plain = true;
        for (const char c : inner) plain = plain && (base64_value(c) < 64U || c == '=');
        if (plain) return std::string(inner);
    }
    DecodeOptions whole;
    whole.max_bytes = payload.size();
    nlohmann::json j;
    try {
        j = parse_json(payload, whole);
    } catch (const DecodeError&) {
        return std::nullopt; // not JSON: the inner codec says why
    }
    if (!j.is_object() || j.size() != 1) return std::nullopt;
    const auto member = j.find(std::string(compressed_payload_member));
    if (member == j.end() || !member->is_string()) return std::nullopt;
    return member->get<std::string>();
}

} // namespace detail::compression

/// Whether a stored payload is a compressed one: a JSON object whose only member is `"$zstd"` with a string
/// value (`CompressingCodec` never stores any other payload with that shape, so the test is exact).
[[nodiscard]] inline bool is_compressed_payload(std::string_view payload) {
    return detail::compression::wrapped_frame_text(payload).has_value();
}

/// `json_text` compressed at zstd level `level` into one frame (with its content size and a checksum) and
/// wrapped: `{"$zstd":"<base64 of the frame>"}`. The same text and level give the same bytes (with the same
/// zstd version). Throws `InvalidArgumentError("level")` for a level outside ZSTD_minCLevel() to
/// ZSTD_maxCLevel().
[[nodiscard]] inline std::string compress_payload(std::string_view json_text, int level = ZSTD_CLEVEL_DEFAULT) {
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
        throw InvalidArgumentError("level", "compress_payload: the zstd level " + std::to_string(level) +
                                                " is not between " + std::to_string(ZSTD_minCLevel()) + " and " +
                                                std::to_string(ZSTD_maxCLevel()));
    }
    ZSTD_CCtx* cctx = detail::compression::thread_cctx();
    (void)ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    (void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    (void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    (void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    std::string frame(ZSTD_compressBound(json_text.size()), '\0');
    const std::size_t size = ZSTD_compress2(cctx, frame.data(), frame.size(), json_text.data(), json_text.size());
    if (ZSTD_isError(size) != 0U) {
        throw EncodeError({}, "/payload",
                          std::string("zstd could not compress the payload: ") + ZSTD_getErrorName(size));
    }
    std::string out(detail::compression::wrapper_prefix);
    out += detail::compression::base64_encode(reinterpret_cast<const unsigned char*>(frame.data()), size);
    out += detail::compression::wrapper_suffix;
    return out;
}

/// The JSON text a stored payload stands for: the frame's content if it is a compressed payload
/// (`is_compressed_payload`), nothing otherwise (the payload is its own text). Bounded: a frame whose
/// content is larger than `max_bytes` (or does not declare its size) is refused before anything is
/// allocated for it, as is a wrapper text over `max_bytes`. Throws `DecodeError` at `/payload` naming
/// `type`: `too_large` for those, `invalid_value` for a text that is not canonical base64, anything but
/// exactly one zstd frame, or a frame that does not decompress to its declared size with a matching checksum.
[[nodiscard]] inline std::optional<std::string> decompress_payload(std::string_view payload,
                                                                   std::size_t max_bytes = DecodeOptions{}.max_bytes,
                                                                   std::string_view type = {}) {
    const auto fail = [&](DecodeError::Kind kind, const std::string& why) {
        return DecodeError(kind, std::string(type), "/payload", "the compressed payload " + why);
    };
    if (!detail::compression::opens_like_wrapper(payload)) return std::nullopt;
    if (payload.size() > max_bytes) {
        throw fail(DecodeError::Kind::too_large,
                   "is " + std::to_string(payload.size()) + " bytes long; the limit is " + std::to_string(max_bytes));
    }
    std::optional<std::string> text = detail::compression::wrapped_frame_text(payload);
    if (!text) return text;
    const std::optional<std::string> frame = detail::compression::base64_decode(*text);
    if (!frame) throw fail(DecodeError::Kind::invalid_value, "is not canonical base64");
    const std::size_t frame_size = ZSTD_findFrameCompressedSize(frame->data(), frame->size());
    if (ZSTD_isError(frame_size) != 0U) {
        throw fail(DecodeError::Kind::invalid_value,
                   std::string("is not a zstd frame: ") + ZSTD_getErrorName(frame_size));
    }
    if (frame_size != frame->size()) {
        throw fail(DecodeError::Kind::invalid_value,
                   "has " + std::to_string(frame->size() - frame_size) + " bytes after its zstd frame");
    }
    const unsigned long long declared = ZSTD_getFrameContentSize(frame->data(), frame->size());
    if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN) {
        throw fail(DecodeError::Kind::invalid_value, "is a zstd frame that does not declare its content size");
    }
    if (declared > max_bytes) {
        throw fail(DecodeError::Kind::too_large, "would decompress to " + std::to_string(declared) +
                                                     " bytes; the limit is " + std::to_string(max_bytes));
    }
    std::string out(static_cast<std::size_t>(declared), '\0');
    const std::size_t size =
        ZSTD_decompressDCtx(detail::compression::thread_dctx(), out.data(), out.size(), frame->data(), frame->size());
    if (ZSTD_isError(size) != 0U) {
        throw fail(DecodeError::Kind::invalid_value,
                   std::string("is a damaged zstd frame: ") + ZSTD_getErrorName(size));
    }
    if (size != out.size()) {
        throw fail(DecodeError::Kind::invalid_value, "decompressed to " + std::to_string(size) + " bytes, not the " +
                                                         std::to_string(declared) + " its frame declares");
    }
    return out;
}

} // namespace orchestrix
