#pragma once

// Prometheus metrics: counters, gauges and histograms with fixed buckets, grouped in labelled families by a
// `Registry` that writes the text exposition format 0.0.4 (docs/operations.md).

#include <orchestrix/core/errors.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace orchestrix::prometheus {

/// The `Content-Type` of what `Registry::serialize` writes, for an HTTP response to a scrape.
inline constexpr std::string_view text_content_type = "text/plain; version=0.0.4; charset=utf-8";

namespace detail {

/// Adds `delta` to an atomic double (a compare-and-swap loop: `fetch_add` on floating-point atomics is not
/// everywhere yet).
inline void atomic_add(std::atomic<double>& target, double delta) noexcept {
    double current = target.load(std::memory_order_relaxed);
    while (!target.compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
    }
}

/// Appends a float as the format writes it, and as the Prometheus Go client does (Go's `%g` with the
/// shortest digits that read back as the same double): "+Inf", "-Inf", "NaN"; plain decimals for exponents
/// from -4 to 5 ("0.0001", "0.25", "100000"), scientific notation otherwise ("1e-05", "1.234567e+06"). So a
/// bucket's `le` label reads as Prometheus users expect ("0.005", not "5e-03").
inline void append_value(std::string& out, double value) {
    if (std::isnan(value)) {
        out += "NaN";
        return;
    }
    if (std::isinf(value)) {
        out += value > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buffer[40];
    const auto scientific = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
    const std::string_view text(buffer, static_cast<std::size_t>(scientific.ptr - buffer));
    const auto e = text.find('e');
    int exponent = 0;
    std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1), text.data() + text.size(), exponent);
    if (exponent < -4 || exponent >= 6) {
        out += text;
        return;
    }
    const auto fixed = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
    out.append(buffer, fixed.ptr);
}

inline void append_value(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr);
}

/// Appends a label value escaped as the format asks: backslash, double quote and line feed become `\\`,
/// `\"` and `\n`.
inline void append_label_value(std::string& out, std::string_view value) {
    for (const char c : value) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
}

/// Appends a HELP text escaped as the format asks: backslash and line feed become `\\` and `\n`.
inline void append_help(std::string& out, std::string_view help) {
    for (const char c : help) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
}

[[nodiscard]] constexpr bool name_start(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
[[nodiscard]] constexpr bool name_char(char c) noexcept { return name_start(c) || (c >= '0' && c <= '9'); }

/// Throws unless `name` is a metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
inline void check_metric_name(std::string_view name) {
    const bool valid = !name.empty() && (name_start(name[0]) || name[0] == ':') &&
                       std::all_of(name.begin(), name.end(), [](char c) { return name_char(c) || c == ':'; });
    if (!valid) {
        throw InvalidArgumentError("name", "'" + std::string(name) +
                                               "' is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
    }
}

/// Throws unless `labels` are distinct label names (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with "__");
/// `reserved` is a name the metric type keeps for itself ("le" for histograms).
inline void check_label_names(std::string_view metric, const std::vector<std::string>& labels,
                              std::string_view reserved) {
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::string& label = labels[i];
        const bool valid = !label.empty() && name_start(label[0]) &&
                           std::all_of(label.begin(), label.end(), [](char c) { return name_char(c); }) &&
                           label.rfind("__", 0) != 0;
        if (!valid) {
            throw InvalidArgumentError("labels", "metric " + std::string(metric) + ": '" + label +
                                                     "' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                                                     "not starting with \"__\")");
        }
        if (!reserved.empty() && label == reserved) {
            throw InvalidArgumentError("labels", "metric " + std::string(metric) + ": the label name '" + label +
                                                     "' is reserved for the metric's own series");
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (labels[j] == label) {
                throw InvalidArgumentError("labels", "metric " + std::string(metric) + ": the label '" + label +
                                                         "' is named twice");
            }
        }
    }
}

/// Orders label-value tuples, and compares stored ones (`std::vector<std::string>`) with looked-up ones
/// (`std::span<const std::string_view>`) without building a key.
struct LabelValuesLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
            return std::string_view(x) < std::string_view(y);
        });
    }
};

/// What every family is to the registry: a name, a type and a way to write its series.
class FamilyBase {
public:
    FamilyBase() = default;
    FamilyBase(const FamilyBase&) = delete;
    FamilyBase& operator=(const FamilyBase&) = delete;
    virtual ~FamilyBase() = default;
    virtual void write(std::string& out) const = 0;
};

} // namespace detail

/// A value that only goes up: a count of things done. Updates are one relaxed atomic addition.
class Counter {
public:
    struct Config {};
    static constexpr std::string_view type_name = "counter";

    explicit Counter(const Config& = {}) noexcept {}
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;
    ~Counter() = default;

    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

    /// Writes the series `name{labels} value` (`labels` already escaped, "" for none).
    void write(std::string& out, std::string_view name, std::string_view labels) const {
        out += name;
        if (!labels.empty()) {
            out += '{';
            out += labels;
            out += '}';
        }
        out += ' ';
        detail::append_value(out, value());
        out += '\n';
    }

private:
    std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down: a position, a lag. Updates are atomic.
class Gauge {
public:
    struct Config {};
    static constexpr std::string_view type_name = "gauge";

