// async_append, async_read_stream, async_read_all, async_stream_version over AsyncSqliteEventStore and
// AsyncInMemoryEventStore: callbacks, use_awaitable, use_future, errors, executors and cancellation.

#include <orchestrix/asio/event_store.hpp>
#include <orchestrix/async/event_store.hpp>
#include <orchestrix/sqlite/async_event_store.hpp>

#include "support/catch.hpp"
#include "support/gate_observer.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::MoneyDeposited;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using SqliteStore = orchestrix::AsyncSqliteEventStore<AccountEvent>;
using MemoryStore = orchestrix::AsyncInMemoryEventStore<AccountEvent>;
using orchestrix::AppendResult;
using orchestrix::ExpectedVersion;

static_assert(orchestrix::detail::asio_adapter::stoppable_store<SqliteStore>);
static_assert(!orchestrix::detail::asio_adapter::stoppable_store<MemoryStore>);

std::vector<Envelope> deposit(const std::string& account, std::int64_t amount) {
    return {Envelope(MoneyDeposited{account, amount})};
}

// A store of each kind, made the same way for the tests that run over both.
struct SqliteMaker {
    test_support::TempDir dir{"orchestrix-asio"};
    std::unique_ptr<SqliteStore> make() {
        orchestrix::AsyncSqliteOptions options;
        options.sqlite.synchronous = orchestrix::SqliteSynchronous::normal;
        return std::make_unique<SqliteStore>(dir.file("events.db"), options);
    }
};
struct MemoryMaker {
    std::unique_ptr<MemoryStore> make() { return std::make_unique<MemoryStore>(); }
};

// An io_context run by a thread of its own, kept running until the end of the scope.
struct IoThread {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread thread{[this] { io.run(); }};
    ~IoThread() {
        work.reset();
        thread.join();
    }
};

} // namespace

