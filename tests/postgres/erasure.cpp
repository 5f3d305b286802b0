// Physical erasure in PostgreSQL (docs/lifecycle.md): a deleted event's row is dead but its bytes stay in the
// table's pages (and a large payload's in the TOAST table's) until `compact()` rewrites the tables. These
// tests read the relation files under the test cluster's data directory byte for byte.

#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using Raw = test_support::RawConnection;

// Every file (all forks and segments) of `table` alone (`what` "heap"), of its TOAST table ("toast"), or of
// the indexes of both ("indexes"), under the cluster's data directory, concatenated.
std::string relation_bytes(Raw& raw, const std::string& table, const std::string& what) {
    const std::filesystem::path data = raw.exec("SHOW data_directory");
    const std::string paths = raw.exec(
        "SELECT coalesce(string_agg(pg_relation_filepath(r), E'\\n'), '') FROM ("
        "SELECT $1::regclass::oid AS r, 'heap' AS what UNION ALL "
        "SELECT reltoastrelid, 'toast' FROM pg_class WHERE oid = $1::regclass AND reltoastrelid <> 0 UNION ALL "
        "SELECT indexrelid, 'indexes' FROM pg_index WHERE indrelid = $1::regclass OR indrelid = "
        "(SELECT reltoastrelid FROM pg_class WHERE oid = $1::regclass)) AS rels WHERE what = $2",
        {table, what});
    std::string out;
    std::istringstream lines(paths);
    std::string relative;
    while (std::getline(lines, relative)) {
        const std::filesystem::path base = data / relative;
        const std::string node = base.filename().string();
        for (const auto& entry : std::filesystem::directory_iterator(base.parent_path())) {
            const std::string name = entry.path().filename().string();
            if (name != node && name.rfind(node + ".", 0) != 0 && name.rfind(node + "_", 0) != 0) continue;
            std::ifstream in(entry.path(), std::ios::binary);
            out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    }
    return out;
}

std::string all_relation_bytes(Raw& raw, const std::string& table) {
    return relation_bytes(raw, table, "heap") + relation_bytes(raw, table, "toast") +
           relation_bytes(raw, table, "indexes");
}

// Every file of the current database (its directory under base/), concatenated.
std::string database_bytes(Raw& raw) {
    const std::filesystem::path dir = std::filesystem::path(raw.exec("SHOW data_directory")) / "base" /
                                      raw.exec("SELECT oid FROM pg_database WHERE datname = current_database()");
    std::string out;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        std::ifstream in(entry.path(), std::ios::binary);
        out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return out;
}

// A marker no other test writes.
std::string marker(const std::string& what) {
    static std::mt19937_64 random{std::random_device{}()};
    return "ERASE-ME-" + what + "-" + std::to_string(random());
}

// Random letters that pglz cannot shrink by the quarter it asks for: the payload is stored out of line in the
// TOAST table, uncompressed, so a marker in it is in the files as written.
std::string incompressible(std::size_t size) {
    static std::mt19937_64 random{std::random_device{}()};
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string out(size, 'x');
    for (char& c : out) c = alphabet[random() % (sizeof alphabet - 1)];
    return out;
}

} // namespace

TEST_CASE("postgres erasure: a deleted event's bytes stay in the files until compact removes them") {
    // A database of its own: no session of another test holds back what VACUUM FULL may drop.
    const std::string url = test_support::fresh_postgres_database(true);
    Store store(url);
    Raw raw(url);
    // No autovacuum: what is in the files is what the store and this test did.
    raw.script("ALTER TABLE events SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)");

    const std::string small = marker("small");
    const std::string large = marker("large");
    const std::string live = marker("live");
    (void)store.append("kept", {AccountOpened{"kept", live}}, ExpectedVersion::no_stream());
    (void)store.append("person-1",
                       {AccountOpened{"person-1", small}, AccountOpened{"person-1", large + incompressible(8000)}},
                       ExpectedVersion::no_stream());
    (void)store.append("kept", {AccountOpened{"kept", "after"}}, ExpectedVersion::exact(1));
    raw.script("CHECKPOINT");
    {
        // Where each is: the small payload in the table's pages, the large one in its TOAST table's.
        REQUIRE(relation_bytes(raw, "events", "heap").find(small) != std::string::npos);
        REQUIRE(relation_bytes(raw, "events", "toast").find(large) != std::string::npos);
        REQUIRE(relation_bytes(raw, "events", "heap").find(large) == std::string::npos);
    }

    CHECK(store
              .delete_stream("person-1", ExpectedVersion::exact(2),
                             orchestrix::DeleteOptions{orchestrix::DeleteMode::hard})
              .events_removed == 2);
    raw.script("CHECKPOINT");
    {
        // Deleted for every read, not erased: without the maintenance the bytes are still in the files.
        CHECK(store.read_stream("person-1").empty());
        const std::string files = all_relation_bytes(raw, "events");
        CHECK(files.find(small) != std::string::npos);
        CHECK(files.find(large) != std::string::npos);
    }

    store.compact();
    raw.script("CHECKPOINT");
    const std::string files = all_relation_bytes(raw, "events");
    CHECK(files.find(small) == std::string::npos);
    CHECK(files.find(large) == std::string::npos);
    CHECK(files.find(live) != std::string::npos); // the rewrite kept what lives
    const std::string everything = database_bytes(raw);
    CHECK(everything.find(small) == std::string::npos);
    CHECK(everything.find(large) == std::string::npos);
    // The store goes on as before.
    CHECK(store.read_stream("kept").size() == 2);
    CHECK(store.append("kept", {AccountOpened{"kept", "later"}}, ExpectedVersion::exact(2)).first_position == 5);
}

