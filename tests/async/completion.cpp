#include <orchestrix/async/completion.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <coroutine>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// A coroutine that awaits a completion another thread sets, and returns a value derived from it.
orchestrix::Completion<int> twice(orchestrix::Completion<int> input) {
    const int value = co_await std::move(input);
    co_return value * 2;
}

orchestrix::Completion<void> fails_after(orchestrix::Completion<void> input) {
    co_await std::move(input);
    throw std::runtime_error("failed after resuming");
}

orchestrix::Completion<std::string> immediately() { co_return "done"; }

} // namespace

TEST_CASE("completion: a source sets the value that get() returns") {
    orchestrix::CompletionSource<int> source;
    auto completion = source.completion();
    CHECK(completion.valid());
    CHECK_FALSE(completion.ready());
    source.set_value(42);
    CHECK(completion.ready());
    CHECK(completion.get() == 42);
    CHECK_FALSE(completion.valid()); // consumed
    REQUIRE_THROWS_AS(completion.get(), orchestrix::Error);
}

TEST_CASE("completion: get() rethrows the failure") {
    orchestrix::CompletionSource<void> source;
    auto completion = source.completion();
    source.set_exception(std::make_exception_ptr(std::out_of_range("nope")));
    CHECK(completion.exception() != nullptr);
    REQUIRE_THROWS_AS(completion.get(), std::out_of_range);
}

TEST_CASE("completion: the outcome is set once, and completion() is handed out once") {
    orchestrix::CompletionSource<int> source;
    auto completion = source.completion();
    REQUIRE_THROWS_AS((void)source.completion(), orchestrix::Error);
    source.set_value(1);
    REQUIRE_THROWS_AS(source.set_value(2), orchestrix::Error);
    REQUIRE_THROWS_AS(source.set_exception(std::make_exception_ptr(1)), orchestrix::Error);
    CHECK(completion.get() == 1);
}

TEST_CASE("completion: an empty completion refuses every call") {
    orchestrix::Completion<int> empty;
    CHECK_FALSE(empty.valid());
    REQUIRE_THROWS_AS((void)empty.ready(), orchestrix::Error);
    REQUIRE_THROWS_AS(empty.wait(), orchestrix::Error);
    REQUIRE_THROWS_AS(empty.get(), orchestrix::Error);
}

TEST_CASE("completion: wait() blocks until another thread sets the outcome") {
    orchestrix::CompletionSource<std::string> source;
    auto completion = source.completion();
    std::latch waiting(1);
    std::thread producer([&] {
        waiting.wait();
        source.set_value("from the producer");
    });
    CHECK_FALSE(completion.wait_for(std::chrono::milliseconds(0)));
    waiting.count_down();
    completion.wait();
    CHECK(completion.ready());
    CHECK(completion.get() == "from the producer");
    producer.join();
}

TEST_CASE("completion: ready-made completions") {
    CHECK(orchestrix::Completion<int>::ready_with(5).get() == 5);
    REQUIRE_NOTHROW(orchestrix::Completion<void>::ready_with().get());
    auto failed = orchestrix::Completion<int>::failed_with(std::make_exception_ptr(std::logic_error("x")));
    CHECK(failed.ready());
    REQUIRE_THROWS_AS(failed.get(), std::logic_error);
}

TEST_CASE("completion: a coroutine awaits a completion set on another thread and resumes there") {
    orchestrix::CompletionSource<int> source;
    auto result = twice(source.completion());
    CHECK_FALSE(result.ready()); // suspended at co_await
    std::thread::id resumed_on;
    std::thread producer([&] {
        source.set_value(21);
        resumed_on = std::this_thread::get_id();
    });
    producer.join();
    CHECK(result.ready());
    CHECK(result.get() == 42);
    CHECK(resumed_on != std::thread::id{});
}

TEST_CASE("completion: awaiting a ready completion does not suspend") {
    auto result = twice(orchestrix::Completion<int>::ready_with(4));
    CHECK(result.ready());
    CHECK(result.get() == 8);
    CHECK(immediately().get() == "done");
}

TEST_CASE("completion: a coroutine's exception reaches its completion") {
    orchestrix::CompletionSource<void> source;
    auto result = fails_after(source.completion());
    CHECK_FALSE(result.ready());
    source.set_value();
    REQUIRE_THROWS_AS(result.get(), std::runtime_error);

    SECTION("and an awaited failure propagates through co_await") {
        auto failed = twice(orchestrix::Completion<int>::failed_with(std::make_exception_ptr(std::range_error("r"))));
        REQUIRE_THROWS_AS(failed.get(), std::range_error);
    }
}
