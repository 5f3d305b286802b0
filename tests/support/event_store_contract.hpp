#pragma once

// The event-store contract: one suite that every store must pass unchanged.
//
// Include this header after defining ORCHESTRIX_CONTRACT_STORES as a std::tuple of factory types. A factory
//
//     struct MyStoreFactory {
//         using store_type = ...;                         // an orchestrix::event_store over test_domain::AccountEvent
//         static constexpr int concurrency_threads = 8;   // the concurrency test's writers ...
//         static constexpr int concurrency_rounds = 2000; // ... and rounds per writer
//         std::unique_ptr<store_type> make();             // a new, empty store
//     };

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifndef ORCHESTRIX_CONTRACT_STORES
#error "define ORCHESTRIX_CONTRACT_STORES as a std::tuple of store factories before including this header"
#endif

namespace contract {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using test_domain::MoneyWithdrawn;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::ExpectedVersion;

inline std::vector<Envelope> deposits(const std::string& account, int count, std::int64_t first_amount = 1) {
    std::vector<Envelope> batch;
    for (int i = 0; i < count; ++i) batch.emplace_back(MoneyDeposited{account, first_amount + i});
    return batch;
}

template <class Store>
std::size_t total_events(const Store& store) {
    return store.read_all(1, orchestrix::unlimited).size();
}

} // namespace contract

TEMPLATE_LIST_TEST_CASE("contract: a new stream gets versions from 1 and global positions in order", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();

    auto batch = deposits("acc-1", 3);
    batch.front().metadata.correlation_id = "request-42";
    batch.front().metadata.causation_id = "command-7";
    const auto result = store->append("acc-1", batch, ExpectedVersion::no_stream());
    CHECK(result.written);
    CHECK(result.stream_version == 3);
    CHECK(result.first_position == 1);
    CHECK(result.last_position == 3);

    const auto events = store->read_stream("acc-1", 1, orchestrix::unlimited);
    REQUIRE(events.size() == 3);
    for (std::size_t i = 0; i < events.size(); ++i) {
        CHECK(events[i].stream_id == "acc-1");
        CHECK(events[i].version == i + 1);
        CHECK(events[i].position == i + 1);
        CHECK(events[i].event == batch[i].event);
        CHECK(events[i].metadata.event_id == batch[i].metadata.event_id);
        CHECK(events[i].metadata.recorded_at == events[0].metadata.recorded_at);
        CHECK(events[i].type() == "account.deposited");
    }
    CHECK(events[0].metadata.correlation_id == "request-42");
    CHECK(events[0].metadata.causation_id == "command-7");
    CHECK(events[0].metadata.recorded_at.time_since_epoch().count() != 0);
    CHECK(store->stream_version("acc-1") == 3);
    CHECK(store->stream_version("unknown") == 0);
}

TEMPLATE_LIST_TEST_CASE("contract: every expected-version state is enforced", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();

    auto expect_conflict = [&](ExpectedVersion expected, std::uint64_t actual) {
        const auto before = total_events(*store);
        try {
            (void)store->append("acc", deposits("acc", 1), expected);
            FAIL("append with expectation '" << orchestrix::to_string(expected) << "' should have been refused");
        } catch (const orchestrix::ConcurrencyError& e) {
            CHECK(e.stream() == "acc");
            CHECK(e.expected() == expected);
            CHECK(e.actual() == actual);
            CHECK(std::string(e.what()).find("acc") != std::string::npos);
        }
        CHECK(total_events(*store) == before);
    };

    SECTION("no_stream") {
        REQUIRE(store->append("acc", deposits("acc", 2), ExpectedVersion::no_stream()).stream_version == 2);
        expect_conflict(ExpectedVersion::no_stream(), 2);
    }
    SECTION("stream_exists") {
        expect_conflict(ExpectedVersion::stream_exists(), 0);
        REQUIRE(store->append("acc", deposits("acc", 1), ExpectedVersion::any()).stream_version == 1);
        CHECK(store->append("acc", deposits("acc", 1), ExpectedVersion::stream_exists()).stream_version == 2);
    }
    SECTION("exact") {
        REQUIRE(store->append("acc", deposits("acc", 2), ExpectedVersion::exact(0)).stream_version == 2);
        CHECK(store->append("acc", deposits("acc", 1), ExpectedVersion::exact(2)).stream_version == 3);
        expect_conflict(ExpectedVersion::exact(2), 3);  // stale
        expect_conflict(ExpectedVersion::exact(10), 3); // beyond the stream
        expect_conflict(ExpectedVersion::exact(0), 3);
    }
    SECTION("any") {
        CHECK(store->append("acc", deposits("acc", 1), ExpectedVersion::any()).stream_version == 1);
        CHECK(store->append("acc", deposits("acc", 1), ExpectedVersion::any()).stream_version == 2);
    }
}

