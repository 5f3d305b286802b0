#pragma once

// PrometheusObserver: an `Observer` that turns what stores, repositories, buses and projections report into
// Prometheus metrics in a `prometheus::Registry` (the list is in docs/operations.md).

#include <orchestrix/core/observer.hpp>
#include <orchestrix/prometheus/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

namespace prometheus {

/// The default buckets of the duration histograms, in seconds: 10 µs to 10 s, from an in-memory append to a
/// slow database round trip.
inline std::vector<double> default_duration_buckets() {
    return {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
            0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};
}

/// The label values the observer writes for each outcome and kind (the names of the enumerators).
[[nodiscard]] constexpr std::string_view to_label(AppendOutcome outcome) noexcept {
    switch (outcome) {
    case AppendOutcome::written:
        return "written";
    case AppendOutcome::idempotent:
        return "idempotent";
    case AppendOutcome::conflict:
        return "conflict";
    case AppendOutcome::failed:
        return "failed";
    }
    return "unknown";
}
[[nodiscard]] constexpr std::string_view to_label(ReadKind kind) noexcept {
    switch (kind) {
    case ReadKind::stream:
        return "stream";
    case ReadKind::all:
        return "all";
    case ReadKind::query:
        return "query";
    }
    return "unknown";
}
[[nodiscard]] constexpr std::string_view to_label(CommandOutcome outcome) noexcept {
    switch (outcome) {
    case CommandOutcome::succeeded:
        return "succeeded";
    case CommandOutcome::rejected:
        return "rejected";
    case CommandOutcome::conflict:
        return "conflict";
    case CommandOutcome::failed:
        return "failed";
    }
    return "unknown";
}
[[nodiscard]] constexpr std::string_view to_label(SnapshotOutcome outcome) noexcept {
    switch (outcome) {
    case SnapshotOutcome::taken:
        return "taken";
    case SnapshotOutcome::used:
        return "used";
    case SnapshotOutcome::ignored:
        return "ignored";
    }
    return "unknown";
}
[[nodiscard]] constexpr std::string_view to_label(FailureOutcome outcome) noexcept {
    switch (outcome) {
    case FailureOutcome::retried:
        return "retried";
    case FailureOutcome::skipped:
        return "skipped";
    case FailureOutcome::stopped:
        return "stopped";
    }
    return "unknown";
}
[[nodiscard]] constexpr std::string_view to_label(DeadLetterOutcome outcome) noexcept {
    switch (outcome) {
    case DeadLetterOutcome::added:
        return "added";
    case DeadLetterOutcome::retried:
        return "retried";
    case DeadLetterOutcome::failed:
        return "failed";
    case DeadLetterOutcome::discarded:
        return "discarded";
    }
    return "unknown";
}

/// Seconds, as the format's base unit of time.
[[nodiscard]] inline double seconds(std::chrono::nanoseconds duration) noexcept {
    return std::chrono::duration<double>(duration).count();
}

} // namespace prometheus

/// Options of a `PrometheusObserver`.
struct PrometheusObserverOptions {
    /// The upper bounds, in seconds, of the duration histograms' buckets.
    std::vector<double> duration_buckets = prometheus::default_duration_buckets();
};

