#pragma once

// The SQLite event store behind an asynchronous interface: a writer thread and a pool of reader threads, each
// with its own connection to the file (target orchestrix::sqlite).

#include <orchestrix/async/completion.hpp>
#include <orchestrix/async/errors.hpp>
#include <orchestrix/async/event_store.hpp>
#include <orchestrix/async/executor.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

/// Options of `AsyncSqliteEventStore`.
struct AsyncSqliteOptions {
    /// Reader threads, each with a connection of its own: reads run on them, this many at once, beside the
    /// writer. At least 1; 2 by default.
    std::size_t readers = 2;
    /// The options of every connection (durability, busy timeout, secure delete); see `SqliteOptions`.
    SqliteOptions sqlite{};
};

namespace detail::sqlite {

// One asynchronous operation: its completion, and whether it has started, so that a stop request that
// arrives first completes it with `OperationCancelledError` and the queued task then does nothing.
template <class R>
struct AsyncOperation {
    enum class State : std::uint8_t { queued, running, cancelled };

    CompletionSource<R> source;
    std::atomic<State> state{State::queued};
    std::mutex callback_mutex;
    std::optional<std::stop_callback<std::function<void()>>> on_stop;

    // Moves the operation from queued to running; false if it was cancelled first.
    bool start() {
        State expected = State::queued;
        return state.compare_exchange_strong(expected, State::running);
    }
    // Moves the operation from queued to cancelled; false if it had started (or was cancelled) already.
    bool cancel() {
        State expected = State::queued;
        return state.compare_exchange_strong(expected, State::cancelled);
    }
    // Drops the stop callback (it holds this operation): called once the operation has started or was refused.
    void forget_stop() {
        std::lock_guard lock(callback_mutex);
        on_stop.reset();
    }
};

// A connection taken from the readers' pool for one read, given back at the end of the scope.
template <class Store>
class ReaderPool {
public:
    class Lease {
    public:
        Lease(ReaderPool& pool, Store& store) noexcept : pool_(&pool), store_(&store) {}
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() { pool_->give_back(*store_); }
        Store& operator*() const noexcept { return *store_; }
        Store* operator->() const noexcept { return store_; }

    private:
        ReaderPool* pool_;
        Store* store_;
    };

    void add(std::unique_ptr<Store> store) {
        free_.push_back(store.get());
        stores_.push_back(std::move(store));
    }

    // A free connection. There is one for each reader thread, and a read runs on a reader thread, so one is free.
    Lease take() {
        std::lock_guard lock(mutex_);
        if (free_.empty()) throw Error("AsyncSqliteEventStore: no free reader connection (more reads than readers)");
        Store* store = free_.back();
        free_.pop_back();
        return Lease(*this, *store);
    }

    [[nodiscard]] std::span<const std::unique_ptr<Store>> all() const noexcept { return stores_; }

private:
    void give_back(Store& store) {
        std::lock_guard lock(mutex_);
        free_.push_back(&store);
    }

    std::mutex mutex_;
    std::vector<Store*> free_;
    std::vector<std::unique_ptr<Store>> stores_;
};

} // namespace detail::sqlite

/// `SqliteEventStore` behind an asynchronous interface (`async_event_store`): every operation returns at once
/// with a `Completion` that holds its result, or its error, when a thread of the store has run it.
///
///     orchestrix::AsyncSqliteEventStore<AccountEvent> store("bank.db");
///     AppendResult r = co_await store.append_async("account-1", {Deposited{10}}, ExpectedVersion::any());
///     auto events = store.read_stream_async("account-1").get();
///
/// - One writer thread owns the writing connection: appends run there one after the other, in the order
///   they were issued (two appends issued without waiting apply in that order).
/// - `AsyncSqliteOptions::readers` reader threads (2 by default), each with its own connection, run the
///   reads (`read_stream_async`, `read_all_async`, `stream_version_async`) at the same time as each other and
///   as the writer: the file is in WAL mode, where readers do not wait for the writer. A read issued after an
///   append completed sees it.
/// - Each connection is a `SqliteEventStore`: semantics and errors are its own, delivered through the
///   completion (`ConcurrencyError`, `IdempotencyError`, `InvalidArgumentError`, `StoredEventDecodeError`,
///   `SqliteError`). The arguments are taken by value, so the caller's buffers may go at once.
/// - Every operation has an overload with a trailing `std::stop_token`. A stop requested before the operation
///   starts to run completes it at once with `OperationCancelledError` (`not_committed()`), and it never runs.
///   Once it runs it runs to its end: an SQLite call in this process cannot be interrupted halfway, so an
///   operation stopped after it started completes normally with its result (an append: it committed) or with
///   its own error (it did not).
/// - `shutdown()` (also run by the destructor) lets every operation issued so far finish; an operation issued
///   afterwards completes with `StoreError` and does not run.
///
/// The file must be a file: `":memory:"` and `""` (a private database per connection) are refused.
template <event_variant Events, class Codec = JsonCodec<Events>>
class AsyncSqliteEventStore {
public:
    using event_type = Events;
    using envelope_type = EventEnvelope<Events>;
    using recorded_type = RecordedEvent<Events>;
    using sync_store_type = SqliteEventStore<Events, Codec>;