TEMPLATE_LIST_TEST_CASE("contract: appends are idempotent by event id", "[contract]", ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    using Reason = orchestrix::IdempotencyError::Reason;
    TestType factory;
    auto store = factory.make();

    const auto batch = deposits("acc", 3);
    const auto first = store->append("acc", batch, ExpectedVersion::no_stream());
    REQUIRE(first.written);
    REQUIRE(store->append("other", deposits("other", 1), ExpectedVersion::no_stream()).written);

    auto expect_refusal = [&](const std::string& stream, const std::vector<Envelope>& events, ExpectedVersion expected,
                              Reason reason) {
        const auto before = total_events(*store);
        try {
            (void)store->append(stream, events, expected);
            FAIL("the append should have been refused");
        } catch (const orchestrix::IdempotencyError& e) {
            CHECK(e.reason() == reason);
            CHECK(e.stream() == stream);
        }
        CHECK(total_events(*store) == before);
    };

    SECTION("the same batch with the same expectation succeeds and writes nothing") {
        const auto again = store->append("acc", batch, ExpectedVersion::no_stream());
        CHECK_FALSE(again.written);
        CHECK(again.stream_version == first.stream_version);
        CHECK(again.first_position == first.first_position);
        CHECK(again.last_position == first.last_position);
        CHECK(total_events(*store) == 4);
    }
    SECTION("the same batch with expectation any succeeds and writes nothing") {
        CHECK_FALSE(store->append("acc", batch, ExpectedVersion::any()).written);
        CHECK(total_events(*store) == 4);
    }
    SECTION("a tail of the batch retried on its own is idempotent too") {
        const std::vector<Envelope> tail(batch.begin() + 1, batch.end());
        const auto again = store->append("acc", tail, ExpectedVersion::exact(1));
        CHECK_FALSE(again.written);
        CHECK(again.stream_version == 3);
    }
    SECTION("the same batch with a wrong expectation is a conflict") {
        CHECK_THROWS_AS(store->append("acc", batch, ExpectedVersion::exact(2)), orchestrix::ConcurrencyError);
        CHECK(total_events(*store) == 4);
    }
    SECTION("a batch that partly overlaps stored ids is refused") {
        std::vector<Envelope> overlapping{batch[2]};
        overlapping.emplace_back(MoneyDeposited{"acc", 99});
        expect_refusal("acc", overlapping, ExpectedVersion::any(), Reason::partial_overlap);
    }
    SECTION("a batch whose new events come before a stored id is a partial overlap too") {
        std::vector<Envelope> overlapping;
        overlapping.emplace_back(MoneyDeposited{"acc", 98});
        overlapping.emplace_back(MoneyDeposited{"acc", 99});
        overlapping.push_back(batch[1]);
        expect_refusal("acc", overlapping, ExpectedVersion::any(), Reason::partial_overlap);
        expect_refusal("fresh", overlapping, ExpectedVersion::no_stream(), Reason::partial_overlap);
    }
    SECTION("a stored id with another payload is refused") {
        std::vector<Envelope> changed{batch[0]};
        changed[0].event = MoneyDeposited{"acc", 1000};
        expect_refusal("acc", changed, ExpectedVersion::any(), Reason::different_payload);
    }
    SECTION("a stored id sent to another stream is refused") {
        expect_refusal("other", {batch[0]}, ExpectedVersion::any(), Reason::different_stream);
    }
    SECTION("stored ids in another order are refused") {
        expect_refusal("acc", {batch[1], batch[0]}, ExpectedVersion::any(), Reason::different_order);
    }
    SECTION("a duplicate id inside one batch is refused") {
        auto twice = deposits("fresh", 2);
        twice[1].metadata.event_id = twice[0].metadata.event_id;
        expect_refusal("fresh", twice, ExpectedVersion::any(), Reason::duplicate_in_batch);
        CHECK(store->stream_version("fresh") == 0);
    }
    SECTION("a duplicate id inside a large batch is refused") {
        auto many = deposits("fresh", 40);
        many[37].metadata.event_id = many[3].metadata.event_id;
        expect_refusal("fresh", many, ExpectedVersion::any(), Reason::duplicate_in_batch);
    }
    SECTION("an empty batch is a no-op") {
        const auto result = store->append("empty", std::vector<Envelope>{}, ExpectedVersion::no_stream());
        CHECK_FALSE(result.written);
        CHECK(result.stream_version == 0);
        CHECK(store->stream_version("empty") == 0);
        const auto on_existing = store->append("acc", std::vector<Envelope>{}, ExpectedVersion::any());
        CHECK(on_existing.stream_version == 3);
        CHECK(total_events(*store) == 4);
    }
}

