#pragma once

// The generic checks that hold any nlohmann `to_json`/`from_json` pair to strict decoding: the round trip
// (decode, encode again, compare), the diagnosis of a failed `from_json` (which field, which path), and
// the refusal to encode what JSON cannot carry.

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/detail/utf8.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/field.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace orchestrix {

namespace detail {

enum class json_category : std::uint8_t { null, boolean, integer, fractional, string, array, object, other };

[[nodiscard]] inline json_category category(const nlohmann::json& value) noexcept {
    if (value.is_null()) return json_category::null;
    if (value.is_boolean()) return json_category::boolean;
    if (value.is_number_integer()) return json_category::integer;
    if (value.is_number_float()) return json_category::fractional;
    if (value.is_string()) return json_category::string;
    if (value.is_array()) return json_category::array;
    if (value.is_object()) return json_category::object;
    return json_category::other;
}

// Exact numeric equality across nlohmann's three number types (its own operator== casts -3 to an
// unsigned and 2^53 + 1 to a double, so it would call those equal).
[[nodiscard]] inline bool same_number(const nlohmann::json& input, const nlohmann::json& output) {
    using json = nlohmann::json;
    auto as_integer = [](const json& v, bool& negative, std::uint64_t& magnitude) {
        if (v.is_number_unsigned()) {
            negative = false;
            magnitude = v.get<json::number_unsigned_t>();
        } else {
            const auto i = v.get<json::number_integer_t>();
            negative = i < 0;
            magnitude = negative ? std::uint64_t{0} - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
        }
    };
    auto integral_float = [](double d, bool& negative, std::uint64_t& magnitude) {
        if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) >= 18446744073709551616.0) return false;
        negative = d < 0;
        magnitude = static_cast<std::uint64_t>(std::fabs(d));
        return true;
    };
    if (input.is_number_float() && output.is_number_float()) {
        // A float field holds fewer digits than the double read from the text: accept what it keeps.
        const double a = input.get<double>();
        const double b = output.get<double>();
        if (!std::isfinite(a) || !std::isfinite(b)) return false;
        return a == b || std::fabs(a - b) <= std::fabs(a) * 1e-6;
    }
    bool n1 = false;
    bool n2 = false;
    std::uint64_t m1 = 0;
    std::uint64_t m2 = 0;
    if (input.is_number_float()) {
        if (!integral_float(input.get<double>(), n1, m1)) return false;
    } else {
        as_integer(input, n1, m1);
    }
    if (output.is_number_float()) {
        if (!integral_float(output.get<double>(), n2, m2)) return false;
    } else {
        as_integer(output, n2, m2);
    }
    return m1 == m2 && (n1 == n2 || m1 == 0);
}

/// Compares the decoded-and-encoded-again `output` with the `input` it came from; throws DecodeError at the
/// first place where decoding lost or changed something. Fields present only in `output` are defaults a
/// lenient `from_json` filled in on purpose and are accepted.
inline void check_round_trip(const nlohmann::json& input, const nlohmann::json& output, bool reject_unknown_fields) {
    const json_category in = category(input);
    const json_category out = category(output);
    if (in == json_category::object && out == json_category::object) {
        for (const auto& [key, value] : input.items()) {
            const auto found = output.find(key);
            if (found == output.end()) {
                if (!reject_unknown_fields) continue;
                throw DecodeError(DecodeError::Kind::unknown_field, {}, pointer(key),
                                  "the type has no field \"" + key + "\"");
            }
            try {
                check_round_trip(value, *found, reject_unknown_fields);
            } catch (DecodeError& e) {
                e.add_context(pointer(key));
                throw;
            }
        }
        return;
    }
    if (in == json_category::array && out == json_category::array) {
        if (input.size() != output.size()) {
            throw DecodeError(DecodeError::Kind::lossy_conversion, {}, {},
                              "an array of " + std::to_string(input.size()) + " elements decoded as " +
                                  std::to_string(output.size()));
        }
        for (std::size_t i = 0; i < input.size(); ++i) {
            try {
                check_round_trip(input[i], output[i], reject_unknown_fields);
            } catch (DecodeError& e) {
                e.add_context(pointer(i));
                throw;
            }
        }
        return;
    }
    const bool numbers = input.is_number() && output.is_number();
    if (numbers && in == json_category::fractional && out == json_category::integer) {
        wrong_type("an integer", input);
    }
    if (numbers) {
        if (!same_number(input, output)) {
            throw DecodeError(DecodeError::Kind::out_of_range, {}, {},
                              input.dump() + " does not fit in the field (it decoded as " + output.dump() + ")");
        }
        return;
    }
    if (in != out) {
        throw DecodeError(DecodeError::Kind::wrong_type, {}, {},
                          "found " + std::string(json_type_name(input)) + " where the field holds " +
                              std::string(json_type_name(output)));
    }
    if (input != output) {
        throw DecodeError(DecodeError::Kind::lossy_conversion, {}, {}, input.dump() + " decoded as " + output.dump());
    }
}

