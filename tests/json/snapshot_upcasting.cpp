// Snapshot upcasters: snapshots of older schema versions upcast through json_state_codec<A>().upcast(k, f)
// and used, or ignored with a reason; in every case the loaded state equals the full replay.

#include <orchestrix/core/repository.hpp>
#include <orchestrix/json.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/memory/snapshot_store.hpp>

#include "support/catch.hpp"
#include "support/snapshot_domain.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace snapshot_domain;
using Reason = orchestrix::SnapshotIssue::Reason;

namespace {

// The cart of snapshot_domain at snapshot schema version 3. Its state JSON went through three shapes:
//   v1: {"items": [["a", 2], ...], "coupons": "C1,C2", "checked_out": 0, "total": 300}
//   v2: {"items_": {"a": 2}, "coupons_": ["C1", "C2"], "checked_out_": 0, "total_cents_": 300}
//   v3: {"items_": {"a": 2}, "coupons_": ["C1", "C2"], "checked_out_": false, "total_cents_": 300}
class CartV3 : public orchestrix::AggregateRoot<CartV3, CartEvent> {
public:
    static constexpr std::string_view aggregate_type_name = "cart";
    static constexpr std::uint32_t snapshot_schema_version = 3;

    void apply(const ItemAdded& e) {
        items_[e.sku] += e.quantity;
        total_cents_ += e.quantity * e.price_cents;
    }
    void apply(const ItemRemoved& e) { items_.erase(e.sku); }
    void apply(const CouponApplied& e) {
        coupons_.push_back(e.code);
        total_cents_ -= total_cents_ * e.percent / 100;
    }
    void apply(const CartCheckedOut&) { checked_out_ = true; }

    [[nodiscard]] std::int64_t total_cents() const { return total_cents_; }

    friend bool operator==(const CartV3& a, const CartV3& b) {
        return a.items_ == b.items_ && a.coupons_ == b.coupons_ && a.checked_out_ == b.checked_out_ &&
               a.total_cents_ == b.total_cents_ && a.version() == b.version();
    }

    NLOHMANN_DEFINE_TYPE_INTRUSIVE(CartV3, items_, coupons_, checked_out_, total_cents_)

private:
    std::map<std::string, std::int32_t> items_;
    std::vector<std::string> coupons_;
    bool checked_out_ = false;
    std::int64_t total_cents_ = 0;
};

using Store = orchestrix::InMemoryEventStore<CartEvent>;

// ---- the old shapes, written the way the programs of those days wrote them ----------------------------

nlohmann::json v3_to_v2(nlohmann::json state) {
    state["checked_out_"] = state.at("checked_out_").get<bool>() ? 1 : 0;
    return state;
}

nlohmann::json v2_to_v1(const nlohmann::json& state) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [sku, quantity] : state.at("items_").items()) items.push_back({sku, quantity});
    std::string coupons;
    for (const auto& code : state.at("coupons_")) coupons += (coupons.empty() ? "" : ",") + code.get<std::string>();
    return {{"items", items},
            {"coupons", coupons},
            {"checked_out", state.at("checked_out_")},
            {"total", state.at("total_cents_")}};
}

// The state text of `cart` in the shape of `schema_version`.
std::string state_at(const CartV3& cart, std::uint32_t schema_version) {
    nlohmann::json state = nlohmann::json::parse(orchestrix::json_state_codec<CartV3>().encode(cart));
    if (schema_version <= 2) state = v3_to_v2(std::move(state));
    if (schema_version == 1) state = v2_to_v1(state);
    return state.dump();
}

// ---- the upcasters ------------------------------------------------------------------------------------

struct Calls {
    int one_to_two = 0;
    int two_to_three = 0;
};

// 1 -> 2, in place.
std::function<void(nlohmann::json&)> upcast_1_to_2(Calls* calls) {
    return [calls](nlohmann::json& state) {
        ++calls->one_to_two;
        nlohmann::json items = nlohmann::json::object();
        for (const auto& pair : state.at("items")) items[pair.at(0).get<std::string>()] = pair.at(1);
        nlohmann::json coupons = nlohmann::json::array();
        const auto text = state.at("coupons").get<std::string>();
        for (std::size_t start = 0; start < text.size();) {
            const auto comma = std::min(text.find(',', start), text.size());
            coupons.push_back(text.substr(start, comma - start));
            start = comma + 1;
        }
        state = {{"items_", items},
                 {"coupons_", coupons},
                 {"checked_out_", state.at("checked_out")},
                 {"total_cents_", state.at("total")}};
    };
}

