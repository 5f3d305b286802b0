#pragma once

// The lifecycle contract (include/orchestrix/core/lifecycle.hpp, docs/lifecycle.md): one suite every
// `lifecycle_event_store` passes unchanged.
//
// Include this header after defining ORCHESTRIX_LIFECYCLE_STORES as a std::tuple of factory types:
//
//     struct MyStoreFactory {
//         using store_type = ...;                  // a lifecycle_event_store over test_domain::AccountEvent
//         std::unique_ptr<store_type> make();      // a new, empty store
//     };

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/lifecycle.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#ifndef ORCHESTRIX_LIFECYCLE_STORES
#error "define ORCHESTRIX_LIFECYCLE_STORES as a std::tuple of store factories before including this header"
#endif

namespace lifecycle_contract {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::DeleteMode;
using orchestrix::DeleteOptions;
using orchestrix::ExpectedVersion;
using orchestrix::Recreation;
using orchestrix::StreamDeletedError;
using orchestrix::StreamInfo;
using orchestrix::StreamStatus;

inline std::vector<Envelope> deposits(const std::string& account, int count, std::int64_t first_amount = 1) {
    std::vector<Envelope> batch;
    for (int i = 0; i < count; ++i) batch.emplace_back(MoneyDeposited{account, first_amount + i});
    return batch;
}

template <class Store>
std::vector<orchestrix::position_t> positions_of(const Store& store) {
    std::vector<orchestrix::position_t> out;
    for (const auto& e : store.read_all(1, orchestrix::unlimited)) out.push_back(e.position);
    return out;
}

template <class Store>
std::vector<std::string> streams_of(const Store& store) {
    std::vector<std::string> out;
    for (const auto& e : store.read_all(1, orchestrix::unlimited)) out.push_back(e.stream_id);
    return out;
}

template <class Store>
std::vector<orchestrix::stream_version_t> versions_of(const Store& store, const std::string& stream) {
    std::vector<orchestrix::stream_version_t> out;
    for (const auto& e : store.read_stream(stream, 1, orchestrix::unlimited)) out.push_back(e.version);
    return out;
}

// Runs `f`, which must throw StreamDeletedError; returns "<reason> <stream>" ("none" if it did not throw).
template <class F>
std::string deleted_error(F&& f) {
    try {
        f();
    } catch (const StreamDeletedError& e) {
        return std::string(e.reason() == StreamDeletedError::Reason::tombstoned ? "tombstoned " : "deleted ") +
               e.stream();
    }
    return "none";
}

// Runs `f`, which must throw ConcurrencyError; returns its actual version (-1 if it did not throw).
template <class F>
long long conflict_actual(F&& f) {
    try {
        f();
    } catch (const orchestrix::ConcurrencyError& e) {
        return static_cast<long long>(e.actual());
    }
    return -1;
}

} // namespace lifecycle_contract

TEMPLATE_LIST_TEST_CASE("lifecycle: a soft delete removes the events and the stream reads as not found", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    static_assert(orchestrix::lifecycle_event_store<typename TestType::store_type>);
    store->append("a", deposits("a", 3), ExpectedVersion::no_stream());  // positions 1-3
    store->append("b", deposits("b", 2), ExpectedVersion::no_stream());  // 4-5
    store->append("a", deposits("a", 1, 10), ExpectedVersion::exact(3)); // 6
    store->append("b", deposits("b", 1, 10), ExpectedVersion::exact(2)); // 7

    const orchestrix::RemovalResult removed = store->delete_stream("a", ExpectedVersion::exact(4), DeleteOptions{});
    CHECK(removed.events_removed == 4);
    CHECK(removed.version == 4);

    CHECK(store->read_stream("a", 1, orchestrix::unlimited).empty());
    CHECK(store->stream_version("a") == 0);
    // The other stream keeps its events and positions; the removed positions are skipped, never renumbered.
    CHECK(positions_of(*store) == std::vector<orchestrix::position_t>{4, 5, 7});
    CHECK(streams_of(*store) == std::vector<std::string>{"b", "b", "b"});
    CHECK(store->read_all(2, 1).front().position == 4);
    CHECK(store->read_all(6, orchestrix::unlimited).front().position == 7);
    CHECK(versions_of(*store, "b") == std::vector<orchestrix::stream_version_t>{1, 2, 3});

    const StreamInfo info = store->stream_info("a");
    CHECK(info.status == StreamStatus::deleted);
    CHECK(info.version == 4);
    CHECK(info.first_version == 5);
    CHECK(info.recreation == Recreation::on_append);
    CHECK(store->removed_count() == 4);
    CHECK(store->stream_info("b") == StreamInfo{3, 1, 1, StreamStatus::active, Recreation::on_append});
    CHECK(store->stream_info("never") == StreamInfo{});

    // Deleting again removes nothing.
    CHECK(store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{}).events_removed == 0);
    CHECK(store->removed_count() == 4);
}

