#pragma once

// Strict JSON for orchestrix: `DecodeOptions` and `parse_json`, a parser that refuses what nlohmann::json
// would accept quietly (duplicate keys, over-deep nesting, oversized input) and says where, with the typed
// `DecodeError` (json/errors.hpp).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/detail/utf8.hpp>
#include <orchestrix/json/errors.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// How strict decoding is. The defaults suit stored events; raise the caps for unusually large payloads.
struct DecodeOptions {
    /// The longest JSON text accepted, in bytes (checked before parsing).
    std::size_t max_bytes = std::size_t{1} << 20U;
    /// The deepest nesting of objects and arrays accepted (`{}` is depth 1).
    std::size_t max_depth = 64;
    /// Refuse fields the C++ type does not have (a typo, or a writer with a newer schema that forgot to
    /// bump `schema_version`). Off: such fields are ignored.
    bool reject_unknown_fields = true;
    /// After `from_json`, encode the value again and compare: catches silent narrowing by nlohmann's
    /// conversions (3.7 read into an int as 3, 300 into an int8 as 44) without code per field. Turn off only
    /// for types whose encoding is legitimately not canonical (e.g. an unordered container).
    bool verify_round_trip = true;
};

/// The limits `append` holds every event to before a durable store writes it, so that what a store accepts,
/// its readers can read. A limit of 0 means "the same as the read limit" (`DecodeOptions`); a write limit
/// above the read limit is refused when the codec is made (`InvalidArgumentError`).
struct EncodeOptions {
    /// The longest payload or metadata text written, in bytes (0: `DecodeOptions::max_bytes`).
    std::size_t max_bytes = 0;
    /// The deepest nesting written (0: `DecodeOptions::max_depth`).
    std::size_t max_depth = 0;
    /// Decode what was encoded with the read options and compare it with the event (and the metadata):
    /// every other rule of the decoder (unknown fields, lossy conversions, a `from_json` that cannot read
    /// what `to_json` wrote) is then checked on write too. It costs one decode per event appended.
    bool verify_decodable = true;
};

namespace detail {

/// Appends `/token` to a JSON Pointer, escaping `~` and `/` (RFC 6901).
inline void append_pointer(std::string& path, std::string_view token) {
    path.push_back('/');
    for (char c : token) {
        if (c == '~') {
            path += "~0";
        } else if (c == '/') {
            path += "~1";
        } else {
            path.push_back(c);
        }
    }
}

[[nodiscard]] inline std::string pointer(std::string_view token) {
    std::string path;
    append_pointer(path, token);
    return path;
}

[[nodiscard]] inline std::string pointer(std::size_t index) {
    std::string path(1, '/'); // built in two steps: g++ 12 -O3 flags `"/" + std::to_string(i)` (-Wrestrict)
    path += std::to_string(index);
    return path;
}

// Builds a DOM through nlohmann's SAX interface, refusing duplicate keys and excessive depth, and keeping the
// path of the value being parsed so that every error can say where it happened.
class StrictSax {
public:
    using json = nlohmann::json;

    StrictSax(json& root, std::size_t max_depth) : root_(&root), max_depth_(max_depth) {}

