#pragma once

// What subscriptions and projections are configured with: which events they want (`EventFilter`), what
// happens when a handler fails (`FailurePolicy`), and how a failure is reported (`EventFailure`).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/uuid.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// Which events a subscription delivers: those whose stable type name is listed (all if none is) and
/// whose stream id starts with `stream_prefix` (all if it is empty). Events that do not match are
/// passed over, and the checkpoint moves past them all the same.
///
///     EventFilter::of_types({"account.deposited", "account.withdrawn"})
///     EventFilter::stream_prefix("account-")
///     EventFilter::of_types({"account.opened"}).and_stream_prefix("account-")
struct EventFilter {
    /// The event type names wanted (`event_name<E>`); empty = every type.
    std::vector<std::string> types{};
    /// The stream id prefix wanted; empty = every stream.
    std::string prefix{};

    /// Every event.
    [[nodiscard]] static EventFilter all() { return {}; }
    /// Events of the listed type names.
    [[nodiscard]] static EventFilter of_types(std::initializer_list<std::string_view> names) {
        EventFilter f;
        for (auto n : names) f.types.emplace_back(n);
        return f;
    }
    /// Events of streams whose id starts with `prefix`.
    [[nodiscard]] static EventFilter stream_prefix(std::string prefix) {
        EventFilter f;
        f.prefix = std::move(prefix);
        return f;
    }
    /// This filter, further limited to streams starting with `p`.
    [[nodiscard]] EventFilter and_stream_prefix(std::string p) const {
        EventFilter f = *this;
        f.prefix = std::move(p);
        return f;
    }

    /// Whether an event of type `type` in stream `stream` passes.
    [[nodiscard]] bool matches(std::string_view type, std::string_view stream) const noexcept {
        if (!prefix.empty() && stream.substr(0, prefix.size()) != prefix) return false;
        if (types.empty()) return true;
        return std::any_of(types.begin(), types.end(), [&](const std::string& t) { return t == type; });
    }
};

/// What a projection does with an event whose handler throws.
enum class FailureAction : std::uint8_t {
    retry, ///< call the handler again after a backoff, up to `max_attempts`; then `after_retries`
    skip,  ///< record the event in `skipped()` and go on with the next one
    stop,  ///< stop the projection; `failure()` reports the event and the error
};

/// A handler's failure policy: `FailurePolicy::retry(5)`, `FailurePolicy::skip()`, `FailurePolicy::stop()`.
/// With `retry`, attempt k (k >= 2) waits `initial_backoff * multiplier^(k-2)`, at most `max_backoff`;
/// when `max_attempts` attempts have failed, `after_retries` (skip or stop) decides.
struct FailurePolicy {
    FailureAction action = FailureAction::stop;
    /// Attempts in all, the first included (retry only).
    std::uint32_t max_attempts = 3;
    std::chrono::milliseconds initial_backoff{10};
    double multiplier = 2.0;
    std::chrono::milliseconds max_backoff{1000};
    /// What happens once the retries are used up: `skip` or `stop`.
    FailureAction after_retries = FailureAction::stop;

    /// Retry up to `attempts` attempts in all, waiting `backoff`, then twice as long each time; then `then`.
    [[nodiscard]] static FailurePolicy retry(std::uint32_t attempts,
                                             std::chrono::milliseconds backoff = std::chrono::milliseconds(10),
                                             FailureAction then = FailureAction::stop) {
        FailurePolicy p;
        p.action = FailureAction::retry;
        p.max_attempts = attempts == 0 ? 1 : attempts;
        p.initial_backoff = backoff;
        p.after_retries = then == FailureAction::retry ? FailureAction::stop : then;
        return p;
    }
    /// Record the failure and go on.
    [[nodiscard]] static FailurePolicy skip() {
        FailurePolicy p;
        p.action = FailureAction::skip;
        p.max_attempts = 1;
        return p;
    }
    /// Stop and report (the default).
    [[nodiscard]] static FailurePolicy stop() {
        FailurePolicy p;
        p.action = FailureAction::stop;
        p.max_attempts = 1;
        return p;
    }

    /// The number of attempts before the final decision.
    [[nodiscard]] std::uint32_t attempts() const noexcept {
        return action == FailureAction::retry ? std::max<std::uint32_t>(max_attempts, 1) : 1;
    }
    /// What happens after the last attempt failed: `skip` or `stop`.
    [[nodiscard]] FailureAction final_action() const noexcept {
        if (action == FailureAction::retry)
            return after_retries == FailureAction::skip ? FailureAction::skip : FailureAction::stop;
        return action;
    }
    /// The wait before attempt `attempt` (2 = the first retry).
    [[nodiscard]] std::chrono::milliseconds backoff_before(std::uint32_t attempt) const noexcept {
        if (attempt < 2) return std::chrono::milliseconds(0);
        double wait = static_cast<double>(initial_backoff.count());
        for (std::uint32_t i = 2; i < attempt && wait < static_cast<double>(max_backoff.count()); ++i)
            wait *= multiplier;
        wait = std::min(wait, static_cast<double>(max_backoff.count()));
        return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(wait, 0.0)));
    }
};

/// An event a handler could not process: which one, and why.
struct EventFailure {
    /// The event's global position (for a failed read: the first position that could not be read).
    position_t position = 0;
    std::string stream_id{};
    stream_version_t version = 0;
    /// The event's stable type name ("" for a failed read).
    std::string type{};
    Uuid event_id{};
    /// The exception's message.
    std::string error{};
    /// How many times the handler was called for it.
    std::uint32_t attempts = 0;
    /// The exception itself.
    std::exception_ptr exception{};
    /// For an event the store could not decode (`UnreadableEvent`): the event as it is stored, when the
    /// store can read it raw (the durable stores' `read_raw`). Nothing for a handler failure.
    std::optional<RawRecordedEvent> raw{};

    /// A one-line description: "event 42 (account.deposited in stream 'acc-1', version 3) failed after 3
    /// attempts: ...".
    [[nodiscard]] std::string describe() const {
        std::string out = "event " + std::to_string(position);
        if (!type.empty()) {
            out += " (" + type + " in stream '" + stream_id + "', version " + std::to_string(version) + ")";
        } else if (!stream_id.empty()) {
            out += " (stream '" + stream_id + "', version " + std::to_string(version) + ")";
        }
        out += " failed";
        if (attempts > 1) out += " after " + std::to_string(attempts) + " attempts";
        return out + ": " + error;
    }
};

/// Options of a projection or subscription.
struct ProjectionOptions {
    /// Which events reach the handler.
    EventFilter filter{};
    /// What happens when the handler throws.
    FailurePolicy on_failure{};
    /// Events read (and committed in one transaction) at a time.
    std::uint64_t batch_size = 500;
    /// When caught up: the longest wait before looking for new events again. Stores that notify (in
    /// memory, PostgreSQL) wake the projection earlier; SQLite is polled at this interval.
    std::chrono::milliseconds poll_interval{50};
    /// Called, on the projection's thread, for every failure as it happens: each failed attempt with the
    /// action that follows (`retry`, then `skip` or `stop`). Optional; `skipped()` and `failure()` keep the
    /// record either way.
    std::function<void(const EventFailure&, FailureAction)> on_error{};
    /// What the projection reports to, and traces each handled event in (docs/operations.md): its
    /// progress and lag after each batch and when caught up, each failed attempt, each dead letter.
    /// Optional (nullptr: nothing is reported); it must outlive the projection.
    Observer* observer = nullptr;
};

} // namespace orchestrix
