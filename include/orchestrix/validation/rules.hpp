#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/detail/range.hpp>
#include <orchestrix/detail/utf8.hpp>
#include <orchestrix/validation/errors.hpp>

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

/// Validation of commands and events: declare the rules of each field once, and every violation is reported
/// with its field path (`items[3].sku`), the rule that failed and a message a user can act on.
///
///     struct Register {
///         std::string name, email;
///         int age = 0;
///         orchestrix::ValidationResult validate() const {
///             using namespace orchestrix::rules;
///             return orchestrix::validate(*this,
///                 field("name", &Register::name, not_blank(), max_length(50)),
///                 field("email", &Register::email, required(), email_address()),
///                 field("age", &Register::age, in_range(18, 130)));
///         }
///     };
///
/// `AggregateRoot::execute` calls such a `validate()` before the handler and throws `ValidationError` with every
/// violation if there is any; the aggregate is then untouched. See docs/validation.md.
namespace orchestrix {

/// Longest input, in bytes, that `rules::matches` hands to `std::regex` by default. Standard library regex
/// engines recurse per character and can exhaust the stack on long inputs; a longer value is a violation.
inline constexpr std::size_t default_pattern_input_limit = 1024;

namespace diagnostic {

/// A rule given a field whose type it cannot check (see namespace diagnostic in core/message.hpp): `Field`
/// is the field's pointer to member (`int Register::*`) or the value's type.
template <class Field>
struct in_field {
    template <class Rule>
    struct replace_rule_by_one_for_this_type; // length rules for strings, range rules for numbers, ...
};

template <class...>
inline constexpr bool rule_fits_value = false;

} // namespace diagnostic

namespace detail {

/// Where validation is: the result being filled and the path of the value under check.
class ValidationContext {
public:
    explicit ValidationContext(ValidationResult& out) : out_(out) {}

    void fail(std::string_view rule, std::string message) { out_.add(path_, std::string(rule), std::move(message)); }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] ValidationResult& result() noexcept { return out_; }

    /// Extends the path while alive.
    class Scope {
    public:
        Scope(std::string& path, std::size_t keep) noexcept : path_(path), keep_(keep) {}
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;
        ~Scope() { path_.resize(keep_); }

    private:
        std::string& path_;
        std::size_t keep_;
    };

