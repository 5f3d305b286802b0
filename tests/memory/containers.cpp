// The in-memory store's building blocks: StableArray (elements never move), UuidIndex (open addressing) and
// SharedMutex (its reader-writer lock).
#include <orchestrix/detail/shared_mutex.hpp>
#include <orchestrix/memory/stable_array.hpp>
#include <orchestrix/memory/uuid_index.hpp>

#include "support/catch.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

using orchestrix::Uuid;
using orchestrix::detail::SharedMutex;
using orchestrix::detail::StableArray;
using orchestrix::detail::UuidIndex;

TEST_CASE("stable array: elements keep their address and value while it grows") {
    StableArray<std::string> array;
    std::vector<const std::string*> addresses;
    const auto value = [](std::size_t i) { return std::to_string(i) + std::string(40, 'x'); }; // heap strings
    for (std::size_t i = 0; i < 10000; ++i) {
        if (i % 7 == 0) array.reserve_more(7);
        addresses.push_back(&array.emplace_back(value(i)));
    }
    REQUIRE(array.size() == 10000);
    std::size_t moved = 0;
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < array.size(); ++i) {
        if (&array[i] != addresses[i]) ++moved;
        if (array[i] != value(i)) ++wrong;
    }
    CHECK(moved == 0);
    CHECK(wrong == 0);
}

TEST_CASE("stable array: truncate destroys the tail and the array grows again in place") {
    auto counter = std::make_shared<int>(0);
    {
        StableArray<std::shared_ptr<int>> array;
        for (int i = 0; i < 100; ++i) array.emplace_back(counter);
        CHECK(counter.use_count() == 101);
        array.truncate(40);
        CHECK(array.size() == 40);
        CHECK(counter.use_count() == 41);
        array.emplace_back(counter);
        CHECK(array.size() == 41);
        CHECK(array[40] == counter);
        array.truncate(100); // larger than the size: nothing happens
        CHECK(array.size() == 41);
    }
    CHECK(counter.use_count() == 1); // the destructor destroyed every element
}

TEST_CASE("stable array: a throwing constructor leaves the size unchanged") {
    struct Fussy {
        explicit Fussy(int v) : value(v) {
            if (v < 0) throw std::invalid_argument("negative");
        }
        int value;
    };
    StableArray<Fussy> array;
    array.emplace_back(1);
    CHECK_THROWS_AS(array.emplace_back(-1), std::invalid_argument);
    CHECK(array.size() == 1);
    array.emplace_back(2);
    CHECK(array[1].value == 2);
}

TEST_CASE("stable array: for_each_run walks any range in order, in runs that line up across element types") {
    StableArray<std::string> strings;
    StableArray<std::uint64_t> numbers;
    for (std::size_t i = 0; i < 1000; ++i) {
        strings.emplace_back(std::to_string(i));
        numbers.emplace_back(i);
    }
    const std::vector<std::pair<std::size_t, std::size_t>> ranges = {{0, 1000}, {0, 0},      {7, 9},     {8, 24},
                                                                     {23, 25},  {999, 1000}, {100, 700}, {5, 6}};
    for (const auto& [begin, end] : ranges) {
        INFO("range [" << begin << ", " << end << ")");
        std::size_t next = begin;
        std::size_t wrong = 0;
        std::vector<std::pair<std::size_t, std::size_t>> runs; // (index, count)
        strings.for_each_run(begin, end, [&](const std::string* first, std::size_t count, std::size_t index) {
            CHECK(index == next);
            CHECK(count > 0);
            runs.emplace_back(index, count);
            for (std::size_t k = 0; k < count; ++k) {
                if (first[k] != std::to_string(index + k) || &first[k] != &strings[index + k]) ++wrong;
            }
            next = index + count;
        });
        CHECK(next == end);
        CHECK(wrong == 0);
        // The same range of an array of another type splits at the same places.
        std::vector<std::pair<std::size_t, std::size_t>> other;
        numbers.for_each_run(begin, end, [&](const std::uint64_t* first, std::size_t count, std::size_t index) {
            other.emplace_back(index, count);
            for (std::size_t k = 0; k < count; ++k) {
                if (first[k] != index + k) ++wrong;
            }
        });
        CHECK(other == runs);
        CHECK(wrong == 0);
    }
    // Runs never cross a block: blocks hold 8, 16, 32, ... elements, so [8, 24) is exactly the second one
    // and [4, 30) spans three.
    std::vector<std::size_t> counts;
    numbers.for_each_run(8, 24, [&](const std::uint64_t*, std::size_t count, std::size_t) { counts.push_back(count); });
    CHECK(counts == std::vector<std::size_t>{16});
    counts.clear();
    numbers.for_each_run(4, 30, [&](const std::uint64_t*, std::size_t count, std::size_t) { counts.push_back(count); });
    CHECK(counts == std::vector<std::size_t>{4, 16, 6});
}

