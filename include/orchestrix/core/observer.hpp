#pragma once

// Observability: what stores, repositories, buses and projections report to an `Observer` (metrics and
// traces), and the W3C trace context that travels in event metadata (docs/operations.md).
//
// Nothing is reported, timed or allocated unless an observer is attached: every component keeps a plain
// `Observer*` that is null by default, and each hook site is `if (observer_) { ... }`. No virtual call, no
// clock read and no allocation happen on a path without an observer.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/detail/attributes.hpp>
#include <orchestrix/detail/chrono.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Marks the observed paths of hot functions (taken only with an observer attached) as cold and out of line,
// so that the path without an observer stays as small, and as inlinable, as it was without observability.
#define ORCHESTRIX_OBSERVED_PATH ORCHESTRIX_COLD

namespace orchestrix {

/// A W3C Trace Context (`traceparent`, https://www.w3.org/TR/trace-context/): the trace an event was
/// recorded in, carried in its metadata so that a command's trace continues in the projections it feeds.
/// The default value is the empty context (not traced).
struct TraceContext {
    std::array<std::uint8_t, 16> trace_id{};
    /// The span (parent id) the context points at.
    std::array<std::uint8_t, 8> span_id{};
    /// Trace flags; bit 0 is "sampled".
    std::uint8_t flags = 0;

    /// True for a context with a non-zero trace id and span id (the empty one is not valid).
    [[nodiscard]] bool valid() const noexcept {
        // Array comparisons against zero: a few word compares, checked on every handled event and publish.
        return trace_id != decltype(trace_id){} && span_id != decltype(span_id){};
    }
    [[nodiscard]] bool sampled() const noexcept { return (flags & 0x01U) != 0; }

    /// Parses a `traceparent` header value: "00-<32 hex>-<16 hex>-<2 hex>", lowercase hex. A version other
    /// than 00 (not ff) is accepted when its first four fields have that form, as the specification asks.
    /// Returns nothing for anything else, including all-zero ids.
    [[nodiscard]] static std::optional<TraceContext> parse(std::string_view text) noexcept {
        constexpr std::size_t size = 55; // 2 + 1 + 32 + 1 + 16 + 1 + 2
        if (text.size() < size) return std::nullopt;
        const auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            return -1;
        };
        const auto byte_at = [&](std::size_t i) -> int {
            const int hi = hex(text[i]);
            const int lo = hex(text[i + 1]);
            return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
        };
        const int version = byte_at(0);
        if (version < 0 || version == 0xff) return std::nullopt;
        if (text[2] != '-' || text[35] != '-' || text[52] != '-') return std::nullopt;
        if (version == 0 ? text.size() != size : (text.size() > size && text[size] != '-')) return std::nullopt;
        TraceContext out;
        for (std::size_t i = 0; i < out.trace_id.size(); ++i) {
            const int b = byte_at(3 + 2 * i);
            if (b < 0) return std::nullopt;
            out.trace_id[i] = static_cast<std::uint8_t>(b);
        }
        for (std::size_t i = 0; i < out.span_id.size(); ++i) {
            const int b = byte_at(36 + 2 * i);
            if (b < 0) return std::nullopt;
            out.span_id[i] = static_cast<std::uint8_t>(b);
        }
        const int flags = byte_at(53);
        if (flags < 0) return std::nullopt;
        out.flags = static_cast<std::uint8_t>(flags);
        if (!out.valid()) return std::nullopt;
        return out;
    }

    /// The `traceparent` value of this context (version 00); "" for the empty context.
    [[nodiscard]] std::string to_string() const {
        if (!valid()) return {};
        constexpr char digits[] = "0123456789abcdef";
        std::string out = "00-";
        out.reserve(55);
        for (auto b : trace_id) {
            out += digits[b >> 4U];
            out += digits[b & 0x0fU];
        }
        out += '-';
        for (auto b : span_id) {
            out += digits[b >> 4U];
            out += digits[b & 0x0fU];
        }
        out += '-';
        out += digits[flags >> 4U];
        out += digits[flags & 0x0fU];
        return out;
    }

    friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

namespace detail {
inline TraceContext& current_trace_slot() noexcept {
    thread_local TraceContext current{};
    return current;
}
} // namespace detail

/// The trace context of the work the calling thread is doing now (empty if none): the parent of the
/// spans orchestrix starts on this thread (a command's span, a publish). Set it with `TraceScope`.
[[nodiscard]] inline TraceContext current_trace() noexcept { return detail::current_trace_slot(); }

/// Makes `context` the calling thread's current trace context for the scope's lifetime, then restores
/// the previous one. An HTTP handler opens one from the request's `traceparent` header; a projection
/// opens one from each event's metadata while its handler runs.
class TraceScope {
public:
    explicit TraceScope(const TraceContext& context) noexcept : previous_(detail::current_trace_slot()) {
        detail::current_trace_slot() = context;
    }
    TraceScope(const TraceScope&) = delete;
    TraceScope& operator=(const TraceScope&) = delete;
    ~TraceScope() { detail::current_trace_slot() = previous_; }

private:
    TraceContext previous_;
};

/// What an append came to.
enum class AppendOutcome : std::uint8_t {
    written,    ///< the events were stored
    idempotent, ///< a retry of a stored batch (or an empty batch): nothing was written
    conflict,   ///< refused: expected version or append condition not met (`ConcurrencyError`, ...)
    failed,     ///< refused for another reason (invalid input, encoding, the database)
};

/// An append to a store.
struct AppendObservation {
    /// The store's kind: "memory", "sqlite", "postgres", ...
    std::string_view store{};
    std::string_view stream{};
    std::size_t events = 0;
    std::chrono::nanoseconds duration{};
    AppendOutcome outcome = AppendOutcome::written;
};

/// What a read covered.
enum class ReadKind : std::uint8_t {
    stream, ///< one stream (`read_stream`, `visit_stream`)
    all,    ///< the global order (`read_all`, `visit_all`)
    query,  ///< a query (dynamic consistency boundaries)
};

/// A read from a store.
struct ReadObservation {
    std::string_view store{};
    ReadKind kind = ReadKind::stream;
    /// The stream read (empty for `all` and `query`).
    std::string_view stream{};
    std::uint64_t events = 0;
    std::chrono::nanoseconds duration{};
};

/// What a command came to.
enum class CommandOutcome : std::uint8_t {
    succeeded, ///< handled and saved (or raised nothing)
    rejected,  ///< the command was refused: its validation or its handler threw
    conflict,  ///< the retry policy's attempts were used up by version conflicts
    failed,    ///< loading or saving failed for another reason
};

/// A command executed by a repository (`Repository::execute`) or a decision repository.
struct CommandObservation {
    /// The aggregate's (or decision's) name, as its snapshots name it when it has one; "" otherwise.
    std::string_view aggregate{};
    std::string_view stream{};
    /// Attempts in all (1 = no conflict).
    std::uint32_t attempts = 1;
    /// Events replayed to rebuild the state, over all attempts.
    std::uint64_t events_replayed = 0;
    std::chrono::nanoseconds duration{};
    CommandOutcome outcome = CommandOutcome::succeeded;
};

/// What happened to a snapshot.
enum class SnapshotOutcome : std::uint8_t {
    taken,   ///< taken and saved
    used,    ///< loaded and used to rebuild an aggregate
    ignored, ///< found but not used (`reason` says why), or could not be taken
};

struct SnapshotObservation {
    std::string_view aggregate{};
    std::string_view stream{};
    stream_version_t version = 0;
    SnapshotOutcome outcome = SnapshotOutcome::taken;
    /// For `ignored`: why, as a short snake_case word ("old_schema_version", "undecodable", "save_failed",
    /// ...: the names of `SnapshotIssue::Reason`); "" otherwise.
    std::string_view reason{};
};

/// A message published on a bus.
struct PublishObservation {
    /// The bus's kind: "bus", "async_bus", "command_bus".
    std::string_view bus{};
    /// The message's stable type name.
    std::string_view type{};
    /// Handlers called.
    std::size_t handlers = 0;
    /// Handlers that threw.
    std::size_t failures = 0;
    std::chrono::nanoseconds duration{};
};

/// A bus handler that threw.
struct HandlerFailureObservation {
    std::string_view bus{};
    std::string_view type{};
    std::string_view error{};
};

/// How far a projection (or subscription, process manager, saga runner) is, reported after each batch
/// it handled and whenever it finds itself caught up.
struct ProjectionObservation {
    std::string_view projection{};
    /// Its checkpoint: the position of the last event it handled or passed over.
    position_t checkpoint = 0;
    /// The store's head position when the batch was read.
    position_t head = 0;
    /// `head - checkpoint`: events not yet handled.
    std::uint64_t lag_events = 0;
    /// The time from when the event at the checkpoint was recorded to now: how far behind the projection
    /// runs (zero when it is caught up or has handled nothing).
    std::chrono::nanoseconds lag_time{};
    /// Events handled in the batch, and how long the batch took.
    std::uint64_t events = 0;
    std::chrono::nanoseconds duration{};
};

/// What a projection did with a failed event.
enum class FailureOutcome : std::uint8_t {
    retried, ///< the handler will be called again
    skipped, ///< passed over (kept in `skipped()`, and as a dead letter where the checkpoint store keeps them)
    stopped, ///< the projection stopped
};

struct ProjectionFailureObservation {
    std::string_view projection{};
    position_t position = 0;
    std::string_view stream{};
    std::string_view type{};
    std::string_view error{};
    std::uint32_t attempts = 0;
    FailureOutcome outcome = FailureOutcome::stopped;
};

/// What happened to a dead letter.
enum class DeadLetterOutcome : std::uint8_t {
    added,     ///< an event was skipped and kept
    retried,   ///< handled successfully on a retry, and removed
    failed,    ///< a retry failed again (the dead letter stays, its attempts counted)
    discarded, ///< removed without handling
};

struct DeadLetterObservation {
    std::string_view projection{};
    position_t position = 0;
    DeadLetterOutcome outcome = DeadLetterOutcome::added;
};

/// The kind of a span, as OpenTelemetry names them.
enum class SpanKind : std::uint8_t { internal, server, client, producer, consumer };

/// A span attribute: a key (OpenTelemetry semantic conventions where one fits, otherwise a name in the
/// `orchestrix.` namespace) and a string or an integer value.
struct SpanAttribute {
    std::string_view key{};
    std::string_view text{};
    std::int64_t number = 0;
    bool is_number = false;
};

/// A span to start.
struct SpanStart {
    /// Its name, e.g. "orchestrix.command deposit", "orchestrix.projection balances".
    std::string_view name{};
    SpanKind kind = SpanKind::internal;
    /// Its parent (empty: a root span).
    TraceContext parent{};
    std::span<const SpanAttribute> attributes{};
};

/// How a span ended.
struct SpanEnd {
    bool error = false;
    /// The error's message when `error`.
    std::string_view message{};
    std::span<const SpanAttribute> attributes{};
};

/// Receives what orchestrix components report. Every hook has an empty default: override those you
/// need. Hooks run on the thread doing the work, synchronously, and must not throw (an exception
/// escaping a hook is swallowed by the component that called it) nor call back into that component.
/// An observer must outlive the components it is attached to and be safe to call from several threads
/// at once when they are used from several threads.
class Observer {
public:
    Observer() = default;
    Observer(const Observer&) = default;
    Observer& operator=(const Observer&) = default;
    virtual ~Observer() = default;