    [[nodiscard]] Scope member(std::string_view name) {
        const std::size_t keep = path_.size();
        if (!path_.empty() && !name.empty() && name.front() != '[') path_ += '.';
        path_ += name;
        return Scope(path_, keep);
    }
    [[nodiscard]] Scope index(std::size_t i) {
        const std::size_t keep = path_.size();
        path_ += '[';
        path_ += std::to_string(i);
        path_ += ']';
        return Scope(path_, keep);
    }
    [[nodiscard]] Scope key(std::string_view k) {
        const std::size_t keep = path_.size();
        path_ += '[';
        path_ += k;
        path_ += ']';
        return Scope(path_, keep);
    }

private:
    ValidationResult& out_;
    std::string path_;
};

template <class T>
concept string_like = std::convertible_to<const T&, std::string_view>;

template <class T>
concept sized_collection = !string_like<T> && sized_iterable<const T>;

template <class T>
concept optional_like = !string_like<T> && requires(const T& v) {
    { static_cast<bool>(v) } -> std::same_as<bool>;
    *v;
};

template <class T>
concept has_empty = requires(const T& v) {
    { v.empty() } -> std::convertible_to<bool>;
};

/// `value` as text for a message, or an empty string when it has no obvious spelling.
template <class T>
[[nodiscard]] std::string describe_value(const T& value) {
    if constexpr (string_like<T>) {
        return "'" + std::string(std::string_view(value)) + "'";
    } else if constexpr (std::is_same_v<T, bool>) {
        return value ? "true" : "false";
    } else if constexpr (std::is_arithmetic_v<T>) {
        char buffer[64];
        const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
        return ec == std::errc{} ? std::string(buffer, end) : std::string();
    } else {
        return {};
    }
}

[[nodiscard]] inline std::string count_of(std::size_t n, std::string_view singular, std::string_view plural) {
    return std::to_string(n) + " " + std::string(n == 1 ? singular : plural);
}

template <class T, class U>
[[nodiscard]] constexpr bool less(const T& a, const U& b) {
    if constexpr (std::is_integral_v<T> && std::is_integral_v<U> && !std::is_same_v<T, bool> &&
                  !std::is_same_v<U, bool>) {
        return std::cmp_less(a, b);
    } else if constexpr (std::is_arithmetic_v<T> && std::is_arithmetic_v<U>) {
        using C = std::common_type_t<T, U, double>;
        return static_cast<C>(a) < static_cast<C>(b);
    } else {
        return a < b;
    }
}

template <class T>
[[nodiscard]] constexpr bool is_nan(const T& v) {
    if constexpr (std::is_floating_point_v<T>) {
        return v != v; // NOLINT(misc-redundant-expression): true only for NaN
    } else {
        return false;
    }
}

template <class Rule>
inline constexpr bool is_gate = requires {
    requires Rule::gate;
};

/// Applies `rules` to `value` in order; a failed presence rule (`required`, `not_empty`, `not_blank`) skips
/// the rest, so a missing value is reported once. Returns whether all passed.
template <class Rule, class T>
concept rule_for = requires(const Rule& rule, const T& value, ValidationContext& ctx) {
    { rule.check(value, ctx) } -> std::same_as<bool>;
};

// The type of the member a pointer to member points to.
template <class Member>
struct member_value;
template <class T, class Object>
struct member_value<T Object::*> {
    using type = std::remove_cv_t<T>;
};

/// Refuses, at compile time, a rule that cannot check a value of type `T`; `Field` names where it is (the
/// pointer to member, or `T`).
template <class Field, class T, class Rule>
constexpr void check_rule_fits() noexcept {
    if constexpr (!rule_for<Rule, T>) {
        (void)sizeof(typename diagnostic::in_field<Field>::template replace_rule_by_one_for_this_type<Rule>);
        static_assert(diagnostic::rule_fits_value<Rule, T>,
                      "orchestrix validation: a rule cannot check this value's type, e.g. a length rule on a "
                      "number or a range rule on a string. Use length rules (min_length, max_length, "
                      "length_between) for strings and collections, range rules (at_least, at_most, in_range) for "
                      "numbers, each(...) for the elements of a collection and if_present(...) for std::optional "
                      "or pointers.");
    }
}

template <class T, class... Rules>
bool apply_rules(const T& value, ValidationContext& ctx, const std::tuple<Rules...>& rules) {
    bool all_passed = true;
    bool stopped = false;
    auto one = [&](const auto& rule) -> void {
        using Rule = std::remove_cvref_t<decltype(rule)>;
        if constexpr (!rule_for<Rule, T>) {
            check_rule_fits<T, T, Rule>();
        } else {
            if (stopped) return;
            if (!rule.check(value, ctx)) {
                all_passed = false;
                if constexpr (is_gate<Rule>) stopped = true;
            }
        }
    };
    [&]<std::size_t... I>(std::index_sequence<I...>) { (one(std::get<I>(rules)), ...); }
    (std::index_sequence_for<Rules...>{});
    return all_passed;
}

/// Both arithmetic (compared with mixed-sign care), or ordered against each other with `<` both ways.
template <class T, class Bound>
concept orderable_with = (std::is_arithmetic_v<T> && std::is_arithmetic_v<Bound>) ||
                         requires(const T& v, const Bound& b) {
    { v < b } -> std::convertible_to<bool>;
    { b < v } -> std::convertible_to<bool>;
};

} // namespace detail

/// The rule factories. Bring them into scope where rules are declared: `using namespace orchestrix::rules;`.
/// Each rule's name in a `Violation` is the name of the function that made it.
namespace rules {

/// A value must be present: an engaged `std::optional`, a non-null pointer, a non-empty string or collection.
struct Required {
    static constexpr bool gate = true;
    template <class T>
    requires detail::optional_like<T> || detail::has_empty<T>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        bool present = false;
        if constexpr (detail::optional_like<T>) {
            present = static_cast<bool>(v);
        } else {
            present = !v.empty();
        }
        if (!present) ctx.fail("required", "is required");
        return present;
    }
};
[[nodiscard]] inline Required required() { return {}; }