/// The path (below `value`) of the first element, depth first, whose JSON type name is `type`.
inline std::optional<std::string> find_value_of_type(const nlohmann::json& value, std::string_view type) {
    if (value.is_array()) {
        for (std::size_t i = 0; i < value.size(); ++i) {
            if (value[i].type_name() == type) return pointer(i);
            if (auto below = find_value_of_type(value[i], type)) return pointer(i) + *below;
        }
    } else if (value.is_object()) {
        for (const auto& [key, element] : value.items()) {
            if (element.type_name() == type) return pointer(key);
            if (auto below = find_value_of_type(element, type)) return pointer(key) + *below;
        }
    }
    return std::nullopt;
}

/// Explains why `from_json` refused `input`, by comparing it with the encoding of a default value of the
/// type (`shape`): the first missing field or mismatched JSON type, with its path. Returns nothing if the
/// shapes agree.
/// With `culprit_type` (nlohmann's "but is <type>"), an array whose element type the shape cannot show
/// (an empty default) is searched for the first value of that JSON type.
inline std::optional<DecodeError> diagnose_shape(const nlohmann::json& input, const nlohmann::json& shape,
                                                 std::string_view culprit_type = {}) {
    const json_category want = category(shape);
    const json_category got = category(input);
    if (want == json_category::null) return std::nullopt; // an optional or untyped field: anything goes
    if (want == json_category::object) {
        if (got != json_category::object) {
            return DecodeError(DecodeError::Kind::wrong_type, {}, {},
                               "expected an object, found " + std::string(json_type_name(input)));
        }
        for (const auto& [key, value] : shape.items()) {
            const auto found = input.find(key);
            if (found == input.end()) {
                if (value.is_null()) continue;
                return DecodeError(DecodeError::Kind::missing_field, {}, pointer(key),
                                   "the required field \"" + key + "\" is absent");
            }
            if (auto error = diagnose_shape(*found, value, culprit_type)) {
                error->add_context(pointer(key));
                return error;
            }
        }
        return std::nullopt;
    }
    const bool number_ok =
        (want == json_category::integer && got == json_category::integer) ||
        (want == json_category::fractional && (got == json_category::integer || got == json_category::fractional));
    if (want == json_category::integer || want == json_category::fractional) {
        if (number_ok) return std::nullopt;
        return DecodeError(DecodeError::Kind::wrong_type, {}, {},
                           std::string("expected ") + (want == json_category::integer ? "an integer" : "a number") +
                               ", found " + std::string(json_type_name(input)));
    }
    if (want != got) {
        return DecodeError(DecodeError::Kind::wrong_type, {}, {},
                           "expected " + std::string(json_type_name(shape)) + ", found " +
                               std::string(json_type_name(input)));
    }
    if (want == json_category::array && !shape.empty()) {
        for (std::size_t i = 0; i < input.size(); ++i) {
            if (auto error = diagnose_shape(input[i], shape[0], culprit_type)) {
                error->add_context(pointer(i));
                return error;
            }
        }
    } else if (want == json_category::array && !culprit_type.empty()) {
        if (auto where = find_value_of_type(input, culprit_type)) {
            return DecodeError(DecodeError::Kind::wrong_type, {}, *where,
                               "found " + std::string(culprit_type) + " where the element type does not allow it");
        }
    }
    return std::nullopt;
}

