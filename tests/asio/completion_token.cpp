// async_completion: a Completion<T> completed through Asio completion tokens.

#include <orchestrix/asio/completion_token.hpp>

#include "support/catch.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>

namespace {

using namespace std::chrono_literals;

// Sets `source` to `value` from another thread after `delay`.
std::jthread set_later(orchestrix::CompletionSource<int>& source, int value, std::chrono::milliseconds delay) {
    return std::jthread([&source, value, delay] {
        std::this_thread::sleep_for(delay);
        source.set_value(value);
    });
}

} // namespace

TEST_CASE("asio completion: a callback runs through its executor, never inside the call or on the setter's thread") {
    asio::io_context io;
    orchestrix::CompletionSource<int> source;
    std::optional<int> got;
    std::thread::id ran_on;
    orchestrix::async_completion([&](std::stop_token) { return source.completion(); },
                                 asio::bind_executor(io, [&](std::exception_ptr error, int value) {
                                     CHECK_FALSE(error);
                                     got = value;
                                     ran_on = std::this_thread::get_id();
                                 }));
    { auto setter = set_later(source, 42, 0ms); }
    CHECK_FALSE(got); // set, but the handler waits for its executor
    io.run();
    REQUIRE(got);
    CHECK(*got == 42);
    CHECK(ran_on == std::this_thread::get_id());

    // Ready before the call: still posted, not run inside it.
    io.restart();
    got.reset();
    orchestrix::async_completion([](std::stop_token) { return orchestrix::Completion<int>::ready_with(7); },
                                 asio::bind_executor(io, [&](std::exception_ptr, int value) { got = value; }));
    CHECK_FALSE(got);
    io.run();
    CHECK(got == 7);
}

TEST_CASE("asio completion: io_context::run() waits for a pending operation") {
    asio::io_context io;
    orchestrix::CompletionSource<int> source;
    bool ran = false;
    orchestrix::async_completion([&](std::stop_token) { return source.completion(); },
                                 asio::bind_executor(io, [&](std::exception_ptr, int value) {
                                     CHECK(value == 5);
                                     ran = true;
                                 }));
    auto setter = set_later(source, 5, 100ms);
    io.run(); // no work guard: the operation itself keeps run() going
    CHECK(ran);
}

TEST_CASE("asio completion: a failure arrives as the exception, and use_future rethrows it") {
    asio::io_context io;
    std::exception_ptr got;
    orchestrix::async_completion(
        [](std::stop_token) {
            return orchestrix::Completion<int>::failed_with(
                std::make_exception_ptr(orchestrix::InvalidArgumentError("x", "bad x")));
        },
        asio::bind_executor(io, [&](std::exception_ptr error, int value) {
            got = error;
            CHECK(value == 0);
        }));
    io.run();
    REQUIRE(got);
    CHECK_THROWS_AS(std::rethrow_exception(got), orchestrix::InvalidArgumentError);

    std::future<int> failed = orchestrix::async_completion(
        [](std::stop_token) {
            return orchestrix::Completion<int>::failed_with(std::make_exception_ptr(std::runtime_error("no")));
        },
        asio::use_future);
    CHECK_THROWS_AS(failed.get(), std::runtime_error);
    std::future<int> succeeded = orchestrix::async_completion(
        [](std::stop_token) { return orchestrix::Completion<int>::ready_with(3); }, asio::use_future);
    CHECK(succeeded.get() == 3);
}

TEST_CASE("asio completion: Completion<void> completes with void(std::exception_ptr)") {
    asio::io_context io;
    orchestrix::CompletionSource<void> source;
    bool ran = false;
    orchestrix::async_completion([&](std::stop_token) { return source.completion(); },
                                 asio::bind_executor(io, [&](std::exception_ptr error) {
                                     CHECK_FALSE(error);
                                     ran = true;
                                 }));
    source.set_value();
    io.run();
    CHECK(ran);
    std::future<void> failed = orchestrix::async_completion(
        [](std::stop_token) {
            return orchestrix::Completion<void>::failed_with(std::make_exception_ptr(std::runtime_error("no")));
        },
        asio::use_future);
    CHECK_THROWS_AS(failed.get(), std::runtime_error);
}

TEST_CASE("asio completion: use_awaitable resumes the coroutine on its executor's thread") {
    asio::io_context io;
    orchestrix::CompletionSource<int> source;
    std::jthread setter;
    std::optional<int> got;
    std::thread::id resumed_on;
    bool caught = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            got = co_await orchestrix::async_completion(
                [&](std::stop_token) {
                    setter = set_later(source, 9, 20ms);
                    return source.completion();
                },
                asio::use_awaitable);
            resumed_on = std::this_thread::get_id();
            try {
                (void)co_await orchestrix::async_completion(
                    [](std::stop_token) {
                        return orchestrix::Completion<int>::failed_with(
                            std::make_exception_ptr(orchestrix::StoreError("down")));
                    },
                    asio::use_awaitable);
            } catch (const orchestrix::StoreError&) {
                caught = true;
            }
        },
        asio::detached);
    io.run();
    CHECK(got == 9);
    CHECK(resumed_on == std::this_thread::get_id());
    CHECK(caught);
}

TEST_CASE("asio completion: with deferred, the operation starts only when it is launched") {
    asio::io_context io;
    bool started = false;
    std::optional<int> got;
    auto deferred = orchestrix::async_completion(
        [&](std::stop_token) {
            started = true;
            return orchestrix::Completion<int>::ready_with(11);
        },
        asio::experimental::deferred);
    CHECK_FALSE(started);
    std::move(deferred)(asio::bind_executor(io, [&](std::exception_ptr, int value) { got = value; }));
    CHECK(started);
    io.run();
    CHECK(got == 11);
}

TEST_CASE("asio completion: a cancellation slot asks the operation's stop token to stop") {
    asio::io_context io;
    asio::cancellation_signal signal;
    orchestrix::CompletionSource<int> source;
    std::stop_token token;
    std::optional<int> got;
    orchestrix::async_completion(
        [&](std::stop_token stop) {
            token = stop;
            return source.completion();
        },
        asio::bind_cancellation_slot(signal.slot(),
                                     asio::bind_executor(io, [&](std::exception_ptr, int value) { got = value; })));
    REQUIRE(token.stop_possible());
    CHECK(signal.slot().has_handler());
    CHECK_FALSE(token.stop_requested());
    signal.emit(asio::cancellation_type::total);
    CHECK(token.stop_requested());
    // What the operation reports is what the handler gets (here it finishes anyway).
    source.set_value(1);
    io.run();
    CHECK(got == 1);
    CHECK_FALSE(signal.slot().has_handler()); // cleared before the handler ran

    // Not cancellable: the slot is left alone and the token cannot stop.
    io.restart();
    std::stop_token untouched;
    orchestrix::async_completion(
        [&](std::stop_token stop) {
            untouched = stop;
            return orchestrix::Completion<int>::ready_with(2);
        },
        asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(io, [&](std::exception_ptr, int) {})), false);
    CHECK_FALSE(untouched.stop_possible());
    CHECK_FALSE(signal.slot().has_handler());
    io.run();

    // Without a slot, nothing to connect.
    io.restart();
    std::stop_token no_slot;
    orchestrix::async_completion(
        [&](std::stop_token stop) {
            no_slot = stop;
            return orchestrix::Completion<int>::ready_with(3);
        },
        asio::bind_executor(io, [&](std::exception_ptr, int) {}));
    CHECK_FALSE(no_slot.stop_possible());
    io.run();
}