/// A string or collection must not be empty.
struct NotEmpty {
    static constexpr bool gate = true;
    template <detail::has_empty T>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        if (!v.empty()) return true;
        ctx.fail("not_empty", "must not be empty");
        return false;
    }
};
[[nodiscard]] inline NotEmpty not_empty() { return {}; }

/// A string must contain something besides ASCII white space.
struct NotBlank {
    static constexpr bool gate = true;
    template <detail::string_like T>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        for (const char c : std::string_view(v)) {
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return true;
        }
        ctx.fail("not_blank", "must not be blank");
        return false;
    }
};
[[nodiscard]] inline NotBlank not_blank() { return {}; }

/// Length bounds (inclusive). Strings count Unicode code points of their UTF-8 text ("Zoë" is 3 long, "日本"
/// is 2; a string that is not valid UTF-8 fails the rule); collections count elements. `max_bytes` counts
/// bytes.
struct Length {
    std::size_t min = 0;
    std::size_t max = static_cast<std::size_t>(-1);
    std::string_view rule;
    bool bytes = false;

    template <class T>
    requires detail::string_like<T> || detail::sized_collection<T>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        std::size_t n = 0;
        std::string_view singular = "item";
        std::string_view plural = "items";
        if constexpr (detail::string_like<T>) {
            const std::string_view text(v);
            if (bytes) {
                n = text.size();
                singular = "byte";
                plural = "bytes";
            } else {
                const auto points = detail::utf8_code_points(text);
                if (!points) {
                    ctx.fail(rule, "is not valid UTF-8 text");
                    return false;
                }
                n = *points;
                singular = "character";
                plural = "characters";
            }
        } else {
            n = static_cast<std::size_t>(std::ranges::size(v));
        }
        if (n >= min && n <= max) return true;
        // Strings: "must be at most 50 characters long (is 51)"; collections: "must have at most 3 items (has 4)".
        constexpr bool text = detail::string_like<T>;
        std::string message = text ? "must be " : "must have ";
        if (min == max) {
            message += "exactly " + detail::count_of(min, singular, plural);
        } else if (max == static_cast<std::size_t>(-1)) {
            message += "at least " + detail::count_of(min, singular, plural);
        } else if (min == 0) {
            message += "at most " + detail::count_of(max, singular, plural);
        } else {
            message += "between " + std::to_string(min) + " and " + detail::count_of(max, singular, plural);
        }
        message += text ? " long (is " : " (has ";
        message += std::to_string(n) + ")";
        ctx.fail(rule, std::move(message));
        return false;
    }
};
[[nodiscard]] inline Length min_length(std::size_t n) { return {n, static_cast<std::size_t>(-1), "min_length"}; }
[[nodiscard]] inline Length max_length(std::size_t n) { return {0, n, "max_length"}; }
[[nodiscard]] inline Length length_between(std::size_t min, std::size_t max) {
    if (min > max)
        throw InvalidArgumentError("min", "length_between: min (" + std::to_string(min) + ") is greater than max (" +
                                              std::to_string(max) + ")");
    return {min, max, "length_between"};
}
/// At most `n` bytes of a string (a storage limit, as opposed to `max_length`'s characters).
[[nodiscard]] inline Length max_bytes(std::size_t n) { return {0, n, "max_bytes", true}; }

/// Numeric bounds (inclusive). Integers of mixed signedness compare by value (-1 is below 0u); NaN fails.
template <class Bound>
struct Range {
    std::optional<Bound> min;
    std::optional<Bound> max;
    std::string_view rule;

