// The one-pass strict parse of json/document.hpp (`detail::PlainJsonReader` behind `parse_json`, and the
// DOM-free read of the metadata column in `JsonCodec::deserialize_metadata`) against nlohmann's strict parser
// (`detail::parse_json_text`): the same value for every text the fast path takes, the same typed error for
// every text either refuses.

#include <orchestrix/json.hpp>

#include "support/catch.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using orchestrix::DecodeError;
using Kind = orchestrix::DecodeError::Kind;

struct Noted {
    static constexpr std::string_view type_name = "strict.noted";
    std::string text;
    std::int64_t count = 0;
    bool operator==(const Noted&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Noted, text, count)
using NotedEvents = std::variant<Noted>;
using Codec = orchestrix::JsonCodec<NotedEvents>;

// What a parse gave: the value (as nlohmann's own dump, which shows integer and fraction types apart), or the
// error's kind and path.
struct Outcome {
    std::optional<nlohmann::json> value;
    std::optional<Kind> kind;
    std::string path;
    [[nodiscard]] std::string describe() const {
        if (value) return "value " + value->dump() + " (" + value->type_name() + ")";
        return "error " + std::to_string(static_cast<int>(*kind)) + " at '" + path + "'";
    }
};

template <class Parse>
Outcome outcome_of(Parse&& parse) {
    Outcome out;
    try {
        out.value = parse();
    } catch (const DecodeError& e) {
        out.kind = e.kind();
        out.path = e.json_path();
    }
    return out;
}

// Whether two DOMs are the same, number types included (nlohmann's == calls 1 and 1.0 equal).
bool identical(const nlohmann::json& a, const nlohmann::json& b) {
    if (a.type() != b.type()) return false;
    if (a.is_object()) {
        if (a.size() != b.size()) return false;
        for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) {
            if (i.key() != j.key() || !identical(i.value(), j.value())) return false;
        }
        return true;
    }
    if (a.is_array()) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (!identical(a[i], b[i])) return false;
        }
        return true;
    }
    return a == b;
}

// `parse_json` (fast path first) and the strict nlohmann parse alone must agree on `text`.
void check_agrees(const std::string& text, const orchestrix::DecodeOptions& options = {}) {
    const Outcome fast = outcome_of([&] { return orchestrix::parse_json(text, options); });
    const Outcome strict = outcome_of([&] {
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) return orchestrix::parse_json(text, options);
        return orchestrix::detail::parse_json_text(text, options.max_depth);
    });
    INFO("text: " << text);
    INFO("parse_json: " << fast.describe() << "; strict parser: " << strict.describe());
    REQUIRE(fast.value.has_value() == strict.value.has_value());
    if (fast.value) {
        CHECK(identical(*fast.value, *strict.value));
    } else {
        CHECK(fast.kind == strict.kind);
        CHECK(fast.path == strict.path);
    }
}

const std::vector<std::string>& corpus() {
    static const std::vector<std::string> texts{
        R"({"account_id":"acc-000123","amount":42})",
        R"({"event_id":"0189f0a4-7c4e-7b3a-9c1d-2e3f4a5b6c7d","correlation_id":"","causation_id":"c-1"})",
        R"( { "a" : [ 1 , -2 , 3.5 , -0 , 0 , 1e3 , 2E-2 , -0.0 ] , "b" : { "c" : null , "d" : true , "e" : false } } )",
        R"({"s":"tab\t newline\n quote\" backslash\\ slash\/ \b\f\r"})",
        R"({"u":"\u00e9\ud83d\ude00","v":"é 😀 中"})",
        R"([18446744073709551615,-9223372036854775808,18446744073709551616,-9223372036854775809])",
        R"([1.7976931348623157e308,5e-324,1e-400,1e400,0.1,123456789012345678901234567890])",
        R"("just a string")",
        "42",
        "null",
        "[[[[[[[[[[]]]]]]]]]]",
        "\xEF\xBB\xBF{\"bom\":1}",
        R"({"a":1,"a":2})",
        R"({"a":{"b":1,"b":2}})",
        R"({"a":[{"x":1},{"x":1,"x":1}]})",
        R"({"a":01})",
        R"({"a":1.})",
        R"({"a":.5})",
        R"({"a":+1})",
        R"({"a":1e})",
        R"({"a":-})",
        R"({"a":tru})",
        R"({"a":"x"} trailing)",
        R"({"a":"x"}})",
        R"({"a":"x",})",
        R"([1,2,])",
        R"({"a" "x"})",
        R"({a:1})",
        R"({"a":"\x"})",
        R"({"a":"\u12"})",
        R"({"a":"\ud800"})",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\xC3\x28\"}",
        "{\"a\":\"\xED\xA0\x80\"}",
        "{\"a\":\"\xF4\x90\x80\x80\"}",
        "{\"a\":\"\xC0\xAF\"}",
        "{\"a\":\"x\"}\x00",
        "[\"a\"\x7F]",
        "{\"a\":\"\x7F\"}",
        "{\"a\":1}\n\r\t ",
    };
    return texts;
}

} // namespace