TEMPLATE_LIST_TEST_CASE("lifecycle: a delete checks the expected version like an append", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("a", deposits("a", 2), ExpectedVersion::no_stream());
    CHECK(conflict_actual([&] { (void)store->delete_stream("a", ExpectedVersion::exact(1), DeleteOptions{}); }) == 2);
    CHECK_THROWS_AS(store->delete_stream("a", ExpectedVersion::no_stream(), DeleteOptions{DeleteMode::hard}),
                    orchestrix::ConcurrencyError);
    CHECK(versions_of(*store, "a") == std::vector<orchestrix::stream_version_t>{1, 2});
    CHECK(store->stream_info("a").status == StreamStatus::active);
    CHECK(store->removed_count() == 0);
    CHECK(store->delete_stream("a", ExpectedVersion::stream_exists(), DeleteOptions{}).events_removed == 2);
}

TEMPLATE_LIST_TEST_CASE("lifecycle: an append recreates a soft-deleted stream, its versions going on", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("a", deposits("a", 3), ExpectedVersion::no_stream());
    store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{});

    SECTION("expecting any") {
        const orchestrix::AppendResult r = store->append("a", deposits("a", 2, 100), ExpectedVersion::any());
        CHECK(r.stream_version == 5);
        CHECK(r.written);
    }
    SECTION("expecting no_stream") {
        CHECK(store->append("a", deposits("a", 2, 100), ExpectedVersion::no_stream()).stream_version == 5);
    }
    SECTION("expecting version 0") {
        CHECK(store->append("a", deposits("a", 2, 100), ExpectedVersion::exact(0)).stream_version == 5);
    }
    CHECK(versions_of(*store, "a") == std::vector<orchestrix::stream_version_t>{4, 5});
    const auto events = store->read_stream("a", 1, orchestrix::unlimited);
    REQUIRE(events.size() == 2);
    CHECK(std::get<MoneyDeposited>(events[0].event).amount == 100);
    CHECK(store->stream_version("a") == 5);
    CHECK(store->stream_info("a") == StreamInfo{5, 4, 4, StreamStatus::active, Recreation::on_append});
    // Going on from the reported version works as for any stream.
    CHECK(store->append("a", deposits("a", 1), ExpectedVersion::exact(5)).stream_version == 6);
    CHECK(store->read_stream("a", 5, orchestrix::unlimited).front().version == 5);
}

TEMPLATE_LIST_TEST_CASE("lifecycle: a soft-deleted stream refuses every append the recreation policy does not allow",
                        "[lifecycle]", ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("a", deposits("a", 2), ExpectedVersion::no_stream());

    SECTION("on_append: an append whose expectation fails for version 0 is a conflict") {
        store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{DeleteMode::soft, Recreation::on_append});
        CHECK_THROWS_AS(store->append("a", deposits("a", 1), ExpectedVersion::exact(2)), orchestrix::ConcurrencyError);
        CHECK_THROWS_AS(store->append("a", deposits("a", 1), ExpectedVersion::stream_exists()),
                        orchestrix::ConcurrencyError);
        CHECK(store->stream_info("a").status == StreamStatus::deleted);
    }
    SECTION("on_no_stream: only an append expecting no_stream recreates it") {
        store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{DeleteMode::soft, Recreation::on_no_stream});
        CHECK(store->stream_info("a").recreation == Recreation::on_no_stream);
        for (const ExpectedVersion expected :
             {ExpectedVersion::any(), ExpectedVersion::stream_exists(), ExpectedVersion::exact(2)}) {
            CHECK(deleted_error([&] { (void)store->append("a", deposits("a", 1), expected); }) == "deleted a");
        }
        CHECK(store->read_all(1, orchestrix::unlimited).empty());
        CHECK(store->append("a", deposits("a", 1), ExpectedVersion::no_stream()).stream_version == 3);
        CHECK(store->stream_info("a").status == StreamStatus::active);
    }
}

