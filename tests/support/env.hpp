#pragma once

// Settings of the long-running tests (sizes, seeds) taken from the environment, so that a run can ask for more
// than the default.

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace test_support {

// The unsigned decimal number in the environment variable `name`, or `fallback` when the variable is unset or
// empty. Anything else (a sign, spaces, other characters, a number outside [minimum, maximum]) throws, so that
// a mistyped value fails the test instead of quietly running it at another size.
inline std::uint64_t env_count(const char* name, std::uint64_t fallback, std::uint64_t minimum = 0,
                               std::uint64_t maximum = std::numeric_limits<std::uint64_t>::max()) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return fallback;
    const std::string_view text(value);
    std::uint64_t parsed = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed, 10);
    if (error != std::errc{} || end != text.data() + text.size() || parsed < minimum || parsed > maximum) {
        std::string range;
        if (maximum != std::numeric_limits<std::uint64_t>::max()) {
            range = " from " + std::to_string(minimum) + " to " + std::to_string(maximum);
        } else if (minimum > 0) {
            range = " of at least " + std::to_string(minimum);
        }
        throw std::invalid_argument(std::string(name) + " must be a whole number" + range + ", not \"" +
                                    std::string(text) + "\"");
    }
    return parsed;
}

} // namespace test_support
