#include <orchestrix/prometheus/observer.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
using orchestrix::PrometheusObserver;
using orchestrix::prometheus::Registry;

namespace {

/// The line of `text` that starts with `series` followed by a space, without the series ("" if none).
std::string sample(const std::string& text, std::string_view series) {
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        const std::string_view line(text.data() + at, (end == std::string::npos ? text.size() : end) - at);
        if (line.size() > series.size() && line.substr(0, series.size()) == series && line[series.size()] == ' ') {
            return std::string(line.substr(series.size() + 1));
        }
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return "";
}

} // namespace

TEST_CASE("prometheus observer: appends and reads become counters and duration histograms by store") {
    Registry registry;
    PrometheusObserver observer(registry, {{0.25, 1}});
    observer.on_append({"memory", "account-1", 2, 125ms, orchestrix::AppendOutcome::written});
    observer.on_append({"memory", "account-2", 1, 500ms, orchestrix::AppendOutcome::written});
    observer.on_append({"memory", "account-1", 1, 2s, orchestrix::AppendOutcome::conflict});
    observer.on_append({"sqlite", "account-1", 0, 1ms, orchestrix::AppendOutcome::idempotent});
    observer.on_read({"memory", orchestrix::ReadKind::stream, "account-1", 3, 1us});
    observer.on_read({"memory", orchestrix::ReadKind::all, "", 7, 1us});
    const std::string text = registry.serialize();
    CHECK(sample(text, R"(orchestrix_appends_total{store="memory",outcome="written"})") == "2");
    CHECK(sample(text, R"(orchestrix_appends_total{store="memory",outcome="conflict"})") == "1");
    CHECK(sample(text, R"(orchestrix_appends_total{store="sqlite",outcome="idempotent"})") == "1");
    CHECK(sample(text, R"(orchestrix_appended_events_total{store="memory"})") == "3");  // the conflict wrote none
    CHECK(sample(text, R"(orchestrix_appended_events_total{store="sqlite"})").empty()); // nor the retry
    CHECK(sample(text, R"(orchestrix_append_duration_seconds_bucket{store="memory",le="0.25"})") == "1");
    CHECK(sample(text, R"(orchestrix_append_duration_seconds_bucket{store="memory",le="1"})") == "2");
    CHECK(sample(text, R"(orchestrix_append_duration_seconds_bucket{store="memory",le="+Inf"})") == "3");
    CHECK(sample(text, R"(orchestrix_append_duration_seconds_count{store="memory"})") == "3");
    CHECK(sample(text, R"(orchestrix_append_duration_seconds_sum{store="memory"})") == "2.625");
    CHECK(sample(text, R"(orchestrix_reads_total{store="memory",kind="stream"})") == "1");
    CHECK(sample(text, R"(orchestrix_read_events_total{store="memory",kind="all"})") == "7");
    CHECK(text.find("account-1") == std::string::npos); // stream ids are never labels
}

TEST_CASE("prometheus observer: commands, snapshots, publishes and handler failures") {
    Registry registry;
    PrometheusObserver observer(registry);
    observer.on_command({"account", "account-1", 3, 10, 1ms, orchestrix::CommandOutcome::succeeded});
    observer.on_command({"account", "account-2", 1, 4, 1ms, orchestrix::CommandOutcome::rejected});
    observer.on_snapshot({"account", "account-1", 5, orchestrix::SnapshotOutcome::taken, ""});
    observer.on_snapshot({"account", "account-1", 5, orchestrix::SnapshotOutcome::ignored, "old_schema_version"});
    observer.on_publish({"bus", "user.created", 2, 1, 1us});
    observer.on_publish({"bus", "user.created", 2, 0, 1us});
    observer.on_handler_failure({"bus", "user.created", "boom"});
    const std::string text = registry.serialize();
    CHECK(sample(text, R"(orchestrix_commands_total{aggregate="account",outcome="succeeded"})") == "1");
    CHECK(sample(text, R"(orchestrix_commands_total{aggregate="account",outcome="rejected"})") == "1");
    CHECK(sample(text, R"(orchestrix_command_retries_total{aggregate="account"})") == "2");
    CHECK(sample(text, R"(orchestrix_command_replayed_events_total{aggregate="account"})") == "14");
    CHECK(sample(text, R"(orchestrix_command_duration_seconds_count{aggregate="account"})") == "2");
    CHECK(sample(text, R"(orchestrix_snapshots_total{aggregate="account",outcome="taken"})") == "1");
    CHECK(sample(text, R"(orchestrix_snapshots_total{aggregate="account",outcome="ignored"})") == "1");
    CHECK(sample(text, R"(orchestrix_snapshots_ignored_total{aggregate="account",reason="old_schema_version"})") ==
          "1");
    CHECK(sample(text, R"(orchestrix_published_messages_total{bus="bus",type="user.created"})") == "2");
    CHECK(sample(text, R"(orchestrix_handler_calls_total{bus="bus",type="user.created"})") == "4");
    CHECK(sample(text, R"(orchestrix_handler_failures_total{bus="bus",type="user.created"})") == "1");
    CHECK(sample(text, R"(orchestrix_publish_duration_seconds_count{bus="bus"})") == "2");
}