/// Turns every observation into metrics named `orchestrix_*` in a registry: counters (`_total`), duration
/// histograms (`_seconds`) and, per projection, gauges of its checkpoint, the store's head and its lag.
/// Labels are of low cardinality: the store's kind, the outcome, the bus, the message type, the aggregate
/// and the projection, never a stream id. Attach it with `component.observe(&observer)` or
/// `ProjectionOptions::observer`; serve `registry.serialize()` at `/metrics` (examples/13-metrics).
/// Safe to call from several threads at once; spans are not its business (`start_span` traces nothing).
class PrometheusObserver : public Observer {
public:
    /// Registers the metrics in `registry`, which must outlive the observer. Throws `InvalidArgumentError`
    /// when `registry` has one of the names with another type or labels, or the buckets are not increasing.
    explicit PrometheusObserver(prometheus::Registry& registry, const PrometheusObserverOptions& options = {})
        : registry_(registry),
          appends_(registry.counter("orchestrix_appends_total", "Appends to an event store, by outcome.",
                                    {"store", "outcome"})),
          appended_events_(
              registry.counter("orchestrix_appended_events_total", "Events written to an event store.", {"store"})),
          append_duration_(registry.histogram("orchestrix_append_duration_seconds",
                                              "How long appends to an event store took.", {"store"},
                                              options.duration_buckets)),
          reads_(registry.counter("orchestrix_reads_total", "Reads from an event store, by what they covered.",
                                  {"store", "kind"})),
          read_events_(
              registry.counter("orchestrix_read_events_total", "Events read from an event store.", {"store", "kind"})),
          read_duration_(registry.histogram("orchestrix_read_duration_seconds",
                                            "How long reads from an event store took.", {"store", "kind"},
                                            options.duration_buckets)),
          commands_(registry.counter("orchestrix_commands_total", "Commands executed by repositories, by outcome.",
                                     {"aggregate", "outcome"})),
          command_retries_(registry.counter("orchestrix_command_retries_total",
                                            "Attempts of commands repeated after a version conflict.", {"aggregate"})),
          command_replayed_(registry.counter("orchestrix_command_replayed_events_total",
                                             "Events replayed to rebuild state for commands.", {"aggregate"})),
          command_duration_(registry.histogram("orchestrix_command_duration_seconds",
                                               "How long commands took, retries included.", {"aggregate"},
                                               options.duration_buckets)),
          snapshots_(registry.counter("orchestrix_snapshots_total", "Snapshots taken, used or ignored.",
                                      {"aggregate", "outcome"})),
          snapshots_ignored_(registry.counter("orchestrix_snapshots_ignored_total",
                                              "Snapshots found but not used, or not taken, by reason.",
                                              {"aggregate", "reason"})),
          published_(
              registry.counter("orchestrix_published_messages_total", "Messages published on a bus.", {"bus", "type"})),
          handler_calls_(registry.counter("orchestrix_handler_calls_total",
                                          "Bus handlers called for published messages.", {"bus", "type"})),
          handler_failures_(
              registry.counter("orchestrix_handler_failures_total", "Bus handlers that threw.", {"bus", "type"})),
          publish_duration_(registry.histogram("orchestrix_publish_duration_seconds",
                                               "How long publishing a message to its handlers took.", {"bus"},
                                               options.duration_buckets)),
          projection_events_(registry.counter("orchestrix_projection_events_total", "Events handled by a projection.",
                                              {"projection"})),
          projection_batch_duration_(registry.histogram("orchestrix_projection_batch_duration_seconds",
                                                        "How long a projection took to handle a batch.", {"projection"},
                                                        options.duration_buckets)),
          projection_checkpoint_(registry.gauge("orchestrix_projection_checkpoint_position",
                                                "Global position of the last event a projection handled or "
                                                "passed over.",
                                                {"projection"})),
          projection_head_(registry.gauge("orchestrix_projection_head_position",
                                          "The store's head position when the projection last read a batch.",
                                          {"projection"})),
          projection_lag_events_(registry.gauge("orchestrix_projection_lag_events",
                                                "Events a projection has not handled yet.", {"projection"})),
          projection_lag_seconds_(registry.gauge("orchestrix_projection_lag_seconds",
                                                 "Age of the event at a projection's checkpoint: how far "
                                                 "behind it runs.",
                                                 {"projection"})),
          projection_failures_(registry.counter("orchestrix_projection_failures_total",
                                                "Events a projection's handler failed on, by what followed.",
                                                {"projection", "outcome"})),
          dead_letters_(registry.counter("orchestrix_dead_letters_total",
                                         "Dead letters added, retried, failed again or discarded.",
                                         {"projection", "outcome"})) {}

    /// The registry the metrics are in.
    [[nodiscard]] prometheus::Registry& registry() const noexcept { return registry_; }

    void on_append(const AppendObservation& o) override {
        appends_.labels({o.store, prometheus::to_label(o.outcome)}).inc();
        if (o.outcome == AppendOutcome::written) appended_events_.labels({o.store}).inc(o.events);
        append_duration_.labels({o.store}).observe(prometheus::seconds(o.duration));
    }