TEMPLATE_TEST_CASE("asio store: callbacks complete on their executor's thread, errors as the exception", "",
                   SqliteMaker, MemoryMaker) {
    TestType maker;
    auto store = maker.make();
    IoThread runner;
    const auto io_thread = runner.thread.get_id();

    std::promise<void> done;
    std::vector<std::thread::id> threads;
    std::optional<AppendResult> appended;
    std::exception_ptr conflict;
    std::size_t read = 0;
    std::size_t read_all = 0;
    orchestrix::stream_version_t version = 0;
    const auto on_io = [&](auto handler) { return asio::bind_executor(runner.io, std::move(handler)); };
    orchestrix::async_append(
        *store, "acc", deposit("acc", 5), ExpectedVersion::no_stream(),
        on_io([&](std::exception_ptr error, AppendResult result) {
            threads.push_back(std::this_thread::get_id());
            CHECK_FALSE(error);
            appended = result;
            orchestrix::async_append(
                *store, "acc", deposit("acc", 6), ExpectedVersion::no_stream(),
                on_io([&](std::exception_ptr error2, AppendResult) {
                    threads.push_back(std::this_thread::get_id());
                    conflict = error2;
                    orchestrix::async_read_stream(
                        *store, "acc",
                        on_io([&](std::exception_ptr error3,
                                  std::vector<orchestrix::RecordedEvent<AccountEvent>> events) {
                            CHECK_FALSE(error3);
                            CHECK(events.size() == 1);
                        }));
                    orchestrix::async_read_stream(
                        *store, "acc", 1, orchestrix::unlimited,
                        on_io([&](std::exception_ptr error3,
                                  std::vector<orchestrix::RecordedEvent<AccountEvent>> events) {
                            threads.push_back(std::this_thread::get_id());
                            CHECK_FALSE(error3);
                            read = events.size();
                            orchestrix::async_stream_version(
                                *store, "acc", on_io([&](std::exception_ptr error4, orchestrix::stream_version_t v) {
                                    threads.push_back(std::this_thread::get_id());
                                    CHECK_FALSE(error4);
                                    version = v;
                                    orchestrix::async_read_all(
                                        *store, 1, orchestrix::unlimited,
                                        on_io([&](std::exception_ptr error5,
                                                  std::vector<orchestrix::RecordedEvent<AccountEvent>> all) {
                                            threads.push_back(std::this_thread::get_id());
                                            CHECK_FALSE(error5);
                                            read_all = all.size();
                                            done.set_value();
                                        }));
                                }));
                        }));
                }));
        }));
    REQUIRE(done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    REQUIRE(appended);
    CHECK(appended->stream_version == 1);
    REQUIRE(conflict);
    CHECK_THROWS_AS(std::rethrow_exception(conflict), orchestrix::ConcurrencyError);
    CHECK(read == 1);
    CHECK(version == 1);
    CHECK(read_all == 1);
    REQUIRE(threads.size() == 5);
    for (const auto& id : threads) CHECK(id == io_thread);
}

TEMPLATE_TEST_CASE("asio store: a coroutine co_awaits the operations with use_awaitable", "", SqliteMaker,
                   MemoryMaker) {
    TestType maker;
    auto store = maker.make();
    asio::io_context io;
    bool finished = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            const auto me = std::this_thread::get_id();
            AppendResult first = co_await orchestrix::async_append(*store, "acc", deposit("acc", 1),
                                                                   ExpectedVersion::no_stream(), asio::use_awaitable);
            CHECK(first.stream_version == 1);
            CHECK(std::this_thread::get_id() == me);
            AppendResult second = co_await orchestrix::async_append(
                *store, "acc", deposit("acc", 2), ExpectedVersion::exact(first.stream_version), asio::use_awaitable);
            CHECK(second.stream_version == 2);
            bool conflicted = false;
            try {
                (void)co_await orchestrix::async_append(*store, "acc", deposit("acc", 3), ExpectedVersion::exact(1),
                                                        asio::use_awaitable);
            } catch (const orchestrix::ConcurrencyError& e) {
                conflicted = true;
                CHECK(e.actual() == 2);
            }
            CHECK(conflicted);
            auto events = co_await orchestrix::async_read_stream(*store, "acc", 2, 10, asio::use_awaitable);
            REQUIRE(events.size() == 1);
            CHECK(std::get<MoneyDeposited>(events[0].event).amount == 2);
            const auto version = co_await orchestrix::async_stream_version(*store, "acc", asio::use_awaitable);
            CHECK(version == 2);
            const auto first_of_all = co_await orchestrix::async_read_all(*store, 1, 1, asio::use_awaitable);
            CHECK(first_of_all.size() == 1);
            CHECK(std::this_thread::get_id() == me);
            finished = true;
        },
        asio::detached);
    io.run();
    CHECK(finished);
}

TEMPLATE_TEST_CASE("asio store: use_future gives a std::future that rethrows the store's error", "", SqliteMaker,
                   MemoryMaker) {
    TestType maker;
    auto store = maker.make();
    std::future<AppendResult> ok =
        orchestrix::async_append(*store, "acc", deposit("acc", 1), ExpectedVersion::no_stream(), asio::use_future);
    CHECK(ok.get().stream_version == 1);
    std::future<AppendResult> conflict =
        orchestrix::async_append(*store, "acc", deposit("acc", 1), ExpectedVersion::no_stream(), asio::use_future);
    CHECK_THROWS_AS(conflict.get(), orchestrix::ConcurrencyError);
    std::future<AppendResult> invalid =
        orchestrix::async_append(*store, "", deposit("acc", 1), ExpectedVersion::any(), asio::use_future);
    CHECK_THROWS_AS(invalid.get(), orchestrix::InvalidArgumentError);
    CHECK(orchestrix::async_stream_version(*store, "acc", asio::use_future).get() == 1);
    CHECK(orchestrix::async_read_stream(*store, "acc", asio::use_future).get().size() == 1);
}