TEMPLATE_LIST_TEST_CASE("lifecycle: a hard delete leaves a tombstone that refuses every write", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("a", deposits("a", 2), ExpectedVersion::no_stream());
    store->append("b", deposits("b", 1), ExpectedVersion::no_stream());

    SECTION("from an active stream") {
        CHECK(store->delete_stream("a", ExpectedVersion::exact(2), DeleteOptions{DeleteMode::hard}).events_removed ==
              2);
    }
    SECTION("from a soft-deleted stream") {
        store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{});
        CHECK(store->delete_stream("a", ExpectedVersion::no_stream(), DeleteOptions{DeleteMode::hard}).events_removed ==
              0);
    }
    CHECK(store->stream_info("a").status == StreamStatus::tombstoned);
    CHECK(store->stream_info("a").version == 2);
    CHECK(store->stream_version("a") == 0);
    CHECK(store->read_stream("a", 1, orchestrix::unlimited).empty());
    for (const ExpectedVersion expected :
         {ExpectedVersion::any(), ExpectedVersion::no_stream(), ExpectedVersion::exact(0), ExpectedVersion::exact(2)}) {
        CHECK(deleted_error([&] { (void)store->append("a", deposits("a", 1), expected); }) == "tombstoned a");
    }
    CHECK_THROWS_AS(store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{}), StreamDeletedError);
    CHECK_THROWS_AS(store->truncate_stream("a", 2), StreamDeletedError);
    // A second hard delete is a no-op (a retry of the first).
    CHECK(store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard}).events_removed == 0);
    CHECK(store->stream_info("a").status == StreamStatus::tombstoned);
    CHECK(positions_of(*store) == std::vector<orchestrix::position_t>{3});
    CHECK(store->removed_count() == 2);
}

TEMPLATE_LIST_TEST_CASE("lifecycle: a stream never written can be tombstoned, reserving its id", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    const orchestrix::RemovalResult r =
        store->delete_stream("reserved", ExpectedVersion::no_stream(), DeleteOptions{DeleteMode::hard});
    CHECK(r == orchestrix::RemovalResult{0, 0});
    CHECK(store->stream_info("reserved").status == StreamStatus::tombstoned);
    CHECK_THROWS_AS(store->append("reserved", deposits("reserved", 1), ExpectedVersion::no_stream()),
                    StreamDeletedError);
    CHECK(store->read_all(1, orchestrix::unlimited).empty());
}

TEMPLATE_LIST_TEST_CASE("lifecycle: truncation removes the events before a version and keeps the stream going",
                        "[lifecycle]", ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("a", deposits("a", 5), ExpectedVersion::no_stream()); // 1-5
    store->append("b", deposits("b", 1), ExpectedVersion::no_stream()); // 6

    CHECK(store->truncate_stream("a", 4) == orchestrix::RemovalResult{3, 5});
    CHECK(versions_of(*store, "a") == std::vector<orchestrix::stream_version_t>{4, 5});
    CHECK(store->read_stream("a", 0, orchestrix::unlimited).front().version == 4);
    CHECK(store->read_stream("a", 5, orchestrix::unlimited).front().version == 5);
    CHECK(store->stream_version("a") == 5);
    CHECK(store->stream_info("a") == StreamInfo{5, 1, 4, StreamStatus::active, Recreation::on_append});
    CHECK(positions_of(*store) == std::vector<orchestrix::position_t>{4, 5, 6});

    // At or below the first version held: nothing to remove.
    CHECK(store->truncate_stream("a", 4).events_removed == 0);
    CHECK(store->truncate_stream("a", 1).events_removed == 0);
    CHECK(store->truncate_stream("a", 0).events_removed == 0);
    // Past the end: refused, nothing changed.
    CHECK_THROWS_AS(store->truncate_stream("a", 7), orchestrix::InvalidArgumentError);
    CHECK(versions_of(*store, "a") == std::vector<orchestrix::stream_version_t>{4, 5});

    // Everything: no event left, the version kept, appends go on from it.
    CHECK(store->truncate_stream("a", 6).events_removed == 2);
    CHECK(store->read_stream("a", 1, orchestrix::unlimited).empty());
    CHECK(store->stream_version("a") == 5);
    CHECK(store->stream_info("a") == StreamInfo{5, 1, 6, StreamStatus::active, Recreation::on_append});
    CHECK_THROWS_AS(store->append("a", deposits("a", 1), ExpectedVersion::no_stream()), orchestrix::ConcurrencyError);
    CHECK(store->append("a", deposits("a", 1), ExpectedVersion::exact(5)).stream_version == 6);
    CHECK(versions_of(*store, "a") == std::vector<orchestrix::stream_version_t>{6});
    CHECK(store->stream_info("a").first_version == 6);
    CHECK(store->removed_count() == 5);

    // A stream never written has nothing to truncate; a deleted stream neither.
    CHECK(store->truncate_stream("never", 1).events_removed == 0);
    CHECK_THROWS_AS(store->truncate_stream("never", 2), orchestrix::InvalidArgumentError);
    store->delete_stream("b", ExpectedVersion::any(), DeleteOptions{});
    CHECK(store->truncate_stream("b", 1).events_removed == 0);
}

