// The in-memory store's building blocks: StableArray (elements never move) and UuidIndex (open addressing).
#include <orchestrix/memory/stable_array.hpp>
#include <orchestrix/memory/uuid_index.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

using orchestrix::Uuid;
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
