#include <orchestrix/memory/command_bus.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/process_manager.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using orchestrix::Uuid;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Checkpoints = orchestrix::InMemoryCheckpointStore;
using Manager = orchestrix::ProcessManager<Store, Checkpoints>;

// The command the manager sends: welcome every new account with a bonus.
struct GrantBonus {
    std::string command_id;
    std::string account_id;
};

// The receiving side remembers the command ids it handled, so a command sent again takes effect once.
struct BonusDesk {
    std::vector<std::string> received;
    std::set<std::string> handled;
    int granted = 0;
    void handle(const GrantBonus& c) {
        received.push_back(c.command_id);
        if (handled.insert(c.command_id).second) ++granted;
    }
};

} // namespace

TEST_CASE("derived ids: the same inputs give the same id, any other input another one") {
    const Uuid source = Uuid::generate();
    CHECK(orchestrix::derived_id(source, "pm") == orchestrix::derived_id(source, "pm"));
    CHECK(orchestrix::derived_id(source, "pm", 0) != orchestrix::derived_id(source, "pm", 1));
    CHECK(orchestrix::derived_id(source, "pm") != orchestrix::derived_id(source, "pm2"));
    CHECK(orchestrix::derived_id(source, "pm") != orchestrix::derived_id(Uuid::generate(), "pm"));
    CHECK(orchestrix::derived_id(source, "pm") != source);
    const auto text = orchestrix::derived_id(source, "pm").to_string();
    CHECK(text[14] == '8'); // version 8
    CHECK(Uuid::parse(text).has_value());
}

TEST_CASE("process manager: sends a command per event, and a restart resumes without sending one twice") {
    Store store;
    Checkpoints checkpoints;
    orchestrix::CommandBus commands;
    BonusDesk desk;
    auto registration = commands.register_handler<GrantBonus>([&](const GrantBonus& c) { desk.handle(c); });
    std::map<std::string, int> state; // the manager's own state: accounts welcomed
    auto handler = [&](Manager::Step& step) {
        if (const auto* opened = std::get_if<AccountOpened>(&step.event().event)) {
            state[opened->account_id] = 1;
            step.send(GrantBonus{step.command_id().to_string(), opened->account_id});
        }
    };
    store.append("acc-1", {AccountOpened{"acc-1", "Ada"}, MoneyDeposited{"acc-1", 5}}, ExpectedVersion::no_stream());
    {
        Manager manager("welcome", store, checkpoints, commands, handler);
        manager.run_until_caught_up();
        CHECK(manager.checkpoint() == 2);
    }
    store.append("acc-2", {AccountOpened{"acc-2", "Bob"}}, ExpectedVersion::no_stream());
    Manager restarted("welcome", store, checkpoints, commands, handler);
    restarted.run_until_caught_up();
    CHECK(desk.received.size() == 2);
    CHECK(desk.granted == 2);
    CHECK(state.size() == 2);
    CHECK(desk.received[0] == orchestrix::derived_id(store.read_all(1, 1)[0].metadata.event_id, "welcome").to_string());
}

TEST_CASE("process manager: a command sent before a failed commit is sent again with the same id") {
    Store store;
    Checkpoints checkpoints;
    orchestrix::CommandBus commands;
    BonusDesk desk;
    auto registration = commands.register_handler<GrantBonus>([&](const GrantBonus& c) { desk.handle(c); });
    bool crash = true;
    Manager manager("welcome", store, checkpoints, commands,
                    [&](Manager::Step& step) {
                        if (const auto* opened = std::get_if<AccountOpened>(&step.event().event)) {
                            step.send(GrantBonus{step.command_id().to_string(), opened->account_id});
                            CHECK(step.sent() == 1);
                            if (crash) {
                                crash = false;
                                throw std::runtime_error("lost the database before the commit");
                            }
                        }
                    },
                    {.on_failure = orchestrix::FailurePolicy::retry(3, std::chrono::milliseconds(1))});
    store.append("acc-1", {AccountOpened{"acc-1", "Ada"}}, ExpectedVersion::no_stream());
    manager.run_until_caught_up();
    REQUIRE(desk.received.size() == 2);
    CHECK(desk.received[0] == desk.received[1]);
    CHECK(desk.granted == 1);
}

TEST_CASE("process manager: a command without a handler stops the manager with a report") {
    Store store;
    Checkpoints checkpoints;
    orchestrix::CommandBus commands;
    Manager manager("welcome", store, checkpoints, commands, [](Manager::Step& step) {
        step.send(GrantBonus{step.command_id().to_string(), "x"});
    });
    store.append("acc-1", {AccountOpened{"acc-1", "Ada"}}, ExpectedVersion::no_stream());
    REQUIRE_THROWS_AS(manager.run_until_caught_up(), orchestrix::ProjectionStoppedError);
    REQUIRE(manager.failure());
    CHECK(manager.failure()->error.find("no handler") != std::string::npos);
    CHECK(manager.checkpoint() == 0);
}
