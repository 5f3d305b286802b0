// Tests of the test double tests/support/recording_observer.hpp, which other tests rely on.

#include "support/recording_observer.hpp"
#include "support/catch.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test_support::RecordingObserver;

TEST_CASE("recording observer: observations are copied, so they outlive the strings they were made from") {
    RecordingObserver observer;
    {
        std::string store = "memory";
        std::string stream = "account-1";
        observer.on_append({store, stream, 2, 5us, orchestrix::AppendOutcome::conflict});
        observer.on_read({store, orchestrix::ReadKind::stream, stream, 3, 1us});
        observer.on_command({"account", stream, 2, 7, 1ms, orchestrix::CommandOutcome::succeeded});
        observer.on_snapshot({"account", stream, 4, orchestrix::SnapshotOutcome::ignored, "undecodable"});
        observer.on_publish({"bus", "user.created", 2, 1, 1us});
        observer.on_handler_failure({"bus", "user.created", "boom"});
        observer.on_projection({"balances", 3, 5, 2, 1s, 3, 1ms});
        observer.on_projection_failure(
            {"balances", 4, stream, "deposited", "bad", 2, orchestrix::FailureOutcome::skipped});
        observer.on_dead_letter({"balances", 4, orchestrix::DeadLetterOutcome::added});
        store.assign("xxxxxx");
        stream.assign("yyyyyyyyy");
    }
    REQUIRE(observer.appends.size() == 1);
    CHECK(observer.appends[0].store == "memory");
    CHECK(observer.appends[0].stream == "account-1");
    CHECK(observer.appends[0].events == 2);
    CHECK(observer.appends[0].duration == 5us);
    CHECK(observer.appends[0].outcome == orchestrix::AppendOutcome::conflict);
    REQUIRE(observer.reads.size() == 1);
    CHECK(observer.reads[0].stream == "account-1");
    CHECK(observer.reads[0].events == 3);
    REQUIRE(observer.commands.size() == 1);
    CHECK(observer.commands[0].attempts == 2);
    CHECK(observer.commands[0].events_replayed == 7);
    REQUIRE(observer.snapshots.size() == 1);
    CHECK(observer.snapshots[0].reason == "undecodable");
    CHECK(observer.snapshots[0].version == 4);
    REQUIRE(observer.publishes.size() == 1);
    CHECK(observer.publishes[0].failures == 1);
    REQUIRE(observer.handler_failures.size() == 1);
    CHECK(observer.handler_failures[0].error == "boom");
    REQUIRE(observer.projections.size() == 1);
    CHECK(observer.projections[0].lag_events == 2);
    CHECK(observer.projections[0].lag_time == 1s);
    REQUIRE(observer.projection_failures.size() == 1);
    CHECK(observer.projection_failures[0].stream == "account-1");
    CHECK(observer.projection_failures[0].outcome == orchestrix::FailureOutcome::skipped);
    REQUIRE(observer.dead_letters.size() == 1);
    CHECK(observer.dead_letters[0].position == 4);
}

TEST_CASE("recording observer: spans get ids of their own, keep their parent, attributes and end") {
    RecordingObserver observer;
    const orchestrix::SpanAttribute start_attributes[] = {{"orchestrix.bus", "bus", 0, false},
                                                          {"orchestrix.events", "", 3, true}};
    const auto root =
        observer.start_span({"orchestrix.command deposit", orchestrix::SpanKind::internal, {}, start_attributes});
    REQUIRE(root.valid());
    CHECK(root.sampled());
    const auto child = observer.start_span({"orchestrix.publish deposited", orchestrix::SpanKind::producer, root, {}});
    REQUIRE(child.valid());
    CHECK(child.trace_id == root.trace_id); // the same trace
    CHECK(child.span_id != root.span_id);
    const auto other_root = observer.start_span({"other", orchestrix::SpanKind::internal, {}, {}});
    CHECK(other_root.trace_id != root.trace_id); // a new trace

    const orchestrix::SpanAttribute end_attributes[] = {{"orchestrix.attempts", "", 2, true}};
    observer.end_span(child, {true, "handler threw", end_attributes});
    observer.end_span(root, {false, "", {}});

    REQUIRE(observer.spans.size() == 3);
    const auto recorded_root = observer.span_of(root);
    REQUIRE(recorded_root);
    CHECK(recorded_root->name == "orchestrix.command deposit");
    CHECK_FALSE(recorded_root->parent.valid());
    CHECK(recorded_root->ended);
    CHECK_FALSE(recorded_root->error);
    CHECK(recorded_root->end_calls == 1);
    REQUIRE(recorded_root->attribute("orchestrix.bus"));
    CHECK(recorded_root->attribute("orchestrix.bus")->text == "bus");
    CHECK(recorded_root->attribute("orchestrix.events")->number == 3);
    CHECK(recorded_root->attribute("orchestrix.events")->is_number);

    const auto publishes = observer.spans_named("orchestrix.publish deposited");
    REQUIRE(publishes.size() == 1);
    CHECK(publishes[0].parent == root);
    CHECK(publishes[0].kind == orchestrix::SpanKind::producer);
    CHECK(publishes[0].error);
    CHECK(publishes[0].message == "handler threw");
    CHECK(publishes[0].attribute("orchestrix.attempts")->number == 2);
    CHECK_FALSE(observer.span_of(other_root)->ended);

    observer.end_span(orchestrix::TraceContext{}, {}); // never started
    CHECK(observer.unknown_ends.size() == 1);
}

TEST_CASE("recording observer: reports from several threads are all recorded") {
    RecordingObserver observer;
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 500; ++i) {
                observer.on_append({"memory", "s", 1, 1us, orchestrix::AppendOutcome::written});
                const auto span = observer.start_span({"work", orchestrix::SpanKind::internal, {}, {}});
                observer.end_span(span, {});
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(observer.appends.size() == 2000);
    REQUIRE(observer.spans.size() == 2000);
    for (const auto& span : observer.spans) CHECK(span.end_calls == 1);
    CHECK(observer.unknown_ends.empty());
}
