#pragma once

// Checked readers for hand-written `from_json` functions: `json_field<T>(object, "name")` and friends
// refuse what nlohmann's conversions accept silently (3.7 read as 3, 300 wrapped into an int8).

#include <orchestrix/json/document.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

namespace detail {

template <class T>
struct is_std_vector : std::false_type {};
template <class T, class A>
struct is_std_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_std_optional : std::false_type {};
template <class T>
struct is_std_optional<std::optional<T>> : std::true_type {};

[[nodiscard]] inline std::string_view json_type_name(const nlohmann::json& value) noexcept {
    if (value.is_number_float()) return "a fractional number";
    if (value.is_number()) return "an integer";
    return value.type_name();
}

[[noreturn]] inline void wrong_type(std::string_view expected, const nlohmann::json& value) {
    throw DecodeError(DecodeError::Kind::wrong_type, {}, {},
                      "expected " + std::string(expected) + ", found " + std::string(json_type_name(value)) +
                          (value.is_primitive() ? " " + value.dump() : std::string{}));
}

} // namespace detail

/// Converts one JSON value to `T` with every check nlohmann leaves out: integers must be integers (no
/// fraction) that fit `T`, floats must be finite and fit, strings must be strings, `std::optional` takes
/// `null`, `std::vector` checks each element (errors name its index). Other types go through their own
/// `from_json`. Throws `DecodeError` with a path relative to `value`.
template <class T>
[[nodiscard]] T json_value(const nlohmann::json& value) {
    using json = nlohmann::json;
    if constexpr (std::is_same_v<T, json>) {
        return value;
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!value.is_boolean()) detail::wrong_type("a boolean", value);
        return value.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
        if (!value.is_number_integer()) detail::wrong_type("an integer", value);
        const bool fits = value.is_number_unsigned() ? std::in_range<T>(value.get<json::number_unsigned_t>())
                                                     : std::in_range<T>(value.get<json::number_integer_t>());
        if (!fits) {
            throw DecodeError(DecodeError::Kind::out_of_range, {}, {},
                              value.dump() + " does not fit in the field's range [" +
                                  std::to_string(std::numeric_limits<T>::min()) + ", " +
                                  std::to_string(std::numeric_limits<T>::max()) + "]");
        }
        return value.is_number_unsigned() ? static_cast<T>(value.get<json::number_unsigned_t>())
                                          : static_cast<T>(value.get<json::number_integer_t>());
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!value.is_number()) detail::wrong_type("a number", value);
        const double number = value.get<double>();
        if (!std::isfinite(number) || std::fabs(number) > static_cast<double>(std::numeric_limits<T>::max())) {
            throw DecodeError(DecodeError::Kind::out_of_range, {}, {},
                              value.dump() + " does not fit in the field's floating-point type");
        }
        return static_cast<T>(number);
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!value.is_string()) detail::wrong_type("a string", value);
        return value.get<std::string>();
    } else if constexpr (detail::is_std_optional<T>::value) {
        if (value.is_null()) return T{};
        return T{json_value<typename T::value_type>(value)};
    } else if constexpr (detail::is_std_vector<T>::value) {
        if (!value.is_array()) detail::wrong_type("an array", value);
        T out;
        out.reserve(value.size());
        for (std::size_t i = 0; i < value.size(); ++i) {
            try {
                out.push_back(json_value<typename T::value_type>(value[i]));
            } catch (DecodeError& e) {
                e.add_context(detail::pointer(i));
                throw;
            }
        }
        return out;
    } else {
        try {
            return value.get<T>();
        } catch (const DecodeError&) {
            throw;
        } catch (const nlohmann::json::exception& e) {
            throw DecodeError(DecodeError::Kind::wrong_type, {}, {}, e.what());
        }
    }
}

/// Reads the required field `key` of the JSON object `object` as `T`, checked as by `json_value`. For
/// hand-written `from_json` functions:
///
///     void from_json(const nlohmann::json& j, MoneyDeposited& e) {
///         e.account_id = orchestrix::json_field<std::string>(j, "account_id");
///         e.amount = orchestrix::json_field<std::int64_t>(j, "amount");
///     }
///
/// A missing field, a wrong type or an out-of-range number throws `DecodeError` naming the field's path.
template <class T>
[[nodiscard]] T json_field(const nlohmann::json& object, std::string_view key) {
    if (!object.is_object()) detail::wrong_type("an object", object);
    const auto found = object.find(key);
    if (found == object.end()) {
        throw DecodeError(DecodeError::Kind::missing_field, {}, detail::pointer(key),
                          "the required field \"" + std::string(key) + "\" is absent");
    }
    try {
        return json_value<T>(*found);
    } catch (DecodeError& e) {
        e.add_context(detail::pointer(key));
        throw;
    }
}

/// Reads the optional field `key`: `fallback` when it is absent (or null), otherwise checked as `json_field`.
template <class T>
[[nodiscard]] T json_field_or(const nlohmann::json& object, std::string_view key, T fallback) {
    if (!object.is_object()) detail::wrong_type("an object", object);
    const auto found = object.find(key);
    if (found == object.end() || found->is_null()) return fallback;
    try {
        return json_value<T>(*found);
    } catch (DecodeError& e) {
        e.add_context(detail::pointer(key));
        throw;
    }
}

} // namespace orchestrix
