// Events that name their fields: JSON without a macro, checked reads, and field-by-field equality.

#include <orchestrix/json.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"

#include <array>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fields_domain {

struct Address {
    static constexpr std::array fields{"street", "city"};
    std::string street;
    std::string city;
    bool operator==(const Address&) const = default;
};

struct CustomerRegistered {
    static constexpr std::string_view type_name = "customer.registered";
    static constexpr std::array fields{"customer_id", "name", "address", "nickname", "tags"};
    std::string customer_id;
    std::string name;
    Address address;
    std::optional<std::string> nickname;
    std::vector<std::string> tags;
    bool operator==(const CustomerRegistered&) const = default;
};

struct PointsAwarded {
    static constexpr std::string_view type_name = "customer.points-awarded";
    static constexpr std::array fields{"points", "ratio", "vip"};
    std::int16_t points = 0;
    double ratio = 0;
    bool vip = false;
};

using CustomerEvent = std::variant<CustomerRegistered, PointsAwarded>;

} // namespace fields_domain

using namespace fields_domain;
using Codec = orchestrix::JsonCodec<CustomerEvent>;
using orchestrix::DecodeError;

static_assert(orchestrix::declares_fields<CustomerRegistered>);
static_assert(!std::equality_comparable<PointsAwarded>); // no operator==: the field names stand in for it
static_assert(orchestrix::event<PointsAwarded>);
static_assert(orchestrix::declares_fields<Address>);
static_assert(orchestrix::field_names<PointsAwarded>() == std::array<std::string_view, 3>{"points", "ratio", "vip"});

TEST_CASE("fields: an event that names its fields encodes one JSON member per field, under its name") {
    const Codec codec;
    const CustomerRegistered registered{"c-1", "Ann", {"Main St 1", "Oslo"}, std::nullopt, {"new", "eu"}};
    const nlohmann::json payload = codec.encode_payload(CustomerEvent{registered});
    CHECK(payload == nlohmann::json::parse(R"({"customer_id":"c-1","name":"Ann","address":{"street":"Main St 1",
        "city":"Oslo"},"nickname":null,"tags":["new","eu"]})"));
    CHECK(std::get<CustomerRegistered>(codec.decode(codec.encode(CustomerEvent{registered}))) == registered);

    const PointsAwarded awarded{-12, 0.25, true};
    CHECK(codec.encode_payload(CustomerEvent{awarded}) == nlohmann::json::parse(R"({"points":-12,"ratio":0.25,
        "vip":true})"));
    CHECK(orchestrix::same_event(std::get<PointsAwarded>(codec.decode(codec.encode(CustomerEvent{awarded}))), awarded));
}

TEST_CASE("fields: reads are checked and errors name the field") {
    const Codec codec;
    const auto decode = [&](const char* payload) {
        return codec.decode_payload("customer.points-awarded", 1, nlohmann::json::parse(payload));
    };
    // The conversion ignores members it does not know; the codec refuses them (DecodeOptions::reject_unknown_fields).
    CHECK(orchestrix::same_event(
        nlohmann::json::parse(R"({"points":7,"ratio":1,"vip":false,"extra":1})").get<PointsAwarded>(),
        PointsAwarded{7, 1.0, false}));
    CHECK(orchestrix::same_event(std::get<PointsAwarded>(decode(R"({"points":7,"ratio":1,"vip":false})")),
                                 PointsAwarded{7, 1.0, false}));
    const auto kind_and_path = [&](const char* payload) {
        try {
            (void)decode(payload);
        } catch (const DecodeError& e) {
            return std::pair{e.kind(), e.json_path()};
        }
        return std::pair{DecodeError::Kind::invalid_value, std::string("(not refused)")};
    };
    CHECK(kind_and_path(R"({"ratio":1,"vip":false})") ==
          std::pair{DecodeError::Kind::missing_field, std::string("/payload/points")});
    CHECK(kind_and_path(R"({"points":70000,"ratio":1,"vip":false})") ==
          std::pair{DecodeError::Kind::out_of_range, std::string("/payload/points")});
    CHECK(kind_and_path(R"({"points":3.5,"ratio":1,"vip":false})").second == "/payload/points");
    CHECK(kind_and_path(R"({"points":1,"ratio":1,"vip":"yes"})").second == "/payload/vip");
    CHECK(kind_and_path(R"([1,2,3])").first == DecodeError::Kind::wrong_type);
    CHECK(kind_and_path(R"({"points":7,"ratio":1,"vip":false,"extra":1})") ==
          std::pair{DecodeError::Kind::unknown_field, std::string("/payload/extra")});
}