TEMPLATE_LIST_TEST_CASE("lifecycle: retention applies only when called, by prefix, count and age", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("log-1", deposits("log-1", 5), ExpectedVersion::no_stream());
    store->append("log-2", deposits("log-2", 2), ExpectedVersion::no_stream());
    store->append("account-1", deposits("account-1", 5), ExpectedVersion::no_stream());
    store->append("log-3", deposits("log-3", 1), ExpectedVersion::no_stream());
    store->delete_stream("log-3", ExpectedVersion::any(), DeleteOptions{});
    const auto now = std::chrono::system_clock::now();

    SECTION("max_count keeps the latest events of each matching stream") {
        const std::vector<orchestrix::RetentionRule> rules{{"log-", 3, std::nullopt}};
        const orchestrix::RetentionReport report = store->apply_retention(rules, now);
        CHECK(report == orchestrix::RetentionReport{1, 2});
        CHECK(versions_of(*store, "log-1") == std::vector<orchestrix::stream_version_t>{3, 4, 5});
        CHECK(versions_of(*store, "log-2") == std::vector<orchestrix::stream_version_t>{1, 2});
        CHECK(versions_of(*store, "account-1").size() == 5);
        // Applying it again removes nothing more.
        CHECK(store->apply_retention(rules, now) == orchestrix::RetentionReport{0, 0});
        // Appends are never trimmed implicitly.
        store->append("log-1", deposits("log-1", 2), ExpectedVersion::exact(5));
        CHECK(versions_of(*store, "log-1").size() == 5);
    }
    SECTION("max_count 0 removes every event and keeps the version") {
        const std::vector<orchestrix::RetentionRule> rules{{"log-2", 0, std::nullopt}};
        CHECK(store->apply_retention(rules, now) == orchestrix::RetentionReport{1, 2});
        CHECK(store->read_stream("log-2", 1, orchestrix::unlimited).empty());
        CHECK(store->stream_version("log-2") == 2);
    }
    SECTION("max_age removes what was recorded before the cutoff") {
        // Every event was recorded before `now`: an age of 0 a minute later removes them all; an hour keeps all.
        const std::vector<orchestrix::RetentionRule> keep{{"", std::nullopt, std::chrono::hours(1)}};
        CHECK(store->apply_retention(keep, now + std::chrono::seconds(1)) == orchestrix::RetentionReport{0, 0});
        const std::vector<orchestrix::RetentionRule> all{{"account-", std::nullopt, std::chrono::seconds(0)}};
        CHECK(store->apply_retention(all, now + std::chrono::minutes(1)) == orchestrix::RetentionReport{1, 5});
        CHECK(store->read_stream("account-1", 1, orchestrix::unlimited).empty());
        CHECK(versions_of(*store, "log-1").size() == 5);
    }
    SECTION("the rule that removes most wins; an empty prefix matches every stream") {
        const std::vector<orchestrix::RetentionRule> rules{{"", 4, std::nullopt}, {"log-1", 1, std::nullopt}};
        CHECK(store->apply_retention(rules, now) == orchestrix::RetentionReport{2, 5});
        CHECK(versions_of(*store, "log-1") == std::vector<orchestrix::stream_version_t>{5});
        CHECK(versions_of(*store, "account-1") == std::vector<orchestrix::stream_version_t>{2, 3, 4, 5});
    }
    SECTION("a rule with no limit removes nothing; a negative age is refused") {
        const std::vector<orchestrix::RetentionRule> none{{"log-", std::nullopt, std::nullopt}};
        CHECK(store->apply_retention(none, now) == orchestrix::RetentionReport{0, 0});
        const std::vector<orchestrix::RetentionRule> bad{{"log-", std::nullopt, std::chrono::seconds(-1)}};
        CHECK_THROWS_AS(store->apply_retention(bad, now), orchestrix::InvalidArgumentError);
        CHECK(versions_of(*store, "log-1").size() == 5);
    }
    CHECK(store->stream_info("log-3").status == StreamStatus::deleted);
}

