#pragma once

// fmt formatters for orchestrix's types:
//
//     fmt::format("{}", uuid)              01890a5d-ac96-774b-bcce-b302099a8057
//     fmt::format("{}", expected)          any | no stream | stream exists | exactly 5
//     fmt::format("{}", append_result)     version 3, positions 1..3
//     fmt::format("{}", recorded_event)    account.deposited v3 of 'account-7' at position 12 (id 0189...)
//     fmt::format("{}", error)             the error's what(), for any orchestrix::Error
//
// Each accepts the standard string format spec for width and alignment: "{:>40}".

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/uuid.hpp>

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <type_traits>

namespace orchestrix::detail {

/// The base of orchestrix's formatters: parses a string spec, formats a string.
struct string_formatter : fmt::formatter<std::string_view> {
    template <class Context>
    auto write(std::string_view text, Context& ctx) const {
        return fmt::formatter<std::string_view>::format(text, ctx);
    }
};

/// "version 3, positions 1..3" (or "version 3, nothing written").
[[nodiscard]] inline std::string describe(const AppendResult& r) {
    if (!r.written && r.first_position == 0) return fmt::format("version {}, nothing written", r.stream_version);
    return fmt::format("version {}, positions {}..{}{}", r.stream_version, r.first_position, r.last_position,
                       r.written ? "" : " (already stored)");
}

} // namespace orchestrix::detail

/// @cond
template <>
struct fmt::formatter<orchestrix::Uuid> : orchestrix::detail::string_formatter {
    template <class Context>
    auto format(const orchestrix::Uuid& id, Context& ctx) const {
        return write(id.to_string(), ctx);
    }
};

template <>
struct fmt::formatter<orchestrix::ExpectedVersion> : orchestrix::detail::string_formatter {
    template <class Context>
    auto format(const orchestrix::ExpectedVersion& expected, Context& ctx) const {
        return write(orchestrix::to_string(expected), ctx);
    }
};

template <>
struct fmt::formatter<orchestrix::AppendResult> : orchestrix::detail::string_formatter {
    template <class Context>
    auto format(const orchestrix::AppendResult& result, Context& ctx) const {
        return write(orchestrix::detail::describe(result), ctx);
    }
};

template <class Events>
struct fmt::formatter<orchestrix::RecordedEvent<Events>> : orchestrix::detail::string_formatter {
    template <class Context>
    auto format(const orchestrix::RecordedEvent<Events>& r, Context& ctx) const {
        return write(fmt::format("{} v{} of '{}' at position {} (id {})", r.type(), r.version, r.stream_id, r.position,
                                 r.metadata.event_id.to_string()),
                     ctx);
    }
};

template <class E>
requires std::is_base_of_v<orchestrix::Error, E>
struct fmt::formatter<E> : orchestrix::detail::string_formatter {
    template <class Context>
    auto format(const E& error, Context& ctx) const {
        return write(std::string_view(error.what()), ctx);
    }
};
/// @endcond
