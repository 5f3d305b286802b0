#include <orchestrix/format.hpp>
#include <orchestrix/json.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <string>

using namespace test_domain;

TEST_CASE("format: ids, expected versions and append results") {
    const auto id = *orchestrix::Uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057");
    CHECK(fmt::format("{}", id) == "01890a5d-ac96-774b-bcce-b302099a8057");
    CHECK(fmt::format("[{:>38}]", id) == "[  01890a5d-ac96-774b-bcce-b302099a8057]");
    CHECK(fmt::format("{}", orchestrix::ExpectedVersion::any()) == "any");
    CHECK(fmt::format("{}", orchestrix::ExpectedVersion::no_stream()) == "no stream");
    CHECK(fmt::format("{}", orchestrix::ExpectedVersion::stream_exists()) == "stream exists");
    CHECK(fmt::format("{}", orchestrix::ExpectedVersion::exact(5)) == "exactly 5");
    CHECK(fmt::format("{}", orchestrix::AppendResult{3, 1, 3, true}) == "version 3, positions 1..3");
    CHECK(fmt::format("{}", orchestrix::AppendResult{3, 1, 3, false}) == "version 3, positions 1..3 (already stored)");
    CHECK(fmt::format("{}", orchestrix::AppendResult{4, 0, 0, false}) == "version 4, nothing written");
}

TEST_CASE("format: a recorded event shows type, version, stream, position and id") {
    const auto id = *orchestrix::Uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057");
    const orchestrix::RecordedEvent<AccountEvent> recorded{
        "account-7", 3, 12, MoneyDeposited{"7", 10}, {id, "", "", {}, {}}};
    CHECK(fmt::format("{}", recorded) ==
          "account.deposited v3 of 'account-7' at position 12 (id 01890a5d-ac96-774b-bcce-b302099a8057)");
}

TEST_CASE("format: any orchestrix error formats as its message") {
    const orchestrix::ConcurrencyError conflict("account-7", orchestrix::ExpectedVersion::exact(2), 3);
    CHECK(fmt::format("{}", conflict) == conflict.what());
    CHECK(fmt::format("{}", conflict).find("account-7") != std::string::npos);
    const orchestrix::DecodeError decode(orchestrix::DecodeError::Kind::missing_field, "account.deposited",
                                         "/payload/amount", "absent");
    CHECK(fmt::format("{}", decode) == decode.what());
    const orchestrix::Error& base = decode;
    CHECK(fmt::format("error: {}", base) == std::string("error: ") + decode.what());
}
