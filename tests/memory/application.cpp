#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/memory/application.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace {

struct Added {
    static constexpr std::string_view type_name = "tally.added";
    std::int64_t amount = 0;
    bool operator==(const Added&) const = default;
};
struct Reset {
    static constexpr std::string_view type_name = "tally.reset";
    bool operator==(const Reset&) const = default;
};
struct Noted { // raised by a handler, on another stream
    static constexpr std::string_view type_name = "audit.noted";
    std::string what;
    bool operator==(const Noted&) const = default;
};
using TallyEvent = std::variant<Added, Reset>;
using AppEvent = std::variant<Added, Reset, Noted>;

struct Add {
    std::int64_t amount = 0;
    [[nodiscard]] bool validate() const { return amount != 0; }
};
struct Clear {};
// Runs `before` (once) in the middle of handling: how a test makes another writer get in first.
struct AddAfter {
    std::int64_t amount = 0;
    std::function<void()>* before = nullptr;
};

class Tally : public orchestrix::AggregateRoot<Tally, TallyEvent> {
public:
    static constexpr std::string_view aggregate_type_name = "tally";

    void handle(const Add& c) { raise(Added{c.amount}); }
    void handle(const Clear&) { raise(Reset{}); }
    void handle(const AddAfter& c) {
        if (c.before != nullptr && *c.before) std::exchange(*c.before, nullptr)();
        raise(Added{c.amount});
    }
    void apply(const Added& e) { total_ += e.amount; }
    void apply(const Reset&) { total_ = 0; }

    [[nodiscard]] std::int64_t total() const { return total_; }
    void set_total(std::int64_t total) { total_ = total; }

private:
    std::int64_t total_ = 0;
};

using App = orchestrix::InMemoryApplication<AppEvent>;
using Recorded = orchestrix::RecordedEvent<AppEvent>;

} // namespace

TEST_CASE("memory application: saving an aggregate appends, then publishes its recorded events") {
    App app;
    auto tallies = app.repository<Tally>("tally-");
    std::vector<std::string> seen;
    auto s = app.bus().subscribe<Recorded>([&](const Recorded& r) {
        // Published after the commit: the store holds the event already.
        CHECK(app.event_store().stream_version(r.stream_id) >= r.version);
        seen.push_back(r.stream_id + "@" + std::to_string(r.version) + "#" + std::to_string(r.position) + ":" +
                       std::string(r.type()));
    });
    std::int64_t added = 0;
    auto typed = app.bus().subscribe<Added>([&](const Added& e) { added += e.amount; });

    Tally tally;
    tally.execute(Add{5});
    tally.execute(Add{6});
    const auto result = tallies.save("1", tally);
    CHECK(result.stream_version == 2);
    CHECK(tally.uncommitted_events().empty());
    CHECK(seen == std::vector<std::string>{"tally-1@1#1:tally.added", "tally-1@2#2:tally.added"});
    CHECK(added == 11);

    SECTION("saving with nothing new publishes nothing") {
        (void)tallies.save("1", tally);
        CHECK(seen.size() == 2);
    }
    SECTION("load sees what was saved") {
        CHECK(tallies.load("1").total() == 11);
        CHECK(tallies.stream_id("1") == "tally-1");
    }
}

TEST_CASE("memory application: a failed append publishes nothing") {
    App app;
    auto tallies = app.repository<Tally>();
    int published = 0;
    auto s = app.bus().subscribe<AppEvent>([&](const AppEvent&) { ++published; });
    Tally first;
    first.execute(Add{1});
    (void)tallies.save("t", first);
    CHECK(published == 1);

    Tally a = tallies.load("t");
    Tally b = tallies.load("t");
    a.execute(Add{2});
    b.execute(Add{3});
    (void)tallies.save("t", a);
    CHECK(published == 2);
    REQUIRE_THROWS_AS(tallies.save("t", b), orchestrix::ConcurrencyError);
    CHECK(published == 2);
    CHECK(b.uncommitted_events().size() == 1);

    SECTION("also for a direct append") {
        REQUIRE_THROWS_AS(app.append("t", {Added{9}}, orchestrix::ExpectedVersion::no_stream()),
                          orchestrix::ConcurrencyError);
        REQUIRE_THROWS_AS(app.append("", {Added{9}}, orchestrix::ExpectedVersion::any()),
                          orchestrix::InvalidArgumentError);
        CHECK(published == 2);
    }
}

