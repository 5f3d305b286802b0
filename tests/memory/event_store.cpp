#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <atomic>
#include <memory>
#include <span>
#include <thread>
#include <tuple>
#include <vector>

namespace {

struct InMemoryStoreFactory {
    using store_type = orchestrix::InMemoryEventStore<test_domain::AccountEvent>;
    static constexpr int concurrency_threads = 8;
    static constexpr int concurrency_rounds = 2000;
    std::unique_ptr<store_type> make() { return std::make_unique<store_type>(); }
};

} // namespace

#define ORCHESTRIX_CONTRACT_STORES std::tuple<InMemoryStoreFactory>
#include "support/event_store_contract.hpp"

using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;

static_assert(orchestrix::event_store<Store>);
static_assert(orchestrix::visitable_event_store<Store>);
static_assert(contract::has_head_position<Store> && contract::has_visit_all<Store> &&
              contract::has_stream_count<Store>); // checked by the contract

namespace {
struct NotAStore {
    using event_type = AccountEvent;
    int append(int) { return 0; }
};
} // namespace
static_assert(!orchestrix::event_store<NotAStore>);
static_assert(!orchestrix::event_store<int>);

TEST_CASE("in-memory store: visit_stream hands stored events over in place") {
    Store store;
    REQUIRE(store
                .append("acc", {MoneyDeposited{"acc", 5}, MoneyDeposited{"acc", 7}, MoneyDeposited{"acc", 11}},
                        orchestrix::ExpectedVersion::no_stream())
                .written);
    const auto copies = store.read_stream("acc");
    std::vector<const AccountEvent*> seen;
    std::vector<orchestrix::RecordedEvent<AccountEvent>> owned;
    const auto visited = store.visit_stream("acc", 2, [&](const orchestrix::RecordedEventView<AccountEvent>& e) {
        seen.push_back(&e.event());
        owned.push_back(e.to_owned());
        CHECK(e.stream_id() == "acc");
        CHECK(e.type() == "account.deposited");
    });
    CHECK(visited == 2);
    REQUIRE(owned.size() == 2);
    CHECK(owned[0] == copies[1]);
    CHECK(owned[1] == copies[2]);
    // In place: the same object is visited each time, not a copy.
    const AccountEvent* again = nullptr;
    store.visit_stream(
        "acc", 2, [&](const auto& e) { again = again ? again : &e.event(); }, 1);
    CHECK(again == seen[0]);
    CHECK(store.visit_stream("missing", 1, [](const auto&) {}) == 0);
}

TEST_CASE("in-memory store: visit_all walks the global order") {
    Store store;
    REQUIRE(store.append("a", {MoneyDeposited{"a", 1}}, orchestrix::ExpectedVersion::any()).written);
    REQUIRE(store.append("b", {MoneyDeposited{"b", 2}}, orchestrix::ExpectedVersion::any()).written);
    REQUIRE(store.append("a", {MoneyDeposited{"a", 3}}, orchestrix::ExpectedVersion::any()).written);
    std::vector<std::uint64_t> positions;
    CHECK(store.visit_all(2, [&](const auto& e) { positions.push_back(e.position()); }) == 2);
    CHECK(positions == std::vector<std::uint64_t>{2, 3});
    CHECK(store.head_position() == 3);
    CHECK(store.stream_count() == 2);
}

TEST_CASE("in-memory store: plain events append with fresh ids") {
    Store store;
    const auto result = store.append("acc", {MoneyDeposited{"acc", 1}, test_domain::MoneyWithdrawn{"acc", 1}},
                                     orchestrix::ExpectedVersion::no_stream());
    CHECK(result.stream_version == 2);
    const auto events = store.read_stream("acc");
    REQUIRE(events.size() == 2);
    CHECK_FALSE(events[0].metadata.event_id.is_nil());
    CHECK(events[0].metadata.event_id != events[1].metadata.event_id);
    CHECK(events[1].type() == "account.withdrawn");
}

