#pragma once

// The one UTF-8 decoder of orchestrix: stream ids (core), JSON encoding and decoding (json) and the length
// rules (validation) all ask it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace orchestrix::detail {

/// Unicode code points in `text`, or nothing if it is not well-formed UTF-8 (overlong forms, surrogates and
/// values above U+10FFFF are malformed).
[[nodiscard]] constexpr std::optional<std::size_t> utf8_code_points(std::string_view text) noexcept {
    std::size_t count = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 1;
        std::uint32_t code = lead;
        if (lead >= 0x80U) {
            if ((lead & 0xE0U) == 0xC0U) {
                length = 2;
                code = lead & 0x1FU;
            } else if ((lead & 0xF0U) == 0xE0U) {
                length = 3;
                code = lead & 0x0FU;
            } else if ((lead & 0xF8U) == 0xF0U) {
                length = 4;
                code = lead & 0x07U;
            } else {
                return std::nullopt;
            }
            if (length > text.size() - i) return std::nullopt;
            for (std::size_t k = 1; k < length; ++k) {
                const auto next = static_cast<unsigned char>(text[i + k]);
                if ((next & 0xC0U) != 0x80U) return std::nullopt;
                code = (code << 6U) | (next & 0x3FU);
            }
            if ((length == 2 && code < 0x80U) || (length == 3 && code < 0x800U) || (length == 4 && code < 0x10000U) ||
                code > 0x10FFFFU || (code >= 0xD800U && code <= 0xDFFFU)) {
                return std::nullopt;
            }
        }
        i += length;
        ++count;
    }
    return count;
}

/// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
[[nodiscard]] constexpr bool is_valid_utf8(std::string_view text) noexcept {
    return utf8_code_points(text).has_value();
}

} // namespace orchestrix::detail