TEST_CASE("postgres erasure: compact erases what truncation and retention removed") {
    const std::string url = test_support::fresh_postgres_database(true);
    Store store(url);
    Raw raw(url);
    raw.script("ALTER TABLE events SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)");
    const std::string old_small = marker("old");
    const std::string old_large = marker("oldlarge");
    const std::string retained = marker("retained");
    (void)store.append("acc", {AccountOpened{"acc", old_small}, AccountOpened{"acc", old_large + incompressible(6000)}},
                       ExpectedVersion::no_stream());
    (void)store.append("acc", {AccountOpened{"acc", retained}}, ExpectedVersion::exact(2));
    (void)store.append("other", {AccountOpened{"other", old_small + "-other"}}, ExpectedVersion::no_stream());
    CHECK(store.truncate_stream("acc", 2).events_removed == 1);
    const std::vector<orchestrix::RetentionRule> rules{orchestrix::RetentionRule{"acc", 1, std::nullopt}};
    CHECK(store.apply_retention(rules, std::chrono::system_clock::now()).events_removed == 1);
    raw.script("CHECKPOINT");
    REQUIRE(all_relation_bytes(raw, "events").find(old_large) != std::string::npos);
    store.compact();
    raw.script("CHECKPOINT");
    const std::string files = all_relation_bytes(raw, "events");
    // The removed ones are gone; "other"'s payload holds the small marker with a suffix, and lives.
    CHECK(files.find(old_large) == std::string::npos);
    CHECK(files.find(old_small + "\"") == std::string::npos);
    CHECK(files.find(old_small + "-other") != std::string::npos);
    CHECK(files.find(retained) != std::string::npos);
}

TEST_CASE("postgres erasure: compact keeps what a transaction open across the removal may still see") {
    const std::string url = test_support::fresh_postgres_database(true);
    Store store(url);
    Raw raw(url);
    raw.script("ALTER TABLE events SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)");
    const std::string secret = marker("held");
    (void)store.append("person-2", {AccountOpened{"person-2", secret}}, ExpectedVersion::no_stream());
    // A snapshot taken before the removal (touching no table, so it holds no lock compact would wait for).
    Raw reader(url);
    reader.script("BEGIN ISOLATION LEVEL REPEATABLE READ");
    (void)reader.exec("SELECT 1");
    CHECK(store.delete_stream("person-2").events_removed == 1);
    store.compact();
    raw.script("CHECKPOINT");
    CHECK(all_relation_bytes(raw, "events").find(secret) != std::string::npos);
    reader.script("COMMIT");
    store.compact();
    raw.script("CHECKPOINT");
    CHECK(all_relation_bytes(raw, "events").find(secret) == std::string::npos);
}

TEST_CASE("postgres erasure: a plain VACUUM may leave a removed row's bytes in its page, compact does not") {
    const std::string url = test_support::fresh_postgres_database(true);
    Store store(url);
    Raw raw(url);
    raw.script("ALTER TABLE events SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)");
    for (int i = 0; i < 20; ++i) {
        (void)store.append("kept-" + std::to_string(i), {AccountOpened{"kept", "live"}}, ExpectedVersion::no_stream());
    }
    // The last row written on its page: pruning moves no live row over it.
    const std::string secret = marker("vacuumed");
    (void)store.append("person-3", {AccountOpened{"person-3", secret}}, ExpectedVersion::no_stream());
    CHECK(store.delete_stream("person-3").events_removed == 1);
    raw.script("VACUUM events");
    raw.script("CHECKPOINT");
    CHECK(relation_bytes(raw, "events", "heap").find(secret) != std::string::npos);
    store.compact();
    raw.script("CHECKPOINT");
    CHECK(all_relation_bytes(raw, "events").find(secret) == std::string::npos);
}
