#include <orchestrix/core/repository.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <string>
#include <variant>

using namespace test_domain;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Accounts = orchestrix::Repository<Account, Store>;

TEST_CASE("repository: find, load and save an aggregate") {
    Store store;
    Accounts accounts(store, "account-");
    CHECK(accounts.stream_id("7") == "account-7");
    CHECK_FALSE(accounts.find("7").has_value());
    try {
        (void)accounts.load("7");
        FAIL("load of an unknown aggregate succeeded");
    } catch (const orchestrix::StreamNotFoundError& e) {
        CHECK(e.stream() == "account-7");
    }

    Account account;
    account.execute(OpenAccount{"7", "ann"});
    account.execute(Deposit{10});
    const auto saved = accounts.save("7", account);
    CHECK(saved.stream_version == 2);
    CHECK(account.uncommitted_events().empty());
    CHECK(store.stream_version("account-7") == 2);

    Account loaded = accounts.load("7");
    CHECK(loaded == account);
    loaded.execute(Deposit{5});
    CHECK(accounts.save("7", loaded).stream_version == 3);
    CHECK(accounts.load("7").balance() == 15);

    // Saving with nothing uncommitted writes nothing.
    const auto nothing = accounts.save("7", loaded);
    CHECK_FALSE(nothing.written);
    CHECK(store.head_position() == 3);
}

TEST_CASE("repository: saving a stale aggregate is a conflict and keeps its events") {
    Store store;
    Accounts accounts(store);
    Account first;
    first.execute(OpenAccount{"1", "ann"});
    (void)accounts.save("1", first);

    Account a = accounts.load("1");
    Account b = accounts.load("1");
    a.execute(Deposit{1});
    b.execute(Deposit{2});
    (void)accounts.save("1", a);
    CHECK_THROWS_AS(accounts.save("1", b), orchestrix::ConcurrencyError);
    CHECK(b.uncommitted_events().size() == 1); // nothing was marked committed
    CHECK(accounts.load("1").balance() == 1);
}

namespace {
// A store that lets another writer in just before the first N appends, to force conflicts.
class InterferingStore {
public:
    using event_type = AccountEvent;
    explicit InterferingStore(int interferences) : left_(interferences) {}

    orchestrix::AppendResult append(std::string_view stream,
                                    std::span<const orchestrix::EventEnvelope<AccountEvent>> events,
                                    orchestrix::ExpectedVersion expected) {
        ++appends;
        if (left_ > 0) {
            --left_;
            (void)inner.append(stream, {MoneyDeposited{std::string(stream), 1000}}, orchestrix::ExpectedVersion::any());
        }
        return inner.append(stream, events, expected);
    }
    [[nodiscard]] std::vector<orchestrix::RecordedEvent<AccountEvent>>
    read_stream(std::string_view s, std::uint64_t from, std::uint64_t max) const {
        return inner.read_stream(s, from, max);
    }
    [[nodiscard]] std::vector<orchestrix::RecordedEvent<AccountEvent>> read_all(std::uint64_t from,
                                                                                std::uint64_t max) const {
        return inner.read_all(from, max);
    }
    [[nodiscard]] std::uint64_t stream_version(std::string_view s) const { return inner.stream_version(s); }

    Store inner;
    int appends = 0;

private:
    int left_;
};
static_assert(orchestrix::event_store<InterferingStore>);
static_assert(!orchestrix::visitable_event_store<InterferingStore>);
} // namespace

TEST_CASE("repository: execute retries on a version conflict only, a bounded number of times") {
    SECTION("two conflicts, then success on the third attempt") {
        InterferingStore store(2);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        const auto result = accounts.execute("1", Deposit{5}, {.max_attempts = 3});
        CHECK(result.attempts == 3);
        CHECK(result.append.written);
        CHECK(accounts.load("1").balance() == 2005);
    }
    SECTION("more conflicts than attempts: the last conflict is rethrown") {
        InterferingStore store(5);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        CHECK_THROWS_AS(accounts.execute("1", Deposit{5}, {.max_attempts = 2}), orchestrix::ConcurrencyError);
        CHECK(store.appends == 2);
    }
    SECTION("a refused command is not retried") {
        InterferingStore store(0);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        CHECK_THROWS_AS(accounts.execute("1", Withdraw{5}), InsufficientFunds);
        CHECK(store.appends == 0);
    }
    SECTION("a new aggregate is created by its first command") {
        Store store;
        Accounts accounts(store);
        const auto result = accounts.execute("9", OpenAccount{"9", "zoe"});
        CHECK(result.attempts == 1);
        CHECK(result.append.stream_version == 1);
        CHECK(accounts.load("9").owner() == "zoe");
    }
}

namespace {
struct Audited {
    static constexpr std::string_view type_name = "audit.logged";
    std::string what;
    bool operator==(const Audited&) const = default;
};
using AppEvent = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn, Audited>;
} // namespace

TEST_CASE("repository: an application-wide event variant stores a narrower aggregate") {
    orchestrix::InMemoryEventStore<AppEvent> store;
    orchestrix::Repository<Account, orchestrix::InMemoryEventStore<AppEvent>> accounts(store);
    (void)accounts.execute("1", OpenAccount{"1", "ann"});
    (void)accounts.execute("1", Deposit{4});
    CHECK(accounts.load("1").balance() == 4);
    CHECK(std::holds_alternative<MoneyDeposited>(store.read_stream("1")[1].event));

    // An event the aggregate does not know in its stream is a clear error, not a silent skip.
    (void)store.append("1", {Audited{"x"}}, orchestrix::ExpectedVersion::any());
    try {
        (void)accounts.load("1");
        FAIL("an unknown event was skipped");
    } catch (const orchestrix::HistoryError& e) {
        CHECK(std::string(e.what()).find("audit.logged") != std::string::npos);
    }
}
