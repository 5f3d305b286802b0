#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/crypto/codec.hpp>
#include <orchestrix/memory/snapshot_store.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>
#include <orchestrix/sqlite/key_store.hpp>

#include "support/catch.hpp"
#include "support/crypto_events.hpp"
#include "support/temp_dir.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace crypto_domain;
using orchestrix::EventEnvelope;
using orchestrix::ExpectedVersion;
using orchestrix::InMemoryKeyStore;
using orchestrix::SqliteTransaction;
using Codec = orchestrix::ShreddingCodec<CryptoEvent, InMemoryKeyStore>;
using Store = orchestrix::SqliteEventStore<CryptoEvent, Codec>;
using Recorded = orchestrix::RecordedEvent<CryptoEvent>;
using View = orchestrix::RecordedEventView<CryptoEvent>;
using Checkpoints = orchestrix::SqliteCheckpointStore;

using SqliteCodec = orchestrix::ShreddingCodec<CryptoEvent, orchestrix::SqliteKeyStore>;
using SqliteKeyedStore = orchestrix::SqliteEventStore<CryptoEvent, SqliteCodec>;

static_assert(orchestrix::event_codec<Codec, CryptoEvent>);
static_assert(orchestrix::event_codec<SqliteCodec, CryptoEvent>);
static_assert(orchestrix::durable::raw_append_codec<Codec>);
static_assert(!orchestrix::event_codec<InMemoryKeyStore, CryptoEvent>);

const orchestrix::SqliteOptions quick{orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(5000)};

// Every byte of the database: its file and its write-ahead log.
std::string database_bytes(const std::string& path) {
    std::string all;
    for (const std::string& file : {path, path + "-wal"}) {
        if (!std::filesystem::exists(file)) continue;
        std::ifstream in(file, std::ios::binary);
        all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return all;
}

// Runs `sql` with one text parameter on the database at `path`, outside the store.
void execute(const std::string& path, const std::string& sql, const std::string& text) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    sqlite3_stmt* statement = nullptr;
    const bool ok =
        sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_bind_text(statement, 1, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_DONE;
    sqlite3_finalize(statement);
    sqlite3_close(db);
    if (!ok) throw std::runtime_error("cannot run " + sql);
}

void append_customers(Store& store) {
    store.append("account-1",
                 std::vector<EventEnvelope<CryptoEvent>>{
                     EventEnvelope<CryptoEvent>(AccountOpened{"acc-1", {"cust-1", "Ada Lovelace"}}),
                     EventEnvelope<CryptoEvent>(MoneyDeposited{"acc-1", 100})},
                 ExpectedVersion::no_stream());
    store.append("account-2",
                 std::vector<EventEnvelope<CryptoEvent>>{
                     EventEnvelope<CryptoEvent>(AccountOpened{"acc-2", {"cust-2", "Grace Hopper"}})},
                 ExpectedVersion::no_stream());
    store.append("customer-1",
                 std::vector<EventEnvelope<CryptoEvent>>{EventEnvelope<CryptoEvent>(CustomerRegistered{
                     "c-1", {"cust-1", CustomerDetails{"Ada Lovelace", "ada@analytical.example", 1815, {}}}})},
                 ExpectedVersion::no_stream());
}

const AccountOpened& opened(const Recorded& e) { return std::get<AccountOpened>(e.event); }

// An aggregate whose state holds personal data: its snapshots cannot be taken.
struct OpenAccount {
    std::string account_id;
    std::string customer;
    std::string holder;
};

class Account : public orchestrix::AggregateRoot<Account, CryptoEvent> {
public:
    static constexpr std::string_view aggregate_type_name = "account";

    void handle(const OpenAccount& c) { raise(AccountOpened{c.account_id, {c.customer, c.holder}}); }

    void apply(const AccountOpened& e) { holder_ = e.holder_name; }
    void apply(const MoneyDeposited& e) { balance_ += e.amount; }
    template <class Other>
    void apply(const Other&) {}

    [[nodiscard]] const orchestrix::Personal<std::string>& holder() const { return holder_; }

    NLOHMANN_DEFINE_TYPE_INTRUSIVE(Account, holder_, balance_)

private:
    orchestrix::Personal<std::string> holder_;
    std::int64_t balance_ = 0;
};

} // namespace

