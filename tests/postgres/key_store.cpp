// Subject keys in PostgreSQL (docs/lifecycle.md): the key_store semantics across connections, racing writers,
// and a forgotten key's bytes gone from the key table's files once compacted.

#include <orchestrix/postgres/key_store.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/postgres_raw.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using orchestrix::PostgresKeyStore;
using orchestrix::SubjectKey;
using Raw = test_support::RawConnection;

SubjectKey random_key(std::uint32_t version) {
    static std::mt19937_64 random{std::random_device{}()};
    SubjectKey key;
    key.version = version;
    for (auto& b : key.bytes) b = static_cast<std::uint8_t>(random());
    return key;
}

// Every file of `table`, of its TOAST table and of their indexes (all forks and segments), under the
// cluster's data directory, concatenated.
std::string relation_bytes(Raw& raw, const std::string& table) {
    const std::filesystem::path data = raw.exec("SHOW data_directory");
    const std::string paths =
        raw.exec("SELECT string_agg(pg_relation_filepath(r), E'\\n') FROM ("
                 "SELECT $1::regclass::oid AS r UNION ALL "
                 "SELECT reltoastrelid FROM pg_class WHERE oid = $1::regclass AND reltoastrelid <> 0 UNION ALL "
                 "SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass OR indrelid = "
                 "(SELECT reltoastrelid FROM pg_class WHERE oid = $1::regclass)) AS rels",
                 {table});
    std::string out;
    std::istringstream lines(paths);
    std::string relative;
    while (std::getline(lines, relative)) {
        const std::filesystem::path base = data / relative;
        for (const auto& entry : std::filesystem::directory_iterator(base.parent_path())) {
            const std::string name = entry.path().filename().string();
            const std::string node = base.filename().string();
            if (name != node && name.rfind(node + ".", 0) != 0 && name.rfind(node + "_", 0) != 0) continue;
            std::ifstream in(entry.path(), std::ios::binary);
            out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    }
    return out;
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

bool holds(const std::string& bytes, const SubjectKey& key) {
    const std::string needle(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size());
    return bytes.find(needle) != std::string::npos;
}

} // namespace

static_assert(orchestrix::key_store<PostgresKeyStore>);

TEST_CASE("postgres key store: rotation keeps older versions, the first version stored wins") {
    const std::string url = test_support::fresh_postgres_database();
    PostgresKeyStore keys(url);
    CHECK_FALSE(keys.current_key("customer-1").has_value());
    const SubjectKey v1 = random_key(1);
    CHECK(keys.add_key("customer-1", v1) == v1);
    CHECK(keys.current_key("customer-1") == v1);
    const SubjectKey v2 = random_key(2);
    CHECK(keys.add_key("customer-1", v2) == v2);
    CHECK(keys.current_key("customer-1") == v2);
    CHECK(keys.find_key("customer-1", 1) == v1);
    CHECK(keys.find_key("customer-1", 2) == v2);
    CHECK_FALSE(keys.find_key("customer-1", 3).has_value());
    CHECK_FALSE(keys.find_key("customer-1", 0).has_value());
    // Another key for a stored version: the stored one comes back, unchanged.
    CHECK(keys.add_key("customer-1", random_key(1)) == v1);
    CHECK(keys.find_key("customer-1", 1) == v1);
    // Other store objects (other connections) see the same keys.
    PostgresKeyStore other(url, orchestrix::PostgresOptions{1, false});
    CHECK(other.current_key("customer-1") == v2);
    CHECK_FALSE(other.current_key("customer-2").has_value());
    // Unicode subjects are kept as they are.
    const SubjectKey accented = random_key(1);
    CHECK(keys.add_key("kund\xc3\xa9-7", accented) == accented);
    CHECK(other.find_key("kund\xc3\xa9-7", 1) == accented);
}

TEST_CASE("postgres key store: two connections adding version 1 at once store one key and both return it") {
    const std::string url = test_support::fresh_postgres_database();
    PostgresKeyStore a(url, orchestrix::PostgresOptions{1, true});
    PostgresKeyStore b(url, orchestrix::PostgresOptions{1, false});
    for (int round = 0; round < 30; ++round) {
        const std::string subject = "racer-" + std::to_string(round);
        const SubjectKey ka = random_key(1);
        const SubjectKey kb = random_key(1);
        std::atomic<int> ready{0};
        std::optional<SubjectKey> got_a, got_b;
        std::thread ta([&] {
            ++ready;
            while (ready < 2) {
            }
            got_a = a.add_key(subject, ka);
        });
        std::thread tb([&] {
            ++ready;
            while (ready < 2) {
            }
            got_b = b.add_key(subject, kb);
        });
        ta.join();
        tb.join();
        REQUIRE(got_a.has_value());
        REQUIRE(got_b.has_value());
        CHECK(*got_a == *got_b);
        CHECK((*got_a == ka || *got_a == kb));
        CHECK(a.current_key(subject) == got_a);
    }
    Raw raw(url);
    CHECK(raw.exec("SELECT count(*) FROM orchestrix_subject_keys") == "30");
}

TEST_CASE("postgres key store: forget destroys every version and refuses new keys, for every connection") {
    const std::string url = test_support::fresh_postgres_database();
    PostgresKeyStore keys(url);
    (void)keys.add_key("customer-1", random_key(1));
    (void)keys.add_key("customer-1", random_key(2));
    (void)keys.add_key("customer-2", random_key(1));
    CHECK_FALSE(keys.is_forgotten("customer-1"));
    CHECK(keys.forget("customer-1"));
    CHECK(keys.is_forgotten("customer-1"));
    CHECK_FALSE(keys.current_key("customer-1").has_value());
    CHECK_FALSE(keys.find_key("customer-1", 1).has_value());
    CHECK_FALSE(keys.find_key("customer-1", 2).has_value());
    CHECK_FALSE(keys.forget("customer-1")); // idempotent: nothing left to destroy
    PostgresKeyStore other(url, orchestrix::PostgresOptions{1, false});
    CHECK(other.is_forgotten("customer-1"));
    try {
        (void)other.add_key("customer-1", random_key(3));
        FAIL("a forgotten subject got a key");
    } catch (const orchestrix::SubjectForgottenError& e) {
        CHECK(e.subject() == "customer-1");
    }
    CHECK_FALSE(keys.current_key("customer-1").has_value());
    CHECK(keys.current_key("customer-2").has_value()); // no other subject touched
    // A subject never keyed can be forgotten too (nothing destroyed), and then gets no key.
    CHECK_FALSE(keys.forget("customer-3"));
    CHECK_THROWS_AS(keys.add_key("customer-3", random_key(1)), orchestrix::SubjectForgottenError);
    Raw raw(url);
    CHECK(raw.exec("SELECT count(*) FROM orchestrix_subject_keys") == "1");
    CHECK(raw.exec("SELECT count(*) FROM orchestrix_forgotten_subjects") == "2");
}

TEST_CASE("postgres key store: a forget racing add_key from another connection leaves no key behind") {
    const std::string url = test_support::fresh_postgres_database();
    PostgresKeyStore writer(url, orchestrix::PostgresOptions{1, true});
    PostgresKeyStore forgetter(url, orchestrix::PostgresOptions{1, false});
    for (int round = 0; round < 20; ++round) {
        const std::string subject = "contested-" + std::to_string(round);
        std::atomic<bool> go{false};
        std::thread tw([&] {
            while (!go) {
            }
            for (std::uint32_t v = 1; v <= 5; ++v) {
                try {
                    (void)writer.add_key(subject, random_key(v));
                } catch (const orchestrix::SubjectForgottenError&) {
                    return;
                }
            }
        });
        std::thread tf([&] {
            while (!go) {
            }
            (void)forgetter.forget(subject);
        });
        go = true;
        tw.join();
        tf.join();
        CHECK(writer.is_forgotten(subject));
        CHECK_FALSE(writer.current_key(subject).has_value());
    }
    Raw raw(url);
    CHECK(raw.exec("SELECT count(*) FROM orchestrix_subject_keys") == "0");
}

TEST_CASE("postgres key store: malformed subjects and versions are refused with a typed error") {
    const std::string url = test_support::fresh_postgres_database();
    PostgresKeyStore keys(url);
    const std::vector<std::string> malformed{"", std::string("a\0b", 3), "\xff\xfe", std::string(257, 's')};
    for (const std::string& subject : malformed) {
        try {
            (void)keys.add_key(subject, random_key(1));
            FAIL("a malformed subject got a key");
        } catch (const orchestrix::InvalidArgumentError& e) {
            CHECK(e.argument() == "subject");
        }
        CHECK_THROWS_AS(keys.forget(subject), orchestrix::InvalidArgumentError);
        CHECK_FALSE(keys.current_key(subject).has_value());
        CHECK_FALSE(keys.find_key(subject, 1).has_value());
        CHECK_FALSE(keys.is_forgotten(subject));
    }
    try {
        (void)keys.add_key("customer-1", random_key(0));
        FAIL("key version 0 was stored");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "key");
    }
    CHECK_THROWS_AS(keys.add_key("customer-1", random_key(2147483648U)), orchestrix::InvalidArgumentError);
    CHECK(keys.add_key(std::string(256, 's'), random_key(1)).version == 1);
    Raw raw(url);
    CHECK(raw.exec("SELECT count(*) FROM orchestrix_subject_keys") == "1");
}

