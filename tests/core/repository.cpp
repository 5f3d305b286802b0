#include <orchestrix/core/repository.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/env.hpp"
#include "support/retry_contention.hpp"
#include "support/test_events.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

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

// Retries: bounded exponential backoff with full jitter (RetryPolicy).

using std::chrono::microseconds;

TEST_CASE("retry policy: the bound of each wait doubles from initial_delay up to max_delay") {
    const orchestrix::RetryPolicy defaults;
    CHECK(defaults.max_attempts == 20);
    CHECK(defaults.initial_delay == std::chrono::milliseconds(5));
    CHECK(defaults.max_delay == std::chrono::milliseconds(500));
    CHECK(defaults.delay_bound(7) == std::chrono::milliseconds(320));
    CHECK(defaults.delay_bound(8) == std::chrono::milliseconds(500));
    CHECK_FALSE(defaults.sleep);

    const orchestrix::RetryPolicy policy{.initial_delay = microseconds(300), .max_delay = microseconds(5000)};
    CHECK(policy.delay_bound(0) == microseconds(0));
    CHECK(policy.delay_bound(1) == microseconds(300));
    CHECK(policy.delay_bound(2) == microseconds(600));
    CHECK(policy.delay_bound(3) == microseconds(1200));
    CHECK(policy.delay_bound(4) == microseconds(2400));
    CHECK(policy.delay_bound(5) == microseconds(4800));
    CHECK(policy.delay_bound(6) == microseconds(5000));
    for (std::uint32_t failed = 1; failed < 200; ++failed) {
        INFO("after " << failed << " failed attempts");
        CHECK(policy.delay_bound(failed) >= policy.delay_bound(failed - 1));
        CHECK(policy.delay_bound(failed) <= policy.max_delay);
    }
    CHECK(policy.delay_bound(std::numeric_limits<std::uint32_t>::max()) == microseconds(5000));

    // Huge delays saturate at max_delay instead of overflowing; zero or negative ones mean no wait.
    const orchestrix::RetryPolicy huge{.initial_delay = microseconds(std::numeric_limits<std::int64_t>::max() / 2),
                                       .max_delay = microseconds::max()};
    CHECK(huge.delay_bound(2) == microseconds(std::numeric_limits<std::int64_t>::max() / 2 * 2));
    CHECK(huge.delay_bound(3) == microseconds::max());
    CHECK(huge.delay_bound(64) == microseconds::max());
    const orchestrix::RetryPolicy none{.initial_delay = microseconds(0)};
    CHECK(none.delay_bound(5) == microseconds(0));
    CHECK(none.delay(5) == microseconds(0));
    const orchestrix::RetryPolicy negative{.initial_delay = microseconds(10), .max_delay = microseconds(-1)};
    CHECK(negative.delay_bound(1) == microseconds(0));
    // A cap below the first bound caps that one too.
    const orchestrix::RetryPolicy capped{.initial_delay = microseconds(900), .max_delay = microseconds(400)};
    CHECK(capped.delay_bound(1) == microseconds(400));
}

TEST_CASE("retry policy: each wait is uniformly random between 0 and its bound") {
    const orchestrix::RetryPolicy policy{.initial_delay = microseconds(1000), .max_delay = microseconds(8000)};
    // Over the random word: 0 and the bound are both reachable, nothing beyond.
    CHECK(policy.delay(3, 0) == microseconds(0));
    CHECK(policy.delay(3, 4000) == microseconds(4000));
    CHECK(policy.delay(3, 4001) == microseconds(0));
    CHECK(policy.delay(3, std::numeric_limits<std::uint64_t>::max()) <= microseconds(4000));
    CHECK(policy.delay(0, 12345) == microseconds(0));

    // Drawn from the thread's generator: within the bound, spread over all of it (mean near the middle).
    for (std::uint32_t failed = 1; failed <= 5; ++failed) {
        const auto bound = policy.delay_bound(failed);
        constexpr int draws = 4000;
        microseconds lowest = microseconds::max();
        microseconds highest = microseconds::min();
        double sum = 0;
        for (int i = 0; i < draws; ++i) {
            const auto d = policy.delay(failed);
            lowest = std::min(lowest, d);
            highest = std::max(highest, d);
            sum += static_cast<double>(d.count());
        }
        INFO("after " << failed << " failed attempts, bound " << bound.count() << " us");
        CHECK(lowest >= microseconds(0));
        CHECK(highest <= bound);
        CHECK(lowest < bound / 20);
        CHECK(highest > bound - bound / 20);
        const double mean = sum / draws;
        CHECK(mean > 0.45 * static_cast<double>(bound.count()));
        CHECK(mean < 0.55 * static_cast<double>(bound.count()));
    }
}

