#include <orchestrix/async/event_store.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace test_domain;
using AsyncStore = orchestrix::AsyncInMemoryEventStore<AccountEvent>;
using orchestrix::ExpectedVersion;

namespace {

orchestrix::Completion<std::int64_t> open_and_deposit(AsyncStore& store, std::string id) {
    // Batches are built before co_await: g++ 12 cannot keep a braced list alive across a suspension.
    std::vector<orchestrix::EventEnvelope<AccountEvent>> opened{AccountOpened{id, "ann"}};
    std::vector<orchestrix::EventEnvelope<AccountEvent>> deposits{MoneyDeposited{id, 5}, MoneyDeposited{id, 7}};
    co_await store.append_async("account-" + id, std::move(opened), ExpectedVersion::no_stream());
    const auto written = co_await store.append_async("account-" + id, std::move(deposits), ExpectedVersion::exact(1));
    std::int64_t balance = 0;
    for (const auto& r : co_await store.read_stream_async("account-" + id)) {
        if (const auto* d = std::get_if<MoneyDeposited>(&r.event)) balance += d->amount;
    }
    co_return balance + static_cast<std::int64_t>(written.stream_version) * 1000;
}

} // namespace

TEST_CASE("async store: append and read through completions, off the caller's thread") {
    AsyncStore store;
    auto appended = store.append_async("account-1", {AccountOpened{"1", "ann"}, MoneyDeposited{"1", 10}},
                                       ExpectedVersion::no_stream());
    const orchestrix::AppendResult result = appended.get();
    CHECK(result.written);
    CHECK(result.stream_version == 2);
    CHECK(result.first_position == 1);
    CHECK(result.last_position == 2);

    const auto events = store.read_stream_async("account-1").get();
    REQUIRE(events.size() == 2);
    CHECK(events[1].version == 2);
    CHECK(std::get<MoneyDeposited>(events[1].event).amount == 10);
    CHECK(store.read_all_async(2).get().size() == 1);
    CHECK(store.read_stream_async("account-1", 2, 1).get().size() == 1);
    CHECK(store.stream_version_async("account-1").get() == 2);
    CHECK(store.stream_version_async("nobody").get() == 0);
    CHECK(store.sync().head_position() == 2);
}

TEST_CASE("async store: a version conflict reaches the completion and writes nothing") {
    AsyncStore store;
    store.append_async("s", {AccountOpened{"1", "ann"}}, ExpectedVersion::no_stream()).get();
    auto conflicting = store.append_async("s", {MoneyDeposited{"1", 1}}, ExpectedVersion::exact(0));
    try {
        (void)conflicting.get();
        FAIL("the conflict was not reported");
    } catch (const orchestrix::ConcurrencyError& e) {
        CHECK(e.stream() == "s");
        CHECK(e.actual() == 1);
    }
    CHECK(store.stream_version_async("s").get() == 1);
}

TEST_CASE("async store: bad input and reused ids are reported through the completion") {
    AsyncStore store;
    REQUIRE_THROWS_AS(store.append_async("", {AccountOpened{}}, ExpectedVersion::any()).get(),
                      orchestrix::InvalidArgumentError);
    orchestrix::EventEnvelope<AccountEvent> e(AccountOpened{"1", "ann"});
    std::vector<orchestrix::EventEnvelope<AccountEvent>> twice{e, e};
    REQUIRE_THROWS_AS(store.append_async("s", twice, ExpectedVersion::any()).get(), orchestrix::IdempotencyError);
    CHECK(store.read_all_async().get().empty());

    SECTION("an idempotent retry succeeds and writes nothing") {
        std::vector<orchestrix::EventEnvelope<AccountEvent>> once{e};
        CHECK(store.append_async("s", once, ExpectedVersion::no_stream()).get().written);
        CHECK_FALSE(store.append_async("s", once, ExpectedVersion::no_stream()).get().written);
        CHECK(store.read_all_async().get().size() == 1);
    }
}

TEST_CASE("async store: operations issued without waiting apply in order") {
    AsyncStore store;
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> pending;
    pending.push_back(store.append_async("s", {AccountOpened{"1", "ann"}}, ExpectedVersion::no_stream()));
    for (orchestrix::stream_version_t v = 1; v <= 20; ++v) {
        pending.push_back(store.append_async("s", {MoneyDeposited{"1", 1}}, ExpectedVersion::exact(v)));
    }
    for (auto& p : pending) REQUIRE_NOTHROW(p.get());
    CHECK(store.stream_version_async("s").get() == 21);
}

TEST_CASE("async store: a coroutine awaits appends and reads") {
    AsyncStore store;
    CHECK(open_and_deposit(store, "9").get() == 3012);
}

TEST_CASE("async store: operations issued before shutdown finish, and later ones fail with StoreError") {
    AsyncStore store(orchestrix::AsyncStoreOptions{.threads = 2});
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> pending;
    for (int i = 0; i < 50; ++i) {
        pending.push_back(
            store.append_async("s-" + std::to_string(i), {AccountOpened{}}, ExpectedVersion::no_stream()));
    }
    store.shutdown();
    for (auto& p : pending) CHECK(p.ready());
    CHECK(store.sync().stream_count() == 50);
    REQUIRE_THROWS_AS(store.read_all_async().get(), orchestrix::StoreError);
    REQUIRE_THROWS_AS(AsyncStore(orchestrix::AsyncStoreOptions{.threads = 0}), orchestrix::InvalidArgumentError);
}