TEST_CASE("strict parse: the one-pass reader and nlohmann's strict parser agree on a corpus") {
    for (const std::string& text : corpus()) check_agrees(text);
}

TEST_CASE("strict parse: they agree on every prefix of the corpus (truncated text)") {
    for (const std::string& text : corpus()) {
        for (std::size_t n = 0; n < text.size(); ++n) check_agrees(text.substr(0, n));
    }
}

TEST_CASE("strict parse: they agree on texts with one byte changed") {
    std::mt19937 rng(20261201);
    const std::string replacements = "{}[]\",:\\ \t0-1e.tnu\x01\x80\xC3\xFF";
    for (const std::string& text : corpus()) {
        for (std::size_t at = 0; at < text.size(); ++at) {
            std::string changed = text;
            changed[at] = replacements[rng() % replacements.size()];
            check_agrees(changed);
        }
    }
}

TEST_CASE("strict parse: they agree at the depth limit, small limits and deep nesting") {
    const auto nested = [](std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
    for (std::size_t limit : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{64}, std::size_t{500}}) {
        orchestrix::DecodeOptions options;
        options.max_depth = limit;
        for (std::size_t depth : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{64}, std::size_t{65},
                                  std::size_t{200}, std::size_t{400}}) {
            check_agrees(nested(depth), options);
            check_agrees("{\"a\":" + nested(depth) + "}", options);
        }
    }
}

TEST_CASE("strict parse: each refusal keeps its typed error and path") {
    const auto error_of = [](const std::string& text) {
        try {
            (void)orchestrix::parse_json(text);
        } catch (const DecodeError& e) {
            return std::pair{e.kind(), e.json_path()};
        }
        FAIL("parse_json accepted " << text);
        return std::pair{Kind::invalid_value, std::string()};
    };
    CHECK(error_of(R"({"a":{"b":1,"b":2}})") == std::pair{Kind::duplicate_key, std::string("/a/b")});
    CHECK(error_of(R"({"a":[1,{"x":"y"})") == std::pair{Kind::malformed_json, std::string("/a/2")});
    CHECK(error_of("{\"a\":\"\xC3\x28\"}").first == Kind::invalid_utf8);
    CHECK(error_of(R"([1e400])").first == Kind::out_of_range);
    CHECK(error_of(std::string(65, '[') + std::string(65, ']')).first == Kind::too_deep);
}

TEST_CASE("strict parse: the metadata column read without a DOM gives what the strict parse gives") {
    const Codec codec;
    const std::string id = "0189f0a4-7c4e-7b3a-9c1d-2e3f4a5b6c7d";
    const orchestrix::Metadata plain =
        codec.deserialize_metadata(R"({"causation_id":"cause","correlation_id":"corr","event_id":")" + id +
                                   R"(","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})");
    CHECK(plain.event_id.to_string() == id);
    CHECK(plain.correlation_id == "corr");
    CHECK(plain.causation_id == "cause");
    CHECK(plain.trace.to_string() == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    // Whitespace, another order, escapes and null take the strict path: the same metadata.
    const orchestrix::Metadata spaced =
        codec.deserialize_metadata(" {\n \"event_id\" : \"" + id + "\", \"correlation_id\":\"co\\u0072r\"} ");
    CHECK(spaced.event_id == plain.event_id);
    CHECK(spaced.correlation_id == "corr");
    CHECK(spaced.causation_id.empty());
    const orchestrix::Metadata nulls =
        codec.deserialize_metadata(R"({"event_id":")" + id + R"(","causation_id":null,"correlation_id":"corr"})");
    CHECK(nulls.correlation_id == "corr");
    CHECK(nulls.causation_id.empty());
    // Every metadata the codec writes reads back through the fast path.
    orchestrix::Metadata written;
    written.event_id = orchestrix::Uuid::generate();
    written.correlation_id = "c-é";
    written.causation_id = "line\nbreak";
    const auto text = Codec::encode_metadata(written).dump();
    CHECK(codec.deserialize_metadata(text) == written);
}

