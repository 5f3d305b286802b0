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
//
// What a store offers beyond `event_store` (`visit_stream`, `visit_all`, `head_position()`, `stream_count()`) is
// checked where it has it.

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
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

using View = orchestrix::RecordedEventView<AccountEvent>;

template <class S>
concept has_head_position = requires(const S& s) {
    { s.head_position() } -> std::same_as<orchestrix::position_t>;
};
template <class S>
concept has_stream_count = requires(const S& s) {
    { s.stream_count() } -> std::same_as<std::size_t>;
};
template <class S>
concept has_visit_all = requires(const S& s, void (*visitor)(const View&)) {
    { s.visit_all(orchestrix::position_t{1}, visitor, std::uint64_t{1}) } -> std::same_as<std::uint64_t>;
};

// The argument an `InvalidArgumentError` thrown by `call` names, or "(not refused)".
template <class F>
std::string refused_argument(F&& call) {
    try {
        call();
    } catch (const orchestrix::InvalidArgumentError& e) {
        return e.argument();
    }
    return "(not refused)";
}

// The stream ids append refuses (InvalidArgumentError, argument "stream").
inline std::vector<std::string> malformed_stream_ids() {
    return {"", std::string(orchestrix::max_stream_id_length + 1, 's'), std::string("a\0b", 3), "bad\xC3(utf8",
            "\xED\xA0\x80"};
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
    auto expect_conflict = [&](const std::vector<Envelope>& events, ExpectedVersion expected, std::uint64_t actual) {
        const auto before = total_events(*store);
        try {
            (void)store->append("acc", events, expected);
            FAIL("the append should have been refused");
        } catch (const orchestrix::ConcurrencyError& e) {
            CHECK(e.expected() == expected);
            CHECK(e.actual() == actual); // the stream's version now, as for any conflict
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
        CHECK_FALSE(store->append("acc", batch, ExpectedVersion::stream_exists()).written); // it exists now
        CHECK(total_events(*store) == 4);
    }
    SECTION("a retry's expectation is checked against the version before its first event, not now") {
        REQUIRE(store->append("acc", deposits("acc", 2), ExpectedVersion::exact(3)).stream_version == 5);
        const auto again = store->append("acc", batch, ExpectedVersion::no_stream());
        CHECK(again == orchestrix::AppendResult{3, 1, 3, false}); // the batch's last version, not the stream's
        CHECK(total_events(*store) == 6);
    }
    SECTION("a prefix or a middle slice of a stored batch is a retry too") {
        const std::vector<Envelope> prefix(batch.begin(), batch.begin() + 2);
        CHECK(store->append("acc", prefix, ExpectedVersion::no_stream()) == orchestrix::AppendResult{2, 1, 2, false});
        CHECK(store->append("acc", std::vector<Envelope>{batch[1]}, ExpectedVersion::exact(1)) ==
              orchestrix::AppendResult{2, 2, 2, false});
        expect_conflict({batch[1]}, ExpectedVersion::no_stream(), 3);
        CHECK(total_events(*store) == 4);
    }
    SECTION("stored batches re-sent as one are a retry, spanning what lies between them") {
        const auto later = deposits("acc", 2, 50);
        REQUIRE(store->append("acc", later, ExpectedVersion::exact(3)) == orchestrix::AppendResult{5, 5, 6, true});
        std::vector<Envelope> both = batch;
        both.insert(both.end(), later.begin(), later.end());
        CHECK(store->append("acc", both, ExpectedVersion::no_stream()) == orchestrix::AppendResult{5, 1, 6, false});
        CHECK(store->append("acc", std::vector<Envelope>{batch[2], later[0]}, ExpectedVersion::exact(2)) ==
              orchestrix::AppendResult{4, 3, 5, false});
        expect_conflict(both, ExpectedVersion::exact(3), 5);
        CHECK(total_events(*store) == 6);
    }
    SECTION("a retry with other correlation and causation ids is a retry, and the stored metadata stays") {
        const auto stored = store->read_all(1, orchestrix::unlimited);
        auto retry = batch;
        for (auto& e : retry) {
            e.metadata.correlation_id = "another-request";
            e.metadata.causation_id = "another-command";
        }
        CHECK(store->append("acc", retry, ExpectedVersion::no_stream()) == orchestrix::AppendResult{3, 1, 3, false});
        CHECK(store->read_all(1, orchestrix::unlimited) == stored);
    }
    SECTION("a tail of the batch retried on its own is idempotent too") {
        const std::vector<Envelope> tail(batch.begin() + 1, batch.end());
        const auto again = store->append("acc", tail, ExpectedVersion::exact(1));
        CHECK_FALSE(again.written);
        CHECK(again.stream_version == 3);
    }
    SECTION("the same batch with a wrong expectation is a conflict, reporting the stream's version now") {
        expect_conflict(batch, ExpectedVersion::exact(2), 3);
        // The stream is at 3 now, but these events were not appended to a stream at version 3.
        expect_conflict(batch, ExpectedVersion::exact(3), 3);
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
    SECTION("stored ids with a stored event left out between them are refused as another order") {
        expect_refusal("acc", {batch[0], batch[2]}, ExpectedVersion::any(), Reason::different_order);
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
        CHECK(on_existing == orchestrix::AppendResult{3, 0, 0, false});
        // The expectation is not checked ...
        CHECK(store->append("acc", std::vector<Envelope>{}, ExpectedVersion::no_stream()) ==
              orchestrix::AppendResult{3, 0, 0, false});
        CHECK(store->append("empty", std::vector<Envelope>{}, ExpectedVersion::exact(7)) ==
              orchestrix::AppendResult{0, 0, 0, false});
        // ... but the stream id is.
        for (const auto& bad : malformed_stream_ids()) {
            CHECK(refused_argument(
                      [&] { (void)store->append(bad, std::vector<Envelope>{}, ExpectedVersion::any()); }) == "stream");
        }
        CHECK(store->stream_version("empty") == 0);
        CHECK(total_events(*store) == 4);
    }
}

TEMPLATE_LIST_TEST_CASE("contract: when several errors apply, the documented first one is thrown", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    using Reason = orchestrix::IdempotencyError::Reason;
    TestType factory;
    auto store = factory.make();
    const auto batch = deposits("acc", 3);
    REQUIRE(store->append("acc", batch, ExpectedVersion::no_stream()).written);
    REQUIRE(store->append("other", deposits("other", 1), ExpectedVersion::no_stream()).written);
    const auto stored = store->read_all(1, orchestrix::unlimited);
    auto changed = [&](std::size_t i) {
        Envelope e = batch[i];
        e.event = MoneyDeposited{"acc", 1000};
        return e;
    };
    const Envelope fresh{MoneyDeposited{"acc", 7}};
    auto refusal = [&](const std::string& stream, const std::vector<Envelope>& events, ExpectedVersion expected,
                       Reason reason, const orchestrix::Uuid& id) {
        try {
            (void)store->append(stream, events, expected);
            FAIL("the append should have been refused");
        } catch (const orchestrix::IdempotencyError& e) {
            CHECK(e.reason() == reason);
            CHECK(e.event_id() == id);
        }
    };
    auto nil = Envelope{MoneyDeposited{"acc", 8}};
    nil.metadata.event_id = orchestrix::Uuid{};

    // 1. the stream id, 2. a nil event id, 3. an id twice in the batch: before anything is looked up.
    CHECK(refused_argument([&] {
              (void)store->append("", std::vector<Envelope>{nil, batch[0], batch[0]}, ExpectedVersion::exact(9));
          }) == "stream");
    CHECK(refused_argument([&] {
              (void)store->append("acc", std::vector<Envelope>{batch[0], batch[0], nil}, ExpectedVersion::exact(9));
          }) == "events");
    refusal("acc", {batch[0], batch[0]}, ExpectedVersion::exact(9), Reason::duplicate_in_batch,
            batch[0].metadata.event_id);
    // 4. stored ids: a partial overlap (naming the first stored id) before any event's own reason ...
    refusal("other", {fresh, changed(1), batch[0]}, ExpectedVersion::exact(9), Reason::partial_overlap,
            batch[1].metadata.event_id);
    // ... then event by event: another stream, then another order, then another payload ...
    refusal("other", {changed(0)}, ExpectedVersion::any(), Reason::different_stream, batch[0].metadata.event_id);
    refusal("acc", {batch[1], changed(0)}, ExpectedVersion::any(), Reason::different_order, batch[0].metadata.event_id);
    refusal("acc", {changed(0), batch[2]}, ExpectedVersion::any(), Reason::different_payload,
            batch[0].metadata.event_id);
    // ... and all of them before the expected version (5.), which a batch of new events meets first.
    refusal("acc", {batch[1], batch[0]}, ExpectedVersion::exact(9), Reason::different_order,
            batch[0].metadata.event_id);
    CHECK_THROWS_AS(store->append("acc", std::vector<Envelope>{fresh}, ExpectedVersion::exact(9)),
                    orchestrix::ConcurrencyError);
    CHECK(store->read_all(1, orchestrix::unlimited) == stored);
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
    CHECK(versions(orchestrix::max_version + 1, 5).empty()); // beyond any version: nothing, not an error
    CHECK(versions(orchestrix::unlimited, orchestrix::unlimited).empty());
    CHECK(versions(1, 0).empty());
    CHECK(versions(0, 0).empty());
    CHECK(versions(11, 0).empty());
    CHECK(store->read_stream("missing", 1, orchestrix::unlimited).empty());
    if constexpr (orchestrix::visitable_event_store<typename TestType::store_type>) {
        std::uint64_t calls = 0;
        const auto count = [&](const View&) { ++calls; };
        CHECK(store->visit_stream("acc", 1, count, 0) == 0);
        CHECK(store->visit_stream("acc", orchestrix::unlimited, count) == 0);
        CHECK(store->visit_stream("missing", 1, count) == 0);
        CHECK(calls == 0);
        CHECK(store->visit_stream("acc", 9, count) == 2);
        CHECK(calls == 2);
    }
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
    CHECK(store->read_all(24, orchestrix::unlimited).size() == 1);
    CHECK(store->read_all(orchestrix::max_version, 5).empty());
    CHECK(store->read_all(orchestrix::max_version + 1, 5).empty()); // beyond any position: nothing, not an error
    CHECK(store->read_all(orchestrix::unlimited, orchestrix::unlimited).empty());
    CHECK(store->read_all(1, 0).empty());
    CHECK(store->read_all(25, 0).empty());
}

TEMPLATE_LIST_TEST_CASE("contract: a vector or array of plain events appends like a braced list", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    TestType factory;
    auto store = factory.make();

    // One event type, then the event variant itself: each event gets a fresh id, as in a braced list.
    const std::vector<test_domain::MoneyDeposited> deposits_only{{"acc-v", 10}, {"acc-v", 20}};
    const auto first = store->append("acc-v", deposits_only, ExpectedVersion::no_stream());
    CHECK(first.stream_version == 2);
    const std::vector<test_domain::AccountEvent> mixed{test_domain::MoneyDeposited{"acc-v", 5},
                                                       test_domain::MoneyWithdrawn{"acc-v", 7}};
    const auto second = store->append("acc-v", mixed, ExpectedVersion::exact(2));
    CHECK(second.stream_version == 4);
    const std::array<test_domain::MoneyWithdrawn, 1> array{test_domain::MoneyWithdrawn{"acc-v", 1}};
    CHECK(store->append("acc-v", array, ExpectedVersion::exact(4)).stream_version == 5);
    CHECK_THROWS_AS(store->append("acc-v", deposits_only, ExpectedVersion::exact(4)), orchestrix::ConcurrencyError);

    const auto events = store->read_stream("acc-v", 1, orchestrix::unlimited);
    REQUIRE(events.size() == 5);
    CHECK(events[0].event == test_domain::AccountEvent{test_domain::MoneyDeposited{"acc-v", 10}});
    CHECK(events[3].event == test_domain::AccountEvent{test_domain::MoneyWithdrawn{"acc-v", 7}});
    std::set<std::string> ids;
    for (const auto& e : events) {
        CHECK_FALSE(e.metadata.event_id.is_nil());
        ids.insert(e.metadata.event_id.to_string());
    }
    CHECK(ids.size() == events.size());
}

TEMPLATE_LIST_TEST_CASE("contract: head_position, visit_all and stream_count, where a store has them", "[contract]",
                        ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    using Tested = typename TestType::store_type;
    TestType factory;
    auto store = factory.make();
    if constexpr (has_head_position<Tested>) CHECK(store->head_position() == 0);
    if constexpr (has_stream_count<Tested>) CHECK(store->stream_count() == 0);

    const auto batch = deposits("a", 2);
    REQUIRE(store->append("a", batch, ExpectedVersion::no_stream()).written);
    REQUIRE(store->append("b", deposits("b", 1), ExpectedVersion::no_stream()).last_position == 3);
    // Appends that write nothing change none of them: an empty batch, a retry, a refused append.
    CHECK_FALSE(store->append("c", std::vector<Envelope>{}, ExpectedVersion::any()).written);
    CHECK_FALSE(store->append("a", batch, ExpectedVersion::no_stream()).written);
    CHECK_THROWS_AS(store->append("a", deposits("a", 1), ExpectedVersion::exact(1)), orchestrix::ConcurrencyError);

    if constexpr (has_head_position<Tested>) CHECK(store->head_position() == 3); // the last stored position
    if constexpr (has_stream_count<Tested>) CHECK(store->stream_count() == 2);   // streams with an event
    if constexpr (has_visit_all<Tested>) {
        std::vector<orchestrix::RecordedEvent<AccountEvent>> seen;
        const auto keep = [&](const View& e) { seen.push_back(e.to_owned()); };
        CHECK(store->visit_all(2, keep, orchestrix::unlimited) == 2); // read_all without copying
        CHECK(seen == store->read_all(2, orchestrix::unlimited));
        CHECK(store->visit_all(0, keep, 1) == 1);
        CHECK(store->visit_all(1, keep, 0) == 0);
        CHECK(store->visit_all(4, keep, orchestrix::unlimited) == 0);
        CHECK(store->visit_all(orchestrix::unlimited, keep, orchestrix::unlimited) == 0);
        REQUIRE(seen.size() == 3);
        CHECK(seen[2].position == 1);
    }
}

TEMPLATE_LIST_TEST_CASE("contract: recorded_at is the store's clock during the append, one value per batch",
                        "[contract]", ORCHESTRIX_CONTRACT_STORES) {
    using namespace contract;
    using std::chrono::system_clock;
    TestType factory;
    auto store = factory.make();

    auto batch = deposits("acc", 3);
    for (auto& e : batch) e.metadata.recorded_at = system_clock::time_point(std::chrono::hours(24)); // ignored
    // Durable stores keep microseconds, truncated.
    const auto before = std::chrono::time_point_cast<std::chrono::microseconds>(system_clock::now());
    REQUIRE(store->append("acc", batch, ExpectedVersion::no_stream()).written);
    const auto after = system_clock::now();
    const auto first = store->read_stream("acc", 1, orchestrix::unlimited);
    REQUIRE(first.size() == 3);
    const auto recorded = first[0].metadata.recorded_at;
    CHECK(recorded >= before);
    CHECK(recorded <= after);
    for (const auto& e : first) CHECK(e.metadata.recorded_at == recorded);

    REQUIRE(store->append("other", deposits("other", 1), ExpectedVersion::no_stream()).written);
    const auto later = store->read_all(4, 1);
    REQUIRE(later.size() == 1);
    CHECK(later[0].metadata.recorded_at >= recorded); // never earlier along positions
    // A retry leaves the recorded time as it was.
    CHECK_FALSE(store->append("acc", batch, ExpectedVersion::no_stream()).written);
    CHECK(store->read_stream("acc", 1, orchestrix::unlimited) == first);
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

    // Readers do not refuse them: no store holds such a stream, so there is nothing to read.
    for (const auto& bad : malformed_stream_ids()) {
        CHECK(store->read_stream(bad, 1, orchestrix::unlimited).empty());
        CHECK(store->stream_version(bad) == 0);
        if constexpr (orchestrix::visitable_event_store<typename TestType::store_type>) {
            CHECK(store->visit_stream(bad, 1, [](const View&) {}) == 0);
        }
    }

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
