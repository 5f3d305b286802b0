#include <orchestrix/memory/snapshot_store.hpp>

#include "support/catch.hpp"

#include <string>
#include <thread>
#include <vector>

using orchestrix::Snapshot;

TEST_CASE("in-memory snapshot store: keeps the latest snapshot of each aggregate by value") {
    orchestrix::InMemorySnapshotStore store;
    CHECK_FALSE(store.latest("cart-1").has_value());

    Snapshot snapshot{"cart-1", "cart", 5, 1, R"({"n":5})", {}};
    store.save(snapshot);
    snapshot.state = "changed after saving";
    REQUIRE(store.latest("cart-1").has_value());
    CHECK(store.latest("cart-1")->state == R"({"n":5})");

    auto copy = store.latest("cart-1");
    copy->state = "changed the copy";
    CHECK(store.latest("cart-1")->state == R"({"n":5})");

    store.save(Snapshot{"cart-1", "cart", 9, 1, R"({"n":9})", {}});
    CHECK(store.latest("cart-1")->version == 9);
    store.save(Snapshot{"cart-2", "cart", 1, 1, "{}", {}});
    CHECK(store.size() == 2);
    CHECK(store.erase("cart-2"));
    CHECK_FALSE(store.erase("cart-2"));
    CHECK(store.size() == 1);
}

TEST_CASE("in-memory snapshot store: an older snapshot never replaces a newer one of the same schema") {
    orchestrix::InMemorySnapshotStore store;
    store.save(Snapshot{"cart-1", "cart", 9, 1, "nine", {}});
    store.save(Snapshot{"cart-1", "cart", 4, 1, "four", {}});
    CHECK(store.latest("cart-1")->state == "nine");
    // A new schema version replaces it whatever its version: the old one would be ignored anyway.
    store.save(Snapshot{"cart-1", "cart", 4, 2, "four, schema 2", {}});
    CHECK(store.latest("cart-1")->state == "four, schema 2");
}

TEST_CASE("in-memory snapshot store: malformed snapshots are refused and nothing is stored") {
    orchestrix::InMemorySnapshotStore store;
    CHECK_THROWS_AS(store.save(Snapshot{"", "cart", 1, 1, "{}", {}}), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(store.save(Snapshot{"cart-1", "cart", 0, 1, "{}", {}}), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(store.save(Snapshot{std::string(2000, 'x'), "cart", 1, 1, "{}", {}}),
                    orchestrix::InvalidArgumentError);
    CHECK(store.size() == 0);
}

TEST_CASE("in-memory snapshot store: concurrent writers and readers see whole snapshots") {
    orchestrix::InMemorySnapshotStore store;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&store, t] {
            for (unsigned v = 1; v <= 200; ++v) {
                const std::string id = "agg-" + std::to_string(t % 2);
                store.save(Snapshot{id, "cart", v, 1, std::to_string(v), {}});
                const auto latest = store.latest(id);
                if (!latest || latest->state != std::to_string(latest->version))
                    throw std::logic_error("torn snapshot");
            }
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(store.latest("agg-0")->version == 200);
    CHECK(store.latest("agg-1")->version == 200);
}