TEST_CASE("strict parse: damaged metadata is refused with the same typed error as before") {
    const Codec codec;
    const std::string id = "0189f0a4-7c4e-7b3a-9c1d-2e3f4a5b6c7d";
    const auto error_of = [&](const std::string& text) {
        try {
            (void)codec.deserialize_metadata(text, "strict.noted");
        } catch (const DecodeError& e) {
            CHECK(e.event_type() == "strict.noted");
            return std::pair{e.kind(), e.json_path()};
        }
        FAIL("the metadata was accepted: " << text);
        return std::pair{Kind::invalid_value, std::string()};
    };
    CHECK(error_of(R"({"event_id":")" + id + R"(","event_id":")" + id + R"("})") ==
          std::pair{Kind::duplicate_key, std::string("/metadata/event_id")});
    CHECK(error_of(R"({"event_id":")" + id + R"(","causation_id":"a","causation_id":"b"})") ==
          std::pair{Kind::duplicate_key, std::string("/metadata/causation_id")});
    CHECK(error_of(R"({"event_id":")" + id + R"(","origin":"x"})") ==
          std::pair{Kind::unknown_field, std::string("/metadata/origin")});
    CHECK(error_of(R"({"event_id":")" + id + R"(","correlation_id":7})") ==
          std::pair{Kind::wrong_type, std::string("/metadata/correlation_id")});
    CHECK(error_of(R"({"event_id":")" + id + R"(","correlation_id":"c")") ==
          std::pair{Kind::malformed_json, std::string("/metadata/correlation_id")});
    CHECK(error_of(R"({"event_id":")" + id + R"(","correlation_id":"c"} x)").first == Kind::malformed_json);
    CHECK(error_of(R"({"correlation_id":"c"})") == std::pair{Kind::missing_field, std::string("/metadata/event_id")});
    CHECK(error_of(R"({"event_id":"00000000-0000-0000-0000-000000000000"})") ==
          std::pair{Kind::invalid_value, std::string("/metadata/event_id")});
    CHECK(error_of(R"({"event_id":"not-a-uuid"})") ==
          std::pair{Kind::invalid_value, std::string("/metadata/event_id")});
    CHECK(error_of(R"({"event_id":")" + id + R"(","traceparent":"00-zz"})") ==
          std::pair{Kind::invalid_value, std::string("/metadata/traceparent")});
    CHECK(error_of(R"(["event_id"])").first == Kind::wrong_type);
    CHECK(error_of("").first == Kind::malformed_json);
    // The limits hold on the fast path too.
    orchestrix::DecodeOptions small;
    small.max_bytes = 20;
    try {
        (void)Codec(small).deserialize_metadata(R"({"event_id":")" + id + R"("})");
        FAIL("metadata over max_bytes was accepted");
    } catch (const DecodeError& e) {
        CHECK(e.kind() == Kind::too_large);
    }
    orchestrix::DecodeOptions flat;
    flat.max_depth = 0;
    try {
        (void)Codec(flat).deserialize_metadata(R"({"event_id":")" + id + R"("})");
        FAIL("metadata deeper than max_depth was accepted");
    } catch (const DecodeError& e) {
        CHECK(e.kind() == Kind::too_deep);
    }
}

TEST_CASE("strict parse: a stored payload is refused for a duplicate key, an unknown field, a wrong type or "
          "truncation") {
    const Codec codec;
    const auto error_of = [&](const std::string& payload) {
        try {
            (void)codec.deserialize_event("strict.noted", 1, payload);
        } catch (const DecodeError& e) {
            CHECK(e.event_type() == "strict.noted");
            return std::pair{e.kind(), e.json_path()};
        }
        FAIL("the payload was accepted: " << payload);
        return std::pair{Kind::invalid_value, std::string()};
    };
    CHECK(std::get<Noted>(codec.deserialize_event("strict.noted", 1, R"({"count":3,"text":"x"})")) == Noted{"x", 3});
    CHECK(error_of(R"({"count":3,"text":"x","count":4})") ==
          std::pair{Kind::duplicate_key, std::string("/payload/count")});
    CHECK(error_of(R"({"count":3,"text":"x","extra":true})") ==
          std::pair{Kind::unknown_field, std::string("/payload/extra")});
    CHECK(error_of(R"({"count":"3","text":"x"})") == std::pair{Kind::wrong_type, std::string("/payload/count")});
    CHECK(error_of(R"({"count":3.5,"text":"x"})") == std::pair{Kind::wrong_type, std::string("/payload/count")});
    CHECK(error_of(R"({"count":3,"text":"x")").first == Kind::malformed_json);
    CHECK(error_of(R"({"count":3,"te)").first == Kind::malformed_json);
    CHECK(error_of(R"([3,"x"])") == std::pair{Kind::wrong_type, std::string("/payload")});
}
