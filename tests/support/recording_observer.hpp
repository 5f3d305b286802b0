#pragma once

// A test double of orchestrix::Observer that records every observation (its string views copied into strings)
// and every span (its parent, attributes, end and error) with ids of its own, for tests to inspect.

#include <orchestrix/core/observer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace test_support {

struct RecordedAppend {
    std::string store{};
    std::string stream{};
    std::size_t events = 0;
    std::chrono::nanoseconds duration{};
    orchestrix::AppendOutcome outcome = orchestrix::AppendOutcome::written;
};

struct RecordedRead {
    std::string store{};
    orchestrix::ReadKind kind = orchestrix::ReadKind::stream;
    std::string stream{};
    std::uint64_t events = 0;
    std::chrono::nanoseconds duration{};
};

struct RecordedCommand {
    std::string aggregate{};
    std::string stream{};
    std::uint32_t attempts = 0;
    std::uint64_t events_replayed = 0;
    std::chrono::nanoseconds duration{};
    orchestrix::CommandOutcome outcome = orchestrix::CommandOutcome::succeeded;
};

struct RecordedSnapshot {
    std::string aggregate{};
    std::string stream{};
    orchestrix::stream_version_t version = 0;
    orchestrix::SnapshotOutcome outcome = orchestrix::SnapshotOutcome::taken;
    std::string reason{};
};

struct RecordedPublish {
    std::string bus{};
    std::string type{};
    std::size_t handlers = 0;
    std::size_t failures = 0;
    std::chrono::nanoseconds duration{};
};

struct RecordedHandlerFailure {
    std::string bus{};
    std::string type{};
    std::string error{};
};

struct RecordedProjection {
    std::string projection{};
    orchestrix::position_t checkpoint = 0;
    orchestrix::position_t head = 0;
    std::uint64_t lag_events = 0;
    std::chrono::nanoseconds lag_time{};
    std::uint64_t events = 0;
    std::chrono::nanoseconds duration{};
};

struct RecordedProjectionFailure {
    std::string projection{};
    orchestrix::position_t position = 0;
    std::string stream{};
    std::string type{};
    std::string error{};
    std::uint32_t attempts = 0;
    orchestrix::FailureOutcome outcome = orchestrix::FailureOutcome::stopped;
};

struct RecordedDeadLetter {
    std::string projection{};
    orchestrix::position_t position = 0;
    orchestrix::DeadLetterOutcome outcome = orchestrix::DeadLetterOutcome::added;
};

/// A span attribute, owned: `text` for a string, `number` when `is_number`.
struct RecordedAttribute {
    std::string key{};
    std::string text{};
    std::int64_t number = 0;
    bool is_number = false;
    friend bool operator==(const RecordedAttribute&, const RecordedAttribute&) = default;
};

/// A span the observer was asked to start, and how it ended.
struct RecordedSpan {
    std::string name{};
    orchestrix::SpanKind kind = orchestrix::SpanKind::internal;
    orchestrix::TraceContext parent{};
    /// The context `start_span` returned: the parent's trace id (a fresh one for a root span) and a span id
    /// of the observer's own.
    orchestrix::TraceContext context{};
    std::vector<RecordedAttribute> attributes{};
    bool ended = false;
    bool error = false;
    std::string message{};
    std::vector<RecordedAttribute> end_attributes{};
    /// How many times `end_span` named this span (1 for a span ended once, as it should be).
    int end_calls = 0;

    /// The attribute `key` among those given at the start and at the end, if any.
    [[nodiscard]] std::optional<RecordedAttribute> attribute(std::string_view key) const {
        for (const auto* list : {&end_attributes, &attributes}) {
            for (const auto& a : *list) {
                if (a.key == key) return a;
            }
        }
        return std::nullopt;
    }
};