    template <class T>
    requires detail::orderable_with<T, Bound>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        const bool below = min && (detail::is_nan(v) || detail::less(v, *min));
        const bool above = max && (detail::is_nan(v) || detail::less(*max, v));
        if (!below && !above) return true;
        const std::string lo = min ? detail::describe_value(*min) : std::string();
        const std::string hi = max ? detail::describe_value(*max) : std::string();
        if (min && max) {
            ctx.fail(rule, lo.empty() || hi.empty() ? std::string("is out of range")
                                                    : "must be between " + lo + " and " + hi);
        } else if (min) {
            ctx.fail(rule, lo.empty() ? std::string("is too small") : "must be at least " + lo);
        } else {
            ctx.fail(rule, hi.empty() ? std::string("is too large") : "must be at most " + hi);
        }
        return false;
    }
};
template <class Bound>
[[nodiscard]] Range<Bound> at_least(Bound min) {
    return {std::move(min), std::nullopt, "at_least"};
}
template <class Bound>
[[nodiscard]] Range<Bound> at_most(Bound max) {
    return {std::nullopt, std::move(max), "at_most"};
}
template <class Bound>
[[nodiscard]] Range<Bound> in_range(Bound min, Bound max) {
    if (detail::less(max, min)) throw InvalidArgumentError("min", "in_range: min is greater than max");
    return {std::move(min), std::move(max), "in_range"};
}

/// A pragmatic email address check, not RFC 5322: `local@domain` with exactly one '@'; at most 254 bytes;
/// a local part of 1 to 64 bytes without spaces, control characters, quotes or `(),:;<>[\]`, not starting or
/// ending with '.' and without ".."; a domain of at least two dot-separated labels of 1 to 63 bytes made of
/// letters, digits, '-' (not at either end) or non-ASCII UTF-8 (internationalised names), the last label at
/// least two long and not all digits. Quoted local parts and IP-literal domains are refused.
struct Email {
    template <detail::string_like T>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        if (is_valid(std::string_view(v))) return true;
        ctx.fail("email_address", "must be an email address like name@example.com");
        return false;
    }

    [[nodiscard]] static bool is_valid(std::string_view text) noexcept {
        if (text.size() > 254) return false;
        const auto at = text.find('@');
        if (at == std::string_view::npos || text.find('@', at + 1) != std::string_view::npos) return false;
        const std::string_view local = text.substr(0, at);
        const std::string_view domain = text.substr(at + 1);
        if (local.empty() || local.size() > 64 || local.front() == '.' || local.back() == '.' ||
            local.find("..") != std::string_view::npos) {
            return false;
        }
        for (const char c : local) {
            const auto u = static_cast<unsigned char>(c);
            if (u <= 0x20U || u == 0x7FU || std::string_view("\"(),:;<>[\\]").find(c) != std::string_view::npos) {
                return false;
            }
        }
        if (!detail::utf8_code_points(text)) return false;
        std::size_t labels = 0;
        std::string_view last;
        std::string_view rest = domain;
        while (true) {
            const auto dot = rest.find('.');
            const std::string_view label = rest.substr(0, dot);
            if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
            for (const char c : label) {
                const auto u = static_cast<unsigned char>(c);
                const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                c == '-' || u >= 0x80U;
                if (!ok) return false;
            }
            ++labels;
            last = label;
            if (dot == std::string_view::npos) break;
            rest = rest.substr(dot + 1);
        }
        if (labels < 2 || last.size() < 2) return false;
        for (const char c : last) {
            if (c < '0' || c > '9') return true;
        }
        return false; // an all-digit top-level label is an IP address, not a domain
    }
};
/// Named `email_address` rather than `email` so that it stays usable inside a command with an `email` member.
[[nodiscard]] inline Email email_address() { return {}; }

/// The value must equal one of `allowed`.
template <class V>
struct OneOf {
    std::vector<V> allowed;

    template <class T>
    requires std::equality_comparable_with<const T&, const V&>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        for (const auto& a : allowed) {
            if (v == a) return true;
        }
        std::string list;
        for (const auto& a : allowed) {
            const std::string text = detail::describe_value(a);
            if (text.empty()) {
                list.clear();
                break;
            }
            if (!list.empty()) list += ", ";
            list += text;
        }
        ctx.fail("one_of", list.empty() ? std::string("must be one of the allowed values") : "must be one of " + list);
        return false;
    }
};
/// For strings: `one_of({"admin", "editor"})`.
[[nodiscard]] inline OneOf<std::string> one_of(std::initializer_list<std::string_view> allowed) {
    return {std::vector<std::string>(allowed.begin(), allowed.end())};
}
/// For numbers, enums and other equality-comparable values: `one_of({1, 2, 5})`.
template <class V>
[[nodiscard]] OneOf<V> one_of(std::initializer_list<V> allowed) requires(!detail::string_like<V>) {
    return {std::vector<V>(allowed)};
}

