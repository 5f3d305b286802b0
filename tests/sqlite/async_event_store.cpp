// AsyncSqliteEventStore: the event-store contract over its completions, the writer's order, readers beside the
// writer, stop tokens and shutdown.

#include <orchestrix/sqlite/async_event_store.hpp>

#include "support/blocking_store.hpp"
#include "support/catch.hpp"
#include "support/gate_observer.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using AsyncStore = orchestrix::AsyncSqliteEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::ExpectedVersion;
using namespace std::chrono_literals;

static_assert(orchestrix::async_event_store<AsyncStore>);
static_assert(orchestrix::event_store<test_support::BlockingStore<AsyncStore>>);

orchestrix::AsyncSqliteOptions fast_options(std::size_t readers = 2) {
    orchestrix::AsyncSqliteOptions options;
    options.readers = readers;
    options.sqlite.synchronous = orchestrix::SqliteSynchronous::normal;
    return options;
}

// Synchronous NORMAL keeps the contract's concurrent appends quick; durability is SqliteEventStore's, tested there.
struct AsyncSqliteStoreFactory {
    using store_type = test_support::BlockingStore<AsyncStore>;
    static constexpr int concurrency_threads = 8;
    static constexpr int concurrency_rounds = 250;
    test_support::TempDir dir{"orchestrix-async-sqlite"};
    int files = 0;
    std::unique_ptr<store_type> make() {
        return std::make_unique<store_type>(
            std::make_unique<AsyncStore>(dir.file("events-" + std::to_string(++files) + ".db"), fast_options()));
    }
};

std::vector<Envelope> deposit(const std::string& account, std::int64_t amount) {
    return {Envelope(MoneyDeposited{account, amount})};
}

// Holds every read of a stream named "meet-..." until `parties` such reads are inside the hook at once (or
// `patience` passed): how many met tells whether reads ran at the same time.
class MeetingObserver : public orchestrix::Observer {
public:
    MeetingObserver(int parties, std::chrono::milliseconds patience) : parties_(parties), patience_(patience) {}
    void on_read(const orchestrix::ReadObservation& o) override {
        if (o.stream.substr(0, 5) != "meet-") return;
        std::unique_lock lock(mutex_);
        ++inside_;
        most_ = std::max(most_, inside_);
        changed_.notify_all();
        changed_.wait_for(lock, patience_, [this] { return most_ >= parties_; });
        --inside_;
    }
    int most() {
        std::lock_guard lock(mutex_);
        return most_;
    }

private:
    int parties_;
    std::chrono::milliseconds patience_;
    std::mutex mutex_;
    std::condition_variable changed_;
    int inside_ = 0;
    int most_ = 0;
};

} // namespace

#define ORCHESTRIX_CONTRACT_STORES std::tuple<AsyncSqliteStoreFactory>
#include "support/event_store_contract.hpp"

TEST_CASE("async sqlite: appends issued without waiting apply in call order on the writer") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    AsyncStore store(dir.file("events.db"), fast_options());
    constexpr int count = 200;
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> appends;
    // Each expects the version the one before it leaves: only the call order satisfies them all.
    for (int i = 0; i < count; ++i) {
        appends.push_back(store.append_async("ordered", deposit("ordered", i),
                                             i == 0 ? ExpectedVersion::no_stream()
                                                    : ExpectedVersion::exact(static_cast<std::uint64_t>(i))));
        // And one event of another stream each time: the global order is the call order too.
        appends.push_back(
            store.append_async("other-" + std::to_string(i), deposit("other", i), ExpectedVersion::any()));
    }
    for (int i = 0; i < count; ++i) {
        CHECK(appends[static_cast<std::size_t>(2 * i)].get().stream_version == static_cast<std::uint64_t>(i + 1));
        (void)appends[static_cast<std::size_t>(2 * i + 1)].get();
    }
    const auto all = store.read_all_async().get();
    REQUIRE(all.size() == 2 * count);
    for (int i = 0; i < count; ++i) {
        CHECK(all[static_cast<std::size_t>(2 * i)].stream_id == "ordered");
        CHECK(std::get<MoneyDeposited>(all[static_cast<std::size_t>(2 * i)].event).amount == i);
        CHECK(all[static_cast<std::size_t>(2 * i + 1)].stream_id == "other-" + std::to_string(i));
    }
}