    /// Opens (or creates) the store in the file at `path`: the writer's connection first (it creates or
    /// migrates the tables), then one connection per reader. Throws `InvalidArgumentError("readers")` for 0
    /// readers, `InvalidArgumentError("path")` for `":memory:"` or `""`, and what `SqliteEventStore` throws.
    explicit AsyncSqliteEventStore(std::string path, AsyncSqliteOptions options = {}, Codec codec = Codec{})
        : writer_(std::make_unique<sync_store_type>(checked_path(path), options.sqlite, codec)) {
        if (options.readers == 0) {
            throw InvalidArgumentError("readers", "AsyncSqliteEventStore needs at least 1 reader");
        }
        for (std::size_t i = 0; i < options.readers; ++i) {
            readers_.add(std::make_unique<sync_store_type>(path, options.sqlite, codec));
        }
        write_executor_.emplace(1);
        read_executor_.emplace(options.readers);
    }

    AsyncSqliteEventStore(const AsyncSqliteEventStore&) = delete;
    AsyncSqliteEventStore& operator=(const AsyncSqliteEventStore&) = delete;
    ~AsyncSqliteEventStore() { shutdown(); }

    /// Appends `events` to `stream` if it matches `expected`, on the writer thread, after every append issued
    /// before it (see `SqliteEventStore::append`).
    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::vector<envelope_type> events,
                                                        ExpectedVersion expected) {
        return append_async(std::move(stream), std::move(events), expected, std::stop_token{});
    }

    /// As above; a stop requested on `stop` before the append runs cancels it (`OperationCancelledError`,
    /// not committed).
    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::vector<envelope_type> events,
                                                        ExpectedVersion expected, std::stop_token stop) {
        return run(*write_executor_, "append", std::move(stop),
                   [this, stream = std::move(stream), events = std::move(events), expected] {
                       return writer_->append(stream, std::span<const envelope_type>(events), expected);
                   });
    }

    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::initializer_list<envelope_type> events,
                                                        ExpectedVersion expected, std::stop_token stop = {}) {
        return append_async(std::move(stream), std::vector<envelope_type>(events), expected, std::move(stop));
    }

    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::span<const envelope_type> events,
                                                        ExpectedVersion expected, std::stop_token stop = {}) {
        return append_async(std::move(stream), std::vector<envelope_type>(events.begin(), events.end()), expected,
                            std::move(stop));
    }

    /// Events of `stream` from `from_version` on, at most `max_count` (see `SqliteEventStore::read_stream`),
    /// read on a reader thread.
    [[nodiscard]] Completion<std::vector<recorded_type>>
    read_stream_async(std::string stream, stream_version_t from_version = 1, std::uint64_t max_count = unlimited) {
        return read_stream_async(std::move(stream), from_version, max_count, std::stop_token{});
    }

    /// As above; a stop requested on `stop` before the read runs cancels it.
    [[nodiscard]] Completion<std::vector<recorded_type>> read_stream_async(std::string stream,
                                                                           stream_version_t from_version,
                                                                           std::uint64_t max_count,
                                                                           std::stop_token stop) {
        return run(*read_executor_, "read", std::move(stop),
                   [this, stream = std::move(stream), from_version, max_count] {
                       auto reader = readers_.take();
                       return reader->read_stream(stream, from_version, max_count);
                   });
    }

    /// Events of every stream in global order from `from_position` on, at most `max_count`, read on a
    /// reader thread.
    [[nodiscard]] Completion<std::vector<recorded_type>> read_all_async(position_t from_position = 1,
                                                                        std::uint64_t max_count = unlimited) {
        return read_all_async(from_position, max_count, std::stop_token{});
    }

    /// As above; a stop requested on `stop` before the read runs cancels it.
    [[nodiscard]] Completion<std::vector<recorded_type>> read_all_async(position_t from_position,
                                                                        std::uint64_t max_count, std::stop_token stop) {
        return run(*read_executor_, "read", std::move(stop), [this, from_position, max_count] {
            auto reader = readers_.take();
            return reader->read_all(from_position, max_count);
        });
    }

    /// The stream's current version (0 if it does not exist), read on a reader thread.
    [[nodiscard]] Completion<stream_version_t> stream_version_async(std::string stream) {
        return stream_version_async(std::move(stream), std::stop_token{});
    }

    /// As above; a stop requested on `stop` before the read runs cancels it.
    [[nodiscard]] Completion<stream_version_t> stream_version_async(std::string stream, std::stop_token stop) {
        return run(*read_executor_, "read", std::move(stop), [this, stream = std::move(stream)] {
            auto reader = readers_.take();
            return reader->stream_version(stream);
        });
    }

    /// Reports every append and read to `observer` (store kind "sqlite", on the thread that runs it: the
    /// writer's or a reader's); nullptr detaches. Not synchronized: attach before use.
    void observe(Observer* observer) noexcept {
        writer_->observe(observer);
        for (const auto& reader : readers_.all()) reader->observe(observer);
    }
    /// The attached observer (nullptr if none).
    [[nodiscard]] Observer* observer() const noexcept { return writer_->observer(); }

    /// Lets every operation issued so far finish (appends first, then reads), then stops the threads.
    /// Idempotent.
    void shutdown() {
        write_executor_->shutdown();
        read_executor_->shutdown();
    }

    /// The writer's connection, for synchronous use (`SqliteEventStore` is thread-safe: a call made on it
    /// waits for the writer's running append, and runs outside the order of the asynchronous appends).
    [[nodiscard]] sync_store_type& sync() noexcept { return *writer_; }

