#pragma once

// The operations of any asynchronous event store (`async_event_store`) as Asio asynchronous operations
// (target orchestrix::asio).

#include <orchestrix/asio/completion_token.hpp>
#include <orchestrix/async/event_store.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>

#include <cstdint>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace orchestrix {

namespace detail::asio_adapter {

// Whether the store's operations take a trailing `std::stop_token` (`AsyncSqliteEventStore`,
// `AsyncPostgresEventStore`): only then can an Asio cancellation reach them.
template <class Store>
concept stoppable_store = requires(Store& store, std::string stream, std::vector<typename Store::envelope_type> events,
                                   ExpectedVersion expected, std::uint64_t number, std::stop_token stop) {
    store.append_async(stream, std::move(events), expected, stop);
    store.read_stream_async(stream, number, number, stop);
    store.read_all_async(number, number, stop);
    store.stream_version_async(stream, stop);
};

} // namespace detail::asio_adapter

/// Appends `events` to `stream` if it matches `expected` (`store.append_async`), completing through the Asio
/// `token` with `void(std::exception_ptr, AppendResult)`:
///
///     AppendResult r = co_await orchestrix::async_append(store, "account-1", {Deposited{10}},
///                                                        ExpectedVersion::any(), asio::use_awaitable);
///
/// The errors of the store (`ConcurrencyError`, `IdempotencyError`, ...) arrive as the exception. The handler
/// runs through its associated executor (see `async_completion`). Cancellation (the handler's cancellation
/// slot) reaches a store whose operations take a `std::stop_token` (`AsyncSqliteEventStore`,
/// `AsyncPostgresEventStore`): the handler then gets `OperationCancelledError`, or the operation's result if
/// it had committed, as that store documents. On any other store (`AsyncInMemoryEventStore`) a cancellation
/// has no effect and the handler gets the operation's result. The store must outlive the operation.
template <async_event_store Store, class Token>
auto async_append(Store& store, std::string stream, std::vector<typename Store::envelope_type> events,
                  ExpectedVersion expected, Token&& token) {
    constexpr bool stoppable = detail::asio_adapter::stoppable_store<Store>;
    return async_completion(
        [&store, stream = std::move(stream), events = std::move(events), expected](std::stop_token stop) mutable {
            if constexpr (stoppable) {
                return store.append_async(std::move(stream), std::move(events), expected, std::move(stop));
            } else {
                return store.append_async(std::move(stream), std::move(events), expected);
            }
        },
        std::forward<Token>(token), stoppable);
}

/// Events of `stream` from `from_version` on, at most `max_count` (`store.read_stream_async`), completing
/// through `token` with `void(std::exception_ptr, std::vector<RecordedEvent<...>>)`. Executor and
/// cancellation: as `async_append`.
template <async_event_store Store, class Token>
auto async_read_stream(Store& store, std::string stream, stream_version_t from_version, std::uint64_t max_count,
                       Token&& token) {
    constexpr bool stoppable = detail::asio_adapter::stoppable_store<Store>;
    return async_completion(
        [&store, stream = std::move(stream), from_version, max_count](std::stop_token stop) mutable {
            if constexpr (stoppable) {
                return store.read_stream_async(std::move(stream), from_version, max_count, std::move(stop));
            } else {
                return store.read_stream_async(std::move(stream), from_version, max_count);
            }
        },
        std::forward<Token>(token), stoppable);
}

/// Every event of `stream` (`async_read_stream` from version 1, without a limit).
template <async_event_store Store, class Token>
auto async_read_stream(Store& store, std::string stream, Token&& token) {
    return async_read_stream(store, std::move(stream), 1, unlimited, std::forward<Token>(token));
}

/// Events of every stream in global order from `from_position` on, at most `max_count`
/// (`store.read_all_async`), completing through `token` like `async_read_stream`.
template <async_event_store Store, class Token>
auto async_read_all(Store& store, position_t from_position, std::uint64_t max_count, Token&& token) {
    constexpr bool stoppable = detail::asio_adapter::stoppable_store<Store>;
    return async_completion(
        [&store, from_position, max_count](std::stop_token stop) {
            if constexpr (stoppable) {
                return store.read_all_async(from_position, max_count, std::move(stop));
            } else {
                return store.read_all_async(from_position, max_count);
            }
        },
        std::forward<Token>(token), stoppable);
}

/// The stream's current version, 0 if it does not exist (`store.stream_version_async`), completing through
/// `token` with `void(std::exception_ptr, stream_version_t)`. Executor and cancellation: as `async_append`.
template <async_event_store Store, class Token>
auto async_stream_version(Store& store, std::string stream, Token&& token) {
    constexpr bool stoppable = detail::asio_adapter::stoppable_store<Store>;
    return async_completion(
        [&store, stream = std::move(stream)](std::stop_token stop) mutable {
            if constexpr (stoppable) {
                return store.stream_version_async(std::move(stream), std::move(stop));
            } else {
                return store.stream_version_async(std::move(stream));
            }
        },
        std::forward<Token>(token), stoppable);
}

} // namespace orchestrix
