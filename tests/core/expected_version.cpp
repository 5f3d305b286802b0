#include <orchestrix/core/expected_version.hpp>

#include "support/catch.hpp"

#include <string>

using orchestrix::ExpectedVersion;

TEST_CASE("expected version: each state matches the versions it should") {
    CHECK(ExpectedVersion::any().matches(0));
    CHECK(ExpectedVersion::any().matches(7));
    CHECK(ExpectedVersion::no_stream().matches(0));
    CHECK_FALSE(ExpectedVersion::no_stream().matches(1));
    CHECK_FALSE(ExpectedVersion::stream_exists().matches(0));
    CHECK(ExpectedVersion::stream_exists().matches(1));
    CHECK(ExpectedVersion::exact(3).matches(3));
    CHECK_FALSE(ExpectedVersion::exact(3).matches(2));
    CHECK_FALSE(ExpectedVersion::exact(3).matches(4));
    CHECK(ExpectedVersion::exact(0) == ExpectedVersion::no_stream());
    CHECK(ExpectedVersion::exact(orchestrix::max_version).value() == orchestrix::max_version);
}

TEST_CASE("expected version: a version beyond the largest is refused with a typed error") {
    try {
        (void)ExpectedVersion::exact(orchestrix::max_version + 1);
        FAIL("exact() accepted a version beyond max_version");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "expected_version");
        CHECK(std::string(e.what()).find("9223372036854775807") != std::string::npos);
    }
    CHECK_THROWS_AS(ExpectedVersion::exact(~std::uint64_t{0}), orchestrix::Error);
}

TEST_CASE("expected version: describes itself") {
    CHECK(to_string(ExpectedVersion::any()) == "any");
    CHECK(to_string(ExpectedVersion::no_stream()) == "no stream");
    CHECK(to_string(ExpectedVersion::stream_exists()) == "stream exists");
    CHECK(to_string(ExpectedVersion::exact(5)) == "exactly 5");
}

static_assert(ExpectedVersion::exact(2).kind() == ExpectedVersion::Kind::exact);
static_assert(ExpectedVersion::no_stream().matches(0));
