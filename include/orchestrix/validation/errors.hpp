#pragma once

#include <orchestrix/core/errors.hpp>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// One broken rule: where (`path`, e.g. "items[3].sku"; empty for the object itself), which rule
/// (`rule`, the name of the function that made it, e.g. "max_length") and why (`message`). Messages state the
/// constraint and, for lengths, the measured length; they never repeat the value, so they are safe to log.
struct Violation {
    std::string path;
    std::string rule;
    std::string message;

    friend bool operator==(const Violation&, const Violation&) = default;
};

/// The outcome of a validation: every violation found, in the order the rules were declared.
class ValidationResult {
public:
    ValidationResult() = default;
    explicit ValidationResult(std::vector<Violation> violations) : violations_(std::move(violations)) {}

    /// True when nothing was violated.
    [[nodiscard]] bool ok() const noexcept { return violations_.empty(); }
    [[nodiscard]] bool empty() const noexcept { return violations_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return violations_.size(); }
    [[nodiscard]] const std::vector<Violation>& violations() const noexcept { return violations_; }
    [[nodiscard]] auto begin() const noexcept { return violations_.begin(); }
    [[nodiscard]] auto end() const noexcept { return violations_.end(); }
    [[nodiscard]] const Violation& operator[](std::size_t i) const { return violations_[i]; }

    /// Whether a violation at `path` was found (of rule `rule`, when given).
    [[nodiscard]] bool has(std::string_view path, std::string_view rule = {}) const noexcept {
        for (const auto& v : violations_) {
            if (v.path == path && (rule.empty() || v.rule == rule)) return true;
        }
        return false;
    }

    /// Records a violation.
    void add(std::string path, std::string rule, std::string message) {
        violations_.push_back(Violation{std::move(path), std::move(rule), std::move(message)});
    }

    /// Appends the violations of `other`, their paths placed under `prefix` ("address" + "city" gives
    /// "address.city", "items" + "[2]" gives "items[2]").
    void merge(std::string_view prefix, const ValidationResult& other) {
        for (const auto& v : other.violations_) add(join_path(prefix, v.path), v.rule, v.message);
    }

    /// One line per violation: `path: message (rule)`.
    [[nodiscard]] std::string to_string() const {
        std::string text;
        for (const auto& v : violations_) {
            if (!text.empty()) text += '\n';
            text += v.path.empty() ? std::string("(value)") : v.path;
            text += ": ";
            text += v.message;
            text += " (";
            text += v.rule;
            text += ')';
        }
        return text;
    }

    /// Throws `ValidationError` carrying every violation unless the result is ok. `AggregateRoot::execute`
    /// calls this on the result of a command's `validate()`.
    inline void throw_if_invalid() const;

    /// `prefix` and `path` joined the way field paths are written.
    [[nodiscard]] static std::string join_path(std::string_view prefix, std::string_view path) {
        std::string joined(prefix);
        if (!prefix.empty() && !path.empty() && path.front() != '[') joined += '.';
        joined += path;
        return joined;
    }

    friend bool operator==(const ValidationResult&, const ValidationResult&) = default;

private:
    std::vector<Violation> violations_;
};

/// A command or event broke one or more validation rules; `violations()` lists them all and `what()` reads
///
///     validation failed with 2 violations:
///       - name: must not be blank (not_blank)
///       - items[3].sku: must look like ABC-1234 (matches)
class ValidationError : public Error {
public:
    explicit ValidationError(ValidationResult result) : Error(describe(result)), result_(std::move(result)) {}
    explicit ValidationError(std::vector<Violation> violations)
        : ValidationError(ValidationResult(std::move(violations))) {}

    [[nodiscard]] const std::vector<Violation>& violations() const noexcept { return result_.violations(); }
    [[nodiscard]] const ValidationResult& result() const noexcept { return result_; }

private:
    static std::string describe(const ValidationResult& result) {
        const std::size_t n = result.size();
        std::string text = "validation failed with " + std::to_string(n) + (n == 1 ? " violation:" : " violations:");
        for (const auto& v : result) {
            text += "\n  - ";
            text += v.path.empty() ? std::string("(value)") : v.path;
            text += ": " + v.message + " (" + v.rule + ")";
        }
        return text;
    }

    ValidationResult result_;
};

inline void ValidationResult::throw_if_invalid() const {
    if (!ok()) throw ValidationError(*this);
}

} // namespace orchestrix