TEST_CASE("async sqlite: reads complete while the writer is busy, and readers run at the same time") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    AsyncStore store(dir.file("events.db"), fast_options(2));
    test_support::GateObserver gate("blocker");
    MeetingObserver meeting(2, 10s);
    orchestrix::ObserverSet observers{&gate, &meeting};
    store.observe(&observers);
    (void)store.append_async("meet-a", deposit("a", 1), ExpectedVersion::no_stream()).get();
    (void)store.append_async("meet-b", deposit("b", 2), ExpectedVersion::no_stream()).get();

    auto held = store.append_async("blocker", deposit("x", 1), ExpectedVersion::any());
    REQUIRE(gate.wait_entered());
    auto queued = store.append_async("after-blocker", deposit("y", 1), ExpectedVersion::any());

    // The writer is held; two reads meet inside the readers' hooks, so they ran at the same time.
    auto read_a = store.read_stream_async("meet-a");
    auto read_b = store.read_stream_async("meet-b");
    REQUIRE(read_a.wait_for(10s));
    REQUIRE(read_b.wait_for(10s));
    CHECK(meeting.most() == 2);
    CHECK(read_a.get().size() == 1);
    CHECK(read_b.get().size() == 1);
    CHECK(store.stream_version_async("meet-a").get() == 1);
    // The held append has committed (the hook runs after it), so a new read sees it; its completion waits.
    CHECK(store.stream_version_async("blocker").get() == 1);
    CHECK_FALSE(held.ready());
    CHECK_FALSE(queued.ready());

    gate.open();
    CHECK(held.get().stream_version == 1);
    CHECK(queued.get().stream_version == 1);
    store.shutdown();
}

TEST_CASE("async sqlite: with one reader, reads run one at a time") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    AsyncStore store(dir.file("events.db"), fast_options(1));
    MeetingObserver meeting(2, 200ms);
    store.observe(&meeting);
    (void)store.append_async("meet-a", deposit("a", 1), ExpectedVersion::no_stream()).get();
    auto read_a = store.read_stream_async("meet-a");
    auto read_b = store.read_stream_async("meet-a");
    CHECK(read_a.get().size() == 1);
    CHECK(read_b.get().size() == 1);
    CHECK(meeting.most() == 1);
}

TEST_CASE("async sqlite: a stop requested before an operation runs cancels it, and it never runs") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    AsyncStore store(dir.file("events.db"), fast_options());
    test_support::GateObserver gate("blocker");
    store.observe(&gate);

    auto held = store.append_async("blocker", deposit("x", 1), ExpectedVersion::any());
    REQUIRE(gate.wait_entered());

    std::stop_source stop;
    auto cancelled = store.append_async("cancelled", deposit("c", 1), ExpectedVersion::any(), stop.get_token());
    auto kept = store.append_async("kept", deposit("k", 1), ExpectedVersion::any());
    CHECK_FALSE(cancelled.ready());
    stop.request_stop();
    // Completed at once, while the writer is still held.
    REQUIRE(cancelled.ready());
    try {
        (void)cancelled.get();
        FAIL("the cancelled append completed");
    } catch (const orchestrix::OperationCancelledError& e) {
        CHECK(e.not_committed());
        CHECK(e.operation() == "append");
    }

    // A stop requested before the call: cancelled at once; a read too.
    std::stop_source early;
    early.request_stop();
    auto early_append = store.append_async("early", deposit("e", 1), ExpectedVersion::any(), early.get_token());
    REQUIRE(early_append.ready());
    CHECK_THROWS_AS(early_append.get(), orchestrix::OperationCancelledError);
    auto early_read = store.read_stream_async("kept", 1, orchestrix::unlimited, early.get_token());
    REQUIRE(early_read.ready());
    CHECK_THROWS_AS(early_read.get(), orchestrix::OperationCancelledError);
    auto early_version = store.stream_version_async("kept", early.get_token());
    CHECK_THROWS_AS(early_version.get(), orchestrix::OperationCancelledError);
    auto early_all = store.read_all_async(1, orchestrix::unlimited, early.get_token());
    CHECK_THROWS_AS(early_all.get(), orchestrix::OperationCancelledError);

    gate.open();
    CHECK(held.get().stream_version == 1);
    CHECK(kept.get().stream_version == 1);
    store.shutdown();
    CHECK(store.sync().stream_version("cancelled") == 0);
    CHECK(store.sync().stream_version("early") == 0);
    CHECK(store.sync().stream_version("kept") == 1);
}