private:
    static const std::string& checked_path(const std::string& path) {
        if (path.empty() || path == ":memory:") {
            throw InvalidArgumentError("path", "AsyncSqliteEventStore needs a file: '" + path +
                                                   "' would give each of its connections a database of its own");
        }
        return path;
    }

    // Queues `task` on `executor`; see the class comment for `stop` and for an executor that was shut down.
    template <class Task>
    Completion<std::invoke_result_t<Task&>> run(detail::Executor& executor, const char* operation, std::stop_token stop,
                                                Task task) {
        using R = std::invoke_result_t<Task&>;
        auto op = std::make_shared<detail::sqlite::AsyncOperation<R>>();
        Completion<R> completion = op->source.completion();
        if (stop.stop_possible()) {
            std::lock_guard lock(op->callback_mutex);
            // Runs at once, on this thread, if the stop was requested already.
            op->on_stop.emplace(stop, [op, operation] {
                if (op->cancel()) {
                    op->source.set_exception(std::make_exception_ptr(
                        OperationCancelledError(operation, OperationCancelledError::Outcome::not_committed)));
                }
            });
        }
        bool refused = false;
        // The executor's own completion is not used: the operation's outcome goes to `op->source`.
        (void)executor.submit(
            [op, task = std::move(task)]() mutable {
                if (!op->start()) { // cancelled while queued: its completion is set already
                    op->forget_stop();
                    return;
                }
                op->forget_stop();
                // Published after the catch block has ended: this thread then holds no reference to the
                // exception once the waiting thread can have it.
                std::exception_ptr failure;
                try {
                    op->source.set_value(task());
                    return;
                } catch (...) {
                    failure = std::current_exception();
                }
                op->source.set_exception(std::move(failure));
            },
            [&refused] {
                refused = true;
                return StoreError("the asynchronous store has been shut down; the operation was not run");
            });
        if (refused) {
            op->forget_stop();
            if (op->cancel()) {
                op->source.set_exception(std::make_exception_ptr(StoreError(
                    "the asynchronous store has been shut down; the " + std::string(operation) + " was not run")));
            }
        }
        return completion;
    }

    std::unique_ptr<sync_store_type> writer_;
    detail::sqlite::ReaderPool<sync_store_type> readers_;
    // Last: their threads stop, after running what was queued, before the connections close.
    std::optional<detail::Executor> write_executor_;
    std::optional<detail::Executor> read_executor_;
};

} // namespace orchestrix
