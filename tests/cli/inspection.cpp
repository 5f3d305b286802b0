// The inspection library the inspector program runs on: durable/inspection.hpp's Verifier and
// sqlite/inspector.hpp's SqliteInspector, called directly.

#include "cli/run.hpp"
#include "support/catch.hpp"
#include "support/temp_dir.hpp"

#include <orchestrix/durable/inspection.hpp>
#include <orchestrix/sqlite/inspector.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace {

using orchestrix::InspectionError;
using orchestrix::RawRecordedEventView;
using orchestrix::inspection::FindingKind;
using orchestrix::inspection::Verifier;

constexpr const char* id1 = "5f0c3c8e-1d2b-4c1a-9a57-0d9d2f1f0a01";
constexpr const char* id2 = "5f0c3c8e-1d2b-4c1a-9a57-0d9d2f1f0a02";

RawRecordedEventView row(orchestrix::position_t position, std::string_view stream, orchestrix::stream_version_t version,
                         std::string_view id, std::string_view payload, std::string_view metadata) {
    RawRecordedEventView r;
    r.position = position;
    r.stream_id = stream;
    r.version = version;
    r.event_id = id;
    r.type = "t";
    r.schema_version = 1;
    r.payload = payload;
    r.metadata = metadata;
    return r;
}

std::string meta(const std::string& id) { return R"({"event_id":")" + id + R"(","correlation_id":""})"; }

} // namespace

TEST_CASE("inspection Verifier: rows as the stores write them have no findings") {
    Verifier v;
    const auto m1 = meta(id1), m2 = meta(id2);
    v.check_event(row(1, "a", 1, id1, "{}", m1));
    v.check_event(row(2, "a", 2, id2, R"({"x":[1,2]})", m2));
    v.check_snapshot({"a", "agg", 2, 1, R"({"n":2})"});
    v.check_snapshot({"a", "agg", 1, 1, "opaque state"});
    const auto& report = v.report();
    CHECK(report.ok());
    CHECK(report.events == 2);
    CHECK(report.streams == 1);
    CHECK(report.snapshots == 2);
    CHECK(report.head == 2);
}

TEST_CASE("inspection Verifier: each broken promise is one finding naming the row") {
    orchestrix::DecodeOptions small;
    small.max_bytes = 100;
    Verifier v(small);
    const auto m1 = meta(id1), m2 = meta(id2);
    const std::string payload_over_100 = R"({"text":")" + std::string(100, 'x') + R"("})";
    v.check_event(row(2, "a", 1, id1, "{}", m1));             // position 1 missing
    v.check_event(row(3, "a", 3, id2, "{}", m2));             // version 2 missing
    v.check_event(row(4, "b", 1, id1, payload_over_100, m1)); // payload over max_bytes
    v.check_event(row(5, "b", 2, id2, "{}", "[]"));           // metadata not an object
    v.check_event(row(6, "b", 3, id1, "{}", m2));             // event id differs
    v.check_event(row(7, "b", 0, id1, "{}", m1));             // damaged version
    v.check_snapshot({"b", "agg", 4, 1, ""});                 // ahead, and empty
    const auto& findings = v.report().findings;
    REQUIRE(findings.size() == 8);
    CHECK(findings[0].kind == FindingKind::position_gap);
    CHECK(findings[0].position == 2);
    CHECK(findings[1].kind == FindingKind::version_gap);
    CHECK(findings[1].stream_id == "a");
    CHECK(findings[2].kind == FindingKind::invalid_payload);
    CHECK(findings[2].message.find("100") != std::string::npos);
    CHECK(findings[3].kind == FindingKind::invalid_metadata);
    CHECK(findings[4].kind == FindingKind::event_id_mismatch);
    CHECK(findings[4].position == 6);
    CHECK(findings[5].kind == FindingKind::damaged_column);
    CHECK(findings[6].kind == FindingKind::snapshot_ahead);
    CHECK(findings[7].kind == FindingKind::invalid_snapshot);
    CHECK(orchestrix::inspection::describe(findings[4])
              .starts_with("position 6, stream 'b', version 3: "
                           "event_id_mismatch: "));
}

TEST_CASE("inspection SqliteInspector: refuses a missing file without creating it, and reads a store") {
    const test_support::TempDir dir;
    const auto missing = dir.file("missing.db");
    try {
        orchestrix::SqliteInspector inspector(missing);
        FAIL("opened a missing file");
    } catch (const InspectionError& e) {
        CHECK(e.kind() == InspectionError::Kind::store_not_found);
        CHECK(e.store() == missing);
    }
    CHECK_FALSE(std::filesystem::exists(missing));

    const auto path = dir.file("events.db");
    {
        cli_test::Store store(path);
        cli_test::fill(store);
    }
    orchestrix::SqliteInspector inspector(path);
    CHECK(inspector.layout() == 2);
    CHECK(inspector.head() == 5);
    CHECK(inspector.event_count() == 5);
    CHECK(inspector.stream_version("acc-1") == 3);
    const auto page = inspector.streams("acc-1", 10);
    REQUIRE(page.streams.size() == 1);
    CHECK(page.streams[0].stream_id == "acc-2");
    CHECK_FALSE(page.next_after);
    std::vector<orchestrix::stream_version_t> versions;
    CHECK(inspector.visit_stream("acc-1", 2, 3,
                                 [&](const RawRecordedEventView& e) { versions.push_back(e.version); }) == 2);
    CHECK(versions == std::vector<orchestrix::stream_version_t>{2, 3});
    const auto last = inspector.last_events(2);
    REQUIRE(last.size() == 2);
    CHECK(last[0].position == 4);
    CHECK(inspector.dead_letters().empty());
    CHECK(inspector.request_retry("p").empty());
    CHECK(orchestrix::inspection::verify(inspector).ok());
}