TEST_CASE("prometheus observer: a projection's checkpoint, head and lag are gauges, the last report wins") {
    Registry registry;
    PrometheusObserver observer(registry);
    observer.on_projection({"balances", 4, 10, 6, 1500ms, 4, 2ms});
    observer.on_projection({"balances", 10, 10, 0, 0ns, 6, 3ms});
    observer.on_projection({"audit", 2, 10, 8, 250ms, 2, 1ms});
    observer.on_projection_failure(
        {"balances", 7, "account-1", "deposited", "boom", 1, orchestrix::FailureOutcome::retried});
    observer.on_projection_failure(
        {"balances", 7, "account-1", "deposited", "boom", 2, orchestrix::FailureOutcome::skipped});
    observer.on_dead_letter({"balances", 7, orchestrix::DeadLetterOutcome::added});
    observer.on_dead_letter({"balances", 7, orchestrix::DeadLetterOutcome::retried});
    const std::string text = registry.serialize();
    CHECK(sample(text, R"(orchestrix_projection_checkpoint_position{projection="balances"})") == "10");
    CHECK(sample(text, R"(orchestrix_projection_head_position{projection="balances"})") == "10");
    CHECK(sample(text, R"(orchestrix_projection_lag_events{projection="balances"})") == "0");
    CHECK(sample(text, R"(orchestrix_projection_lag_seconds{projection="balances"})") == "0");
    CHECK(sample(text, R"(orchestrix_projection_lag_events{projection="audit"})") == "8");
    CHECK(sample(text, R"(orchestrix_projection_lag_seconds{projection="audit"})") == "0.25");
    CHECK(sample(text, R"(orchestrix_projection_events_total{projection="balances"})") == "10");
    CHECK(sample(text, R"(orchestrix_projection_batch_duration_seconds_count{projection="balances"})") == "2");
    CHECK(sample(text, R"(orchestrix_projection_failures_total{projection="balances",outcome="retried"})") == "1");
    CHECK(sample(text, R"(orchestrix_projection_failures_total{projection="balances",outcome="skipped"})") == "1");
    CHECK(sample(text, R"(orchestrix_dead_letters_total{projection="balances",outcome="added"})") == "1");
    CHECK(sample(text, R"(orchestrix_dead_letters_total{projection="balances",outcome="retried"})") == "1");
}

TEST_CASE("prometheus observer: every family is declared with HELP and TYPE, counters end in _total") {
    Registry registry;
    PrometheusObserver observer(registry);
    const std::string text = registry.serialize();
    for (const std::string_view counter :
         {"orchestrix_appends_total", "orchestrix_appended_events_total", "orchestrix_reads_total",
          "orchestrix_read_events_total", "orchestrix_commands_total", "orchestrix_command_retries_total",
          "orchestrix_command_replayed_events_total", "orchestrix_snapshots_total",
          "orchestrix_snapshots_ignored_total", "orchestrix_published_messages_total", "orchestrix_handler_calls_total",
          "orchestrix_handler_failures_total", "orchestrix_projection_events_total",
          "orchestrix_projection_failures_total", "orchestrix_dead_letters_total"}) {
        CHECK(text.find("# TYPE " + std::string(counter) + " counter\n") != std::string::npos);
    }
    for (const std::string_view histogram :
         {"orchestrix_append_duration_seconds", "orchestrix_read_duration_seconds",
          "orchestrix_command_duration_seconds", "orchestrix_publish_duration_seconds",
          "orchestrix_projection_batch_duration_seconds"}) {
        CHECK(text.find("# TYPE " + std::string(histogram) + " histogram\n") != std::string::npos);
    }
    for (const std::string_view gauge :
         {"orchestrix_projection_checkpoint_position", "orchestrix_projection_head_position",
          "orchestrix_projection_lag_events", "orchestrix_projection_lag_seconds"}) {
        CHECK(text.find("# TYPE " + std::string(gauge) + " gauge\n") != std::string::npos);
    }
    // A second observer on the same registry shares the families.
    PrometheusObserver second(registry);
    observer.on_append({"memory", "s", 1, 1us, orchestrix::AppendOutcome::written});
    second.on_append({"memory", "s", 1, 1us, orchestrix::AppendOutcome::written});
    CHECK(sample(registry.serialize(), R"(orchestrix_appends_total{store="memory",outcome="written"})") == "2");
    // It traces nothing.
    CHECK_FALSE(observer.start_span({"x", orchestrix::SpanKind::internal, {}, {}}).valid());
}

TEST_CASE("prometheus observer: a registry holding one of its names with another type is refused") {
    Registry registry;
    registry.gauge("orchestrix_appends_total", "taken");
    CHECK_THROWS_AS(PrometheusObserver(registry), orchestrix::InvalidArgumentError);
    Registry other;
    CHECK_THROWS_AS(PrometheusObserver(other, {{0.5, 0.1}}), orchestrix::InvalidArgumentError);
}