TEST_CASE("retry policy: execute waits through the sleep hook before each retry, within the bounds") {
    std::vector<microseconds> waits;
    // Hour-long bounds: had execute slept for real instead of calling the hook, the test would hang.
    const orchestrix::RetryPolicy policy{.max_attempts = 6,
                                         .initial_delay = std::chrono::hours(1),
                                         .max_delay = std::chrono::hours(3),
                                         .sleep = [&](microseconds d) { waits.push_back(d); }};

    SECTION("four conflicts: four waits, each within its bound, then the fifth attempt is stored") {
        InterferingStore store(4);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        const auto result = accounts.execute("1", Deposit{5}, policy);
        CHECK(result.attempts == 5);
        CHECK(result.append.written);
        CHECK(store.appends == 5);
        REQUIRE(waits.size() == 4);
        for (std::size_t i = 0; i < waits.size(); ++i) {
            INFO("wait " << i + 1);
            CHECK(waits[i] >= microseconds(0));
            CHECK(waits[i] <= policy.delay_bound(static_cast<std::uint32_t>(i + 1)));
        }
        CHECK(policy.delay_bound(3) == std::chrono::hours(3)); // 1 h, 2 h, then 4 h capped at 3 h
    }
    SECTION("conflicts without end: max_attempts attempts, a wait between each two, the last conflict thrown") {
        InterferingStore store(100);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        CHECK_THROWS_AS(accounts.execute("1", Deposit{5}, policy), orchestrix::ConcurrencyError);
        CHECK(store.appends == 6);
        CHECK(waits.size() == 5); // none after the last attempt
    }
    SECTION("max_attempts 0 or 1: one attempt, no wait") {
        for (const std::uint32_t max : {0U, 1U}) {
            InterferingStore store(1);
            (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
            orchestrix::Repository<Account, InterferingStore> accounts(store);
            orchestrix::RetryPolicy once = policy;
            once.max_attempts = max;
            CHECK_THROWS_AS(accounts.execute("1", Deposit{5}, once), orchestrix::ConcurrencyError);
            CHECK(store.appends == 1);
        }
        CHECK(waits.empty());
    }
    SECTION("no conflict: no wait") {
        InterferingStore store(0);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        CHECK(accounts.execute("1", Deposit{5}, policy).attempts == 1);
        CHECK(waits.empty());
    }
}

namespace {
// A store whose appends fail as a lost connection would.
class BrokenStore : public InterferingStore {
public:
    BrokenStore() : InterferingStore(0) {}
    orchestrix::AppendResult append(std::string_view, std::span<const orchestrix::EventEnvelope<AccountEvent>>,
                                    orchestrix::ExpectedVersion) {
        ++appends;
        throw orchestrix::StoreError("the connection was lost");
    }
};
static_assert(orchestrix::event_store<BrokenStore>);
} // namespace

TEST_CASE("retry policy: errors other than a version conflict are neither retried nor waited for") {
    std::vector<microseconds> waits;
    const orchestrix::RetryPolicy policy{.sleep = [&](microseconds d) { waits.push_back(d); }};
    SECTION("a store failure") {
        BrokenStore store;
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, BrokenStore> accounts(store);
        CHECK_THROWS_AS(accounts.execute("1", Deposit{5}, policy), orchestrix::StoreError);
        CHECK(store.appends == 1);
    }
    SECTION("a refused command") {
        InterferingStore store(3);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        CHECK_THROWS_AS(accounts.execute("1", Withdraw{5}, policy), InsufficientFunds);
        CHECK(store.appends == 0);
    }
    SECTION("a sleep hook that throws ends the retries with its exception") {
        InterferingStore store(3);
        (void)store.inner.append("1", {AccountOpened{"1", "ann"}}, orchestrix::ExpectedVersion::no_stream());
        orchestrix::Repository<Account, InterferingStore> accounts(store);
        const orchestrix::RetryPolicy cancelled{.sleep = [](microseconds) { throw std::runtime_error("cancelled"); }};
        CHECK_THROWS_WITH(accounts.execute("1", Deposit{5}, cancelled), "cancelled");
        CHECK(store.appends == 1);
    }
    CHECK(waits.empty());
}

TEST_CASE("retry policy: the real sleep waits about as long as asked") {
    const orchestrix::RetryPolicy policy;
    const auto started = std::chrono::steady_clock::now();
    policy.wait(std::chrono::milliseconds(20));
    const auto slept = std::chrono::steady_clock::now() - started;
    CHECK(slept >= std::chrono::milliseconds(20));
    CHECK(slept < std::chrono::seconds(5));
    policy.wait(microseconds(0));
    policy.wait(microseconds(-5)); // nothing to wait
}

TEST_CASE("retry policy: a forked child draws other waits than its parent") {
    const orchestrix::RetryPolicy policy{.initial_delay = std::chrono::seconds(1000),
                                         .max_delay = std::chrono::seconds(1000)};
    (void)policy.delay(1); // the parent's generator exists before the fork
    constexpr std::size_t draws = 4;
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::int64_t mine[draws];
        for (auto& d : mine) d = policy.delay(1).count();
        const auto written = ::write(pipe_ends[1], mine, sizeof mine);
        ::_exit(written == static_cast<ssize_t>(sizeof mine) ? 0 : 1);
    }
    std::vector<std::int64_t> parent;
    for (std::size_t i = 0; i < draws; ++i) parent.push_back(policy.delay(1).count());
    std::vector<std::int64_t> child_draws(draws);
    REQUIRE(::read(pipe_ends[0], child_draws.data(), draws * sizeof(std::int64_t)) ==
            static_cast<ssize_t>(draws * sizeof(std::int64_t)));
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
    CHECK(child_draws != parent); // seeded alike, they would be equal
}

