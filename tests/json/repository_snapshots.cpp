#include <orchestrix/core/repository.hpp>
#include <orchestrix/json.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/memory/snapshot_store.hpp>

#include "support/catch.hpp"
#include "support/snapshot_domain.hpp"

#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace snapshot_domain;
using Store = orchestrix::InMemoryEventStore<CartEvent>;
using Carts = orchestrix::Repository<Cart, Store, orchestrix::InMemorySnapshotStore>;
using Reason = orchestrix::SnapshotIssue::Reason;

namespace {

// A snapshot store that fails on demand.
class FlakySnapshotStore {
public:
    void save(const orchestrix::Snapshot& s) {
        if (fail_saves) throw orchestrix::StoreError("snapshot table is full");
        inner.save(s);
    }
    [[nodiscard]] std::optional<orchestrix::Snapshot> latest(std::string_view id) const {
        if (fail_reads) throw orchestrix::StoreError("snapshot table is unreadable");
        return inner.latest(id);
    }
    orchestrix::InMemorySnapshotStore inner;
    bool fail_saves = false;
    bool fail_reads = false;
};

struct Issues {
    std::vector<orchestrix::SnapshotIssue> seen;
    std::function<void(const orchestrix::SnapshotIssue&)> hook() {
        return [this](const orchestrix::SnapshotIssue& issue) { seen.push_back(issue); };
    }
};

template <class Policy>
orchestrix::SnapshotSettings<Cart> settings(Policy policy, Issues* issues = nullptr) {
    orchestrix::SnapshotSettings<Cart> s;
    s.policy = std::move(policy);
    s.state = orchestrix::json_state_codec<Cart>();
    if (issues != nullptr) s.on_issue = issues->hook();
    return s;
}

Cart full_replay(const Store& store, const std::string& stream) {
    return Cart::from_history(store.read_stream(stream));
}

} // namespace

TEST_CASE("repository snapshots: a snapshot is taken as the policy says and spares the replay") {
    CountingStore store;
    orchestrix::InMemorySnapshotStore snapshots;
    orchestrix::Repository carts(store, snapshots, settings(orchestrix::snapshot_every(5)), "cart-");

    for (int i = 0; i < 12; ++i) (void)carts.execute("1", AddItem{"sku-" + std::to_string(i % 3), 1, 100});
    const auto snapshot = snapshots.latest("cart-1");
    REQUIRE(snapshot.has_value());
    CHECK(snapshot->version == 10);
    CHECK(snapshot->aggregate_type == "cart");
    CHECK(snapshot->schema_version == 1);
    CHECK(snapshot->state.find("\"total_cents_\":1000") != std::string::npos);

    store.events_read = 0;
    const Cart loaded = carts.load("1");
    CHECK(store.events_read == 2); // versions 11 and 12 only
    CHECK(loaded.version() == 12);
    CHECK(loaded == full_replay(store.inner, "cart-1"));
}

TEST_CASE("repository snapshots: a repository without snapshots works as before") {
    Store store;
    orchestrix::Repository<Cart, Store> carts(store);
    (void)carts.execute("1", AddItem{"a", 2, 5});
    CHECK(carts.load("1").total_cents() == 10);
}