TEST_CASE("async sqlite: a stop requested once an operation runs leaves it to finish with its result") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    AsyncStore store(dir.file("events.db"), fast_options());
    test_support::GateObserver gate("running");
    store.observe(&gate);

    std::stop_source stop;
    auto running = store.append_async("running", deposit("r", 1), ExpectedVersion::no_stream(), stop.get_token());
    REQUIRE(gate.wait_entered());
    stop.request_stop();
    CHECK_FALSE(running.ready());
    gate.open();
    CHECK(running.get().stream_version == 1); // committed: a result, not an error
    CHECK(store.sync().stream_version("running") == 1);

    // And an operation that fails on its own reports its own error, whatever the stop says.
    std::stop_source second;
    test_support::GateObserver conflict_gate("running");
    store.observe(&conflict_gate);
    auto conflicting = store.append_async("running", deposit("r", 2), ExpectedVersion::no_stream(), second.get_token());
    REQUIRE(conflict_gate.wait_entered());
    second.request_stop();
    conflict_gate.open();
    CHECK_THROWS_AS(conflicting.get(), orchestrix::ConcurrencyError);
}

TEST_CASE("async sqlite: shutdown lets accepted operations finish and refuses later ones") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    auto store = std::make_unique<AsyncStore>(dir.file("events.db"), fast_options());
    test_support::GateObserver gate("blocker");
    store->observe(&gate);

    auto held = store->append_async("blocker", deposit("x", 1), ExpectedVersion::any());
    REQUIRE(gate.wait_entered());
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> accepted;
    for (int i = 0; i < 20; ++i) {
        accepted.push_back(store->append_async("accepted", deposit("a", i), ExpectedVersion::any()));
    }
    auto accepted_read = store->read_stream_async("blocker");

    std::thread closer([&] { store->shutdown(); });
    std::this_thread::sleep_for(50ms);
    gate.open();
    closer.join();
    // shutdown() returned: everything accepted has finished.
    CHECK(held.ready());
    for (auto& c : accepted) REQUIRE(c.ready());
    CHECK(accepted.back().get().stream_version == 20);
    CHECK(accepted_read.get().size() == 1);

    auto refused = store->append_async("refused", deposit("r", 1), ExpectedVersion::any());
    REQUIRE(refused.ready());
    CHECK_THROWS_AS(refused.get(), orchestrix::StoreError);
    CHECK_THROWS_AS(store->read_all_async().get(), orchestrix::StoreError);
    CHECK_THROWS_AS(store->stream_version_async("accepted").get(), orchestrix::StoreError);
    CHECK(store->sync().stream_version("refused") == 0);
    store->shutdown(); // idempotent

    // The destructor too: operations issued before it finish.
    auto second = std::make_unique<AsyncStore>(dir.file("second.db"), fast_options());
    std::vector<orchestrix::Completion<orchestrix::AppendResult>> before_destruction;
    for (int i = 0; i < 50; ++i) {
        before_destruction.push_back(second->append_async("s", deposit("s", i), ExpectedVersion::any()));
    }
    second.reset();
    CHECK(before_destruction.back().get().stream_version == 50);
}

TEST_CASE("async sqlite: bad options are refused with the argument named") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    try {
        AsyncStore store(dir.file("events.db"), fast_options(0));
        FAIL("0 readers accepted");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "readers");
    }
    for (const char* path : {":memory:", ""}) {
        try {
            AsyncStore store(path);
            FAIL("an in-memory database accepted");
        } catch (const orchestrix::InvalidArgumentError& e) {
            CHECK(e.argument() == "path");
        }
    }
}

TEST_CASE("async sqlite: a second store on the same file reads what the first appended") {
    test_support::TempDir dir("orchestrix-async-sqlite");
    const std::string path = dir.file("events.db");
    {
        AsyncStore first(path, fast_options());
        (void)first.append_async("kept", deposit("k", 7), ExpectedVersion::no_stream()).get();
    }
    AsyncStore second(path, fast_options(3));
    const auto events = second.read_stream_async("kept").get();
    REQUIRE(events.size() == 1);
    CHECK(std::get<MoneyDeposited>(events[0].event).amount == 7);
    CHECK_THROWS_AS(second.append_async("kept", deposit("k", 8), ExpectedVersion::no_stream()).get(),
                    orchestrix::ConcurrencyError);
}
