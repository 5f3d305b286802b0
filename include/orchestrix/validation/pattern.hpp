#pragma once

// The regular-expression rule of <orchestrix/validation/rules.hpp>, in a header of its own because <regex> is
// the most expensive standard header to compile: translation units that validate without patterns, and the
// umbrella header, do not pay for it.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/validation/rules.hpp>

#include <cstddef>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix::rules {

/// The whole string must match an ECMAScript regular expression, compiled once when the rule is made (keep
/// the rule set in a `static const` to compile it once per program, see `orchestrix::validator`). Inputs
/// longer than `max_input` bytes fail without being matched: regex engines can exhaust the stack on long input.
class Matches {
public:
    Matches(std::string pattern, std::string message, std::size_t max_input)
        : pattern_(std::move(pattern)), message_(std::move(message)), max_input_(max_input) {
        try {
            regex_ = std::make_shared<const std::regex>(pattern_, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            throw InvalidArgumentError("pattern",
                                       "matches: '" + pattern_ + "' is not a valid regular expression: " + e.what());
        }
        if (message_.empty()) message_ = "must match the pattern " + pattern_;
    }

    template <detail::string_like T>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        const std::string_view text(v);
        if (text.size() > max_input_) {
            ctx.fail("matches", "is too long to check against its pattern (" + std::to_string(text.size()) +
                                    " bytes; at most " + std::to_string(max_input_) + ")");
            return false;
        }
        if (std::regex_match(text.begin(), text.end(), *regex_)) return true;
        ctx.fail("matches", message_);
        return false;
    }

    [[nodiscard]] const std::string& pattern() const noexcept { return pattern_; }

private:
    std::string pattern_;
    std::string message_;
    std::size_t max_input_;
    std::shared_ptr<const std::regex> regex_;
};
/// `message` is what a violation says, e.g. "must look like ABC-1234"; by default it names the pattern.
/// Throws `InvalidArgumentError` if `pattern` is not a valid regular expression.
[[nodiscard]] inline Matches matches(std::string pattern, std::string message = {},
                                     std::size_t max_input = default_pattern_input_limit) {
    return Matches(std::move(pattern), std::move(message), max_input);
}

} // namespace orchestrix::rules