TEST_CASE("crypto over sqlite: after forget, read_stream, read_all and visit give erased values") {
    test_support::TempDir dir;
    InMemoryKeyStore keys;
    Store store(dir.file("events.db"), quick, Codec(keys));
    append_customers(store);
    CHECK(opened(store.read_stream("account-1").at(0)).holder_name.value() == "Ada Lovelace");

    CHECK(store.codec().forget("cust-1"));

    const auto stream = store.read_stream("account-1");
    REQUIRE(stream.size() == 2);
    CHECK(opened(stream[0]).account_id == "acc-1");
    CHECK(opened(stream[0]).holder_name == orchestrix::Personal<std::string>::erased("cust-1"));
    CHECK(std::get<MoneyDeposited>(stream[1].event).amount == 100);

    const auto all = store.read_all();
    REQUIRE(all.size() == 4);
    CHECK(opened(all[0]).holder_name.is_erased());
    CHECK(opened(all[2]).holder_name.value() == "Grace Hopper");
    CHECK(std::get<CustomerRegistered>(all[3].event).details.is_erased());

    std::vector<bool> erased;
    store.visit_all(1, [&](const View& e) {
        if (const auto* a = std::get_if<AccountOpened>(&e.event())) erased.push_back(a->holder_name.is_erased());
        if (const auto* c = std::get_if<CustomerRegistered>(&e.event())) erased.push_back(c->details.is_erased());
    });
    CHECK(erased == std::vector<bool>{true, false, true});
    std::uint64_t visited = 0;
    store.visit_stream("customer-1", 1, [&](const View& e) {
        CHECK(std::get<CustomerRegistered>(e.event()).details.is_erased());
        ++visited;
    });
    CHECK(visited == 1);
}

TEST_CASE("crypto over sqlite: a forgotten subject refuses appends and the stream is unchanged") {
    test_support::TempDir dir;
    InMemoryKeyStore keys;
    Store store(dir.file("events.db"), quick, Codec(keys));
    append_customers(store);
    store.codec().forget("cust-1");

    CHECK_THROWS_AS(store.append("account-1",
                                 std::vector<EventEnvelope<CryptoEvent>>{EventEnvelope<CryptoEvent>(
                                     TransferAgreed{"t-1", 5, {"cust-2", "Grace"}, {"cust-1", "Ada"}, std::nullopt})},
                                 ExpectedVersion::exact(2)),
                    orchestrix::SubjectForgottenError);
    CHECK(store.stream_version("account-1") == 2);
    CHECK(store.read_all().size() == 4);
}

TEST_CASE("crypto over sqlite: a retried append with personal data is recognised as a retry") {
    test_support::TempDir dir;
    InMemoryKeyStore keys;
    Store store(dir.file("events.db"), quick, Codec(keys));
    const std::vector<EventEnvelope<CryptoEvent>> batch{
        EventEnvelope<CryptoEvent>(AccountOpened{"acc-1", {"cust-1", "Ada Lovelace"}}),
        EventEnvelope<CryptoEvent>(TransferAgreed{"t-1", 5, {"cust-1", "Ada"}, {"cust-2", "Grace"}, std::nullopt})};

    const auto first = store.append("account-1", batch, ExpectedVersion::no_stream());
    // The same batch again (the first reply was lost), from a codec that has no key cached.
    Store again(dir.file("events.db"), quick, Codec(keys));
    const auto retried = again.append("account-1", batch, ExpectedVersion::no_stream());

    CHECK(first.written);
    CHECK_FALSE(retried.written);
    CHECK(retried.stream_version == first.stream_version);
    CHECK(retried.first_position == first.first_position);
    CHECK(retried.last_position == first.last_position);
    CHECK(store.read_all().size() == 2);
}

TEST_CASE("crypto over sqlite: an altered ciphertext in the database is a decode error naming the path") {
    test_support::TempDir dir;
    InMemoryKeyStore keys;
    const std::string path = dir.file("events.db");
    Store store(path, quick, Codec(keys));
    append_customers(store);
    nlohmann::json payload = nlohmann::json::parse(store.read_raw(1)->payload);
    std::string data = payload["holder_name"]["$personal"]["data"];
    data[0] = data[0] == 'A' ? 'B' : 'A';
    payload["holder_name"]["$personal"]["data"] = data;
    execute(path, "UPDATE events SET payload = ?1 WHERE position = 1", payload.dump());

    try {
        (void)store.read_stream("account-1");
        FAIL("an altered ciphertext was read");
    } catch (const orchestrix::StoredEventDecodeError& e) {
        CHECK(e.position() == 1);
        CHECK(e.event_type() == "account.opened");
        CHECK(e.json_path() == "/payload/holder_name");
    }
    CHECK(opened(store.read_stream("account-2").at(0)).holder_name.value() == "Grace Hopper");
}