/// A custom rule: `predicate(value)` must return true; otherwise a violation named `rule` says `message`.
template <class Predicate>
struct Satisfies {
    std::string rule;
    Predicate predicate;
    std::string message;

    template <class T>
    requires std::predicate<const Predicate&, const T&>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        if (std::invoke(predicate, v)) return true;
        ctx.fail(rule, message);
        return false;
    }
};
template <class Predicate>
[[nodiscard]] Satisfies<Predicate> satisfies(std::string rule, Predicate predicate, std::string message) {
    return {std::move(rule), std::move(predicate), std::move(message)};
}

/// Applies its rules to every element of a collection, the path gaining `[index]` (or `[key]` for a map with
/// string or numeric keys).
template <class... Rules>
struct Each {
    std::tuple<Rules...> rules;

    template <detail::iterable T>
    bool check(const T& collection, detail::ValidationContext& ctx) const requires(!detail::string_like<T>) {
        bool ok = true;
        if constexpr (requires {
                          typename T::key_type;
                          typename T::mapped_type;
                      }) {
            for (const auto& [key, value] : collection) {
                const auto scope = ctx.key(key_text(key));
                ok = detail::apply_rules(value, ctx, rules) && ok;
            }
        } else {
            std::size_t i = 0;
            for (const auto& element : collection) {
                const auto scope = ctx.index(i++);
                ok = detail::apply_rules(element, ctx, rules) && ok;
            }
        }
        return ok;
    }

private:
    template <class K>
    static std::string key_text(const K& key) {
        if constexpr (detail::string_like<K>) {
            return std::string(std::string_view(key));
        } else {
            return detail::describe_value(key);
        }
    }
};
template <class... Rules>
[[nodiscard]] Each<Rules...> each(Rules... rules) {
    return {std::tuple<Rules...>(std::move(rules)...)};
}

/// Applies its rules to the value of a `std::optional` or the target of a pointer when there is one, and to a
/// string or collection when it is not empty; an absent value passes (add `required()` to refuse it).
template <class... Rules>
struct IfPresent {
    std::tuple<Rules...> rules;

    template <class T>
    requires detail::optional_like<T> || detail::has_empty<T>
    bool check(const T& v, detail::ValidationContext& ctx) const {
        if constexpr (detail::optional_like<T>) {
            return !v || detail::apply_rules(*v, ctx, rules);
        } else {
            return v.empty() || detail::apply_rules(v, ctx, rules);
        }
    }
};
template <class... Rules>
[[nodiscard]] IfPresent<Rules...> if_present(Rules... rules) {
    return {std::tuple<Rules...>(std::move(rules)...)};
}

/// Validates a nested struct through its own `ValidationResult validate() const`, its violations' paths placed
/// under the field's (`address.city`, `items[3].sku`).
struct Nested {
    template <class T>
    requires requires(const T& v) { v.validate(); }
    bool check(const T& v, detail::ValidationContext& ctx) const {
        static_assert(std::is_same_v<decltype(v.validate()), ValidationResult>,
                      "orchestrix::rules::nested(): the nested type's validate() must return "
                      "orchestrix::ValidationResult (e.g. `return orchestrix::validate(*this, field(...));`)");
        const ValidationResult inner = v.validate();
        ctx.result().merge(ctx.path(), inner);
        return inner.ok();
    }
};
[[nodiscard]] inline Nested nested() { return {}; }

/// One field of an object: a name for paths, how to read it (a pointer to member or a callable taking the
/// object) and the rules for its value.
template <class Getter, class... Rules>
struct Field {
    std::string name;
    Getter getter;
    std::tuple<Rules...> rules;

