// The generic strictness checks behind every decode (json/checked_conversion.hpp): the round trip,
// the diagnosis of a refused from_json, the refusal of unencodable values, and the guard that keeps an
// out-of-range fraction away from an integer field.

#include <orchestrix/json/checked_conversion.hpp>

#include "support/catch.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace checked_domain {

struct Tagged {
    std::set<std::string> tags;
    std::vector<std::int32_t> scores;
    bool operator==(const Tagged&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Tagged, tags, scores)

struct Address {
    std::string city;
    bool operator==(const Address&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Address, city)

struct Customer {
    std::string name;
    Address address;
    std::vector<std::int32_t> limits{0};                   // a non-empty default shows the element type
    std::vector<std::map<std::string, std::string>> notes; // an empty default does not
    bool operator==(const Customer&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Customer, name, address, limits, notes)

// Hand-written conversions with the checked readers, and a check of its own on a floating-point field.
struct Measured {
    std::int64_t count = 0;
    double factor = 1.0;
    bool operator==(const Measured&) const = default;
};
inline void to_json(nlohmann::json& j, const Measured& m) { j = {{"count", m.count}, {"factor", m.factor}}; }
inline void from_json(const nlohmann::json& j, Measured& m) {
    m.count = orchestrix::json_field<std::int64_t>(j, "count");
    m.factor = orchestrix::json_field<double>(j, "factor");
    if (m.factor < 1.0) throw std::invalid_argument("factor must be at least 1");
}

// Reads a field its to_json never writes: the shape of a default value cannot explain a refusal.
struct Secretive {
    std::string secret;
    bool operator==(const Secretive&) const = default;
};
inline void to_json(nlohmann::json& j, const Secretive&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json& j, Secretive& s) { s.secret = j.at("secret").get<std::string>(); }

// A from_json that refuses with an exception of its own, and a to_json that throws.
struct Picky {
    std::string value;
    bool operator==(const Picky&) const = default;
};
inline void to_json(nlohmann::json& j, const Picky& p) {
    if (p.value == "unwritable") throw std::runtime_error("cannot write that");
    j = {{"value", p.value}};
}
inline void from_json(const nlohmann::json& j, Picky& p) {
    p.value = orchestrix::json_field<std::string>(j, "value");
    if (p.value.empty()) throw std::runtime_error("value must not be empty");
}

} // namespace checked_domain

namespace {

using namespace checked_domain;
using orchestrix::DecodeError;
using Kind = orchestrix::DecodeError::Kind;

template <class T>
DecodeError refusal(const char* text) {
    try {
        (void)orchestrix::from_checked_json<T>(nlohmann::json::parse(text), "test.type", "/payload", {});
    } catch (const DecodeError& e) {
        return e;
    }
    FAIL("decoding succeeded where it had to fail: " << text);
    throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("checked conversion: a value that decodes into something else is refused with its path") {
    SECTION("duplicates collapsed by a set are a lossy conversion") {
        const auto e = refusal<Tagged>(R"({"tags":["a","a","b"],"scores":[]})");
        CHECK(e.kind() == Kind::lossy_conversion);
        CHECK(e.json_path() == "/payload/tags");
        CHECK(e.event_type() == "test.type");
    }
    SECTION("a fraction inside an array of integers is a wrong type at its index") {
        const auto e = refusal<Tagged>(R"({"tags":[],"scores":[1,2.5]})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK(e.json_path() == "/payload/scores/1");
    }
    SECTION("an out-of-range fraction inside an array of integers never reaches it") {
        const auto e = refusal<Tagged>(R"({"tags":[],"scores":[1,-1e300]})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK(e.json_path() == "/payload/scores/1");
    }
    SECTION("what decodes exactly is accepted") {
        const auto t = orchestrix::from_checked_json<Tagged>(
            nlohmann::json::parse(R"({"tags":["a","b"],"scores":[3]})"), "test.type", "", {});
        CHECK(t == Tagged{{"a", "b"}, {3}});
    }
}

TEST_CASE("checked conversion: a refused from_json is explained by the shape of the type") {
    SECTION("an object where a string belongs") {
        const auto e = refusal<Customer>(R"({"name":true,"address":{"city":"x"},"limits":[],"notes":[]})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK(e.json_path() == "/payload/name");
        CHECK(e.detail().find("boolean") != std::string::npos);
    }
    SECTION("a string where an object belongs") {
        const auto e = refusal<Customer>(R"({"name":"n","address":"Main Street","limits":[],"notes":[]})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK(e.json_path() == "/payload/address");
    }
    SECTION("a wrong element in an array whose default shows the element type") {
        const auto e = refusal<Customer>(R"({"name":"n","address":{"city":"x"},"limits":[1,"2"],"notes":[]})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK(e.json_path() == "/payload/limits/1");
    }
    SECTION("a wrong value deep in an array whose default is empty is found by its JSON type") {
        const auto e =
            refusal<Customer>(R"({"name":"n","address":{"city":"x"},"limits":[],"notes":[{"a":"b"},{"c":7}]})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK(e.json_path() == "/payload/notes/1/c");
    }
    SECTION("a refusal the shape cannot explain is reported with nlohmann's words") {
        const auto e = refusal<Secretive>(R"({})");
        CHECK(e.kind() == Kind::missing_field);
        CHECK(e.json_path() == "/payload");
        const auto wrong = refusal<Secretive>(R"({"secret":1})");
        CHECK(wrong.kind() == Kind::wrong_type);
    }
    SECTION("an exception of the type's own is an invalid value") {
        const auto e = refusal<Picky>(R"({"value":""})");
        CHECK(e.kind() == Kind::invalid_value);
        CHECK(e.detail().find("value must not be empty") != std::string::npos);
    }
}

TEST_CASE("checked conversion: out-of-range fractions with hand-written conversions") {
    SECTION("a structural refusal is reported without converting the fraction") {
        const auto e = refusal<Measured>(R"({"count":1e300,"factor":"x"})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK((e.json_path() == "/payload/count" || e.json_path() == "/payload/factor"));
    }
    SECTION("a large fraction in a checked floating-point field passes the type's own check") {
        const auto m = orchestrix::from_checked_json<Measured>(nlohmann::json::parse(R"({"count":2,"factor":1e300})"),
                                                               "test.type", "", {});
        CHECK(m == Measured{2, 1e300});
    }
    SECTION("a fraction bound for a checked integer field is a wrong type") {
        const auto e = refusal<Measured>(R"({"count":-5e20,"factor":2})");
        CHECK(e.kind() == Kind::wrong_type);
        CHECK(e.json_path() == "/payload/count");
    }
}

TEST_CASE("checked conversion: what JSON cannot carry is refused when encoding, with its path") {
    try {
        (void)orchestrix::to_checked_json(Tagged{{"ok", "z \xff"}, {}}, "test.tagged");
        FAIL("encoding succeeded");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(e.event_type() == "test.tagged");
        CHECK(e.json_path() == "/tags/1");
    }
    try {
        (void)orchestrix::to_checked_json(Picky{"unwritable"}, "test.picky");
        FAIL("encoding succeeded");
    } catch (const orchestrix::EncodeError& e) {
        CHECK(std::string(e.what()).find("cannot write that") != std::string::npos);
    }
}
