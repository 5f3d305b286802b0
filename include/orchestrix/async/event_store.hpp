#pragma once

#include <orchestrix/async/completion.hpp>
#include <orchestrix/async/executor.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/memory/event_store.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// An event store with an asynchronous face: every operation returns at once with a `Completion` that holds its
/// result or its error. `AsyncInMemoryEventStore`, `AsyncSqliteEventStore` and `AsyncPostgresEventStore` model it.
///
/// - `append_async(stream, events, expected)` -> `Completion<AppendResult>`;
/// - `read_stream_async(stream, from_version, max_count)` and `read_all_async(from_position, max_count)` ->
///   `Completion<std::vector<RecordedEvent<Events>>>`;
/// - `stream_version_async(stream)` -> `Completion<stream_version_t>`;
/// - `shutdown()` lets every accepted operation finish; an operation issued afterwards completes with `StoreError`.
///
/// Semantics and errors are those of `event_store`, delivered through the completion. The arguments are taken by
/// value, so the caller's buffers may go as soon as the call returns. With Asio, `orchestrix/asio/` adapts any
/// model to completion tokens.
template <class S>
concept async_event_store = requires(S& store, std::string stream, std::vector<typename S::envelope_type> events,
                                     ExpectedVersion expected, std::uint64_t number) {
    requires event_variant<typename S::event_type>;
    requires std::same_as<typename S::envelope_type, EventEnvelope<typename S::event_type>>;
    requires std::same_as<typename S::recorded_type, RecordedEvent<typename S::event_type>>;
    { store.append_async(stream, std::move(events), expected) } -> std::same_as<Completion<AppendResult>>;
    {
        store.read_stream_async(stream, number, number)
        } -> std::same_as<Completion<std::vector<typename S::recorded_type>>>;
    { store.read_all_async(number, number) } -> std::same_as<Completion<std::vector<typename S::recorded_type>>>;
    { store.stream_version_async(stream) } -> std::same_as<Completion<stream_version_t>>;
    store.shutdown();
};

/// How an `AsyncInMemoryEventStore` runs.
struct AsyncStoreOptions {
    /// Threads that run the store's operations. With 1 (the default) operations run one after the other
    /// in call order, so two appends issued without waiting apply in the order they were issued.
    std::size_t threads = 1;
};

/// `InMemoryEventStore` behind an asynchronous interface: every operation returns at once with a
/// `Completion` that holds its result, or its error, when a small pool of threads has run it.
///
///     orchestrix::AsyncInMemoryEventStore<UserEvent> store;
///     AppendResult r = co_await store.append_async("user-1", {UserCreated{...}}, ExpectedVersion::no_stream());
///     auto events = store.read_stream_async("user-1").get();
///
/// Semantics and errors are those of `InMemoryEventStore` (see `event_store`), delivered through the
/// completion: `get()` or `co_await` rethrows `ConcurrencyError`, `IdempotencyError`,
/// `InvalidArgumentError`. The arguments are copied, so the caller's buffers may go at once.
/// `shutdown()` (also run by the destructor) lets every accepted operation finish; an operation issued
/// afterwards completes with `StoreError`.
template <event_variant Events>
class AsyncInMemoryEventStore {
public:
    using event_type = Events;
    using envelope_type = EventEnvelope<Events>;
    using recorded_type = RecordedEvent<Events>;

    explicit AsyncInMemoryEventStore(AsyncStoreOptions options = {}) : executor_(checked_threads(options.threads)) {}

    AsyncInMemoryEventStore(const AsyncInMemoryEventStore&) = delete;
    AsyncInMemoryEventStore& operator=(const AsyncInMemoryEventStore&) = delete;
    ~AsyncInMemoryEventStore() { executor_.shutdown(); }

    /// Appends `events` to `stream` if it matches `expected` (see `InMemoryEventStore::append`).
    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::vector<envelope_type> events,
                                                        ExpectedVersion expected) {
        return run([this, stream = std::move(stream), events = std::move(events), expected] {
            return store_.append(stream, std::span<const envelope_type>(events), expected);
        });
    }

    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::initializer_list<envelope_type> events,
                                                        ExpectedVersion expected) {
        return append_async(std::move(stream), std::vector<envelope_type>(events), expected);
    }

    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::span<const envelope_type> events,
                                                        ExpectedVersion expected) {
        return append_async(std::move(stream), std::vector<envelope_type>(events.begin(), events.end()), expected);
    }

    /// Events of `stream` from `from_version` on, at most `max_count` (see `InMemoryEventStore::read_stream`).
    [[nodiscard]] Completion<std::vector<recorded_type>>
    read_stream_async(std::string stream, stream_version_t from_version = 1, std::uint64_t max_count = unlimited) {
        return run([this, stream = std::move(stream), from_version, max_count] {
            return store_.read_stream(stream, from_version, max_count);
        });
    }

    /// Events of every stream in global order from `from_position` on, at most `max_count`.
    [[nodiscard]] Completion<std::vector<recorded_type>> read_all_async(position_t from_position = 1,
                                                                        std::uint64_t max_count = unlimited) {
        return run([this, from_position, max_count] { return store_.read_all(from_position, max_count); });
    }

    /// The stream's current version (0 if it does not exist).
    [[nodiscard]] Completion<stream_version_t> stream_version_async(std::string stream) {
        return run([this, stream = std::move(stream)] { return store_.stream_version(stream); });
    }

    /// Reports every append and read the store runs to `observer` (store kind "memory": the store underneath
    /// reports them, on the thread that runs them); nullptr detaches. Not synchronized: attach before use.
    void observe(Observer* observer) noexcept { store_.observe(observer); }
    /// The attached observer (nullptr if none).
    [[nodiscard]] Observer* observer() const noexcept { return store_.observer(); }

    /// Lets every operation issued so far finish, then stops the threads. Idempotent.
    void shutdown() { executor_.shutdown(); }

    /// The store underneath, for synchronous use (it is thread-safe).
    [[nodiscard]] InMemoryEventStore<Events>& sync() noexcept { return store_; }
    [[nodiscard]] const InMemoryEventStore<Events>& sync() const noexcept { return store_; }

private:
    static std::size_t checked_threads(std::size_t threads) {
        if (threads == 0) throw InvalidArgumentError("threads", "AsyncInMemoryEventStore needs at least 1 thread");
        return threads;
    }

    template <class Operation>
    auto run(Operation operation) {
        return executor_.submit(std::move(operation), [] {
            return StoreError("the asynchronous store has been shut down; the operation was not run");
        });
    }

    InMemoryEventStore<Events> store_;
    detail::Executor executor_; // after store_: its threads stop before the store goes
};

} // namespace orchestrix
