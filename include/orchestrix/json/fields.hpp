#pragma once

// JSON for events (and any struct) that name their fields (`orchestrix::declares_fields`): one JSON member per
// field, under its declared name, written with nlohmann's conversions of the field types and read back with
// the checked readers of <orchestrix/json/field.hpp>. No macro and no to_json/from_json to write.

#include <orchestrix/core/event_fields.hpp>
#include <orchestrix/json/field.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace orchestrix::detail {

template <class T>
struct optional_value : std::false_type {};
template <class T>
struct optional_value<std::optional<T>> : std::true_type {};

template <class E, class Json, std::size_t... I>
void fields_to_json(Json& j, const E& value, std::index_sequence<I...>) {
    constexpr auto names = field_names<E>();
    const auto fields = tie_fields(value);
    j = Json::object();
    const auto write = [&j](const auto& field, std::string_view name) {
        using Field = std::remove_cvref_t<decltype(field)>;
        Json& member = j[std::string(name)];
        if constexpr (optional_value<Field>::value) {
            if (field.has_value()) member = *field; // an empty optional stays null
        } else {
            member = field;
        }
    };
    (write(std::get<I>(fields), names[I]), ...);
}

template <class E, class Json, std::size_t... I>
void fields_from_json(const Json& j, E& value, std::index_sequence<I...>) {
    constexpr auto names = field_names<E>();
    auto fields = tie_fields(value);
    const auto read = [&j](auto& field, std::string_view name) {
        using Field = std::remove_cvref_t<decltype(field)>;
        if constexpr (optional_value<Field>::value) {
            field = json_field_or<Field>(j, name, Field{}); // absent or null: empty
        } else {
            field = json_field<Field>(j, name);
        }
    };
    (read(std::get<I>(fields), names[I]), ...);
}

} // namespace orchestrix::detail

/// @cond
/// nlohmann's conversion of every type that names its fields (`static constexpr std::array fields{...}`):
/// `to_json` writes an object with one member per field (an empty `std::optional` as null); `from_json` requires every
/// field that is not a `std::optional` (an absent or null optional reads as empty), checks each value's type and range
/// as `orchestrix::json_field` does, and ignores members it does not know (`JsonCodec` refuses them, as for every
/// event, unless `DecodeOptions::reject_unknown_fields` is off). A type that names its fields gets this
/// conversion even if it also has `to_json`/`from_json` of its own.
template <class E>
requires orchestrix::declares_fields<E>
struct nlohmann::adl_serializer<E, void> {
    template <class Json>
    static void to_json(Json& j, const E& value) {
        orchestrix::detail::fields_to_json(j, value, std::make_index_sequence<orchestrix::detail::field_count_v<E>>{});
    }
    template <class Json>
    static void from_json(const Json& j, E& value) {
        orchestrix::detail::fields_from_json(j, value,
                                             std::make_index_sequence<orchestrix::detail::field_count_v<E>>{});
    }
};
/// @endcond