// 2 -> 3, by value (the form of event upcasters).
orchestrix::Upcaster upcast_2_to_3(Calls* calls) {
    return [calls](nlohmann::json state) {
        ++calls->two_to_three;
        state["checked_out_"] = state.at("checked_out_").get<int>() != 0;
        return state;
    };
}

struct Issues {
    std::vector<orchestrix::SnapshotIssue> seen;
    std::function<void(const orchestrix::SnapshotIssue&)> hook() {
        return [this](const orchestrix::SnapshotIssue& issue) { seen.push_back(issue); };
    }
};

template <class Policy>
orchestrix::SnapshotSettings<CartV3> settings(Policy policy, orchestrix::StateCodec<CartV3> state, Issues& issues) {
    orchestrix::SnapshotSettings<CartV3> s;
    s.policy = std::move(policy);
    s.state = std::move(state);
    s.on_issue = issues.hook();
    return s;
}

// A stream of 20 events with items, a removal, coupons and a checkout at the end.
std::vector<CartEvent> history() {
    std::vector<CartEvent> events;
    for (int i = 0; i < 8; ++i) events.emplace_back(ItemAdded{"sku-" + std::to_string(i % 3), 1 + i % 2, 250 + i});
    events.emplace_back(CouponApplied{"SPRING", 10});
    events.emplace_back(ItemRemoved{"sku-1"});
    for (int i = 0; i < 7; ++i) events.emplace_back(ItemAdded{"sku-" + std::to_string(i % 4), 2, 99});
    events.emplace_back(CouponApplied{"LOYAL", 5});
    events.emplace_back(ItemAdded{"sku-9", 1, 1000});
    events.emplace_back(CartCheckedOut{});
    return events;
}

// The state the stream held at `version`.
CartV3 replayed_to(const std::vector<CartEvent>& events, std::size_t version) {
    return CartV3::from_history(
        std::vector<CartEvent>(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(version)));
}

template <class S>
void append_all(S& store, std::string_view stream, const std::vector<CartEvent>& events) {
    const std::vector<orchestrix::EventEnvelope<CartEvent>> envelopes(events.begin(), events.end());
    (void)store.append(stream, envelopes, orchestrix::ExpectedVersion::no_stream());
}

} // namespace

TEST_CASE("snapshot upcasting: the test's old shapes carry the whole state") {
    const auto events = history();
    const CartV3 cart = replayed_to(events, 12);
    Calls calls;
    nlohmann::json state = nlohmann::json::parse(state_at(cart, 1));
    CHECK(state.contains("total"));
    upcast_1_to_2 (&calls)(state);
    CHECK(state == nlohmann::json::parse(state_at(cart, 2)));
    CHECK(upcast_2_to_3(&calls)(state) == nlohmann::json::parse(state_at(cart, 3)));
    CHECK(calls.one_to_two == 1);
    CHECK(calls.two_to_three == 1);
}

TEST_CASE("snapshot upcasting: an older snapshot is upcast through the chain and used") {
    const auto events = history();
    CountingStore store;
    append_all(store.inner, "cart-1", events);
    const CartV3 expected = CartV3::from_history(store.inner.read_stream("cart-1"));
    REQUIRE(expected.version() == 20);

    orchestrix::InMemorySnapshotStore snapshots;
    Issues issues;
    Calls calls;
    orchestrix::Repository carts(
        store, snapshots,
        settings(
            orchestrix::never_snapshot(),
            orchestrix::json_state_codec<CartV3>().upcast(1, upcast_1_to_2(&calls)).upcast(2, upcast_2_to_3(&calls)),
            issues),
        "cart-");

    struct Case {
        std::uint32_t schema_version;
        int one_to_two;
        int two_to_three;
    };
    for (const Case c : {Case{1, 1, 1}, Case{2, 0, 1}, Case{3, 0, 0}}) {
        INFO("a snapshot of schema version " << c.schema_version);
        (void)snapshots.erase("cart-1");
        snapshots.save(
            {"cart-1", "cart", 12, c.schema_version, state_at(replayed_to(events, 12), c.schema_version), {}});
        calls = {};
        store.events_read = 0;
        CHECK(carts.load("1") == expected);
        CHECK(issues.seen.empty());
        CHECK(store.events_read == 8); // versions 13 to 20: the snapshot was used
        CHECK(calls.one_to_two == c.one_to_two);
        CHECK(calls.two_to_three == c.two_to_three);
    }
}