TEMPLATE_LIST_TEST_CASE("lifecycle: a removed event's id can be appended again as a new event", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    const std::vector<Envelope> batch = deposits("a", 2);
    store->append("a", batch, ExpectedVersion::no_stream());
    store->truncate_stream("a", 3);
    const orchestrix::AppendResult again = store->append("b", batch, ExpectedVersion::no_stream());
    CHECK(again.written);
    CHECK(versions_of(*store, "b") == std::vector<orchestrix::stream_version_t>{1, 2});
}

TEMPLATE_LIST_TEST_CASE("lifecycle: malformed stream ids are refused and change nothing", "[lifecycle]",
                        ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("a", deposits("a", 1), ExpectedVersion::no_stream());
    const std::string nul("a\0b", 3);
    const std::string bad_utf8("\xff\xfe");
    for (const std::string& bad :
         {std::string(), nul, bad_utf8, std::string(orchestrix::max_stream_id_length + 1, 'x')}) {
        CHECK_THROWS_AS(store->delete_stream(bad, ExpectedVersion::any(), DeleteOptions{}),
                        orchestrix::InvalidArgumentError);
        CHECK_THROWS_AS(store->delete_stream(bad, ExpectedVersion::any(), DeleteOptions{DeleteMode::hard}),
                        orchestrix::InvalidArgumentError);
        CHECK_THROWS_AS(store->truncate_stream(bad, 1), orchestrix::InvalidArgumentError);
        CHECK(store->stream_info(bad) == StreamInfo{});
    }
    CHECK(store->read_all(1, orchestrix::unlimited).size() == 1);
    CHECK(store->removed_count() == 0);
}

TEMPLATE_LIST_TEST_CASE("lifecycle: hostile stream ids are deleted byte for byte, no other stream touched",
                        "[lifecycle]", ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    const std::vector<std::string> ids{"it's", "100%", "a_b", "a%", "a", "ab", "\"quoted\"", "space d", "ünï"};
    for (const std::string& id : ids) store->append(id, deposits(id, 2), ExpectedVersion::no_stream());
    store->delete_stream("a%", ExpectedVersion::any(), DeleteOptions{DeleteMode::hard});
    store->truncate_stream("a_b", 2);
    const std::vector<orchestrix::RetentionRule> rules{{"a", 1, std::nullopt}};
    // "a" and "ab" match the prefix "a" (and "a_b" holds 1 already); "a%" is tombstoned; no other stream does.
    CHECK(store->apply_retention(rules, std::chrono::system_clock::now()) == orchestrix::RetentionReport{2, 2});
    for (const std::string& id : ids) {
        INFO(id);
        const std::size_t expected = id == "a%" ? 0 : (id == "a" || id == "ab" || id == "a_b") ? 1 : 2;
        CHECK(store->read_stream(id, 1, orchestrix::unlimited).size() == expected);
    }
}

TEMPLATE_LIST_TEST_CASE("lifecycle: retrying the append that recreated a deleted stream is an idempotent retry",
                        "[lifecycle]", ORCHESTRIX_LIFECYCLE_STORES) {
    using namespace lifecycle_contract;
    TestType factory;
    auto store = factory.make();
    store->append("a", deposits("a", 2), ExpectedVersion::no_stream());
    const Recreation policy = GENERATE(Recreation::on_append, Recreation::on_no_stream);
    store->delete_stream("a", ExpectedVersion::any(), DeleteOptions{DeleteMode::soft, policy});
    const std::vector<Envelope> batch = deposits("a", 2, 7);
    const orchestrix::AppendResult first = store->append("a", batch, ExpectedVersion::no_stream());
    CHECK(first.written);
    CHECK(first.stream_version == 4);
    const orchestrix::AppendResult retry = store->append("a", batch, ExpectedVersion::no_stream());
    CHECK_FALSE(retry.written);
    CHECK(retry.stream_version == 4);
    CHECK(retry.first_position == first.first_position);
    // A retry whose expectation did not hold when the batch was written is still a conflict.
    CHECK(conflict_actual([&] { (void)store->append("a", batch, ExpectedVersion::exact(2)); }) == 4);
    // Going on after the retry works as ever.
    CHECK(store->append("a", deposits("a", 1), ExpectedVersion::exact(4)).stream_version == 5);
    CHECK(versions_of(*store, "a") == std::vector<orchestrix::stream_version_t>{3, 4, 5});
}