TEST_CASE("asio store: cancelling a queued SQLite append completes it with OperationCancelledError") {
    SqliteMaker maker;
    auto store = maker.make();
    test_support::GateObserver gate("blocker");
    store->observe(&gate);
    auto held = store->append_async("blocker", deposit("x", 1), ExpectedVersion::any());
    REQUIRE(gate.wait_entered());

    asio::io_context io;
    asio::cancellation_signal signal;
    std::exception_ptr got;
    bool ran = false;
    orchestrix::async_append(
        *store, "cancelled", deposit("c", 1), ExpectedVersion::any(),
        asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e, AppendResult) {
                                         got = e;
                                         ran = true;
                                     })));
    CHECK(signal.slot().has_handler());
    signal.emit(asio::cancellation_type::total);
    io.run(); // returns once the handler ran, while the writer is still held
    REQUIRE(ran);
    REQUIRE(got);
    try {
        std::rethrow_exception(got);
    } catch (const orchestrix::OperationCancelledError& e) {
        CHECK(e.not_committed());
    }
    CHECK_FALSE(held.ready());

    // A coroutine cancelled through co_spawn's slot (terminal cancellation reaches the awaited operation).
    io.restart();
    asio::cancellation_signal coroutine_signal;
    bool cancelled_in_coroutine = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                (void)co_await orchestrix::async_append(*store, "cancelled-too", deposit("c", 2),
                                                        ExpectedVersion::any(), asio::use_awaitable);
            } catch (const orchestrix::OperationCancelledError& e) {
                cancelled_in_coroutine = e.not_committed();
            }
        },
        asio::bind_cancellation_slot(coroutine_signal.slot(), asio::detached));
    io.poll(); // the coroutine now waits for its append, queued behind the held one
    coroutine_signal.emit(asio::cancellation_type::terminal);
    io.run();
    CHECK(cancelled_in_coroutine);
    CHECK_FALSE(held.ready());

    gate.open();
    CHECK(held.get().stream_version == 1);
    store->shutdown();
    CHECK(store->sync().stream_version("cancelled") == 0);
    CHECK(store->sync().stream_version("cancelled-too") == 0);
}

TEST_CASE("asio store: cancelling a SQLite append that already runs gives its result") {
    SqliteMaker maker;
    auto store = maker.make();
    test_support::GateObserver gate("running");
    store->observe(&gate);
    asio::io_context io;
    asio::cancellation_signal signal;
    std::optional<AppendResult> result;
    std::exception_ptr error;
    orchestrix::async_append(
        *store, "running", deposit("r", 1), ExpectedVersion::no_stream(),
        asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e, AppendResult r) {
                                         error = e;
                                         result = r;
                                     })));
    REQUIRE(gate.wait_entered());
    signal.emit(asio::cancellation_type::total);
    gate.open();
    io.run();
    CHECK_FALSE(error);
    REQUIRE(result);
    CHECK(result->stream_version == 1);
    CHECK(store->sync().stream_version("running") == 1);
}

TEST_CASE("asio store: on the in-memory store a cancellation has no effect and the result arrives") {
    MemoryMaker maker;
    auto store = maker.make();
    test_support::GateObserver gate("blocker");
    store->observe(&gate);
    auto held = store->append_async("blocker", deposit("x", 1), ExpectedVersion::any());
    REQUIRE(gate.wait_entered());

    asio::io_context io;
    asio::cancellation_signal signal;
    std::optional<AppendResult> result;
    std::exception_ptr error;
    orchestrix::async_append(
        *store, "queued", deposit("q", 1), ExpectedVersion::any(),
        asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e, AppendResult r) {
                                         error = e;
                                         result = r;
                                     })));
    CHECK_FALSE(signal.slot().has_handler());
    signal.emit(asio::cancellation_type::total);
    gate.open();
    io.run();
    CHECK_FALSE(error);
    REQUIRE(result);
    CHECK(result->stream_version == 1);
    CHECK(held.get().stream_version == 1);
    CHECK(store->sync().stream_version("queued") == 1);
}