TEST_CASE("snapshot upcasting: after an upcast, the next snapshot is taken at the current schema version") {
    const auto events = history();
    CountingStore store;
    append_all(store.inner, "cart-1", events);
    const CartV3 expected = CartV3::from_history(store.inner.read_stream("cart-1"));
    orchestrix::InMemorySnapshotStore snapshots;
    snapshots.save({"cart-1", "cart", 5, 1, state_at(replayed_to(events, 5), 1), {}});

    Issues issues;
    Calls calls;
    orchestrix::Repository carts(
        store, snapshots,
        settings(
            orchestrix::snapshot_when_load_exceeds(std::chrono::nanoseconds{0}),
            orchestrix::json_state_codec<CartV3>().upcast(1, upcast_1_to_2(&calls)).upcast(2, upcast_2_to_3(&calls)),
            issues),
        "cart-");

    CHECK(carts.load("1") == expected);
    CHECK(store.events_read == 15);
    CHECK(calls.one_to_two == 1);
    const auto taken = snapshots.latest("cart-1");
    REQUIRE(taken.has_value());
    CHECK(taken->schema_version == 3);
    CHECK(taken->version == 20);

    store.events_read = 0;
    CHECK(carts.load("1") == expected);
    CHECK(store.events_read == 0);
    CHECK(calls.one_to_two == 1); // the new snapshot needed no upcasting
    CHECK(calls.two_to_three == 1);
    CHECK(issues.seen.empty());
}