    explicit Gauge(const Config& = {}) noexcept {}
    Gauge(const Gauge&) = delete;
    Gauge& operator=(const Gauge&) = delete;
    ~Gauge() = default;

    void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
    void inc(double delta = 1) noexcept { detail::atomic_add(value_, delta); }
    void dec(double delta = 1) noexcept { detail::atomic_add(value_, -delta); }
    [[nodiscard]] double value() const noexcept { return value_.load(std::memory_order_relaxed); }

    void write(std::string& out, std::string_view name, std::string_view labels) const {
        out += name;
        if (!labels.empty()) {
            out += '{';
            out += labels;
            out += '}';
        }
        out += ' ';
        detail::append_value(out, value());
        out += '\n';
    }

private:
    std::atomic<double> value_{0};
};

/// A distribution over fixed buckets: how many observations were at most each bound, their count and their
/// sum. An observation is one search over the bounds and three relaxed atomic updates.
class Histogram {
public:
    /// The buckets' upper bounds, strictly increasing and finite; the +Inf bucket is always added.
    struct Config {
        std::vector<double> bounds{};
    };
    static constexpr std::string_view type_name = "histogram";

    /// Throws `InvalidArgumentError` ("buckets") unless the bounds are finite and strictly increasing.
    explicit Histogram(const Config& config)
        : bounds_(config.bounds), counts_(new std::atomic<std::uint64_t>[config.bounds.size() + 1]()) {
        check_bounds(bounds_);
    }
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;
    ~Histogram() = default;

    static void check_bounds(std::span<const double> bounds) {
        for (std::size_t i = 0; i < bounds.size(); ++i) {
            if (!std::isfinite(bounds[i])) {
                throw InvalidArgumentError("buckets", "histogram bucket bounds must be finite (the +Inf bucket "
                                                      "is always there)");
            }
            if (i > 0 && !(bounds[i - 1] < bounds[i])) {
                throw InvalidArgumentError("buckets", "histogram bucket bounds must be strictly increasing");
            }
        }
    }

    /// Counts `value` in the first bucket whose bound is at least `value` (and in every later one, as the
    /// format's cumulative buckets have it). Throws `InvalidArgumentError` ("value") for NaN, which would
    /// make the sum NaN for good.
    void observe(double value) {
        if (std::isnan(value)) throw InvalidArgumentError("value", "a histogram cannot observe NaN");
        const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value);
        counts_[static_cast<std::size_t>(at - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
        detail::atomic_add(sum_, value);
    }

    [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }
    /// The cumulative count of the bucket `index` (`bounds().size()` is the +Inf bucket).
    [[nodiscard]] std::uint64_t cumulative_count(std::size_t index) const noexcept {
        std::uint64_t total = 0;
        for (std::size_t i = 0; i <= index && i <= bounds_.size(); ++i) {
            total += counts_[i].load(std::memory_order_relaxed);
        }
        return total;
    }
    [[nodiscard]] std::uint64_t count() const noexcept { return cumulative_count(bounds_.size()); }
    [[nodiscard]] double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

    /// Writes `name_bucket{labels,le="..."}` for each bound and +Inf (cumulative), `name_sum` and
    /// `name_count` (equal to the +Inf bucket).
    void write(std::string& out, std::string_view name, std::string_view labels) const {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= bounds_.size(); ++i) {
            cumulative += counts_[i].load(std::memory_order_relaxed);
            out += name;
            out += "_bucket{";
            if (!labels.empty()) {
                out += labels;
                out += ',';
            }
            out += "le=\"";
            if (i < bounds_.size()) {
                detail::append_value(out, bounds_[i]);
            } else {
                out += "+Inf";
            }
            out += "\"} ";
            detail::append_value(out, cumulative);
            out += '\n';
        }
        const auto series = [&](std::string_view suffix) {
            out += name;
            out += suffix;
            if (!labels.empty()) {
                out += '{';
                out += labels;
                out += '}';
            }
            out += ' ';
        };
        series("_sum");
        detail::append_value(out, sum());
        out += '\n';
        series("_count");
        detail::append_value(out, cumulative);
        out += '\n';
    }

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
    std::atomic<double> sum_{0};
};

/// The series of one metric, one per tuple of label values. `labels(...)` finds or makes a series; the
/// reference stays valid as long as the registry, so a caller may keep it and update it without a lookup.
/// Finding an existing series takes a shared lock (the label values are compared in place, not copied).
template <class Metric>
class Family final : public detail::FamilyBase {
public:
    Family(std::string name, std::string help, std::vector<std::string> label_names, typename Metric::Config config)
        : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)),
          config_(std::move(config)) {
        if (label_names_.empty()) labels(std::span<const std::string_view>{});
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& help() const noexcept { return help_; }
    [[nodiscard]] const std::vector<std::string>& label_names() const noexcept { return label_names_; }
    [[nodiscard]] const typename Metric::Config& config() const noexcept { return config_; }

    /// The series with these label values, in the order of `label_names()`. Throws `InvalidArgumentError`
    /// ("label_values") when their number differs from the number of label names.
    Metric& labels(std::initializer_list<std::string_view> values) {
        return labels(std::span<const std::string_view>(values.begin(), values.size()));
    }
    Metric& labels(std::span<const std::string_view> values) {
        if (values.size() != label_names_.size()) {
            throw InvalidArgumentError("label_values", "metric " + name_ + " has " +
                                                           std::to_string(label_names_.size()) + " labels, and " +
                                                           std::to_string(values.size()) + " values were given");
        }
        {
            std::shared_lock lock(mutex_);
            const auto found = series_.find(values);
            if (found != series_.end()) return *found->second.metric;
        }
        std::unique_lock lock(mutex_);
        const auto found = series_.find(values);
        if (found != series_.end()) return *found->second.metric;
        Series series{{}, std::make_unique<Metric>(config_)};
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i > 0) series.labels += ',';
            series.labels += label_names_[i];
            series.labels += "=\"";
            detail::append_label_value(series.labels, values[i]);
            series.labels += '"';
        }
        std::vector<std::string> key(values.begin(), values.end());
        return *series_.emplace(std::move(key), std::move(series)).first->second.metric;
    }

    /// Writes the family: its HELP and TYPE lines, then its series ordered by their label values.
    void write(std::string& out) const override {
        out += "# HELP ";
        out += name_;
        out += ' ';
        detail::append_help(out, help_);
        out += "\n# TYPE ";
        out += name_;
        out += ' ';
        out += Metric::type_name;
        out += '\n';
        std::shared_lock lock(mutex_);
        for (const auto& [key, series] : series_) series.metric->write(out, name_, series.labels);
    }