/// Records everything it is told, under a mutex (components may report from several threads); read the
/// public lists once the work is done. Its spans get trace ids counted up from 1 (for root spans) and span
/// ids counted up from 1, root spans sampled; `end_span` of a context it never returned is recorded in
/// `unknown_ends`.
class RecordingObserver : public orchestrix::Observer {
public:
    void on_append(const orchestrix::AppendObservation& o) override {
        const std::lock_guard lock(mutex_);
        appends.push_back({std::string(o.store), std::string(o.stream), o.events, o.duration, o.outcome});
    }
    void on_read(const orchestrix::ReadObservation& o) override {
        const std::lock_guard lock(mutex_);
        reads.push_back({std::string(o.store), o.kind, std::string(o.stream), o.events, o.duration});
    }
    void on_command(const orchestrix::CommandObservation& o) override {
        const std::lock_guard lock(mutex_);
        commands.push_back(
            {std::string(o.aggregate), std::string(o.stream), o.attempts, o.events_replayed, o.duration, o.outcome});
    }
    void on_snapshot(const orchestrix::SnapshotObservation& o) override {
        const std::lock_guard lock(mutex_);
        snapshots.push_back(
            {std::string(o.aggregate), std::string(o.stream), o.version, o.outcome, std::string(o.reason)});
    }
    void on_publish(const orchestrix::PublishObservation& o) override {
        const std::lock_guard lock(mutex_);
        publishes.push_back({std::string(o.bus), std::string(o.type), o.handlers, o.failures, o.duration});
    }
    void on_handler_failure(const orchestrix::HandlerFailureObservation& o) override {
        const std::lock_guard lock(mutex_);
        handler_failures.push_back({std::string(o.bus), std::string(o.type), std::string(o.error)});
    }
    void on_projection(const orchestrix::ProjectionObservation& o) override {
        const std::lock_guard lock(mutex_);
        projections.push_back(
            {std::string(o.projection), o.checkpoint, o.head, o.lag_events, o.lag_time, o.events, o.duration});
    }
    void on_projection_failure(const orchestrix::ProjectionFailureObservation& o) override {
        const std::lock_guard lock(mutex_);
        projection_failures.push_back({std::string(o.projection), o.position, std::string(o.stream),
                                       std::string(o.type), std::string(o.error), o.attempts, o.outcome});
    }
    void on_dead_letter(const orchestrix::DeadLetterObservation& o) override {
        const std::lock_guard lock(mutex_);
        dead_letters.push_back({std::string(o.projection), o.position, o.outcome});
    }

    orchestrix::TraceContext start_span(const orchestrix::SpanStart& start) override {
        const std::lock_guard lock(mutex_);
        RecordedSpan span;
        span.name = std::string(start.name);
        span.kind = start.kind;
        span.parent = start.parent;
        span.attributes = copy(start.attributes);
        if (start.parent.valid()) {
            span.context.trace_id = start.parent.trace_id;
            span.context.flags = start.parent.flags;
        } else {
            span.context.trace_id = id_bytes<16>(++traces_);
            span.context.flags = 0x01;
        }
        span.context.span_id = id_bytes<8>(spans.size() + 1);
        spans.push_back(span);
        return span.context;
    }

    void end_span(const orchestrix::TraceContext& context, const orchestrix::SpanEnd& end) override {
        const std::lock_guard lock(mutex_);
        for (auto& span : spans) {
            if (span.context != context) continue;
            ++span.end_calls;
            span.ended = true;
            span.error = end.error;
            span.message = std::string(end.message);
            span.end_attributes = copy(end.attributes);
            return;
        }
        unknown_ends.push_back(context);
    }

    /// The spans named `name`, in the order they started.
    [[nodiscard]] std::vector<RecordedSpan> spans_named(std::string_view name) const {
        const std::lock_guard lock(mutex_);
        std::vector<RecordedSpan> out;
        for (const auto& span : spans) {
            if (span.name == name) out.push_back(span);
        }
        return out;
    }

    /// The span whose context is `context`, if this observer started it.
    [[nodiscard]] std::optional<RecordedSpan> span_of(const orchestrix::TraceContext& context) const {
        const std::lock_guard lock(mutex_);
        for (const auto& span : spans) {
            if (span.context == context) return span;
        }
        return std::nullopt;
    }

    std::vector<RecordedAppend> appends;
    std::vector<RecordedRead> reads;
    std::vector<RecordedCommand> commands;
    std::vector<RecordedSnapshot> snapshots;
    std::vector<RecordedPublish> publishes;
    std::vector<RecordedHandlerFailure> handler_failures;
    std::vector<RecordedProjection> projections;
    std::vector<RecordedProjectionFailure> projection_failures;
    std::vector<RecordedDeadLetter> dead_letters;
    std::vector<RecordedSpan> spans;
    std::vector<orchestrix::TraceContext> unknown_ends;

private:
    static std::vector<RecordedAttribute> copy(std::span<const orchestrix::SpanAttribute> attributes) {
        std::vector<RecordedAttribute> out;
        out.reserve(attributes.size());
        for (const auto& a : attributes)
            out.push_back({std::string(a.key), std::string(a.text), a.number, a.is_number});
        return out;
    }

    /// An id whose last bytes are `n`, big-endian.
    template <std::size_t N>
    static std::array<std::uint8_t, N> id_bytes(std::uint64_t n) {
        std::array<std::uint8_t, N> out{};
        for (std::size_t i = 0; i < 8 && i < N; ++i) out[N - 1 - i] = static_cast<std::uint8_t>(n >> (8 * i));
        return out;
    }

    mutable std::mutex mutex_;
    std::uint64_t traces_ = 0;
};

} // namespace test_support