TEST_CASE("in-memory store: readers and writers run concurrently") {
    Store store;
    constexpr int writers = 4;
    constexpr int per_writer = 500;
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> reads{0};
    std::thread reader([&] {
        std::uint64_t last = 0;
        while (!done.load()) {
            const auto all = store.read_all();
            // The global order never goes back and has no holes.
            for (std::size_t i = 0; i < all.size(); ++i) REQUIRE(all[i].position == i + 1);
            REQUIRE(all.size() >= last);
            last = all.size();
            reads.fetch_add(1);
        }
    });
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            const std::string stream = "s" + std::to_string(w);
            for (int i = 0; i < per_writer; ++i)
                (void)store.append(stream, {MoneyDeposited{stream, i}},
                                   orchestrix::ExpectedVersion::exact(static_cast<std::uint64_t>(i)));
        });
    }
    for (auto& t : threads) t.join();
    done = true;
    reader.join();
    CHECK(store.head_position() == writers * per_writer);
    for (int w = 0; w < writers; ++w) CHECK(store.stream_version("s" + std::to_string(w)) == per_writer);
    CHECK(reads.load() > 0);
}

TEST_CASE("in-memory store: growth past the largest version is refused") {
    CHECK_NOTHROW(orchestrix::detail::validate_growth("s", orchestrix::max_version - 2, 0, 2));
    CHECK_THROWS_AS(orchestrix::detail::validate_growth("s", orchestrix::max_version - 2, 0, 3),
                    orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(orchestrix::detail::validate_growth("s", 0, orchestrix::max_version, 1),
                    orchestrix::InvalidArgumentError);
}

TEST_CASE("in-memory store: retries are recognised whatever order the ids were made in") {
    // Ids in increasing order skip the id index; anything else consults it. Both must tell a retry from
    // a new event and a reused id from a retry.
    using orchestrix::ExpectedVersion;
    using orchestrix::Uuid;
    using Envelope = orchestrix::EventEnvelope<AccountEvent>;
    const auto id = [](std::uint8_t high, std::uint8_t low) {
        Uuid::bytes_type bytes{};
        bytes[0] = high;
        bytes[15] = low;
        return Uuid{bytes};
    };
    const auto event = [](const Uuid& event_id, int amount) {
        return Envelope{MoneyDeposited{"acc", amount}, orchestrix::Metadata{event_id, {}, {}, {}, {}}};
    };
    Store store;
    std::vector<Envelope> appended;
    // Increasing, then decreasing, then a batch that is not ordered within itself, then increasing again.
    const std::vector<std::vector<Uuid>> batches = {
        {id(10, 1), id(10, 2)}, {id(9, 1)}, {id(5, 3), id(7, 1), id(6, 9)}, {id(20, 1)}, {id(8, 8), id(30, 1)}};
    int amount = 0;
    for (const auto& ids : batches) {
        std::vector<Envelope> batch;
        for (const auto& event_id : ids) batch.push_back(event(event_id, ++amount));
        const auto version = store.stream_version("acc");
        const auto result = store.append("acc", batch, ExpectedVersion::exact(version));
        REQUIRE(result.written);
        appended.insert(appended.end(), batch.begin(), batch.end());
    }
    REQUIRE(store.head_position() == appended.size());

    // Every batch again: an idempotent retry, nothing written, the original positions reported.
    std::size_t first = 0;
    for (const auto& ids : batches) {
        const std::span<const Envelope> batch(appended.data() + first, ids.size());
        const auto retry = store.append("acc", batch, ExpectedVersion::any());
        CHECK_FALSE(retry.written);
        CHECK(retry.first_position == first + 1);
        CHECK(retry.last_position == first + ids.size());
        first += ids.size();
    }
    CHECK(store.head_position() == appended.size());

    // A stored id with another payload is refused; a new id below every stored one is appended.
    CHECK_THROWS_AS(store.append("acc", {event(id(9, 1), 999)}, ExpectedVersion::any()), orchestrix::IdempotencyError);
    CHECK(store.append("acc", {event(id(1, 1), 1)}, ExpectedVersion::any()).written);
    // A generated id after all that: greater than every stored id again.
    CHECK(store.append("acc", {MoneyDeposited{"acc", 2}}, ExpectedVersion::any()).written);
    CHECK(store.head_position() == appended.size() + 2);
}