TEST_CASE("repository snapshots: state from snapshot + tail equals a full replay, under every policy") {
    using namespace std::chrono_literals;
    using Settings = orchestrix::SnapshotSettings<Cart>;
    const std::vector<std::pair<const char*, std::function<bool(const orchestrix::SnapshotContext<CartEvent>&)>>>
        policies{
            {"never", orchestrix::never_snapshot()},
            {"every event", orchestrix::snapshot_every(1)},
            {"every 3 events", orchestrix::snapshot_every(3)},
            {"every 7 events", orchestrix::snapshot_every(7)},
            {"after any load", orchestrix::snapshot_when_load_exceeds(0ns)},
            {"on a coupon", orchestrix::snapshot_on<CouponApplied>()},
            {"every 4, on checkout or after a load", orchestrix::snapshot_every(4) ||
                                                         orchestrix::snapshot_on<CartCheckedOut>() ||
                                                         orchestrix::snapshot_when_load_exceeds(0ns)},
            {"custom: version mod 5 below 2",
             orchestrix::snapshot_if(
                 [](const orchestrix::SnapshotContext<CartEvent>& c) { return c.version % 5 < 2; })},
        };
    std::mt19937 rng(1234);
    std::uint64_t snapshots_used = 0;
    for (int history = 0; history < 1000; ++history) {
        const auto& [name, policy] = policies[static_cast<std::size_t>(history) % policies.size()];
        INFO("history " << history << " under policy '" << name << "'");
        Store store;
        orchestrix::InMemorySnapshotStore snapshots;
        Issues issues;
        Settings s;
        s.policy = policy;
        s.state = orchestrix::json_state_codec<Cart>();
        s.on_issue = issues.hook();
        Carts carts(store, snapshots, s);

        const int steps = std::uniform_int_distribution<int>(0, 40)(rng);
        for (int step = 0; step < steps; ++step) {
            Cart cart = carts.find("c").value_or(Cart{});
            const int commands = std::uniform_int_distribution<int>(1, 3)(rng);
            try {
                for (int c = 0; c < commands; ++c) {
                    switch (std::uniform_int_distribution<int>(0, 9)(rng)) {
                    case 0:
                        cart.execute(RemoveItem{"sku-" + std::to_string(rng() % 4)});
                        break;
                    case 1:
                        cart.execute(
                            ApplyCoupon{"C" + std::to_string(rng() % 100), static_cast<std::int32_t>(rng() % 50)});
                        break;
                    case 2:
                        if (rng() % 4 == 0) cart.execute(CheckOut{});
                        break;
                    default:
                        cart.execute(AddItem{"sku-" + std::to_string(rng() % 4),
                                             static_cast<std::int32_t>(1 + rng() % 5),
                                             static_cast<std::int64_t>(rng() % 10000)});
                    }
                }
            } catch (const std::logic_error&) { // a checked-out cart refuses changes; the events so far stay
            }
            (void)carts.save("c", cart);
        }
        const Cart replayed = full_replay(store, "c");
        const auto loaded = carts.find("c");
        if (replayed.version() == 0) {
            CHECK_FALSE(loaded.has_value());
            continue;
        }
        REQUIRE(loaded.has_value());
        CHECK(*loaded == replayed);
        CHECK(issues.seen.empty());
        if (const auto snapshot = snapshots.latest("c")) {
            CHECK(snapshot->version <= replayed.version());
            if (snapshot->version > 0) ++snapshots_used;
        }
    }
    CHECK(snapshots_used > 500); // the policies did take snapshots, so the equivalence was really tested
}

namespace {
class CartV2 : public orchestrix::AggregateRoot<CartV2, CartEvent> {
public:
    static constexpr std::string_view aggregate_type_name = "cart";
    static constexpr std::uint32_t snapshot_schema_version = 2;
    void apply(const ItemAdded& e) { items_ += e.quantity; }
    void apply(const ItemRemoved&) {}
    void apply(const CouponApplied&) {}
    void apply(const CartCheckedOut&) {}
    [[nodiscard]] std::int64_t items() const { return items_; }
    NLOHMANN_DEFINE_TYPE_INTRUSIVE(CartV2, items_)

private:
    std::int64_t items_ = 0;
};
} // namespace