    bool null() { return put(json(nullptr)) != nullptr; }
    bool boolean(bool value) { return put(json(value)) != nullptr; }
    bool number_integer(json::number_integer_t value) { return put(json(value)) != nullptr; }
    bool number_unsigned(json::number_unsigned_t value) { return put(json(value)) != nullptr; }
    bool number_float(json::number_float_t value, const json::string_t& /*text*/) {
        return put(json(value)) != nullptr;
    }
    bool string(json::string_t& value) { return put(json(std::move(value))) != nullptr; }
    bool binary(json::binary_t& /*value*/) {
        fail(DecodeError::Kind::malformed_json, path(), "binary values are not JSON");
        return false;
    }
    bool start_object(std::size_t /*size*/) { return open(json::object()); }
    bool key(json::string_t& name) {
        Frame& frame = frames_.back();
        auto [slot, inserted] = frame.node->get_ref<json::object_t&>().try_emplace(std::move(name));
        if (!inserted) {
            fail(DecodeError::Kind::duplicate_key, path(false) + pointer(slot->first),
                 "the key \"" + slot->first + "\" appears twice");
            return false;
        }
        frame.key = &slot->first;
        frame.slot = &slot->second;
        return true;
    }
    bool end_object() {
        frames_.pop_back();
        return true;
    }
    bool start_array(std::size_t /*size*/) { return open(json::array()); }
    bool end_array() {
        frames_.pop_back();
        return true;
    }
    bool parse_error(std::size_t position, const std::string& /*token*/, const nlohmann::json::exception& e) {
        if (error_) return false; // a callback already failed with a better reason
        const std::string what = e.what();
        DecodeError::Kind kind = DecodeError::Kind::malformed_json;
        if (what.find("UTF-8") != std::string::npos || what.find("surrogate") != std::string::npos) {
            kind = DecodeError::Kind::invalid_utf8;
        } else if (e.id == 406) {
            kind = DecodeError::Kind::out_of_range;
        }
        fail(kind, path(), describe_parse_error(what, position));
        return false;
    }

    [[nodiscard]] std::optional<DecodeError>& error() noexcept { return error_; }

private:
    struct Frame {
        json* node;
        const std::string* key = nullptr; // the current key of an object (it lives in the object's map)
        json* slot = nullptr;             // where the value of that key goes
    };

    static std::string describe_parse_error(const std::string& what, std::size_t position) {
        // nlohmann's message: "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error
        // while parsing value - invalid literal; last read: '...'". Keep from "syntax error" or the colon on.
        std::string text = what;
        if (const auto at = text.find("] "); at != std::string::npos) text.erase(0, at + 2);
        return text + " (byte " + std::to_string(position) + ")";
    }

    // The path of the value being parsed; without the innermost object's current key if `innermost_key`
    // is false (the path of that object itself).
    std::string path(bool innermost_key = true) const {
        std::string p;
        for (std::size_t i = 0; i < frames_.size(); ++i) {
            const Frame& frame = frames_[i];
            if (frame.node->is_object()) {
                if (frame.key != nullptr && (innermost_key || i + 1 < frames_.size())) append_pointer(p, *frame.key);
            } else {
                const std::size_t size = frame.node->size();
                const bool child_open = i + 1 < frames_.size();
                p += pointer(child_open && size > 0 ? size - 1 : size);
            }
        }
        return p;
    }

    void fail(DecodeError::Kind kind, std::string where, std::string detail) {
        if (!error_) error_.emplace(kind, std::string{}, std::move(where), std::move(detail));
    }

    json* put(json&& value) {
        if (frames_.empty()) {
            *root_ = std::move(value);
            return root_;
        }
        Frame& frame = frames_.back();
        if (frame.node->is_array()) {
            frame.node->push_back(std::move(value));
            return &frame.node->back();
        }
        *frame.slot = std::move(value);
        return frame.slot;
    }

    bool open(json&& container) {
        if (frames_.size() + 1 > max_depth_) {
            fail(DecodeError::Kind::too_deep, path(),
                 "nesting exceeds the limit of " + std::to_string(max_depth_) + " levels");
            return false;
        }
        json* node = put(std::move(container));
        frames_.push_back(Frame{node, nullptr, nullptr});
        return true;
    }