/// Whether `value` holds only what JSON can carry (the fast check; `check_encodable` finds the path).
[[nodiscard]] inline bool is_encodable(const nlohmann::json& value) {
    switch (value.type()) {
    case nlohmann::json::value_t::string:
        return is_valid_utf8(value.get_ref<const std::string&>());
    case nlohmann::json::value_t::number_float:
        return std::isfinite(value.get<double>());
    case nlohmann::json::value_t::object:
        for (const auto& [key, element] : value.get_ref<const nlohmann::json::object_t&>()) {
            if (!is_valid_utf8(key) || !is_encodable(element)) return false;
        }
        return true;
    case nlohmann::json::value_t::array:
        for (const auto& element : value.get_ref<const nlohmann::json::array_t&>()) {
            if (!is_encodable(element)) return false;
        }
        return true;
    default:
        return true;
    }
}

/// Throws EncodeError (with the path) if `value` holds what JSON cannot carry: a non-finite number or a
/// string that is not valid UTF-8.
inline void check_encodable(const nlohmann::json& value, std::string_view type, std::string& path) {
    if (value.is_string()) {
        if (!is_valid_utf8(value.get_ref<const std::string&>())) {
            throw EncodeError(std::string(type), path, "a string is not valid UTF-8");
        }
    } else if (value.is_number_float()) {
        if (!std::isfinite(value.get<double>())) {
            throw EncodeError(std::string(type), path, "JSON has no NaN or infinite numbers");
        }
    } else if (value.is_object()) {
        for (const auto& [key, element] : value.items()) {
            if (!is_valid_utf8(key)) throw EncodeError(std::string(type), path, "a key is not valid UTF-8");
            const std::size_t size = path.size();
            append_pointer(path, key);
            check_encodable(element, type, path);
            path.resize(size);
        }
    } else if (value.is_array()) {
        for (std::size_t i = 0; i < value.size(); ++i) {
            const std::size_t size = path.size();
            path += pointer(i);
            check_encodable(value[i], type, path);
            path.resize(size);
        }
    }
}

// nlohmann converts a JSON fraction to an integer field with a plain cast, which is undefined behaviour when
// the truncated value does not fit (1e300 or -3.5 into an unsigned, 300.5 into an int8). A fraction in
// (-1, 128) fits every integer type; any other is "unsafe" and must not reach an integer field.
[[nodiscard]] inline bool is_unsafe_fraction(const nlohmann::json& value) noexcept {
    if (!value.is_number_float()) return false;
    const double number = value.get<double>();
    return !(number > -1.0 && number < 128.0);
}

[[nodiscard]] inline bool has_unsafe_fraction(const nlohmann::json& value) noexcept {
    if (value.is_object()) {
        for (const auto& [key, element] : value.get_ref<const nlohmann::json::object_t&>()) {
            if (has_unsafe_fraction(element)) return true;
        }
        return false;
    }
    if (value.is_array()) {
        for (const auto& element : value.get_ref<const nlohmann::json::array_t&>()) {
            if (has_unsafe_fraction(element)) return true;
        }
        return false;
    }
    return is_unsafe_fraction(value);
}

/// `value` with every unsafe fraction replaced by 0.5: a probe that converts without undefined behaviour
/// whatever the field types are.
[[nodiscard]] inline nlohmann::json with_safe_fractions(const nlohmann::json& value) {
    if (value.is_structured()) {
        nlohmann::json copy = value;
        for (auto& element : copy) element = with_safe_fractions(element);
        return copy;
    }
    return is_unsafe_fraction(value) ? nlohmann::json(0.5) : value;
}

/// Throws `DecodeError{wrong_type}` at the first place where `input` holds an unsafe fraction and `output`
/// (the probe decoded and encoded again) an integer: that field is an integer field.
inline void check_fraction_targets(const nlohmann::json& input, const nlohmann::json& output) {
    if (input.is_object() && output.is_object()) {
        for (const auto& [key, value] : input.items()) {
            const auto found = output.find(key);
            if (found == output.end()) continue;
            try {
                check_fraction_targets(value, *found);
            } catch (DecodeError& e) {
                e.add_context(pointer(key));
                throw;
            }
        }
    } else if (input.is_array() && output.is_array()) {
        for (std::size_t i = 0; i < input.size() && i < output.size(); ++i) {
            try {
                check_fraction_targets(input[i], output[i]);
            } catch (DecodeError& e) {
                e.add_context(pointer(i));
                throw;
            }
        }
    } else if (is_unsafe_fraction(input) && output.is_number_integer()) {
        wrong_type("an integer", input);
    }
}