TEST_CASE("repository snapshots: an unusable snapshot is ignored for a full replay and the reason reported") {
    Store store;
    orchestrix::InMemorySnapshotStore snapshots;
    Issues issues;
    Carts carts(store, snapshots, settings(orchestrix::never_snapshot(), &issues));
    for (int i = 0; i < 3; ++i) (void)carts.execute("1", AddItem{"a", 1, 100});
    const Cart expected = full_replay(store, "1");
    REQUIRE(expected.total_cents() == 300);

    const std::string good_state = orchestrix::json_state_codec<Cart>().encode(expected);
    struct Case {
        const char* what;
        orchestrix::Snapshot snapshot;
        Reason reason;
    };
    const std::vector<Case> cases{
        {"corrupt JSON", {"1", "cart", 2, 1, R"({"items_":{"a":2},"coupons_":[)", {}}, Reason::undecodable},
        {"empty state", {"1", "cart", 2, 1, "", {}}, Reason::undecodable},
        {"a missing field",
         {"1", "cart", 2, 1, R"({"items_":{"a":2},"coupons_":[],"checked_out_":false})", {}},
         Reason::undecodable},
        {"a number out of range",
         {"1",
          "cart",
          2,
          1,
          R"({"items_":{"a":4294967298},"coupons_":[],"checked_out_":false,"total_cents_":200})",
          {}},
         Reason::undecodable},
        {"a duplicate key",
         {"1", "cart", 2, 1, R"({"items_":{},"items_":{},"coupons_":[],"checked_out_":false,"total_cents_":200})", {}},
         Reason::undecodable},
        {"an old schema version", {"1", "cart", 2, 0, good_state, {}}, Reason::old_schema_version},
        {"a newer schema version", {"1", "cart", 2, 2, good_state, {}}, Reason::newer_schema_version},
        {"another aggregate type", {"1", "order", 2, 1, good_state, {}}, Reason::wrong_aggregate_type},
        {"ahead of the stream", {"1", "cart", 9, 1, good_state, {}}, Reason::ahead_of_stream},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        (void)snapshots.erase("1");
        snapshots.save(c.snapshot);
        issues.seen.clear();
        CHECK(carts.load("1") == expected);
        REQUIRE(issues.seen.size() == 1);
        CHECK(issues.seen[0].reason == c.reason);
        CHECK(issues.seen[0].stream_id == "1");
        CHECK(issues.seen[0].version == c.snapshot.version);
        CHECK(issues.seen[0].message.find("replaying the full history") != std::string::npos);
        CHECK(snapshots.latest("1") == c.snapshot); // nothing stored or changed
    }

    SECTION("a good snapshot is used without a report") {
        (void)snapshots.erase("1");
        snapshots.save(orchestrix::Snapshot{"1", "cart", 3, 1, good_state, {}});
        issues.seen.clear();
        CHECK(carts.load("1") == expected);
        CHECK(issues.seen.empty());
    }
}

TEST_CASE("repository snapshots: bumping the aggregate's snapshot schema version ignores old snapshots") {
    Store store;
    orchestrix::InMemorySnapshotStore snapshots;
    (void)store.append("1", {ItemAdded{"a", 2, 1}, ItemAdded{"b", 3, 1}}, orchestrix::ExpectedVersion::no_stream());
    snapshots.save(orchestrix::Snapshot{"1", "cart", 2, 1, R"({"items_":99})", {}});

    Issues issues;
    orchestrix::SnapshotSettings<CartV2> s;
    s.policy = orchestrix::snapshot_when_load_exceeds(std::chrono::nanoseconds{0});
    s.state = orchestrix::json_state_codec<CartV2>();
    s.on_issue = issues.hook();
    orchestrix::Repository carts(store, snapshots, s);

    const CartV2 loaded = carts.load("1");
    CHECK(loaded.items() == 5);
    REQUIRE(issues.seen.size() == 1);
    CHECK(issues.seen[0].reason == Reason::old_schema_version);
    // The load replayed everything, so the policy took a fresh snapshot in the new schema.
    REQUIRE(snapshots.latest("1").has_value());
    CHECK(snapshots.latest("1")->schema_version == 2);
    issues.seen.clear();
    CHECK(carts.load("1").items() == 5);
    CHECK(issues.seen.empty());
}

TEST_CASE("repository snapshots: snapshot store failures never fail a command nor corrupt a load") {
    Store store;
    FlakySnapshotStore snapshots;
    Issues issues;
    orchestrix::Repository carts(store, snapshots, settings(orchestrix::snapshot_every(1), &issues));

    snapshots.fail_saves = true;
    const auto result = carts.execute("1", AddItem{"a", 1, 10});
    CHECK(result.append.written);
    REQUIRE(issues.seen.size() == 1);
    CHECK(issues.seen[0].reason == Reason::save_failed);
    CHECK(issues.seen[0].message.find("snapshot table is full") != std::string::npos);

    snapshots.fail_saves = false;
    (void)carts.execute("1", AddItem{"a", 1, 10});
    snapshots.fail_reads = true;
    issues.seen.clear();
    CHECK(carts.load("1").total_cents() == 20);
    REQUIRE(issues.seen.size() == 1);
    CHECK(issues.seen[0].reason == Reason::read_failed);
}