    json* root_;
    std::size_t max_depth_;
    std::vector<Frame> frames_;
    std::optional<DecodeError> error_;
};

// Throws DecodeError{too_deep} if `value` nests deeper than `max_depth` (for documents parsed elsewhere).
inline void check_depth(const nlohmann::json& value, std::size_t max_depth, std::size_t depth = 0) {
    if (!value.is_structured()) return;
    if (depth + 1 > max_depth) {
        throw DecodeError(DecodeError::Kind::too_deep, {}, {},
                          "nesting exceeds the limit of " + std::to_string(max_depth) + " levels");
    }
    if (value.is_object()) {
        for (const auto& [key, element] : value.items()) {
            try {
                check_depth(element, max_depth, depth + 1);
            } catch (DecodeError& e) {
                e.add_context(pointer(key));
                throw;
            }
        }
    } else {
        for (std::size_t i = 0; i < value.size(); ++i) {
            try {
                check_depth(value[i], max_depth, depth + 1);
            } catch (DecodeError& e) {
                e.add_context(pointer(i));
                throw;
            }
        }
    }
}

inline void check_depth_located(const nlohmann::json& value, std::size_t max_depth, std::string_view type,
                                std::string_view path_prefix) {
    try {
        check_depth(value, max_depth);
    } catch (DecodeError& e) {
        e.add_context(path_prefix, type);
        throw;
    }
}

/// A member of a flat JSON object whose value is a plain string (`scan_plain_string_object`).
struct PlainStringMember {
    std::string_view key{};
    std::string_view value{};
};

/// Reads `text` as a flat JSON object of at most `N` members whose keys and values are strings of printable
/// ASCII without escapes (`{"a": "x", "b": ""}`, JSON whitespace between tokens), into `out` (views into
/// `text`); returns how many, or nothing for any other text, valid JSON or not. Duplicate keys are the
/// caller's to refuse. The fast path of readers of small documents of a fixed form (the metadata column):
/// what it does not take, they parse with `parse_json`, which accepts it or names the error.
template <std::size_t N>
[[nodiscard]] constexpr std::optional<std::size_t>
scan_plain_string_object(std::string_view text, std::array<PlainStringMember, N>& out) noexcept {
    std::size_t i = 0;
    const auto skip_space = [&] {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) ++i;
    };
    const auto read_string = [&](std::string_view& into) {
        if (i >= text.size() || text[i] != '"') return false;
        const std::size_t start = ++i;
        while (i < text.size()) {
            const char c = text[i];
            if (c == '"') {
                into = text.substr(start, i - start);
                ++i;
                return true;
            }
            if (c < 0x20 || c > 0x7E || c == '\\') return false;
            ++i;
        }
        return false;
    };
    std::size_t count = 0;
    skip_space();
    if (i >= text.size() || text[i] != '{') return std::nullopt;
    ++i;
    skip_space();
    if (i < text.size() && text[i] == '}') {
        ++i;
    } else {
        while (true) {
            if (count == N) return std::nullopt;
            PlainStringMember& member = out[count];
            if (!read_string(member.key)) return std::nullopt;
            skip_space();
            if (i >= text.size() || text[i] != ':') return std::nullopt;
            ++i;
            skip_space();
            if (!read_string(member.value)) return std::nullopt;
            ++count;
            skip_space();
            if (i < text.size() && text[i] == ',') {
                ++i;
                skip_space();
                continue;
            }
            if (i < text.size() && text[i] == '}') {
                ++i;
                break;
            }
            return std::nullopt;
        }
    }
    skip_space();
    if (i != text.size()) return std::nullopt;
    return count;
}

/// The fast path of `parse_json`: a one-pass reader of JSON text that builds the same DOM as nlohmann's parser
/// (objects, arrays, strings, integers as `int64`/`uint64`, fractions as `double`) and gives up, returning
/// false, on anything it does not read simply: a `\u` escape, an integer outside 64 bits, a number `double`
/// cannot hold, a byte order mark, nesting beyond `max_depth` (or `deepest`), and every error (a duplicate key,
/// invalid UTF-8, a syntax error, trailing text). `parse_json` then runs `parse_json_text`, which decides and
/// names the error, so the reader only ever accepts text that `parse_json_text` accepts, with the same value.
class PlainJsonReader {
public:
    using json = nlohmann::json;

    /// The deepest nesting read here, whatever `max_depth` allows (the reader recurses; deeper text takes the
    /// iterative path).
    static constexpr std::size_t deepest = 128;

    PlainJsonReader(std::string_view text, std::size_t max_depth) noexcept
        : next_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth < deepest ? max_depth : deepest) {}

    /// Reads the whole text into `out`; false if it gave up (`out` then holds a partial value).
    [[nodiscard]] bool read(json& out) {
        skip_space();
        if (!value(out, 0)) return false;
        skip_space();
        return next_ == end_;
    }

