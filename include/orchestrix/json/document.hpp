#pragma once

// Strict JSON for orchestrix: `DecodeOptions` and `parse_json`, a parser that refuses what nlohmann::json
// would accept quietly (duplicate keys, over-deep nesting, oversized input) and says where, with the typed
// `DecodeError` (json/errors.hpp).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/json/errors.hpp>

#include <nlohmann/json.hpp>

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

} // namespace detail

/// Parses JSON text strictly: refuses empty or truncated input, trailing garbage, duplicate keys, invalid
/// UTF-8, nesting deeper than `options.max_depth` and text longer than `options.max_bytes`. Each refusal
/// is a `DecodeError` whose `json_path()` points at the offending value.
[[nodiscard]] inline nlohmann::json parse_json(std::string_view text, const DecodeOptions& options = {}) {
    if (text.size() > options.max_bytes) {
        throw DecodeError(DecodeError::Kind::too_large, {}, {},
                          "the text is " + std::to_string(text.size()) + " bytes long; the limit is " +
                              std::to_string(options.max_bytes));
    }
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        throw DecodeError(DecodeError::Kind::malformed_json, {}, {}, "the input is empty");
    }
    nlohmann::json root;
    detail::StrictSax sax(root, options.max_depth);
    const bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &sax);
    if (!ok || sax.error()) {
        if (sax.error()) throw std::move(*sax.error());
        throw DecodeError(DecodeError::Kind::malformed_json, {}, {}, "the input is not valid JSON");
    }
    return root;
}

} // namespace orchestrix
