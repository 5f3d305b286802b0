#pragma once

#include <orchestrix/core/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

/// Stored JSON could not be turned into a value. Nothing was produced: never a default-constructed event.
///
/// `kind()` says what was wrong, `event_type()` names the event (or aggregate) type when it is known, and
/// `json_path()` is a JSON Pointer (RFC 6901) into the document, e.g. `/payload/amount`.
class DecodeError : public Error {
public:
    enum class Kind : std::uint8_t {
        malformed_json,       ///< not JSON: empty, truncated, trailing garbage, a syntax error
        invalid_utf8,         ///< a string is not well-formed UTF-8
        duplicate_key,        ///< an object has the same key twice
        too_deep,             ///< nesting deeper than `DecodeOptions::max_depth`
        too_large,            ///< text longer than `DecodeOptions::max_bytes`
        unknown_type,         ///< no event type of that name (nor a rename of one)
        missing_field,        ///< a required field is absent
        unknown_field,        ///< a field the type does not have (with `reject_unknown_fields`)
        wrong_type,           ///< a string where a number belongs, a fraction where an integer belongs, ...
        out_of_range,         ///< a number that does not fit its field (300 in an int8, -1 in an unsigned)
        lossy_conversion,     ///< the value decoded, but encoding it again gives something else
        invalid_value,        ///< well-typed but refused (a malformed UUID or timestamp, a user check)
        newer_schema_version, ///< stored by code that knows a newer schema than this program
        missing_upcaster,     ///< an old schema version with no upcaster to the next one
        upcast_failed,        ///< an upcaster threw
    };

    DecodeError(Kind kind, std::string event_type, std::string json_path, std::string detail)
        : Error(std::string{}), kind_(kind), event_type_(std::move(event_type)), json_path_(std::move(json_path)),
          detail_(std::move(detail)) {
        rebuild();
    }

    [[nodiscard]] Kind kind() const noexcept { return kind_; }
    /// The event (or aggregate) type being decoded; empty when it was not known yet.
    [[nodiscard]] const std::string& event_type() const noexcept { return event_type_; }
    /// Where in the document: a JSON Pointer such as `/payload/items/2/sku` ("" = the whole document).
    [[nodiscard]] const std::string& json_path() const noexcept { return json_path_; }
    /// What was wrong, without the type and path.
    [[nodiscard]] const std::string& detail() const noexcept { return detail_; }
    [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

    /// Adds what an outer decoder knows: the path of the enclosing value and, if not set yet, the type.
    void add_context(std::string_view path_prefix, std::string_view event_type = {}) {
        json_path_.insert(0, path_prefix);
        if (event_type_.empty()) event_type_ = std::string(event_type);
        rebuild();
    }

private:
    void rebuild() {
        message_ = "cannot decode";
        if (!event_type_.empty()) message_ += " '" + event_type_ + "'";
        message_ += json_path_.empty() ? std::string(" (whole document)") : " at " + json_path_;
        message_ += ": " + std::string(kind_name(kind_)) + ": " + detail_;
    }

    static std::string_view kind_name(Kind kind) noexcept {
        switch (kind) {
        case Kind::malformed_json:
            return "malformed JSON";
        case Kind::invalid_utf8:
            return "invalid UTF-8";
        case Kind::duplicate_key:
            return "duplicate key";
        case Kind::too_deep:
            return "nested too deep";
        case Kind::too_large:
            return "too large";
        case Kind::unknown_type:
            return "unknown event type";
        case Kind::missing_field:
            return "missing field";
        case Kind::unknown_field:
            return "unknown field";
        case Kind::wrong_type:
            return "wrong type";
        case Kind::out_of_range:
            return "out of range";
        case Kind::lossy_conversion:
            return "lossy conversion";
        case Kind::invalid_value:
            return "invalid value";
        case Kind::newer_schema_version:
            return "newer schema version";
        case Kind::missing_upcaster:
            return "missing upcaster";
        case Kind::upcast_failed:
            return "upcaster failed";
        }
        return "error";
    }

    Kind kind_;
    std::string event_type_;
    std::string json_path_;
    std::string detail_;
    std::string message_;
};

/// A value could not be turned into JSON, or into JSON its readers would accept: a string that is not
/// valid UTF-8, a NaN or infinite number (JSON has none), a `to_json` that threw, a text over the write
/// limit, nesting over the depth limit, or (with `EncodeOptions::verify_decodable`) an encoding that does
/// not decode back to the same event. Nothing was produced, and a store that was appending wrote nothing.
///
/// `event_type()` names the event, `json_path()` the field (a JSON Pointer such as `/payload/items/3`, ""
/// for the whole value), `kind()` what was wrong and `limit()` the limit that was passed (0 when none).
class EncodeError : public Error {
public:
    enum class Kind : std::uint8_t {
        not_representable, ///< invalid UTF-8, NaN or infinity, or `to_json` threw
        too_large,         ///< the text is longer than `EncodeOptions::max_bytes`
        too_deep,          ///< nesting deeper than `EncodeOptions::max_depth`
        not_decodable,     ///< the encoding does not decode back to the same value (`DecodeError` says why)
    };

    EncodeError(std::string event_type, std::string json_path, const std::string& detail,
                Kind kind = Kind::not_representable, std::size_t limit = 0)
        : Error("cannot encode '" + event_type + "'" + (json_path.empty() ? "" : " at " + json_path) + ": " + detail),
          event_type_(std::move(event_type)), json_path_(std::move(json_path)), kind_(kind), limit_(limit) {}

    [[nodiscard]] const std::string& event_type() const noexcept { return event_type_; }
    [[nodiscard]] const std::string& json_path() const noexcept { return json_path_; }
    [[nodiscard]] Kind kind() const noexcept { return kind_; }
    /// The limit that was passed (bytes for `too_large`, levels for `too_deep`); 0 for the other kinds.
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

private:
    std::string event_type_;
    std::string json_path_;
    Kind kind_;
    std::size_t limit_;
};

} // namespace orchestrix