TEST_CASE("shared mutex: one writer at a time, readers together, and a waiting writer is woken") {
    SharedMutex mutex;
    CHECK(mutex.try_lock());
    CHECK_FALSE(mutex.try_lock());
    CHECK_FALSE(mutex.try_lock_shared());
    mutex.unlock();
    CHECK(mutex.try_lock_shared());
    CHECK(mutex.try_lock_shared()); // readers share it
    CHECK_FALSE(mutex.try_lock());
    mutex.unlock_shared();
    mutex.unlock_shared();
    CHECK(mutex.try_lock());
    mutex.unlock();

    // A writer that waits longer than its spinning sleeps, and the last reader's release wakes it.
    std::atomic<bool> written{false};
    mutex.lock_shared();
    std::thread writer([&] {
        const std::unique_lock lock(mutex);
        written = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(written.load());
    mutex.unlock_shared();
    writer.join();
    CHECK(written.load());

    // Readers that wait for a writer are woken by its release.
    std::atomic<int> readers{0};
    mutex.lock();
    std::vector<std::thread> waiting;
    for (int i = 0; i < 3; ++i) {
        waiting.emplace_back([&] {
            const std::shared_lock lock(mutex);
            ++readers;
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(readers.load() == 0);
    mutex.unlock();
    for (auto& t : waiting) t.join();
    CHECK(readers.load() == 3);
}

TEST_CASE("shared mutex: under contention no reader sees a half-done write and no increment is lost") {
    SharedMutex mutex;
    std::uint64_t a = 0; // a writer keeps a == b; readers check it
    std::uint64_t b = 0;
    std::atomic<std::uint64_t> torn{0};
    constexpr int writers = 4;
    constexpr int increments = 20000;
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&] {
            for (int i = 0; i < increments; ++i) {
                const std::unique_lock lock(mutex);
                ++a;
                ++b;
            }
        });
    }
    for (int r = 0; r < 4; ++r) {
        threads.emplace_back([&] {
            for (int i = 0; i < increments; ++i) {
                const std::shared_lock lock(mutex);
                if (a != b) ++torn;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(torn.load() == 0);
    CHECK(a == static_cast<std::uint64_t>(writers) * increments);
    CHECK(b == a);
}

TEST_CASE("uuid index: finds what was inserted, and erase keeps every other entry findable") {
    std::mt19937_64 rng(7);
    const auto random_id = [&] {
        Uuid::bytes_type bytes{};
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
        bytes[0] |= 1U; // never nil
        return Uuid{bytes};
    };
    UuidIndex index;
    std::unordered_map<Uuid, std::uint64_t> expected;
    for (std::uint64_t i = 1; i <= 5000; ++i) {
        const Uuid id = random_id();
        index.reserve_more(1);
        index.insert(id, i);
        expected.emplace(id, i);
    }
    CHECK(index.size() == 5000);
    // Erase a third of them (backward-shift deletion must not cut probe chains).
    std::size_t n = 0;
    for (auto it = expected.begin(); it != expected.end();) {
        if (n++ % 3 == 0) {
            index.erase(it->first);
            it = expected.erase(it);
        } else {
            ++it;
        }
    }
    CHECK(index.size() == expected.size());
    std::size_t missing = 0;
    for (const auto& [id, value] : expected)
        if (index.find(id) != value) ++missing;
    CHECK(missing == 0);
    std::size_t false_hits = 0;
    for (int i = 0; i < 5000; ++i)
        if (index.find(random_id())) ++false_hits;
    CHECK(false_hits == 0);
    index.erase(random_id()); // absent: nothing happens
    CHECK(index.size() == expected.size());
}