/// What `from_checked_json` hands to `from_json`: `payload` itself, or, if it holds an unsafe fraction, the
/// safe probe when that probe is refused for a structural reason (a missing field, a wrong JSON type:
/// the same refusal as the payload's, reported without converting the unsafe fraction). Throws
/// `DecodeError{wrong_type}` if an unsafe fraction is bound for an integer field.
template <class T>
[[nodiscard]] const nlohmann::json& safe_conversion_source(const nlohmann::json& payload,
                                                           std::optional<nlohmann::json>& probe) {
    if (!has_unsafe_fraction(payload)) return payload;
    probe = with_safe_fractions(payload);
    std::optional<nlohmann::json> decoded;
    try {
        decoded = nlohmann::json(probe->get<T>());
    } catch (const DecodeError&) {
        return *probe;
    } catch (const nlohmann::json::exception&) {
        return *probe;
    } catch (const std::exception&) { // refused by the type's own check of a value: ask the payload itself
        return payload;
    }
    check_fraction_targets(payload, *decoded);
    return payload;
}

} // namespace detail

/// Converts `value` to JSON through its `to_json`, refusing what JSON cannot carry (`EncodeError` naming
/// `type_name` and the path). The text form of the result (`dump()`) is deterministic: keys are sorted.
template <class T>
[[nodiscard]] nlohmann::json to_checked_json(const T& value, std::string_view type_name) {
    nlohmann::json j;
    try {
        // Into `j`, not through a temporary: if a nested to_json throws (a Personal<T> outside its codec), the
        // object built so far belongs to `j` and is freed; a json under construction would leak it.
        nlohmann::adl_serializer<T, void>::to_json(j, value);
    } catch (const std::exception& e) {
        throw EncodeError(std::string(type_name), {}, std::string("to_json threw: ") + e.what());
    }
    if (!detail::is_encodable(j)) {
        std::string path;
        detail::check_encodable(j, type_name, path);
    }
    return j;
}

/// Whether decoding `T` runs the round-trip check (when `DecodeOptions::verify_round_trip` is on). Specialise
/// it to `false` for a type whose `from_json` reads every field with `json_field` and so is exact already:
/// that saves the re-encoding (about a third of the decoding time of a small event), but fields the type
/// does not have are then ignored rather than refused.
template <class T>
inline constexpr bool json_round_trip_check = true;

/// Converts `payload` to `T` through its `from_json` with every strictness check of `DecodeOptions`: a
/// failure of `from_json` is explained with a path, and a value that does not encode back to `payload` is
/// refused. Errors carry `type_name` and paths below `path_prefix` (e.g. "/payload").
template <class T>
[[nodiscard]] T from_checked_json(const nlohmann::json& payload, std::string_view type_name,
                                  std::string_view path_prefix, const DecodeOptions& options) {
    auto located = [&](DecodeError& e) -> DecodeError& {
        e.add_context(path_prefix, type_name);
        return e;
    };
    std::optional<T> value;
    std::optional<nlohmann::json> probe;
    try {
        const nlohmann::json& source = detail::safe_conversion_source<T>(payload, probe);
        value.emplace(source.get<T>());
    } catch (DecodeError& e) {
        throw located(e);
    } catch (const nlohmann::json::exception& e) {
        if constexpr (std::is_default_constructible_v<T>) {
            std::optional<DecodeError> diagnosis;
            try {
                const std::string what = e.what();
                const auto but_is = what.rfind("but is ");
                const std::string culprit = but_is == std::string::npos ? std::string{} : what.substr(but_is + 7);
                diagnosis = detail::diagnose_shape(payload, nlohmann::json(T{}), culprit);
            } catch (const std::exception&) { // no usable default to compare with
            }
            if (diagnosis) throw located(*diagnosis);
        }
        const bool missing = e.id == 403;
        DecodeError error(missing ? DecodeError::Kind::missing_field : DecodeError::Kind::wrong_type, {}, {}, e.what());
        throw located(error);
    } catch (const std::exception& e) {
        DecodeError error(DecodeError::Kind::invalid_value, {}, {}, std::string("from_json refused it: ") + e.what());
        throw located(error);
    }
    if (options.verify_round_trip && json_round_trip_check<T>) {
        try {
            detail::check_round_trip(payload, nlohmann::json(*value), options.reject_unknown_fields);
        } catch (DecodeError& e) {
            throw located(e);
        }
    }
    return std::move(*value);
}

} // namespace orchestrix