    template <class Object>
    requires std::invocable<const Getter&, const Object&>
    bool check(const Object& object, detail::ValidationContext& ctx) const {
        using value_type = std::remove_cvref_t<std::invoke_result_t<const Getter&, const Object&>>;
        if constexpr (std::is_member_object_pointer_v<Getter> && !(detail::rule_for<Rules, value_type> && ...)) {
            return false; // refused at compile time by field()
        } else {
            const auto scope = ctx.member(name);
            decltype(auto) value = std::invoke(getter, object);
            return detail::apply_rules(value, ctx, rules);
        }
    }
};

template <class Getter, class... Rules>
[[nodiscard]] Field<Getter, Rules...> field(std::string name, Getter getter, Rules... rules) {
    static_assert(std::is_member_object_pointer_v<Getter> || std::is_member_function_pointer_v<Getter> ||
                      std::is_class_v<Getter> || std::is_function_v<std::remove_pointer_t<Getter>>,
                  "orchestrix::rules::field(name, getter, rules...): getter must be a pointer to member "
                  "(&Command::name) or a callable taking the object ([](const Command& c) { return ...; })");
    if constexpr (std::is_member_object_pointer_v<Getter>) {
        // A rule that cannot check the field is refused here, next to the call, naming the field's type.
        (detail::check_rule_fits<Getter, typename detail::member_value<Getter>::type, Rules>(), ...);
    }
    return {std::move(name), std::move(getter), std::tuple<Rules...>(std::move(rules)...)};
}

/// A rule about the object as a whole (fields that must agree): `predicate(object)` must hold; otherwise a
/// violation at `path` named `rule` says `message`.
template <class Predicate>
struct Check {
    std::string path;
    std::string rule;
    Predicate predicate;
    std::string message;

    template <class Object>
    requires std::predicate<const Predicate&, const Object&>
    bool check(const Object& object, detail::ValidationContext& ctx) const {
        if (std::invoke(predicate, object)) return true;
        const auto scope = ctx.member(path);
        ctx.fail(rule, message);
        return false;
    }
};
template <class Predicate>
[[nodiscard]] Check<Predicate> check(std::string path, std::string rule, Predicate predicate, std::string message) {
    return {std::move(path), std::move(rule), std::move(predicate), std::move(message)};
}

} // namespace rules

/// A reusable set of checks (fields and object rules) for one type. It is itself a rule, so it can check
/// nested values: `each(item_rules)`. Keep one in a `static const` to build the rules (and compile their
/// regular expressions) once:
///
///     orchestrix::ValidationResult validate() const {
///         using namespace orchestrix::rules;
///         static const auto rules = orchestrix::validator(field("sku", &Item::sku, matches("[A-Z]{3}-[0-9]{4}")));
///         return rules(*this);
///     }
template <class... Checks>
class Validator {
public:
    explicit Validator(Checks... checks) : checks_(std::move(checks)...) {}

    /// Every violation of `object`.
    template <class Object>
    [[nodiscard]] ValidationResult operator()(const Object& object) const {
        ValidationResult result;
        detail::ValidationContext ctx(result);
        (void)check(object, ctx);
        return result;
    }

    /// As a rule inside another validator: adds the violations under the current path.
    template <class Object>
    bool check(const Object& object, detail::ValidationContext& ctx) const {
        return detail::apply_rules(object, ctx, checks_);
    }

private:
    std::tuple<Checks...> checks_;
};

/// Makes a `Validator` from fields and object rules.
template <class... Checks>
[[nodiscard]] Validator<Checks...> validator(Checks... checks) {
    return Validator<Checks...>(std::move(checks)...);
}

/// Checks `object` against `checks` (fields and object rules) and returns every violation.
template <class Object, class... Checks>
[[nodiscard]] ValidationResult validate(const Object& object, Checks&&... checks) {
    ValidationResult result;
    detail::ValidationContext ctx(result);
    (void)detail::apply_rules(object, ctx, std::forward_as_tuple(checks...));
    return result;
}

} // namespace orchestrix