TEST_CASE("postgres key store: a forgotten key's bytes are gone from the key table's files after compact") {
    // A database of its own: no session of another test holds back what VACUUM FULL may drop.
    const std::string url = test_support::fresh_postgres_database(true);
    PostgresKeyStore keys(url);
    Raw raw(url);
    raw.script("ALTER TABLE orchestrix_subject_keys SET (autovacuum_enabled = false)");
    const SubjectKey doomed1 = random_key(1);
    const SubjectKey doomed2 = random_key(2);
    const SubjectKey kept = random_key(1);
    (void)keys.add_key("customer-doomed", doomed1);
    (void)keys.add_key("customer-doomed", doomed2);
    (void)keys.add_key("customer-kept", kept);
    // Statistics hold no key bytes (the column's statistics target is 0).
    raw.script("ANALYZE orchestrix_subject_keys; CHECKPOINT");
    CHECK(raw.exec("SELECT attstattarget FROM pg_attribute WHERE attrelid = 'orchestrix_subject_keys'::regclass "
                   "AND attname = 'key'") == "0");
    {
        const std::string files = relation_bytes(raw, "orchestrix_subject_keys");
        REQUIRE(holds(files, doomed1));
        REQUIRE(holds(files, doomed2));
        REQUIRE(holds(files, kept));
    }
    CHECK(keys.forget("customer-doomed"));
    raw.script("CHECKPOINT");
    {
        // Deleted, not yet erased: the rows are dead but their bytes are still in the pages.
        const std::string files = relation_bytes(raw, "orchestrix_subject_keys");
        CHECK(holds(files, doomed1));
        CHECK(holds(files, doomed2));
    }
    // compact() keeps rows that a transaction open when it starts may still see (documented): wait until no
    // other session of this database holds a snapshot (an autovacuum worker analysing a catalog can).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (raw.exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL") != "0") {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    keys.compact();
    raw.script("CHECKPOINT");
    const std::string files = relation_bytes(raw, "orchestrix_subject_keys");
    CHECK_FALSE(holds(files, doomed1));
    CHECK_FALSE(holds(files, doomed2));
    CHECK(holds(files, kept));
    const std::string everything = database_bytes(raw);
    CHECK_FALSE(holds(everything, doomed1));
    CHECK_FALSE(holds(everything, doomed2));
    CHECK(keys.current_key("customer-kept") == kept);
}