TEST_CASE("snapshot upcasting: an older snapshot that cannot be upcast is ignored for a full replay") {
    const auto events = history();
    CountingStore store;
    append_all(store.inner, "cart-1", events);
    const CartV3 expected = CartV3::from_history(store.inner.read_stream("cart-1"));
    const CartV3 at_12 = replayed_to(events, 12);
    Calls calls;

    auto throwing = [](nlohmann::json&) { throw std::runtime_error("the coupon table is gone"); };
    auto forgetful = [](nlohmann::json& state) { state.erase("total"); }; // "total" never becomes "total_cents_"
    auto full_chain = [&] {
        return orchestrix::json_state_codec<CartV3>().upcast(1, upcast_1_to_2(&calls)).upcast(2, upcast_2_to_3(&calls));
    };

    struct Case {
        const char* what;
        orchestrix::StateCodec<CartV3> codec;
        orchestrix::Snapshot snapshot;
        Reason reason;
        const char* message;
    };
    const std::vector<Case> cases{
        {"a gap in the chain (no 1 -> 2)",
         orchestrix::json_state_codec<CartV3>().upcast(2, upcast_2_to_3(&calls)),
         {"cart-1", "cart", 12, 1, state_at(at_12, 1), {}},
         Reason::upcast_failed,
         "no upcaster from version 1 to 2"},
        {"a gap at the end of the chain (no 2 -> 3)",
         orchestrix::json_state_codec<CartV3>().upcast(1, upcast_1_to_2(&calls)),
         {"cart-1", "cart", 12, 1, state_at(at_12, 1), {}},
         Reason::upcast_failed,
         "no upcaster from version 2 to 3"},
        {"an upcaster that throws",
         orchestrix::json_state_codec<CartV3>().upcast(1, throwing).upcast(2, upcast_2_to_3(&calls)),
         {"cart-1", "cart", 12, 1, state_at(at_12, 1), {}},
         Reason::upcast_failed,
         "the coupon table is gone"},
        {"an upcaster that leaves a state that does not decode",
         orchestrix::json_state_codec<CartV3>().upcast(1, forgetful).upcast(2, upcast_2_to_3(&calls)),
         {"cart-1", "cart", 12, 1, state_at(at_12, 1), {}},
         Reason::upcast_failed,
         "/state"},
        {"an old state that is not JSON",
         full_chain(),
         {"cart-1", "cart", 12, 1, R"({"items":[["a",)", {}},
         Reason::upcast_failed,
         "malformed"},
        {"an old state in the wrong old shape (v2 labelled v1)",
         full_chain(),
         {"cart-1", "cart", 12, 1, state_at(at_12, 2), {}},
         Reason::upcast_failed,
         "upcaster from version 1 threw"},
        {"schema version 0",
         full_chain(),
         {"cart-1", "cart", 12, 0, state_at(at_12, 1), {}},
         Reason::upcast_failed,
         "start at 1"},
        {"no upcasters at all",
         orchestrix::json_state_codec<CartV3>(),
         {"cart-1", "cart", 12, 1, state_at(at_12, 1), {}},
         Reason::old_schema_version,
         "cannot upcast it"},
        {"a newer schema version",
         full_chain(),
         {"cart-1", "cart", 12, 4, state_at(at_12, 3), {}},
         Reason::newer_schema_version,
         "schema version 4"},
        {"an older snapshot ahead of the stream",
         full_chain(),
         {"cart-1", "cart", 21, 1, state_at(at_12, 1), {}},
         Reason::ahead_of_stream,
         "beyond the stream"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        orchestrix::InMemorySnapshotStore snapshots;
        snapshots.save(c.snapshot);
        Issues issues;
        orchestrix::Repository carts(store, snapshots, settings(orchestrix::never_snapshot(), c.codec, issues),
                                     "cart-");
        store.events_read = 0;
        CHECK(carts.load("1") == expected);
        CHECK(store.events_read == 20); // the full history
        REQUIRE(issues.seen.size() == 1);
        CHECK(issues.seen[0].reason == c.reason);
        CHECK(issues.seen[0].stream_id == "cart-1");
        CHECK(issues.seen[0].version == c.snapshot.version);
        INFO(issues.seen[0].message);
        CHECK(issues.seen[0].message.find(c.message) != std::string::npos);
        CHECK(issues.seen[0].message.find("replaying the full history") != std::string::npos);
        CHECK(snapshots.latest("cart-1") == c.snapshot); // nothing stored or changed
    }
}

TEST_CASE("snapshot upcasting: for random histories and snapshots of any schema version, the load equals the replay") {
    std::mt19937 rng(20240501);
    Calls calls;
    const orchestrix::StateCodec<CartV3> codec =
        orchestrix::json_state_codec<CartV3>().upcast(1, upcast_1_to_2(&calls)).upcast(2, upcast_2_to_3(&calls));
    int upcast = 0;
    for (int round = 0; round < 300; ++round) {
        INFO("round " << round);
        std::vector<CartEvent> events;
        const int length = std::uniform_int_distribution<int>(1, 30)(rng);
        for (int i = 0; i < length; ++i) {
            switch (rng() % 6) {
            case 0:
                events.emplace_back(ItemRemoved{"sku-" + std::to_string(rng() % 4)});
                break;
            case 1:
                events.emplace_back(
                    CouponApplied{"C" + std::to_string(rng() % 100), static_cast<std::int32_t>(rng() % 50)});
                break;
            case 2:
                events.emplace_back(CartCheckedOut{});
                break;
            default:
                events.emplace_back(ItemAdded{"sku-" + std::to_string(rng() % 4),
                                              static_cast<std::int32_t>(1 + rng() % 5),
                                              static_cast<std::int64_t>(rng() % 10000)});
            }
        }
        Store store;
        append_all(store, "c", events);
        const auto at = static_cast<std::size_t>(std::uniform_int_distribution<int>(1, length)(rng));
        const auto schema = static_cast<std::uint32_t>(1 + rng() % 3);
        orchestrix::InMemorySnapshotStore snapshots;
        snapshots.save({"c", "cart", at, schema, state_at(replayed_to(events, at), schema), {}});
        Issues issues;
        orchestrix::Repository carts(store, snapshots, settings(orchestrix::never_snapshot(), codec, issues));
        const int before = calls.two_to_three;
        CHECK(carts.load("c") == CartV3::from_history(store.read_stream("c")));
        CHECK(issues.seen.empty());
        CHECK(calls.two_to_three == before + (schema < 3 ? 1 : 0));
        if (schema < 3) ++upcast;
    }
    CHECK(upcast > 150); // most rounds did upcast
}

TEST_CASE("snapshot upcasting: decode_old of the JSON codec, called directly") {
    const CartV3 cart = replayed_to(history(), 12);
    CartV3 expected = cart;
    expected.restore_version(0);
    Calls calls;
    auto builder = orchestrix::json_state_codec<CartV3>();
    CHECK_FALSE(builder.decode_old); // no upcasters: older snapshots are ignored

    builder.upcast(2, upcast_2_to_3(&calls));
    const orchestrix::StateCodec<CartV3> partial = builder; // a copy keeps the chain it had
    builder.upcast(1, upcast_1_to_2(&calls));
    REQUIRE(builder.decode_old);
    REQUIRE(partial.decode_old);

    CHECK(builder.decode_old(1, state_at(cart, 1)) == expected);
    CHECK(builder.decode_old(2, state_at(cart, 2)) == expected);
    CHECK(builder.decode_old(3, state_at(cart, 3)) == expected); // the current version: no step
    CHECK(partial.decode_old(2, state_at(cart, 2)) == expected);

    auto kind_of = [](const std::function<void()>& f) {
        try {
            f();
        } catch (const orchestrix::DecodeError& e) {
            CHECK(e.event_type() == "cart");
            return e.kind();
        }
        FAIL("no DecodeError");
        return orchestrix::DecodeError::Kind::malformed_json;
    };
    using Kind = orchestrix::DecodeError::Kind;
    CHECK(kind_of([&] { (void)partial.decode_old(1, state_at(cart, 1)); }) == Kind::missing_upcaster);
    CHECK(kind_of([&] { (void)builder.decode_old(4, state_at(cart, 3)); }) == Kind::newer_schema_version);
    CHECK(kind_of([&] { (void)builder.decode_old(0, state_at(cart, 1)); }) == Kind::invalid_value);
    CHECK(kind_of([&] { (void)builder.decode_old(1, "[1,"); }) == Kind::malformed_json);
    auto throwing = orchestrix::json_state_codec<CartV3>()
                        .upcast(1, [](nlohmann::json&) { throw std::runtime_error("boom"); })
                        .upcast(2, upcast_2_to_3(&calls));
    CHECK(kind_of([&] { (void)throwing.decode_old(1, state_at(cart, 1)); }) == Kind::upcast_failed);
    try {
        (void)throwing.decode_old(1, state_at(cart, 1));
    } catch (const orchestrix::DecodeError& e) {
        CHECK(e.json_path() == "/state");
        CHECK(std::string(e.what()).find("the upcaster from version 1 threw: boom") != std::string::npos);
    }
    // A missing step is found before the state is read.
    CHECK(kind_of([&] { (void)partial.decode_old(1, "not JSON"); }) == Kind::missing_upcaster);
}

TEST_CASE("snapshot upcasting: registering upcasters checks the step") {
    Calls calls;
    auto codec = orchestrix::json_state_codec<CartV3>();
    CHECK_THROWS_AS(codec.upcast(0, upcast_2_to_3(&calls)), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.upcast(3, upcast_2_to_3(&calls)), orchestrix::InvalidArgumentError); // 3 is current
    CHECK_THROWS_AS(codec.upcast(1, orchestrix::Upcaster{}), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(codec.upcast(1, std::function<void(nlohmann::json&)>{}), orchestrix::InvalidArgumentError);
    CHECK_FALSE(codec.decode_old); // nothing was registered
    codec.upcast(1, upcast_1_to_2(&calls));
    CHECK_THROWS_AS(codec.upcast(1, upcast_1_to_2(&calls)), orchestrix::InvalidArgumentError); // twice
    CHECK_THROWS_AS(orchestrix::json_state_codec<Cart>().upcast(1, upcast_1_to_2(&calls)),
                    orchestrix::InvalidArgumentError); // Cart is at schema version 1
}

TEST_CASE("snapshot upcasting: a StateCodec of one's own gets the snapshot's schema version") {
    const auto events = history();
    Store store;
    append_all(store, "cart-1", events);
    const CartV3 expected = CartV3::from_history(store.read_stream("cart-1"));
    const auto plain = orchestrix::json_state_codec<CartV3>();

    // Written the way existing code writes it: two functions, no decode_old.
    orchestrix::StateCodec<CartV3> codec{plain.encode, plain.decode};
    CHECK_FALSE(codec.decode_old);
    std::vector<std::uint32_t> asked;
    codec.decode_old = [&](std::uint32_t schema_version, std::string_view state) {
        asked.push_back(schema_version);
        if (schema_version == 1) throw std::runtime_error("version 1 is not supported");
        nlohmann::json j = nlohmann::json::parse(state);
        j["checked_out_"] = j.at("checked_out_").get<int>() != 0;
        return plain.decode(j.dump());
    };

    orchestrix::InMemorySnapshotStore snapshots;
    Issues issues;
    orchestrix::Repository carts(store, snapshots, settings(orchestrix::never_snapshot(), codec, issues), "cart-");
    snapshots.save({"cart-1", "cart", 12, 2, state_at(replayed_to(events, 12), 2), {}});
    CHECK(carts.load("1") == expected);
    CHECK(issues.seen.empty());

    (void)snapshots.erase("cart-1");
    snapshots.save({"cart-1", "cart", 12, 1, state_at(replayed_to(events, 12), 1), {}});
    CHECK(carts.load("1") == expected);
    REQUIRE(issues.seen.size() == 1);
    CHECK(issues.seen[0].reason == Reason::upcast_failed);
    CHECK(issues.seen[0].message.find("version 1 is not supported") != std::string::npos);
    CHECK(asked == std::vector<std::uint32_t>{2, 1});
}