    virtual void on_append(const AppendObservation&) {}
    virtual void on_read(const ReadObservation&) {}
    virtual void on_command(const CommandObservation&) {}
    virtual void on_snapshot(const SnapshotObservation&) {}
    virtual void on_publish(const PublishObservation&) {}
    virtual void on_handler_failure(const HandlerFailureObservation&) {}
    virtual void on_projection(const ProjectionObservation&) {}
    virtual void on_projection_failure(const ProjectionFailureObservation&) {}
    virtual void on_dead_letter(const DeadLetterObservation&) {}

    /// Starts a span; returns its context (the empty context: not traced, and `end_span` is not called).
    /// A tracing adapter keeps its span object under the returned span id until `end_span`.
    virtual TraceContext start_span(const SpanStart&) { return {}; }
    /// Ends the span `span` that `start_span` returned.
    virtual void end_span(const TraceContext& /*span*/, const SpanEnd&) {}
};

/// Forwards everything it is told to several observers, in the order they were added: how one component
/// feeds a metrics adapter and a tracing adapter at once. An observer that throws does not keep the others
/// from being told. A span is started on every observer; the set returns the context of the first one that
/// traces (the parent of the spans started under it, and the `traceparent` stored with the events), and
/// ends each observer's own span with `end_span`.
///
///     orchestrix::ObserverSet observers{&metrics, &tracing};
///     store.observe(&observers);
///
/// Add the observers before attaching the set (adding is not synchronized); the hooks may then be called
/// from several threads at once, as the observers allow.
class ObserverSet final : public Observer {
public:
    ObserverSet() = default;
    /// A set of `observers`. Throws `InvalidArgumentError("observers")` for a null pointer.
    ObserverSet(std::initializer_list<Observer*> observers) {
        for (Observer* o : observers) {
            if (o == nullptr) throw InvalidArgumentError("observers", "ObserverSet: an observer is a null pointer");
            observers_.push_back(o);
        }
    }
    ObserverSet(const ObserverSet&) = delete;
    ObserverSet& operator=(const ObserverSet&) = delete;
    ~ObserverSet() override = default;

    /// Adds `observer` after the others. Not synchronized: add before attaching the set.
    ObserverSet& add(Observer& observer) {
        observers_.push_back(&observer);
        return *this;
    }

    /// The observers, in order.
    [[nodiscard]] std::span<Observer* const> observers() const noexcept { return observers_; }