TEST_CASE("repository snapshots: settings without a state codec are refused") {
    Store store;
    orchestrix::InMemorySnapshotStore snapshots;
    orchestrix::SnapshotSettings<Cart> s;
    s.policy = orchestrix::snapshot_every(1);
    CHECK_THROWS_AS(Carts(store, snapshots, s), orchestrix::InvalidArgumentError);
}

TEST_CASE("repository snapshots: a throwing policy is reported and the save stands") {
    Store store;
    orchestrix::InMemorySnapshotStore snapshots;
    Issues issues;
    Carts carts(store, snapshots,
                settings(orchestrix::snapshot_if([](const orchestrix::SnapshotContext<CartEvent>&) -> bool {
                             throw std::runtime_error("policy bug");
                         }),
                         &issues));
    CHECK(carts.execute("1", AddItem{"a", 1, 1}).append.written);
    CHECK(store.stream_version("1") == 1);
    REQUIRE(issues.seen.size() == 1);
    CHECK(issues.seen[0].reason == Reason::save_failed);
    CHECK(snapshots.size() == 0);
}

TEST_CASE("repository snapshots: closing the books: truncated behind a snapshot, the aggregate loads and goes on") {
    Store store;
    orchestrix::InMemorySnapshotStore snapshots;
    orchestrix::Repository carts(store, snapshots, settings(orchestrix::snapshot_every(5)), "cart-");
    for (int i = 0; i < 12; ++i) (void)carts.execute("1", AddItem{"sku-" + std::to_string(i % 3), 1, 100});
    const Cart before = carts.load("1");
    REQUIRE(snapshots.latest("cart-1")->version == 10);

    // Everything the snapshot covers can go: the events from version 11 on stay.
    CHECK(store.truncate_stream("cart-1", 11).events_removed == 10);
    const Cart after = carts.load("1");
    CHECK(after == before);
    CHECK(after.version() == 12);
    (void)carts.execute("1", AddItem{"sku-9", 1, 100});
    CHECK(carts.load("1").version() == 13);

    // Truncating past the snapshot leaves a hole nothing covers: a clear error, not a wrong cart.
    orchestrix::InMemorySnapshotStore none;
    orchestrix::Repository unsnapshotted(store, none, settings(orchestrix::snapshot_every(0)), "cart-");
    CHECK_THROWS_AS(unsnapshotted.load("1"), orchestrix::StreamTruncatedError);
}

TEST_CASE("repository snapshots: a snapshot of a deleted stream's earlier life is not applied to the new one") {
    Store store;
    orchestrix::InMemorySnapshotStore snapshots;
    orchestrix::Repository carts(store, snapshots, settings(orchestrix::snapshot_every(2)), "cart-");
    int adds = 3;
    SECTION("a snapshot before the deletion") {}
    SECTION("a snapshot at the very version the stream was deleted at") { adds = 4; }
    for (int i = 0; i < adds; ++i) (void)carts.execute("1", AddItem{"sku-1", 1, 100});
    REQUIRE(snapshots.latest("cart-1")->version == (adds == 4 ? 4U : 2U));
    store.delete_stream("cart-1", orchestrix::ExpectedVersion::any(), orchestrix::DeleteOptions{});
    (void)carts.execute("1", AddItem{"sku-2", 1, 250}); // a new life
    const Cart cart = carts.load("1");
    CHECK(cart.version() == static_cast<orchestrix::stream_version_t>(adds + 1));
    CHECK(cart.items() == std::map<std::string, std::int32_t>{{"sku-2", 1}});
    CHECK(cart.total_cents() == 250);
}