private:
    struct Series {
        std::string labels{}; // escaped, as written between the braces
        std::unique_ptr<Metric> metric{};
    };

    std::string name_;
    std::string help_;
    std::vector<std::string> label_names_;
    typename Metric::Config config_;
    mutable std::shared_mutex mutex_;
    std::map<std::vector<std::string>, Series, detail::LabelValuesLess> series_;
};

/// The metric families of a program, written in registration order by `serialize()` in the Prometheus text
/// exposition format 0.0.4. Registering a name again returns the family registered under it when its type,
/// label names (and buckets) are the same, and throws `InvalidArgumentError` ("name") otherwise. Safe to use
/// from several threads at once.
class Registry {
public:
    Registry() = default;
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;
    ~Registry() = default;

    Family<Counter>& counter(std::string name, std::string help, std::vector<std::string> label_names = {}) {
        return add<Counter>(std::move(name), std::move(help), std::move(label_names), {}, {});
    }
    Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> label_names = {}) {
        return add<Gauge>(std::move(name), std::move(help), std::move(label_names), {}, {});
    }
    /// A histogram family whose series count observations in `buckets` (upper bounds, strictly increasing,
    /// finite) and +Inf.
    Family<Histogram>& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                 std::vector<double> buckets) {
        Histogram::check_bounds(buckets);
        return add<Histogram>(std::move(name), std::move(help), std::move(label_names),
                              Histogram::Config{std::move(buckets)}, "le");
    }

    /// Appends the exposition of every family to `out`.
    void serialize(std::string& out) const {
        std::lock_guard lock(mutex_);
        for (const auto& family : families_) family.family->write(out);
    }
    /// The exposition of every family (`text_content_type`).
    [[nodiscard]] std::string serialize() const {
        std::string out;
        serialize(out);
        return out;
    }

private:
    struct Entry {
        std::string name{};
        std::string_view type{};
        std::unique_ptr<detail::FamilyBase> family{};
    };

    template <class Metric>
    Family<Metric>& add(std::string name, std::string help, std::vector<std::string> label_names,
                        typename Metric::Config config, std::string_view reserved_label) {
        detail::check_metric_name(name);
        detail::check_label_names(name, label_names, reserved_label);
        std::lock_guard lock(mutex_);
        for (const auto& entry : families_) {
            if (entry.name != name) continue;
            if (entry.type == Metric::type_name) {
                auto& family = static_cast<Family<Metric>&>(*entry.family);
                if (family.label_names() == label_names && same_config(family.config(), config)) return family;
            }
            throw InvalidArgumentError("name", "metric " + name +
                                                   " is registered already with another type, "
                                                   "other labels or other buckets");
        }
        auto family =
            std::make_unique<Family<Metric>>(name, std::move(help), std::move(label_names), std::move(config));
        auto& result = *family;
        families_.push_back(Entry{std::move(name), Metric::type_name, std::move(family)});
        return result;
    }

    static bool same_config(const Counter::Config&, const Counter::Config&) noexcept { return true; }
    static bool same_config(const Gauge::Config&, const Gauge::Config&) noexcept { return true; }
    static bool same_config(const Histogram::Config& a, const Histogram::Config& b) { return a.bounds == b.bounds; }

    mutable std::mutex mutex_;
    std::vector<Entry> families_;
};

} // namespace orchestrix::prometheus
