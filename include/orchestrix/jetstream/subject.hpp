#pragma once

// How stream ids become NATS subjects: `<prefix>.<token>`, the token a reversible encoding of the stream id.

#include <orchestrix/core/errors.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace orchestrix::jetstream {

/// The subject token of a stream id: ASCII letters, digits, '-' and '_' are kept; every other byte (the
/// subject separator '.', the wildcards '*' and '>', white space, '=', any byte of a multi-byte UTF-8
/// character) is written as '=' and two upper-case hex digits. Every stream id maps to a valid token (a
/// non-empty stream id to a non-empty token of printable ASCII without '.', '*', '>' or white space), and
/// `decode_subject_token` gives it back: "orders-42" stays "orders-42", "a.b" becomes "a=2Eb".
[[nodiscard]] inline std::string encode_subject_token(std::string_view stream_id) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(stream_id.size());
    for (const char ch : stream_id) {
        const auto byte = static_cast<unsigned char>(ch);
        const bool keep = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                          (byte >= '0' && byte <= '9') || byte == '-' || byte == '_';
        if (keep) {
            out += ch;
        } else {
            out += '=';
            out += hex[byte >> 4U];
            out += hex[byte & 0x0FU];
        }
    }
    return out;
}

/// The stream id of a subject token written by `encode_subject_token`, or nothing if `token` is not one
/// (a byte it would have escaped, or an escape that is not '=' and two upper-case hex digits).
[[nodiscard]] inline std::optional<std::string> decode_subject_token(std::string_view token) {
    const auto digit = [](char ch) -> int {
        if (ch >= '0' && ch <= '9') return ch - '0';
        if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(token.size());
    for (std::size_t i = 0; i < token.size(); ++i) {
        const char ch = token[i];
        if (ch == '=') {
            if (i + 2 >= token.size()) return std::nullopt;
            const int high = digit(token[i + 1]);
            const int low = digit(token[i + 2]);
            if (high < 0 || low < 0) return std::nullopt;
            const auto byte = static_cast<unsigned char>((high << 4) | low);
            const bool kept = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                              (byte >= '0' && byte <= '9') || byte == '-' || byte == '_';
            if (kept) return std::nullopt; // not what encode_subject_token writes: one stream id, one token
            out += static_cast<char>(byte);
            i += 2;
            continue;
        }
        const bool kept =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        if (!kept) return std::nullopt;
        out += ch;
    }
    return out;
}

/// Throws `InvalidArgumentError("subject_prefix")` unless `prefix` is one or more subject tokens of ASCII
/// letters, digits, '-' and '_', separated by '.' ("orchestrix", "bank.events").
inline void validate_subject_prefix(std::string_view prefix) {
    bool valid =
        !prefix.empty() && prefix.front() != '.' && prefix.back() != '.' && prefix.find("..") == std::string_view::npos;
    for (const char ch : prefix) {
        valid = valid && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '-' || ch == '_' || ch == '.');
    }
    if (!valid) {
        throw InvalidArgumentError("subject_prefix",
                                   "the subject prefix '" + std::string(prefix) +
                                       "' must be tokens of ASCII letters, digits, '-' and '_' separated by '.'");
    }
}

} // namespace orchestrix::jetstream
