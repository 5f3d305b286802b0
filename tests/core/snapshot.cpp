#include <orchestrix/core/snapshot.hpp>

#include "support/catch.hpp"
#include "support/snapshot_domain.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace snapshot_domain;
using orchestrix::SnapshotContext;
using orchestrix::SnapshotTrigger;
using Envelope = orchestrix::EventEnvelope<CartEvent>;

namespace {

SnapshotContext<CartEvent> saved(orchestrix::stream_version_t version, const std::vector<Envelope>& batch) {
    SnapshotContext<CartEvent> c;
    c.trigger = SnapshotTrigger::saved;
    c.stream_id = "cart-1";
    c.version = version;
    c.events = batch;
    return c;
}

SnapshotContext<CartEvent> loaded(orchestrix::stream_version_t version, std::uint64_t replayed,
                                  std::chrono::nanoseconds took) {
    SnapshotContext<CartEvent> c;
    c.trigger = SnapshotTrigger::loaded;
    c.stream_id = "cart-1";
    c.version = version;
    c.events_replayed = replayed;
    c.rebuild_time = took;
    return c;
}

std::vector<Envelope> batch_of(std::size_t n) { return std::vector<Envelope>(n, Envelope{ItemRemoved{"x"}}); }

struct NotAStore {
    void save(const orchestrix::Snapshot&) {}
};
struct MinimalStore {
    void save(const orchestrix::Snapshot&) {}
    [[nodiscard]] std::optional<orchestrix::Snapshot> latest(std::string_view) const { return std::nullopt; }
};

struct Versioned {
    static constexpr std::uint32_t snapshot_schema_version = 4;
};

} // namespace

static_assert(orchestrix::snapshot_store<MinimalStore>);
static_assert(!orchestrix::snapshot_store<NotAStore>);
static_assert(!orchestrix::snapshot_store<int>);
static_assert(orchestrix::snapshot_schema_version_of<Versioned> == 4);
static_assert(orchestrix::snapshot_schema_version_of<Cart> == 1);
static_assert(orchestrix::snapshot_policy<orchestrix::SnapshotEvery>);
static_assert(!orchestrix::snapshot_policy<int>);

TEST_CASE("snapshot policy: every N events fires when a save crosses a multiple of N") {
    const auto every = orchestrix::snapshot_every(10);
    CHECK_FALSE(every(saved(9, batch_of(9))));
    CHECK(every(saved(10, batch_of(1))));
    CHECK(every(saved(12, batch_of(5)))); // 7 -> 12 crosses 10
    CHECK_FALSE(every(saved(19, batch_of(8))));
    CHECK(every(saved(25, batch_of(20))));
    CHECK_FALSE(every(loaded(100, 100, std::chrono::hours{1}))); // loads never count
    CHECK_FALSE(orchestrix::snapshot_every(0)(saved(10, batch_of(10))));
    const auto each = orchestrix::snapshot_every(1);
    CHECK(each(saved(1, batch_of(1))));
}

TEST_CASE("snapshot policy: a slow load fires only after a load that replayed events") {
    using namespace std::chrono_literals;
    const auto slow = orchestrix::snapshot_when_load_exceeds(5ms);
    CHECK(slow(loaded(50, 50, 5ms)));
    CHECK(slow(loaded(50, 3, 7ms)));
    CHECK_FALSE(slow(loaded(50, 50, 4ms)));
    CHECK_FALSE(slow(loaded(50, 0, 1s))); // nothing replayed: the snapshot is current
    CHECK_FALSE(slow(saved(50, batch_of(50))));
}

TEST_CASE("snapshot policy: an event predicate sees the events just saved") {
    const std::vector<Envelope> checkout{Envelope{ItemAdded{"a", 1, 5}}, Envelope{CartCheckedOut{}}};
    const std::vector<Envelope> no_checkout{Envelope{ItemAdded{"a", 1, 5}}};

    const auto on_checkout = orchestrix::snapshot_on<CartCheckedOut>();
    CHECK(on_checkout(saved(2, checkout)));
    CHECK_FALSE(on_checkout(saved(1, no_checkout)));

    const auto big_item =
        orchestrix::snapshot_when_event([](const ItemAdded& e) { return e.quantity * e.price_cents > 100; });
    CHECK_FALSE(big_item(saved(1, no_checkout)));
    CHECK(big_item(saved(1, {Envelope{ItemAdded{"b", 3, 50}}})));

    const auto whole_variant = orchestrix::snapshot_when_event([](const CartEvent& e) { return e.index() == 3; });
    CHECK(whole_variant(saved(2, checkout)));
    CHECK_FALSE(whole_variant(saved(1, no_checkout)));

    const auto any_event = orchestrix::snapshot_when_event([](const auto&) { return true; });
    CHECK(any_event(saved(1, no_checkout)));
    CHECK_FALSE(any_event(loaded(1, 1, {})));
}

TEST_CASE("snapshot policy: policies combine with ||, and never means never") {
    using namespace std::chrono_literals;
    const auto combined = orchestrix::snapshot_every(100) || orchestrix::snapshot_on<CartCheckedOut>() ||
                          orchestrix::snapshot_when_load_exceeds(1s);
    const std::vector<Envelope> checkout{Envelope{CartCheckedOut{}}};
    CHECK(combined(saved(5, checkout)));
    CHECK(combined(saved(100, batch_of(1))));
    CHECK(combined(loaded(7, 7, 2s)));
    CHECK_FALSE(combined(saved(7, batch_of(1))));
    CHECK_FALSE(combined(loaded(7, 7, 1ms)));

    const auto never = orchestrix::never_snapshot();
    CHECK_FALSE(never(saved(100, checkout)));
    CHECK_FALSE(never(loaded(100, 100, 1h)));

    const auto custom = orchestrix::snapshot_if([](const SnapshotContext<CartEvent>& c) { return c.version % 3 == 0; });
    CHECK(custom(saved(6, batch_of(1))));
    CHECK_FALSE(custom(saved(7, batch_of(1))));
    CHECK((never || custom)(saved(9, batch_of(1))));

    // A combined policy converts to the repository's std::function.
    orchestrix::SnapshotSettings<Cart> settings;
    settings.policy = combined;
    CHECK(settings.policy(saved(5, checkout)));
}

TEST_CASE("snapshot: a snapshot is a value") {
    orchestrix::Snapshot a{"cart-1", "cart", 3, 1, R"({"x":1})", {}};
    orchestrix::Snapshot b = a;
    CHECK(a == b);
    b.state = "{}";
    CHECK_FALSE(a == b);
}