TEST_CASE("crypto over sqlite: the plaintext never reaches the database file") {
    test_support::TempDir dir;
    InMemoryKeyStore keys;
    const std::string path = dir.file("events.db");
    {
        Store store(path, quick, Codec(keys));
        append_customers(store);
        const std::string bytes = database_bytes(path);
        CHECK(bytes.find("acc-1") != std::string::npos);  // the plain fields are there (the search works)
        CHECK(bytes.find("cust-1") != std::string::npos); // and the subject ids
        CHECK(bytes.find("Ada Lovelace") == std::string::npos);
        CHECK(bytes.find("Grace Hopper") == std::string::npos);
        CHECK(bytes.find("analytical") == std::string::npos);
    }
    const std::string closed = database_bytes(path);
    CHECK(closed.find("acc-1") != std::string::npos);
    CHECK(closed.find("Ada Lovelace") == std::string::npos);
    CHECK(closed.find("analytical") == std::string::npos);
}

TEST_CASE("crypto over sqlite: a projection rebuilt after forget writes no personal data") {
    test_support::TempDir dir;
    InMemoryKeyStore keys;
    Store store(dir.file("events.db"), quick, Codec(keys));
    append_customers(store);
    Checkpoints model(dir.file("model.db"), quick);
    model.transact(
        [](SqliteTransaction& tx) { tx.exec("CREATE TABLE holders (account TEXT NOT NULL, holder TEXT NOT NULL)"); });
    const auto project = [](SqliteTransaction& tx, const Recorded& e) {
        if (const auto* a = std::get_if<AccountOpened>(&e.event)) {
            tx.run("INSERT INTO holders (account, holder) VALUES (?1, ?2)", a->account_id,
                   a->holder_name.value_or("[erased]"));
        }
    };
    const auto holder = [&](const std::string& account) {
        return model.read([&](SqliteTransaction& tx) {
            return tx.query_text("SELECT holder FROM holders WHERE account = ?1", account).value_or("");
        });
    };
    orchestrix::Projection<Store, Checkpoints> holders("holders", store, model, project);
    holders.run_until_caught_up();
    CHECK(holder("acc-1") == "Ada Lovelace");

    store.codec().forget("cust-1");
    holders.rebuild([](SqliteTransaction& tx) { tx.exec("DELETE FROM holders"); });
    holders.run_until_caught_up();

    CHECK(holder("acc-1") == "[erased]");
    CHECK(holder("acc-2") == "Grace Hopper");
    CHECK(model.read([](SqliteTransaction& tx) {
        return tx.query_int64("SELECT count(*) FROM holders WHERE holder LIKE '%Ada%'").value_or(-1);
    }) == 0);

    // A read model built only after forget never holds the data, not even in its free pages.
    const std::string fresh_path = dir.file("fresh.db");
    {
        Checkpoints fresh(fresh_path, quick);
        fresh.transact([](SqliteTransaction& tx) {
            tx.exec("CREATE TABLE holders (account TEXT NOT NULL, holder TEXT NOT NULL)");
        });
        orchestrix::Projection<Store, Checkpoints> rebuilt("holders", store, fresh, project);
        rebuilt.run_until_caught_up();
        CHECK(fresh.read([](SqliteTransaction& tx) {
            return tx.query_int64("SELECT count(*) FROM holders").value_or(-1);
        }) == 2);
    }
    const std::string bytes = database_bytes(fresh_path);
    CHECK(bytes.find("Grace Hopper") != std::string::npos);
    CHECK(bytes.find("Ada Lovelace") == std::string::npos);
}

