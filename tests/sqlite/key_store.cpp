// The SQLite key store: the key_store semantics (core/personal.hpp), its state in the file, and the key's bytes
// leaving the file once the subject is forgotten.

#include <orchestrix/sqlite/event_store.hpp>
#include <orchestrix/sqlite/key_store.hpp>

#include "support/catch.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using orchestrix::SqliteKeyStore;
using orchestrix::SubjectKey;

static_assert(orchestrix::key_store<SqliteKeyStore>);

// A key whose bytes are `seed`, `seed + 1`, ... (never all alike: a search for them finds only them).
SubjectKey key_of(std::uint32_t version, std::uint8_t seed) {
    SubjectKey key;
    key.version = version;
    for (std::size_t i = 0; i < key.bytes.size(); ++i) key.bytes[i] = static_cast<std::uint8_t>(seed + i * 7);
    return key;
}

std::string bytes_of(const SubjectKey& key) {
    return std::string(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size());
}

// The files of the database at `path` that hold `needle` anywhere, byte for byte: "db", "wal", "shm".
std::vector<std::string> files_holding(const std::string& path, const std::string& needle) {
    std::vector<std::string> out;
    for (const auto& [suffix, name] : {std::pair{"", "db"}, std::pair{"-wal", "wal"}, std::pair{"-shm", "shm"}}) {
        std::ifstream in(path + suffix, std::ios::binary);
        if (!in) continue;
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (bytes.find(needle) != std::string::npos) out.emplace_back(name);
    }
    return out;
}

std::string raw_value(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

} // namespace

TEST_CASE("sqlite key store: keys by version, the current one the latest, rotation keeps the older readable") {
    test_support::TempDir dir;
    SqliteKeyStore keys(dir.file("keys.db"));
    CHECK_FALSE(keys.current_key("customer-1"));
    CHECK_FALSE(keys.find_key("customer-1", 1));
    CHECK(keys.add_key("customer-1", key_of(1, 10)) == key_of(1, 10));
    CHECK(keys.current_key("customer-1") == key_of(1, 10));
    // Rotation: version 2 is the current one; version 1 still decrypts what it encrypted.
    CHECK(keys.add_key("customer-1", key_of(2, 20)) == key_of(2, 20));
    CHECK(keys.current_key("customer-1") == key_of(2, 20));
    CHECK(keys.find_key("customer-1", 1) == key_of(1, 10));
    CHECK(keys.find_key("customer-1", 2) == key_of(2, 20));
    CHECK_FALSE(keys.find_key("customer-1", 3));
    CHECK_FALSE(keys.find_key("customer-1", 0));
    // A version stored already is not replaced: the stored key comes back.
    CHECK(keys.add_key("customer-1", key_of(1, 99)) == key_of(1, 10));
    // Subjects do not see each other's keys.
    CHECK_FALSE(keys.current_key("customer-2"));
    CHECK(keys.add_key("customer-2", key_of(1, 30)) == key_of(1, 30));
    CHECK(keys.current_key("customer-1") == key_of(2, 20));
    // Bytes of every value, NUL included, come back as they were.
    SubjectKey zeros;
    zeros.version = 1;
    CHECK(keys.add_key("customer-3", zeros) == zeros);
    CHECK(keys.find_key("customer-3", 1) == zeros);
}

TEST_CASE("sqlite key store: two writers racing for version 1 both get the one key stored") {
    test_support::TempDir dir;
    const auto path = dir.file("keys.db");
    SqliteKeyStore first(path);
    SqliteKeyStore second(path); // another connection, as another process would have
    for (int round = 0; round < 20; ++round) {
        const std::string subject = "subject-" + std::to_string(round);
        std::atomic<int> ready{0};
        std::optional<SubjectKey> a;
        std::optional<SubjectKey> b;
        std::thread one([&] {
            ++ready;
            while (ready < 2) {
            }
            a = first.add_key(subject, key_of(1, 1));
        });
        std::thread two([&] {
            ++ready;
            while (ready < 2) {
            }
            b = second.add_key(subject, key_of(1, 2));
        });
        one.join();
        two.join();
        REQUIRE(a);
        REQUIRE(b);
        CHECK(*a == *b);
        CHECK((*a == key_of(1, 1) || *a == key_of(1, 2)));
        CHECK(first.current_key(subject) == *a);
    }
    CHECK(raw_value(path, "SELECT count(*) FROM orchestrix_subject_keys") == "20");
}

TEST_CASE("sqlite key store: forget destroys every version and refuses new keys for the subject") {
    test_support::TempDir dir;
    SqliteKeyStore keys(dir.file("keys.db"));
    keys.add_key("customer-1", key_of(1, 10));
    keys.add_key("customer-1", key_of(2, 20));
    keys.add_key("customer-2", key_of(1, 30));
    CHECK_FALSE(keys.is_forgotten("customer-1"));
    CHECK(keys.forget("customer-1"));
    CHECK(keys.is_forgotten("customer-1"));
    CHECK_FALSE(keys.current_key("customer-1"));
    CHECK_FALSE(keys.find_key("customer-1", 1));
    CHECK_FALSE(keys.find_key("customer-1", 2));
    try {
        keys.add_key("customer-1", key_of(3, 40));
        FAIL("a key was added for a forgotten subject");
    } catch (const orchestrix::SubjectForgottenError& e) {
        CHECK(e.subject() == "customer-1");
    }
    CHECK_FALSE(keys.current_key("customer-1"));
    // Idempotent: nothing left to destroy.
    CHECK_FALSE(keys.forget("customer-1"));
    CHECK(keys.is_forgotten("customer-1"));
    // A subject never keyed can be forgotten too, and then gets no key either.
    CHECK_FALSE(keys.forget("customer-9"));
    CHECK_THROWS_AS(keys.add_key("customer-9", key_of(1, 1)), orchestrix::SubjectForgottenError);
    // Others are untouched.
    CHECK(keys.current_key("customer-2") == key_of(1, 30));
    CHECK_FALSE(keys.is_forgotten("customer-2"));
}

