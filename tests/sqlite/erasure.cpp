// Physical erasure in the SQLite store: after a removal and the maintenance call, the removed events' bytes are
// in none of the files SQLite writes (the database, its -wal and its -shm), read byte for byte; and without the
// maintenance they are still there, so that these tests can fail.

#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using orchestrix::DeleteMode;
using orchestrix::DeleteOptions;
using orchestrix::ExpectedVersion;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using Store = orchestrix::SqliteEventStore<AccountEvent>;

// Markers no other byte of a file holds by chance.
const std::string erased_marker = "ERASE-ME-7f3a9c1e-personal-data";
const std::string kept_marker = "KEEP-ME-2b8d4f60-other-data";

// The files of the database at `path` that hold `marker` anywhere, byte for byte: "db", "wal", "shm".
std::vector<std::string> files_holding(const std::string& path, const std::string& marker) {
    std::vector<std::string> out;
    for (const auto& [suffix, name] : {std::pair{"", "db"}, std::pair{"-wal", "wal"}, std::pair{"-shm", "shm"}}) {
        std::ifstream in(path + suffix, std::ios::binary);
        if (!in) continue;
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (bytes.find(marker) != std::string::npos) out.emplace_back(name);
    }
    return out;
}

const std::vector<std::string> nowhere{};

// `count` events of `stream` whose owner field holds `marker` and `filler` bytes (a large filler spills the
// payload into overflow pages).
std::vector<orchestrix::EventEnvelope<AccountEvent>> events_with(const std::string& stream, const std::string& marker,
                                                                 int count, std::size_t filler = 40) {
    std::vector<orchestrix::EventEnvelope<AccountEvent>> out;
    for (int i = 0; i < count; ++i) {
        out.emplace_back(AccountOpened{stream, marker + "-" + std::to_string(i) + "-" + std::string(filler, 'x')});
    }
    return out;
}

// A store holding a victim stream between two kept ones, several pages' worth of each.
void fill(Store& store, std::size_t filler = 40) {
    store.append("kept-1", events_with("kept-1", kept_marker, 30, filler), ExpectedVersion::no_stream());
    store.append("victim", events_with("victim", erased_marker, 30, filler), ExpectedVersion::no_stream());
    store.append("kept-2", events_with("kept-2", kept_marker, 30, filler), ExpectedVersion::no_stream());
}

orchestrix::SqliteOptions with_secure_delete(bool on) {
    orchestrix::SqliteOptions options;
    options.secure_delete = on;
    return options;
}

} // namespace

TEST_CASE("sqlite erasure: a hard-deleted stream's events leave the file and the WAL at the next checkpoint") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    for (const std::size_t filler : {std::size_t{40}, std::size_t{9000}}) { // in leaf cells, and overflow pages
        INFO("filler " << filler);
        std::filesystem::remove(path);
        std::filesystem::remove(path + "-wal");
        std::filesystem::remove(path + "-shm");
        Store store(path); // secure_delete is on by default
        fill(store, filler);
        REQUIRE_FALSE(files_holding(path, erased_marker).empty());
        store.checkpoint(); // the events are in the database file now, not only in the WAL
        REQUIRE(files_holding(path, erased_marker) == std::vector<std::string>{"db"});

        CHECK(
            store.delete_stream("victim", ExpectedVersion::exact(30), DeleteOptions{DeleteMode::hard}).events_removed ==
            30);
        // Deleted for every reader at once, but the bytes are still on disk: the file's pages until the
        // checkpoint writes the zeroed ones over them.
        CHECK(store.read_stream("victim").empty());
        CHECK_FALSE(files_holding(path, erased_marker).empty());

        store.checkpoint();
        CHECK(files_holding(path, erased_marker) == nowhere);
        CHECK(files_holding(path, kept_marker) == std::vector<std::string>{"db"}); // the search finds what is there
        CHECK(std::filesystem::file_size(path + "-wal") == 0);
        CHECK(store.read_stream("kept-1").size() == 30);
    }
}

TEST_CASE("sqlite erasure: without the checkpoint the WAL still holds the deleted events") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path);
    fill(store);
    store.delete_stream("victim", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard});
    // The appends' pages are in the WAL, the zeroed ones after them: a reader of the raw WAL finds the data.
    CHECK(files_holding(path, erased_marker) == std::vector<std::string>{"wal"});
}