private:
    void skip_space() noexcept {
        while (next_ != end_ && (*next_ == ' ' || *next_ == '\n' || *next_ == '\r' || *next_ == '\t')) ++next_;
    }

    [[nodiscard]] bool value(json& out, std::size_t depth) {
        if (next_ == end_) return false;
        switch (*next_) {
        case '{':
            return object(out, depth + 1);
        case '[':
            return array(out, depth + 1);
        case '"': {
            std::string text;
            if (!string(text)) return false;
            out = std::move(text);
            return true;
        }
        case 't':
            return literal("true", out, json(true));
        case 'f':
            return literal("false", out, json(false));
        case 'n':
            return literal("null", out, json(nullptr));
        default:
            return number(out);
        }
    }

    [[nodiscard]] bool literal(std::string_view word, json& out, json&& literal_value) noexcept {
        if (static_cast<std::size_t>(end_ - next_) < word.size() || std::string_view(next_, word.size()) != word) {
            return false;
        }
        next_ += word.size();
        out = std::move(literal_value);
        return true;
    }

    [[nodiscard]] bool object(json& out, std::size_t depth) {
        if (depth > max_depth_) return false;
        ++next_; // '{'
        out = json::object();
        auto& members = out.get_ref<json::object_t&>();
        skip_space();
        if (next_ != end_ && *next_ == '}') {
            ++next_;
            return true;
        }
        while (true) {
            std::string key;
            if (next_ == end_ || *next_ != '"' || !string(key)) return false;
            skip_space();
            if (next_ == end_ || *next_ != ':') return false;
            ++next_;
            skip_space();
            auto [slot, inserted] = members.try_emplace(std::move(key));
            if (!inserted || !value(slot->second, depth)) return false;
            skip_space();
            if (next_ == end_) return false;
            if (*next_ == '}') {
                ++next_;
                return true;
            }
            if (*next_ != ',') return false;
            ++next_;
            skip_space();
        }
    }

    [[nodiscard]] bool array(json& out, std::size_t depth) {
        if (depth > max_depth_) return false;
        ++next_; // '['
        out = json::array();
        auto& elements = out.get_ref<json::array_t&>();
        skip_space();
        if (next_ != end_ && *next_ == ']') {
            ++next_;
            return true;
        }
        while (true) {
            elements.emplace_back();
            if (!value(elements.back(), depth)) return false;
            skip_space();
            if (next_ == end_) return false;
            if (*next_ == ']') {
                ++next_;
                return true;
            }
            if (*next_ != ',') return false;
            ++next_;
            skip_space();
        }
    }

    // A string from its opening quote; escapes other than `\u` are decoded, anything else unusual gives up.
    [[nodiscard]] bool string(std::string& out) {
        ++next_; // '"'
        const char* const start = next_;
        bool ascii = true;
        while (next_ != end_ && *next_ != '"' && *next_ != '\\') {
            const auto c = static_cast<unsigned char>(*next_);
            if (c < 0x20U) return false;
            if (c >= 0x80U) ascii = false;
            ++next_;
        }
        out.assign(start, next_);
        while (next_ != end_ && *next_ != '"') {
            const auto c = static_cast<unsigned char>(*next_);
            if (c == '\\') {
                if (++next_ == end_) return false;
                switch (*next_) {
                case '"':
                case '\\':
                case '/':
                    out.push_back(*next_);
                    break;
                case 'b':
                    out.push_back('\b');
                    break;
                case 'f':
                    out.push_back('\f');
                    break;
                case 'n':
                    out.push_back('\n');
                    break;
                case 'r':
                    out.push_back('\r');
                    break;
                case 't':
                    out.push_back('\t');
                    break;
                default: // `\u` and invalid escapes
                    return false;
                }
            } else {
                if (c < 0x20U) return false;
                if (c >= 0x80U) ascii = false;
                out.push_back(static_cast<char>(c));
            }
            ++next_;
        }
        if (next_ == end_) return false;
        ++next_; // '"'
        return ascii || is_valid_utf8(out);
    }

    [[nodiscard]] static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

    // A number in JSON's grammar: an integer as nlohmann reads it (negative: int64, else uint64), a
    // fraction or exponent as the correctly rounded double that nlohmann's strtod gives.
    [[nodiscard]] bool number(json& out) {
        const char* const start = next_;
        const bool negative = *next_ == '-';
        if (negative) ++next_;
        if (next_ == end_) return false;
        if (*next_ == '0') {
            ++next_;
        } else if (is_digit(*next_)) {
            while (next_ != end_ && is_digit(*next_)) ++next_;
        } else {
            return false;
        }
        bool integer = true;
        if (next_ != end_ && *next_ == '.') {
            integer = false;
            ++next_;
            if (next_ == end_ || !is_digit(*next_)) return false;
            while (next_ != end_ && is_digit(*next_)) ++next_;
        }
        if (next_ != end_ && (*next_ == 'e' || *next_ == 'E')) {
            integer = false;
            ++next_;
            if (next_ != end_ && (*next_ == '+' || *next_ == '-')) ++next_;
            if (next_ == end_ || !is_digit(*next_)) return false;
            while (next_ != end_ && is_digit(*next_)) ++next_;
        }
        if (integer && negative) {
            std::int64_t number = 0;
            const auto [at, ec] = std::from_chars(start, next_, number);
            if (ec != std::errc{} || at != next_) return false;
            out = number;
            return true;
        }
        if (integer) {
            std::uint64_t number = 0;
            const auto [at, ec] = std::from_chars(start, next_, number);
            if (ec != std::errc{} || at != next_) return false;
            out = number;
            return true;
        }
#if defined(__cpp_lib_to_chars)
        double number = 0;
        const auto [at, ec] = std::from_chars(start, next_, number);
        if (ec != std::errc{} || at != next_ || !std::isfinite(number)) return false;
        out = number;
        return true;
#else
        return false;
#endif
    }

    const char* next_;
    const char* end_;
    std::size_t max_depth_;
};