    void on_read(const ReadObservation& o) override {
        const std::string_view kind = prometheus::to_label(o.kind);
        reads_.labels({o.store, kind}).inc();
        read_events_.labels({o.store, kind}).inc(o.events);
        read_duration_.labels({o.store, kind}).observe(prometheus::seconds(o.duration));
    }

    void on_command(const CommandObservation& o) override {
        commands_.labels({o.aggregate, prometheus::to_label(o.outcome)}).inc();
        command_retries_.labels({o.aggregate}).inc(o.attempts > 1 ? o.attempts - 1 : 0);
        command_replayed_.labels({o.aggregate}).inc(o.events_replayed);
        command_duration_.labels({o.aggregate}).observe(prometheus::seconds(o.duration));
    }

    void on_snapshot(const SnapshotObservation& o) override {
        snapshots_.labels({o.aggregate, prometheus::to_label(o.outcome)}).inc();
        if (o.outcome == SnapshotOutcome::ignored) snapshots_ignored_.labels({o.aggregate, o.reason}).inc();
    }

    void on_publish(const PublishObservation& o) override {
        published_.labels({o.bus, o.type}).inc();
        handler_calls_.labels({o.bus, o.type}).inc(o.handlers);
        publish_duration_.labels({o.bus}).observe(prometheus::seconds(o.duration));
    }

    void on_handler_failure(const HandlerFailureObservation& o) override {
        handler_failures_.labels({o.bus, o.type}).inc();
    }

    void on_projection(const ProjectionObservation& o) override {
        projection_events_.labels({o.projection}).inc(o.events);
        projection_batch_duration_.labels({o.projection}).observe(prometheus::seconds(o.duration));
        projection_checkpoint_.labels({o.projection}).set(static_cast<double>(o.checkpoint));
        projection_head_.labels({o.projection}).set(static_cast<double>(o.head));
        projection_lag_events_.labels({o.projection}).set(static_cast<double>(o.lag_events));
        projection_lag_seconds_.labels({o.projection}).set(prometheus::seconds(o.lag_time));
    }

    void on_projection_failure(const ProjectionFailureObservation& o) override {
        projection_failures_.labels({o.projection, prometheus::to_label(o.outcome)}).inc();
    }

    void on_dead_letter(const DeadLetterObservation& o) override {
        dead_letters_.labels({o.projection, prometheus::to_label(o.outcome)}).inc();
    }

private:
    prometheus::Registry& registry_;
    prometheus::Family<prometheus::Counter>& appends_;
    prometheus::Family<prometheus::Counter>& appended_events_;
    prometheus::Family<prometheus::Histogram>& append_duration_;
    prometheus::Family<prometheus::Counter>& reads_;
    prometheus::Family<prometheus::Counter>& read_events_;
    prometheus::Family<prometheus::Histogram>& read_duration_;
    prometheus::Family<prometheus::Counter>& commands_;
    prometheus::Family<prometheus::Counter>& command_retries_;
    prometheus::Family<prometheus::Counter>& command_replayed_;
    prometheus::Family<prometheus::Histogram>& command_duration_;
    prometheus::Family<prometheus::Counter>& snapshots_;
    prometheus::Family<prometheus::Counter>& snapshots_ignored_;
    prometheus::Family<prometheus::Counter>& published_;
    prometheus::Family<prometheus::Counter>& handler_calls_;
    prometheus::Family<prometheus::Counter>& handler_failures_;
    prometheus::Family<prometheus::Histogram>& publish_duration_;
    prometheus::Family<prometheus::Counter>& projection_events_;
    prometheus::Family<prometheus::Histogram>& projection_batch_duration_;
    prometheus::Family<prometheus::Gauge>& projection_checkpoint_;
    prometheus::Family<prometheus::Gauge>& projection_head_;
    prometheus::Family<prometheus::Gauge>& projection_lag_events_;
    prometheus::Family<prometheus::Gauge>& projection_lag_seconds_;
    prometheus::Family<prometheus::Counter>& projection_failures_;
    prometheus::Family<prometheus::Counter>& dead_letters_;
};

} // namespace orchestrix