TEST_CASE("memory application: a handler failure is reported after the events were stored and all handlers ran") {
    App app;
    auto tallies = app.repository<Tally>();
    int other_calls = 0;
    auto failing = app.bus().subscribe<Added>([](const Added& e) {
        if (e.amount == 2) throw std::runtime_error("read model down");
    });
    auto other = app.bus().subscribe<Added>([&](const Added&) { ++other_calls; });
    Tally tally;
    tally.execute(Add{1});
    tally.execute(Add{2});
    tally.execute(Add{3});
    try {
        (void)tallies.save("x", tally);
        FAIL("the handler failure was not reported");
    } catch (const orchestrix::HandlerError& e) {
        REQUIRE(e.failures().size() == 1);
        CHECK(e.failures()[0].subscription_id == failing.id());
        CHECK(e.failures()[0].message == "read model down");
    }
    CHECK(other_calls == 3);
    CHECK(app.event_store().stream_version("x") == 3);
    CHECK(tally.uncommitted_events().empty()); // committed: saving again writes and publishes nothing
    CHECK_FALSE(tallies.save("x", tally).written);
}

TEST_CASE("memory application: execute retries on conflict and publishes only the attempt that was stored") {
    App app;
    auto tallies = app.repository<Tally>();
    std::vector<std::int64_t> amounts;
    auto s = app.bus().subscribe<Added>([&](const Added& e) { amounts.push_back(e.amount); });
    (void)tallies.execute("t", Add{1});

    std::function<void()> other_writer = [&] {
        (void)app.append("t", {Added{10}}, orchestrix::ExpectedVersion::exact(1));
    };
    const auto result = tallies.execute("t", AddAfter{2, &other_writer});
    CHECK(result.attempts == 2);
    CHECK(amounts == std::vector<std::int64_t>{1, 10, 2}); // the conflicting first attempt published nothing
    CHECK(tallies.load("t").total() == 13);

    SECTION("a refused command publishes nothing") {
        REQUIRE_THROWS_AS(tallies.execute("t", Add{0}), orchestrix::CommandRejectedError);
        CHECK(amounts.size() == 3);
    }
}

TEST_CASE("memory application: direct appends publish, and an idempotent retry publishes nothing") {
    App app;
    std::vector<std::string> seen;
    auto s = app.bus().subscribe<Noted>([&](const Noted& e) { seen.push_back(e.what); });
    orchestrix::EventEnvelope<AppEvent> note(Noted{"first"});
    const std::vector<orchestrix::EventEnvelope<AppEvent>> batch{note};
    CHECK(app.append("audit", batch, orchestrix::ExpectedVersion::no_stream()).written);
    CHECK_FALSE(app.append("audit", batch, orchestrix::ExpectedVersion::no_stream()).written);
    CHECK(seen == std::vector<std::string>{"first"});
}

TEST_CASE("memory application: a handler may save another aggregate while the first is being published") {
    App app;
    auto tallies = app.repository<Tally>();
    std::vector<std::string> notes;
    auto audit = app.bus().subscribe<Added>([&](const Added& e) {
        const auto version = app.event_store().stream_version("audit");
        (void)app.append("audit", {Noted{"added " + std::to_string(e.amount)}},
                         version == 0 ? orchestrix::ExpectedVersion::no_stream()
                                      : orchestrix::ExpectedVersion::exact(version));
    });
    auto log = app.bus().subscribe<Noted>([&](const Noted& e) { notes.push_back(e.what); });
    (void)tallies.execute("t", Add{4});
    (void)tallies.execute("t", Add{5});
    CHECK(notes == std::vector<std::string>{"added 4", "added 5"});
    CHECK(app.event_store().stream_version("audit") == 2);
}

TEST_CASE("memory application: repositories with snapshots take them in the application's snapshot store") {
    App app;
    std::vector<std::string> issues;
    orchestrix::SnapshotSettings<Tally> settings;
    settings.policy = orchestrix::snapshot_every(2);
    settings.state.encode = [](const Tally& t) { return std::to_string(t.total()); };
    settings.state.decode = [](std::string_view text) {
        Tally t;
        t.set_total(std::stoll(std::string(text)));
        return t;
    };
    settings.on_issue = [&](const orchestrix::SnapshotIssue& issue) { issues.push_back(issue.message); };
    auto tallies = app.repository<Tally>(settings, "tally-");
    int published = 0;
    auto s = app.bus().subscribe<Added>([&](const Added&) { ++published; });

    (void)tallies.execute("1", Add{1});
    CHECK(app.snapshot_store().size() == 0);
    (void)tallies.execute("1", Add{2});
    CHECK(app.snapshot_store().size() == 1);
    (void)tallies.execute("1", Add{3});
    CHECK(published == 3);
    const auto snapshot = app.snapshot_store().latest("tally-1");
    REQUIRE(snapshot.has_value());
    CHECK(snapshot->version == 2);
    CHECK(snapshot->state == "3");
    CHECK(tallies.load("1").total() == 6);
    CHECK(issues.empty());
}