TEST_CASE("repository: 8 threads executing on one stream with the default retry policy all succeed") {
    const auto commands = static_cast<int>(test_support::env_count("ORCHESTRIX_RETRY_COMMANDS", 100, 1, 100'000));
    constexpr int writers = 8;
    Store store;
    test_support::open_shared_account(store);
    const auto tally = test_support::race_threads(store, writers, commands);
    test_support::report_tally("in memory, 8 threads", tally);
    INFO(tally.summary());
    CHECK(tally.conflicts_given_up == 0);
    CHECK(tally.other_errors == 0);
    CHECK(tally.stored() == static_cast<std::uint64_t>(writers * commands));
    test_support::check_shared_stream(store, writers, commands);
}

TEST_CASE("aggregate cache: least recently used out first, a newer version never replaced by an older") {
    orchestrix::AggregateCache<Account> cache(2);
    Account a;
    a.replay(AccountOpened{"a", "ann"}, 1);
    Account b;
    b.replay(AccountOpened{"b", "bob"}, 1);
    Account c;
    c.replay(AccountOpened{"c", "cy"}, 1);
    cache.put("a", a);
    cache.put("b", b);
    CHECK(cache.get("a").has_value()); // a is now the most recently used
    cache.put("c", c);                 // b goes
    CHECK(cache.size() == 2);
    CHECK_FALSE(cache.get("b").has_value());
    CHECK(cache.get("c").has_value());
    CHECK(cache.hits() == 2);
    CHECK(cache.misses() == 1);

    Account newer = a;
    newer.replay(MoneyDeposited{"a", 5}, 2);
    cache.put("a", newer);
    cache.put("a", a); // older: ignored
    CHECK(cache.get("a")->version() == 2);
    cache.erase("a");
    CHECK_FALSE(cache.get("a").has_value());
    cache.clear();
    CHECK(cache.size() == 0);
    CHECK(orchestrix::AggregateCache<Account>(0).capacity() == 1);
}

TEST_CASE("aggregate cache: a cached aggregate decides on the store's current state") {
    Store store;
    orchestrix::AggregateCache<Account> cache_a;
    orchestrix::AggregateCache<Account> cache_b;
    orchestrix::Repository<Account, Store> a(store);
    orchestrix::Repository<Account, Store> b(store);
    a.with_cache(cache_a);
    b.with_cache(cache_b);
    (void)a.execute("acc", OpenAccount{"acc", "ann"});
    (void)a.execute("acc", Deposit{10});  // cached by a at version 2
    (void)b.execute("acc", Withdraw{10}); // b reads version 2 from the store, writes 3
    // a's cache holds version 2 (balance 10): brought up to date it sees balance 0 and refuses.
    CHECK_THROWS_AS(a.execute("acc", Withdraw{5}), test_domain::InsufficientFunds);
    (void)a.execute("acc", Deposit{7});
    CHECK(a.load("acc").balance() == 7);
    CHECK(a.load("acc").version() == 4);
    CHECK(cache_a.get(a.stream_id("acc"))->version() == 4);
    CHECK(cache_a.hits() >= 3);
}

namespace cache_test {

// A command whose handler runs a hook first: the test appends from it, between the repository's read and
// its append, to provoke a conflict at a chosen moment.
inline std::function<void()> before_decision;
struct HookedDeposit {
    std::int64_t amount = 0;
};
class HookedAccount : public orchestrix::AggregateRoot<HookedAccount, AccountEvent> {
public:
    void handle(const OpenAccount& c) { raise(AccountOpened{c.account_id, c.owner}); }
    void handle(const HookedDeposit& c) {
        if (before_decision) before_decision();
        raise(MoneyDeposited{"acc", c.amount});
    }
    void apply(const AccountOpened& /*e*/) {}
    void apply(const MoneyDeposited& e) { balance += e.amount; }
    void apply(const MoneyWithdrawn& e) { balance -= e.amount; }
    std::int64_t balance = 0;
};

} // namespace cache_test

TEST_CASE("aggregate cache: a conflict drops the entry and the retry decides on the stored state") {
    using cache_test::HookedAccount;
    Store store;
    orchestrix::AggregateCache<HookedAccount> cache;
    orchestrix::Repository<HookedAccount, Store> accounts(store);
    accounts.with_cache(cache);
    (void)accounts.execute("acc", OpenAccount{"acc", "ann"});
    REQUIRE(cache.get("acc").has_value());

    int interferences = 1;
    cache_test::before_decision = [&] {
        if (interferences-- <= 0) return;
        (void)store.append("acc", {orchestrix::EventEnvelope<AccountEvent>{MoneyDeposited{"acc", 100}}},
                           orchestrix::ExpectedVersion::any());
    };
    bool entry_dropped = false;
    orchestrix::RetryPolicy policy;
    policy.sleep = [&](std::chrono::microseconds) { entry_dropped = !cache.get("acc").has_value(); };
    const auto result = accounts.execute("acc", cache_test::HookedDeposit{2}, policy);
    cache_test::before_decision = nullptr;
    CHECK(result.attempts == 2);
    CHECK(entry_dropped);
    CHECK(accounts.load("acc").balance == 102);
    CHECK(cache.get("acc")->balance == 102);
    CHECK(cache.get("acc")->version() == 3);
}

TEST_CASE("aggregate cache: 8 threads with caches shared by repositories on one stream lose no update") {
    const auto commands = static_cast<int>(test_support::env_count("ORCHESTRIX_RETRY_COMMANDS", 100, 1, 100'000));
    constexpr int writers = 8;
    Store store;
    test_support::open_shared_account(store);
    orchestrix::AggregateCache<Account> caches[2];
    const auto tally = test_support::race_threads(store, writers, commands, test_support::contention_policy(),
                                                  [&](int writer) { return &caches[writer % 2]; });
    INFO(tally.summary());
    CHECK(tally.conflicts_given_up == 0);
    CHECK(tally.other_errors == 0);
    CHECK(tally.stored() == static_cast<std::uint64_t>(writers * commands));
    test_support::check_shared_stream(store, writers, commands);
    CHECK(caches[0].hits() + caches[1].hits() > 0);
}