TEST_CASE("sqlite erasure: without secure_delete a checkpoint leaves the bytes in free space, compact removes them") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path, with_secure_delete(false));
    fill(store);
    store.checkpoint();
    store.delete_stream("victim", ExpectedVersion::any(), DeleteOptions{});
    store.checkpoint();
    CHECK(files_holding(path, erased_marker) == std::vector<std::string>{"db"}); // in freed cells and pages

    const auto before = std::filesystem::file_size(path);
    store.compact();
    CHECK(files_holding(path, erased_marker) == nowhere);
    CHECK(files_holding(path, kept_marker) == std::vector<std::string>{"db"});
    CHECK(std::filesystem::file_size(path) < before); // the free pages went back to the file system
    CHECK(std::filesystem::file_size(path + "-wal") == 0);
    CHECK(store.read_all().size() == 60);
}

TEST_CASE("sqlite erasure: truncated events leave the files, the events kept stay") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path);
    store.append("kept", events_with("kept", kept_marker, 10), ExpectedVersion::no_stream());
    store.append("account", events_with("account", erased_marker, 20), ExpectedVersion::no_stream());
    // Its later events say something else: what truncation keeps.
    const std::string later_marker = "LATER-5e1d77c0-still-needed";
    store.append("account", events_with("account", later_marker, 5), ExpectedVersion::exact(20));
    store.checkpoint();
    CHECK(store.truncate_stream("account", 21).events_removed == 20);
    CHECK_FALSE(files_holding(path, erased_marker).empty()); // in the WAL until the checkpoint
    store.compact();
    CHECK(files_holding(path, erased_marker) == nowhere);
    CHECK(files_holding(path, later_marker) == std::vector<std::string>{"db"});
    CHECK(store.read_stream("account").size() == 5);
}

TEST_CASE("sqlite erasure: retention removes the bytes of the events it removes once compacted") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    Store store(path, with_secure_delete(false));
    fill(store);
    store.checkpoint();
    const std::vector<orchestrix::RetentionRule> rules{{"victim", 0, std::nullopt}};
    CHECK(store.apply_retention(rules, std::chrono::system_clock::now()).events_removed == 30);
    store.checkpoint();
    CHECK_FALSE(files_holding(path, erased_marker).empty());
    store.compact();
    CHECK(files_holding(path, erased_marker) == nowhere);
}

TEST_CASE("sqlite erasure: the tags of removed events leave the file after compact") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    orchestrix::SqliteEventStore<dcb_domain::CourseEvent> store(path);
    const std::string student = "student-" + erased_marker;
    for (int i = 0; i < 40; ++i) {
        store.append("course-" + std::to_string(i), {dcb_domain::CourseDefined{std::to_string(i), 10}},
                     ExpectedVersion::no_stream());
    }
    store.append("enrolment",
                 {dcb_domain::StudentSubscribed{student, "1"}, dcb_domain::StudentSubscribed{student, "2"}},
                 ExpectedVersion::no_stream());
    store.checkpoint();
    REQUIRE(files_holding(path, erased_marker) == std::vector<std::string>{"db"});
    store.delete_stream("enrolment", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard});
    store.compact();
    CHECK(files_holding(path, erased_marker) == nowhere);
    CHECK(store.read(orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("student", student)}}}))
              .events.empty());
}

TEST_CASE("sqlite erasure: a checkpoint that another connection's read holds back says so") {
    test_support::TempDir dir;
    const auto path = dir.file("events.db");
    orchestrix::SqliteOptions impatient;
    impatient.busy_timeout = std::chrono::milliseconds(50);
    Store store(path, impatient);
    Store reader(path);
    fill(store);
    std::size_t visited = 0;
    try {
        // A reader inside its read transaction keeps the WAL's frames alive: the checkpoint cannot empty it.
        reader.visit_all(1, [&](const orchestrix::RecordedEventView<AccountEvent>&) {
            if (visited++ == 0) {
                store.delete_stream("victim", ExpectedVersion::any(), DeleteOptions{});
                store.checkpoint();
            }
        });
        FAIL("the checkpoint finished while a read held the WAL");
    } catch (const orchestrix::SqliteError& e) {
        CHECK(e.primary_code() == SQLITE_BUSY);
        CHECK(std::string(e.what()).find("call it again") != std::string::npos);
    }
    store.checkpoint(); // the read is over
    CHECK(files_holding(path, erased_marker) == nowhere);
}