TEST_CASE("fields: an absent or null optional reads as empty, nested structs and vectors are checked too") {
    const Codec codec;
    const auto registered = std::get<CustomerRegistered>(codec.decode_payload(
        "customer.registered", 1,
        nlohmann::json::parse(R"({"customer_id":"c","name":"n","address":{"street":"s","city":"c"},"tags":[]})")));
    CHECK_FALSE(registered.nickname.has_value());
    try {
        (void)codec.decode_payload("customer.registered", 1,
                                   nlohmann::json::parse(R"({"customer_id":"c","name":"n","address":{"street":"s"},
                                   "tags":["a",2]})"));
        FAIL("a nested struct without its field was accepted");
    } catch (const DecodeError& e) {
        CHECK(e.json_path() == "/payload/address/city");
    }
    try {
        (void)codec.decode_payload("customer.registered", 1,
                                   nlohmann::json::parse(R"({"customer_id":"c","name":"n","address":{"street":"s",
                                   "city":"c"},"tags":["a",2]})"));
        FAIL("a number in a vector of strings was accepted");
    } catch (const DecodeError& e) {
        CHECK(e.json_path() == "/payload/tags/1");
    }
}

TEST_CASE("fields: fields_equal compares field by field") {
    const PointsAwarded a{1, 0.5, true};
    CHECK(orchestrix::fields_equal(a, PointsAwarded{1, 0.5, true}));
    CHECK_FALSE(orchestrix::fields_equal(a, PointsAwarded{1, 0.5, false}));
    CHECK_FALSE(orchestrix::fields_equal(a, PointsAwarded{2, 0.5, true}));
}

TEST_CASE("fields: a store tells a retry from a reused id by comparing the fields") {
    orchestrix::InMemoryEventStore<CustomerEvent> store;
    const std::vector<orchestrix::EventEnvelope<CustomerEvent>> batch{PointsAwarded{5, 0.5, false}};
    CHECK(store.append("customer-1", batch, orchestrix::ExpectedVersion::no_stream()).written);
    // The same id and the same fields: an idempotent retry that writes nothing.
    const auto retry = store.append("customer-1", batch, orchestrix::ExpectedVersion::no_stream());
    CHECK_FALSE(retry.written);
    CHECK(retry.stream_version == 1);
    // The same id with another value in one field: a reused id.
    const std::vector<orchestrix::EventEnvelope<CustomerEvent>> altered{
        orchestrix::EventEnvelope<CustomerEvent>{PointsAwarded{5, 0.5, true}, batch[0].metadata}};
    CHECK_THROWS_AS(store.append("customer-1", altered, orchestrix::ExpectedVersion::no_stream()),
                    orchestrix::IdempotencyError);
    CHECK(store.read_stream("customer-1").size() == 1);

    CHECK(orchestrix::same_event(CustomerEvent{PointsAwarded{1, 0, false}}, CustomerEvent{PointsAwarded{1, 0, false}}));
    CHECK_FALSE(
        orchestrix::same_event(CustomerEvent{PointsAwarded{1, 0, false}}, CustomerEvent{PointsAwarded{1, 0, true}}));
    const CustomerRegistered registered{"c", "n", {"s", "c"}, std::nullopt, {}};
    CHECK_FALSE(orchestrix::same_event(CustomerEvent{PointsAwarded{1, 0, false}}, CustomerEvent{registered}));
}