TEST_CASE("sqlite key store: the keys and the forgotten subjects survive reopening, and share a file with events") {
    test_support::TempDir dir;
    const auto path = dir.file("app.db");
    {
        orchestrix::SqliteEventStore<test_domain::AccountEvent> events(path);
        events.append("acc", {test_domain::AccountOpened{"acc", "Ada"}}, orchestrix::ExpectedVersion::no_stream());
        SqliteKeyStore keys(path);
        keys.add_key("customer-1", key_of(1, 10));
        keys.add_key("customer-1", key_of(2, 20));
        keys.add_key("customer-2", key_of(1, 30));
        keys.forget("customer-2");
    }
    SqliteKeyStore keys(path);
    CHECK(keys.current_key("customer-1") == key_of(2, 20));
    CHECK(keys.find_key("customer-1", 1) == key_of(1, 10));
    CHECK(keys.is_forgotten("customer-2"));
    CHECK_FALSE(keys.current_key("customer-2"));
    CHECK_THROWS_AS(keys.add_key("customer-2", key_of(1, 1)), orchestrix::SubjectForgottenError);
    orchestrix::SqliteEventStore<test_domain::AccountEvent> events(path);
    CHECK(events.read_stream("acc").size() == 1);
    CHECK(raw_value(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("sqlite key store: malformed subjects and version 0 are refused, and found nowhere") {
    test_support::TempDir dir;
    SqliteKeyStore keys(dir.file("keys.db"));
    const std::string nul("a\0b", 3);
    for (const std::string& bad :
         {std::string(), nul, std::string("\xff\xfe"), std::string(orchestrix::max_subject_length + 1, 's')}) {
        try {
            keys.add_key(bad, key_of(1, 1));
            FAIL("a malformed subject was keyed");
        } catch (const orchestrix::InvalidArgumentError& e) {
            CHECK(e.argument() == "subject");
        }
        CHECK_THROWS_AS(keys.forget(bad), orchestrix::InvalidArgumentError);
        CHECK_FALSE(keys.current_key(bad));
        CHECK_FALSE(keys.find_key(bad, 1));
        CHECK_FALSE(keys.is_forgotten(bad));
    }
    try {
        keys.add_key("customer-1", key_of(0, 1));
        FAIL("key version 0 was stored");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "key");
    }
    CHECK_FALSE(keys.current_key("customer-1"));
    // The longest subject is fine.
    const std::string longest(orchestrix::max_subject_length, 's');
    CHECK(keys.add_key(longest, key_of(1, 5)) == key_of(1, 5));
}

TEST_CASE("sqlite key store: a forgotten key's bytes are in the file before, and in no file after the checkpoint") {
    test_support::TempDir dir;
    const auto path = dir.file("keys.db");
    SqliteKeyStore keys(path);
    const SubjectKey kept = key_of(1, 3);
    const SubjectKey doomed = key_of(1, 101);
    const SubjectKey rotated = key_of(2, 57);
    keys.add_key("customer-kept", kept);
    keys.add_key("customer-gone", doomed);
    keys.add_key("customer-gone", rotated);
    keys.checkpoint();
    REQUIRE(files_holding(path, bytes_of(doomed)) == std::vector<std::string>{"db"});
    REQUIRE(files_holding(path, bytes_of(rotated)) == std::vector<std::string>{"db"});

    CHECK(keys.forget("customer-gone"));
    // Until the checkpoint, the file's page still holds them (the zeroed page is in the WAL).
    CHECK(files_holding(path, bytes_of(doomed)) == std::vector<std::string>{"db"});
    keys.checkpoint();
    CHECK(files_holding(path, bytes_of(doomed)).empty());
    CHECK(files_holding(path, bytes_of(rotated)).empty());
    CHECK(files_holding(path, bytes_of(kept)) == std::vector<std::string>{"db"});
    CHECK(std::filesystem::file_size(path + "-wal") == 0);
    CHECK(keys.current_key("customer-kept") == kept);

    // Compacting changes nothing of that.
    keys.compact();
    CHECK(files_holding(path, bytes_of(doomed)).empty());
    CHECK(keys.current_key("customer-kept") == kept);
}

TEST_CASE("sqlite key store: before the checkpoint, a forgotten key's bytes are still in the WAL") {
    test_support::TempDir dir;
    const auto path = dir.file("keys.db");
    SqliteKeyStore keys(path);
    const SubjectKey doomed = key_of(1, 77);
    keys.add_key("customer-gone", doomed);
    keys.forget("customer-gone");
    CHECK(files_holding(path, bytes_of(doomed)) == std::vector<std::string>{"wal"});
}
