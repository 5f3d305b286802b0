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
    CHECK(inspector.layout() == 3);
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

#ifdef ORCHESTRIX_CLI_COMPRESSION
// The inspector built with the compression module (tests/CMakeLists.txt defines ORCHESTRIX_CLI_COMPRESSION and
// links orchestrix::compression then): compressed payloads are shown and checked decompressed.

#include <orchestrix/compression/codec.hpp>

namespace {

// acc-1 at version 3, every payload compressed (threshold 0), and (if `damage`) at position 4 an event of
// acc-2 whose frame is damaged (its checksum altered).
void fill_compressed(const std::string& path, bool damage) {
    using namespace test_domain;
    using Codec = orchestrix::CompressingCodec<AccountEvent>;
    orchestrix::SqliteEventStore<AccountEvent, Codec> store(path, {}, Codec({0, 3}));
    const std::string owner(300, 'a');
    store.append("acc-1", {AccountOpened{"acc-1", owner}, MoneyDeposited{"acc-1", 100}},
                 orchestrix::ExpectedVersion::no_stream());
    store.append("acc-1", {MoneyWithdrawn{"acc-1", 30}}, orchestrix::ExpectedVersion::exact(2));
    if (!damage) return;
    const std::string good = store.read_all_raw()[0].payload;
    const std::string frame = nlohmann::json::parse(good).at("$zstd").get<std::string>();
    std::string bytes = *orchestrix::detail::compression::base64_decode(frame);
    bytes.back() = static_cast<char>(bytes.back() ^ 0x5A);
    const std::string damaged = R"({"$zstd":")" +
                                orchestrix::detail::compression::base64_encode(
                                    reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) +
                                R"("})";
    const std::string id = orchestrix::Uuid::generate().to_string();
    const std::vector<orchestrix::RawEventData> raw{
        {id, "account.opened", 1, damaged, R"({"event_id":")" + id + R"("})"}};
    store.append_raw("acc-2", raw, orchestrix::ExpectedVersion::no_stream());
}

} // namespace

TEST_CASE("inspector with compression: show, tail and verify read compressed payloads decompressed") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    fill_compressed(path, true);
    {
        orchestrix::SqliteInspector inspector(path);
        const auto rows = inspector.last_events(4);
        REQUIRE(rows.size() == 4);
        CHECK(rows[0].payload.starts_with(R"({"$zstd":")"));                // 300 bytes of owner: compressed
        CHECK(rows[1].payload == R"({"account_id":"acc-1","amount":100})"); // compression would not make it smaller
        CHECK(rows[3].payload.starts_with(R"({"$zstd":")"));
    }

    const auto show = cli_test::run({"show", path, "acc-1", "--json"});
    INFO(show.out << show.err);
    REQUIRE(show.status == 0);
    const auto events = show.json().at("events");
    REQUIRE(events.size() == 3);
    CHECK(events[0].at("payload") == nlohmann::json{{"account_id", "acc-1"}, {"owner", std::string(300, 'a')}});
    CHECK(events[2].at("payload") == nlohmann::json{{"account_id", "acc-1"}, {"amount", 30}});
    CHECK_FALSE(events[0].contains("payload_invalid"));

    const auto damaged = cli_test::run({"show", path, "acc-2", "--json"});
    REQUIRE(damaged.status == 0);
    const auto bad = damaged.json().at("events").at(0);
    CHECK(bad.at("payload").get<std::string>().starts_with(R"({"$zstd":")"));
    CHECK(bad.at("payload_invalid").get<std::string>().find("damaged zstd frame") != std::string::npos);

    const auto tail = cli_test::run({"tail", path, "-n", "4"});
    REQUIRE(tail.status == 0);
    CHECK(tail.out.find(R"({"account_id":"acc-1","owner":")" + std::string(300, 'a') + "\"}") != std::string::npos);
    CHECK(tail.out.find(R"({"account_id":"acc-1","amount":30})") != std::string::npos);

    // export keeps payloads as stored; import writes them back so, and they show decompressed.
    const auto exported = cli_test::run({"export", path});
    REQUIRE(exported.status == 0);
    CHECK(exported.out.find(R"("data":{"$zstd":")") != std::string::npos);
    const auto copy = dir.file("copy.db");
    REQUIRE(cli_test::run({"import", copy}, exported.out).status == 0);
    const auto copied = cli_test::run({"show", copy, "acc-1", "--json"});
    REQUIRE(copied.status == 0);
    const auto copied_events = copied.json().at("events");
    REQUIRE(copied_events.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(copied_events[i].at("payload") == events[i].at("payload"));
    {
        orchestrix::SqliteInspector original(path);
        orchestrix::SqliteInspector restored(copy);
        const auto before = original.last_events(4);
        const auto after = restored.last_events(4);
        REQUIRE(after.size() == 4);
        for (std::size_t i = 0; i < 4; ++i) CHECK(after[i].payload == before[i].payload);
    }

    const auto verify = cli_test::run({"verify", path, "--json"});
    INFO(verify.out << verify.err);
    CHECK(verify.status == 1);
    const auto findings = verify.json().at("findings");
    REQUIRE(findings.size() == 1);
    CHECK(findings[0].at("kind") == "invalid_payload");
    CHECK(findings[0].at("position") == 4);
    CHECK(findings[0].at("stream_id") == "acc-2");
    CHECK(findings[0].at("message").get<std::string>().find("damaged zstd frame") != std::string::npos);
}

TEST_CASE("inspector with compression: verify checks the JSON inside a frame, and passes a sound store") {
    const test_support::TempDir dir;
    const auto path = dir.file("events.db");
    {
        cli_test::Store store(path);
        const std::string id = orchestrix::Uuid::generate().to_string();
        // A sound frame whose content is not JSON.
        const std::vector<orchestrix::RawEventData> raw{
            {id, "account.opened", 1, orchestrix::compress_payload("not JSON"), R"({"event_id":")" + id + R"("})"}};
        store.append_raw("acc-1", raw, orchestrix::ExpectedVersion::no_stream());
    }
    const auto verify = cli_test::run({"verify", path, "--json"});
    INFO(verify.out << verify.err);
    CHECK(verify.status == 1);
    const auto findings = verify.json().at("findings");
    REQUIRE(findings.size() == 1);
    CHECK(findings[0].at("kind") == "invalid_payload");

    const auto clean = dir.file("clean.db");
    fill_compressed(clean, false);
    const auto ok = cli_test::run({"verify", clean});
    INFO(ok.out << ok.err);
    CHECK(ok.status == 0);
    CHECK(ok.out.find("verified 3 events in 1 stream and 0 snapshots: no findings") != std::string::npos);
}
#endif
