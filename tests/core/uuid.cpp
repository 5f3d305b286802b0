#include <orchestrix/core/uuid.hpp>

#include "support/catch.hpp"

#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

using orchestrix::Uuid;

TEST_CASE("uuid: generated ids are version 7, RFC variant, and unique") {
    std::set<Uuid> seen;
    for (int i = 0; i < 10000; ++i) {
        const Uuid id = Uuid::generate();
        CHECK((id.bytes()[6] >> 4U) == 7);
        CHECK((id.bytes()[8] & 0xC0U) == 0x80U);
        CHECK_FALSE(id.is_nil());
        seen.insert(id);
    }
    CHECK(seen.size() == 10000);
}

TEST_CASE("uuid: ids generated later sort after earlier ones (millisecond resolution)") {
    const Uuid first = Uuid::generate();
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    const Uuid second = Uuid::generate();
    CHECK(first < second);
}

TEST_CASE("uuid: text form round-trips and parsing is strict") {
    const Uuid id = Uuid::generate();
    const std::string text = id.to_string();
    CHECK(text.size() == 36);
    CHECK(text[8] == '-');
    CHECK(Uuid::parse(text) == id);

    const auto upper = Uuid::parse("01890A5D-AC96-774B-BCCE-B302099A8057");
    REQUIRE(upper.has_value());
    CHECK(upper->to_string() == "01890a5d-ac96-774b-bcce-b302099a8057");

    CHECK_FALSE(Uuid::parse("").has_value());
    CHECK_FALSE(Uuid::parse("01890a5d-ac96-774b-bcce-b302099a805").has_value());   // short
    CHECK_FALSE(Uuid::parse("01890a5d-ac96-774b-bcce-b302099a80577").has_value()); // long
    CHECK_FALSE(Uuid::parse("01890a5dxac96-774b-bcce-b302099a8057").has_value());  // separator
    CHECK_FALSE(Uuid::parse("01890a5d-ac96-774b-bcce-b302099a805g").has_value());  // not hex
    CHECK(Uuid::parse("00000000-0000-0000-0000-000000000000")->is_nil());
    CHECK(Uuid{}.is_nil());
    static_assert(Uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057").has_value(), "parse is constexpr");
}

TEST_CASE("uuid: hashes spread and equal ids hash equally") {
    std::unordered_set<Uuid> ids;
    for (int i = 0; i < 1000; ++i) ids.insert(Uuid::generate());
    CHECK(ids.size() == 1000);
    const Uuid id = Uuid::generate();
    CHECK(std::hash<Uuid>{}(id) == std::hash<Uuid>{}(Uuid{id.bytes()}));
}

TEST_CASE("uuid: threads generate distinct ids") {
    std::vector<std::vector<Uuid>> per_thread(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < per_thread.size(); ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) per_thread[t].push_back(Uuid::generate());
        });
    }
    for (auto& t : threads) t.join();
    std::set<Uuid> all;
    for (const auto& ids : per_thread) all.insert(ids.begin(), ids.end());
    CHECK(all.size() == 8000);
}

#if __has_include(<unistd.h>) && __has_include(<sys/wait.h>)
#include <sys/wait.h>
#include <unistd.h>

TEST_CASE("uuid: a forked child does not repeat its parent's ids") {
    (void)Uuid::generate(); // the parent's generator exists before the fork
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        const Uuid id = Uuid::generate();
        const auto written = ::write(pipe_ends[1], id.bytes().data(), id.bytes().size());
        ::_exit(written == 16 ? 0 : 1);
    }
    const Uuid parent_id = Uuid::generate();
    Uuid::bytes_type child_bytes{};
    REQUIRE(::read(pipe_ends[0], child_bytes.data(), child_bytes.size()) == 16);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
    // The random parts differ (the timestamps may be equal).
    CHECK(Uuid{child_bytes}.low() != parent_id.low());
}
#endif
