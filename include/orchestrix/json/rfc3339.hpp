#pragma once

// RFC 3339 timestamps in UTC with microseconds, as orchestrix writes `recorded_at` in JSON documents.

#include <orchestrix/core/errors.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace orchestrix {

/// Formats a time as RFC 3339 in UTC with microseconds: `2024-05-01T12:34:56.123456Z` (finer digits are
/// truncated). Years outside 0000..9999 cannot be written and throw `InvalidArgumentError`.
[[nodiscard]] inline std::string to_rfc3339(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    const auto micros = floor<microseconds>(time);
    const auto day = floor<days>(micros);
    const year_month_day date{day};
    const hh_mm_ss<microseconds> clock{micros - day};
    const int y = static_cast<int>(date.year());
    if (y < 0 || y > 9999) throw InvalidArgumentError("time", "a time outside the years 0000..9999 cannot be written");
    char buffer[32];
    const auto n =
        std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", y,
                      static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                      static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                      static_cast<int>(clock.seconds().count()), static_cast<long long>(clock.subseconds().count()));
    return std::string(buffer, static_cast<std::size_t>(n));
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (0 to 6 fractional digits; `+00:00` for `Z` too; `t`/`z` too).
/// Returns nothing for anything else, including impossible dates and times and times that
/// `std::chrono::system_clock` cannot represent.
[[nodiscard]] inline std::optional<std::chrono::system_clock::time_point> from_rfc3339(std::string_view text) {
    using namespace std::chrono;
    auto digits = [&](std::size_t at, std::size_t count) -> std::optional<int> {
        if (at + count > text.size()) return std::nullopt;
        int value = 0;
        for (std::size_t i = at; i < at + count; ++i) {
            if (text[i] < '0' || text[i] > '9') return std::nullopt;
            value = value * 10 + (text[i] - '0');
        }
        return value;
    };
    if (text.size() < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
        text[13] != ':' || text[16] != ':') {
        return std::nullopt;
    }
    const auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
               s = digits(17, 2);
    if (!y || !mo || !d || !h || !mi || !s || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
    const year_month_day date{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
    if (!date.ok()) return std::nullopt;
    std::size_t at = 19;
    long long fraction = 0;
    if (at < text.size() && text[at] == '.') {
        ++at;
        std::size_t count = 0;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
            if (++count > 6) return std::nullopt;
            fraction = fraction * 10 + (text[at] - '0');
            ++at;
        }
        if (count == 0) return std::nullopt;
        for (; count < 6; ++count) fraction *= 10;
    }
    const std::string_view zone = text.substr(at);
    if (zone != "Z" && zone != "z" && zone != "+00:00") return std::nullopt;
    const sys_time<microseconds> time =
        sys_days{date} + hours{*h} + minutes{*mi} + seconds{*s} + microseconds{fraction};
    // system_clock's own range is narrower than 0000..9999 (about 1677..2262 with nanosecond ticks).
    if (time < ceil<microseconds>(system_clock::time_point::min()) ||
        time > floor<microseconds>(system_clock::time_point::max())) {
        return std::nullopt;
    }
    return time_point_cast<system_clock::duration>(time);
}

} // namespace orchestrix