TEMPLATE_LIST_TEST_CASE("contract: a refused batch writes nothing at all", "[contract]", ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();
    REQUIRE(store->append("acc", deposits("acc", 2), ExpectedVersion::no_stream()).written);
    const auto stored = store->read_all(1, orchestrix::unlimited);

    // A conflicting batch of many events: none of them may appear.
    CHECK_THROWS_AS(store->append("acc", deposits("acc", 50), ExpectedVersion::exact(1)), orchestrix::ConcurrencyError);
    // A batch whose last event reuses a stored id: the first events must not be written either.
    auto batch = deposits("acc", 10);
    batch.back().metadata.event_id = stored.front().metadata.event_id;
    CHECK_THROWS_AS(store->append("acc", batch, ExpectedVersion::any()), orchestrix::IdempotencyError);
    // A batch with a nil event id.
    auto nil = deposits("acc", 3);
    nil[2].metadata.event_id = orchestrix::Uuid{};
    CHECK_THROWS_AS(store->append("acc", nil, ExpectedVersion::any()), orchestrix::InvalidArgumentError);

    CHECK(store->read_all(1, orchestrix::unlimited) == stored);
    CHECK(store->stream_version("acc") == 2);
    // The next append continues where the store was.
    const auto next = store->append("acc", deposits("acc", 1), ExpectedVersion::exact(2));
    CHECK(next.stream_version == 3);
    CHECK(next.first_position == 3);
}

TEMPLATE_LIST_TEST_CASE("contract: read_stream honours from_version and max_count", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();
    REQUIRE(store->append("acc", deposits("acc", 10, 100), ExpectedVersion::no_stream()).written);
    REQUIRE(store->append("noise", deposits("noise", 5), ExpectedVersion::no_stream()).written);

    auto versions = [&](std::uint64_t from, std::uint64_t max) {
        std::vector<std::uint64_t> out;
        for (const auto& e : store->read_stream("acc", from, max)) out.push_back(e.version);
        return out;
    };
    CHECK(versions(1, orchestrix::unlimited).size() == 10);
    CHECK(versions(0, orchestrix::unlimited).size() == 10);
    CHECK(versions(4, orchestrix::unlimited) == std::vector<std::uint64_t>{4, 5, 6, 7, 8, 9, 10});
    CHECK(versions(4, 2) == std::vector<std::uint64_t>{4, 5});
    CHECK(versions(10, 5) == std::vector<std::uint64_t>{10});
    CHECK(versions(11, 5).empty());
    CHECK(versions(orchestrix::max_version, 5).empty());
    CHECK(versions(1, 0).empty());
    CHECK(store->read_stream("missing", 1, orchestrix::unlimited).empty());
    const auto fourth = store->read_stream("acc", 4, 1);
    REQUIRE(fourth.size() == 1);
    CHECK(std::get<MoneyDeposited>(fourth[0].event).amount == 103);
}

TEMPLATE_LIST_TEST_CASE("contract: read_all returns every stream in global order", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();
    // Interleave three streams.
    for (int round = 0; round < 4; ++round) {
        for (const std::string stream : {"a", "b", "c"}) {
            REQUIRE(store->append(stream, deposits(stream, 2, round * 10), ExpectedVersion::any()).written);
        }
    }
    const auto all = store->read_all(1, orchestrix::unlimited);
    REQUIRE(all.size() == 24);
    for (std::size_t i = 0; i < all.size(); ++i) {
        CHECK(all[i].position == i + 1);
        const std::string expected_stream(1, static_cast<char>('a' + (i / 2) % 3));
        CHECK(all[i].stream_id == expected_stream);
        CHECK(all[i].version == (i / 6) * 2 + i % 2 + 1);
    }
    const auto page = store->read_all(7, 5);
    REQUIRE(page.size() == 5);
    CHECK(page.front().position == 7);
    CHECK(page.back().position == 11);
    CHECK(store->read_all(0, 2).front().position == 1);
    CHECK(store->read_all(25, orchestrix::unlimited).empty());
    CHECK(store->read_all(1, 0).empty());
}