    void on_append(const AppendObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_append(o); });
    }
    void on_read(const ReadObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_read(o); });
    }
    void on_command(const CommandObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_command(o); });
    }
    void on_snapshot(const SnapshotObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_snapshot(o); });
    }
    void on_publish(const PublishObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_publish(o); });
    }
    void on_handler_failure(const HandlerFailureObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_handler_failure(o); });
    }
    void on_projection(const ProjectionObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_projection(o); });
    }
    void on_projection_failure(const ProjectionFailureObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_projection_failure(o); });
    }
    void on_dead_letter(const DeadLetterObservation& o) override {
        for_each_observer([&](Observer& x) { x.on_dead_letter(o); });
    }

    TraceContext start_span(const SpanStart& start) override {
        OpenSpan span;
        span.each.reserve(observers_.size());
        for (Observer* o : observers_) {
            TraceContext started{};
            try {
                started = o->start_span(start);
            } catch (...) { // an observer that throws is not tracing this span
                started = TraceContext{};
            }
            if (!span.span.valid() && started.valid()) span.span = started;
            span.each.push_back(started);
        }
        if (!span.span.valid()) return {};
        const std::lock_guard lock(mutex_);
        open_.push_back(std::move(span));
        return open_.back().span;
    }

    void end_span(const TraceContext& span, const SpanEnd& end) override {
        std::vector<TraceContext> started;
        {
            const std::lock_guard lock(mutex_);
            for (auto it = open_.begin(); it != open_.end(); ++it) {
                if (it->span == span) {
                    started = std::move(it->each);
                    open_.erase(it);
                    break;
                }
            }
        }
        for (std::size_t i = 0; i < started.size() && i < observers_.size(); ++i) {
            if (!started[i].valid()) continue;
            try {
                observers_[i]->end_span(started[i], end);
            } catch (...) { // swallowed, as every hook's exception is
            }
        }
    }

private:
    struct OpenSpan {
        TraceContext span{};
        std::vector<TraceContext> each{}; // what each observer returned, by index
    };

    template <class Call>
    void for_each_observer(Call&& call) noexcept {
        for (Observer* o : observers_) {
            try {
                call(*o);
            } catch (...) { // one observer's failure is not the others'
            }
        }
    }

    std::vector<Observer*> observers_{};
    std::mutex mutex_{};
    std::vector<OpenSpan> open_{}; // spans started and not ended yet
};

namespace detail {

/// The clock hooks time operations with.
using observer_clock = std::chrono::steady_clock;

[[nodiscard]] inline std::chrono::nanoseconds elapsed_since(observer_clock::time_point started) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(observer_clock::now() - started);
}

/// Calls `hook()`, swallowing what it throws: reporting never changes the outcome of what is reported.
template <class Hook>
void call_hook(Hook&& hook) noexcept {
    try {
        std::forward<Hook>(hook)();
    } catch (...) { // a hook must not throw (Observer); if it does, the component carries on
    }
}

/// `observer.start_span(start)`, the empty context if it throws.
[[nodiscard]] inline TraceContext start_span(Observer& observer, const SpanStart& start) noexcept {
    try {
        return observer.start_span(start);
    } catch (...) {
        return {};
    }
}

/// `observer.end_span(span, end)` for a span that was started (a valid `span`); what it throws is swallowed.
inline void end_span(Observer& observer, const TraceContext& span, const SpanEnd& end) noexcept {
    if (span.valid()) call_hook([&] { observer.end_span(span, end); });
}

/// Runs `append()` (which returns an `AppendResult`) and reports it to `observer` as an `AppendObservation`:
/// written, idempotent (nothing written: a retry or an empty batch), conflict (`ConcurrencyError`,
/// `AppendConditionError`) or failed (anything else). Exceptions propagate unchanged.
template <class Append>
auto observed_append(Observer& observer, std::string_view store, std::string_view stream, std::size_t events,
                     Append&& append) -> decltype(append()) {
    const auto started = observer_clock::now();
    const auto report = [&](AppendOutcome outcome) noexcept {
        call_hook([&] {
            observer.on_append(AppendObservation{store, stream, events, elapsed_since(started), outcome});
        });
    };
    try {
        auto result = std::forward<Append>(append)();
        report(result.written ? AppendOutcome::written : AppendOutcome::idempotent);
        return result;
    } catch (const ConcurrencyError&) {
        report(AppendOutcome::conflict);
        throw;
    } catch (const AppendConditionError&) {
        report(AppendOutcome::conflict);
        throw;
    } catch (...) {
        report(AppendOutcome::failed);
        throw;
    }
}

/// Reports a read that started at `started` and yielded `events` events.
inline void report_read(Observer& observer, std::string_view store, ReadKind kind, std::string_view stream,
                        std::uint64_t events, observer_clock::time_point started) noexcept {
    call_hook([&] { observer.on_read(ReadObservation{store, kind, stream, events, elapsed_since(started)}); });
}

} // namespace detail

} // namespace orchestrix