/// The strict parse of JSON text through nlohmann's text parser and `StrictSax` (not `json::sax_parse`, which
/// also instantiates nlohmann's readers of binary formats): what `parse_json` runs when `PlainJsonReader` gives
/// up, and the one that names the error. The size and emptiness checks are `parse_json`'s.
[[nodiscard]] inline nlohmann::json parse_json_text(std::string_view text, std::size_t max_depth) {
    nlohmann::json root;
    StrictSax sax(root, max_depth);
    using Input = decltype(nlohmann::detail::input_adapter(text.data(), text.data() + text.size()));
    nlohmann::detail::parser<nlohmann::json, Input> parser(
        nlohmann::detail::input_adapter(text.data(), text.data() + text.size()), nullptr, true, false);
    const bool ok = parser.sax_parse(&sax, true);
    if (!ok || sax.error()) {
        if (sax.error()) throw std::move(*sax.error());
        throw DecodeError(DecodeError::Kind::malformed_json, {}, {}, "the input is not valid JSON");
    }
    return root;
}

} // namespace detail

/// Parses JSON text strictly: refuses empty or truncated input, trailing garbage, duplicate keys, invalid
/// UTF-8, nesting deeper than `options.max_depth` and text longer than `options.max_bytes`. Each refusal
/// is a `DecodeError` whose `json_path()` points at the offending value. Text in the plain form events are
/// stored in is read in one pass (`detail::PlainJsonReader`); the rest, and every error, by nlohmann's parser.
[[nodiscard]] inline nlohmann::json parse_json(std::string_view text, const DecodeOptions& options = {}) {
    if (text.size() > options.max_bytes) {
        throw DecodeError(DecodeError::Kind::too_large, {}, {},
                          "the text is " + std::to_string(text.size()) + " bytes long; the limit is " +
                              std::to_string(options.max_bytes));
    }
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        throw DecodeError(DecodeError::Kind::malformed_json, {}, {}, "the input is empty");
    }
    {
        nlohmann::json root;
        if (detail::PlainJsonReader(text, options.max_depth).read(root)) return root;
    }
    return detail::parse_json_text(text, options.max_depth);
}

} // namespace orchestrix