TEMPLATE_LIST_TEST_CASE("contract: malformed stream ids are refused and change nothing", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();
    REQUIRE(store->append("acc", deposits("acc", 1), ExpectedVersion::no_stream()).written);

    auto expect_invalid = [&](const std::string& stream, const std::string& says) {
        try {
            (void)store->append(stream, deposits("x", 1), ExpectedVersion::any());
            FAIL("stream id should have been refused");
        } catch (const orchestrix::InvalidArgumentError& e) {
            CHECK(e.argument() == "stream");
            CHECK(std::string(e.what()).find(says) != std::string::npos);
        }
    };
    expect_invalid("", "empty");
    expect_invalid(std::string(orchestrix::max_stream_id_length + 1, 's'), "1025 bytes");
    expect_invalid(std::string("a\0b", 3), "NUL");
    expect_invalid("bad\xC3(utf8", "UTF-8");
    expect_invalid("\xED\xA0\x80", "UTF-8"); // an encoded surrogate
    CHECK(total_events(*store) == 1);

    // The longest id is fine, and hostile-looking ids are stored byte for byte.
    const std::string longest(orchestrix::max_stream_id_length, 'L');
    const std::vector<std::string> odd{longest,    "it's \"quoted\"",    "'; DROP TABLE events; --",
                                       "%_*?[]\\", "naïve/ünïcödé/日本", " leading and trailing "};
    for (const auto& stream : odd) {
        REQUIRE(store->append(stream, deposits(stream, 1), ExpectedVersion::no_stream()).written);
        const auto read = store->read_stream(stream, 1, orchestrix::unlimited);
        REQUIRE(read.size() == 1);
        CHECK(read[0].stream_id == stream);
        CHECK(store->stream_version(stream) == 1);
    }
    CHECK(store->stream_version("%") == 0); // no pattern matching on ids
    CHECK(total_events(*store) == 1 + odd.size());
}

TEMPLATE_LIST_TEST_CASE("contract: concurrent writers on one stream never lose or duplicate an event", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();
    constexpr int threads = TestType::concurrency_threads;
    constexpr int rounds = TestType::concurrency_rounds;

    std::atomic<std::uint64_t> conflicts{0};
    std::vector<std::vector<std::pair<std::uint64_t, orchestrix::Uuid>>> wins(threads);
    {
        std::vector<std::thread> writers;
        for (int t = 0; t < threads; ++t) {
            writers.emplace_back([&, t] {
                for (int round = 0; round < rounds; ++round) {
                    for (;;) {
                        const auto version = store->stream_version("shared");
                        std::this_thread::yield(); // widen the window between reading and writing
                        std::vector<Envelope> one{MoneyDeposited{"shared", t}};
                        try {
                            const auto result = store->append("shared", one, ExpectedVersion::exact(version));
                            wins[static_cast<std::size_t>(t)].emplace_back(result.stream_version,
                                                                           one[0].metadata.event_id);
                            break;
                        } catch (const orchestrix::ConcurrencyError&) {
                            conflicts.fetch_add(1, std::memory_order_relaxed);
                        }
                    }
                }
            });
        }
        for (auto& w : writers) w.join();
    }
    const std::uint64_t total = static_cast<std::uint64_t>(threads) * rounds;
    CHECK(store->stream_version("shared") == total);
    const auto events = store->read_stream("shared", 1, orchestrix::unlimited);
    REQUIRE(events.size() == total);

    std::vector<orchestrix::Uuid> winner_of(total + 1);
    std::size_t win_count = 0;
    for (const auto& per_thread : wins) {
        for (const auto& [version, id] : per_thread) {
            REQUIRE(version >= 1);
            REQUIRE(version <= total);
            CHECK(winner_of[version].is_nil()); // exactly one winner per version
            winner_of[version] = id;
            ++win_count;
        }
    }
    CHECK(win_count == total);
    std::set<orchestrix::Uuid> distinct;
    for (const auto& e : events) {
        CHECK(e.metadata.event_id == winner_of[e.version]); // the winners' ids are what is stored
        distinct.insert(e.metadata.event_id);
    }
    CHECK(distinct.size() == total); // nothing duplicated
    INFO("conflicts seen: " << conflicts.load());
    CHECK(conflicts.load() > 0);
}