TEST_CASE("crypto over sqlite: an aggregate holding personal data is never snapshotted, and loads erased") {
    test_support::TempDir dir;
    InMemoryKeyStore keys;
    Store store(dir.file("events.db"), quick, Codec(keys));
    orchestrix::InMemorySnapshotStore snapshots;
    std::vector<orchestrix::SnapshotIssue> issues;
    orchestrix::SnapshotSettings<Account> settings;
    settings.policy = orchestrix::snapshot_every(1);
    settings.state = orchestrix::json_state_codec<Account>();
    settings.on_issue = [&](const orchestrix::SnapshotIssue& issue) { issues.push_back(issue); };
    orchestrix::Repository accounts(store, snapshots, settings, "account-");

    (void)accounts.execute("1", OpenAccount{"acc-1", "cust-1", "Ada Lovelace"});

    CHECK(store.stream_version("account-1") == 1); // the events were saved
    CHECK_FALSE(snapshots.latest("account-1"));    // the snapshot was not
    REQUIRE(issues.size() == 1);
    CHECK(issues[0].reason == orchestrix::SnapshotIssue::Reason::save_failed);
    CHECK(issues[0].message.find("ShreddingCodec") != std::string::npos);
    CHECK(accounts.load("1").holder().value() == "Ada Lovelace");

    store.codec().forget("cust-1");
    const Account loaded = accounts.load("1");
    CHECK(loaded.version() == 1);
    CHECK(loaded.holder().is_erased());
}

TEST_CASE("crypto over sqlite with SqliteKeyStore: keys survive a restart, and a forget reaches every process") {
    test_support::TempDir dir;
    const std::string events = dir.file("events.db");
    const std::string key_file = dir.file("keys.db");
    {
        orchestrix::SqliteKeyStore keys(key_file, quick);
        SqliteKeyedStore store(events, quick, SqliteCodec(keys));
        store.append("account-1",
                     std::vector<EventEnvelope<CryptoEvent>>{
                         EventEnvelope<CryptoEvent>(AccountOpened{"acc-1", {"cust-1", "Ada Lovelace"}}),
                         EventEnvelope<CryptoEvent>(AccountOpened{"acc-2", {"cust-2", "Grace Hopper"}})},
                     ExpectedVersion::no_stream());
    }

    // Two processes: each its own key store object and codec on the same files; the second does not cache.
    orchestrix::SqliteKeyStore keys_a(key_file, quick);
    orchestrix::SqliteKeyStore keys_b(key_file, quick);
    SqliteKeyedStore a(events, quick, SqliteCodec(keys_a));
    SqliteKeyedStore b(events, quick,
                       SqliteCodec(keys_b, orchestrix::JsonCodec<CryptoEvent>{},
                                   orchestrix::ShreddingOptions{std::chrono::milliseconds(0), 0}));
    CHECK(opened(a.read_stream("account-1").at(0)).holder_name.value() == "Ada Lovelace");
    CHECK(opened(b.read_stream("account-1").at(0)).holder_name.value() == "Ada Lovelace");

    CHECK(a.codec().forget("cust-1"));

    CHECK(opened(a.read_stream("account-1").at(0)).holder_name.is_erased());
    CHECK(opened(b.read_stream("account-1").at(0)).holder_name.is_erased());
    CHECK(opened(b.read_stream("account-1").at(1)).holder_name.value() == "Grace Hopper");
    CHECK_THROWS_AS(b.append("account-1",
                             std::vector<EventEnvelope<CryptoEvent>>{
                                 EventEnvelope<CryptoEvent>(AccountOpened{"acc-3", {"cust-1", "Ada"}})},
                             ExpectedVersion::exact(2)),
                    orchestrix::SubjectForgottenError);
    CHECK(keys_b.is_forgotten("cust-1"));
    CHECK_FALSE(keys_b.current_key("cust-1"));

    // Rotation through one process is read by the other.
    CHECK(b.codec().rotate("cust-2") == 2);
    a.append("account-1",
             std::vector<EventEnvelope<CryptoEvent>>{
                 EventEnvelope<CryptoEvent>(AccountOpened{"acc-4", {"cust-2", "Grace B. Hopper"}})},
             ExpectedVersion::exact(2));
    const auto stream = b.read_stream("account-1");
    REQUIRE(stream.size() == 3);
    CHECK(opened(stream[1]).holder_name.value() == "Grace Hopper");
    CHECK(opened(stream[2]).holder_name.value() == "Grace B. Hopper");
    CHECK(nlohmann::json::parse(b.read_raw(stream[2].position)->payload)["holder_name"]["$personal"]["key"] == 2);

    const std::string bytes = database_bytes(events) + database_bytes(key_file);
    CHECK(bytes.find("Lovelace") == std::string::npos);
    CHECK(bytes.find("Hopper") == std::string::npos);
}
