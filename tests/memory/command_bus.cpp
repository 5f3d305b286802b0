#include <orchestrix/memory/command_bus.hpp>

#include "support/catch.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

struct CreateUser {
    static constexpr std::string_view type_name = "users.create";
    std::string name;
    std::string email;
    [[nodiscard]] bool validate() const { return !name.empty() && email.find('@') != std::string::npos; }
};

struct RenameUser { // no type_name: messages fall back to the compiler's name
    std::string name;
    void validate() const {
        if (name.size() > 10) throw std::invalid_argument("name longer than 10 characters");
    }
};

struct DeleteUser {
    std::string id;
};

using UserCommand = std::variant<CreateUser, RenameUser, DeleteUser>;

} // namespace

TEST_CASE("command bus: a command goes to the one handler registered for its type") {
    orchestrix::CommandBus commands;
    std::vector<std::string> handled;
    auto create =
        commands.register_handler<CreateUser>([&](const CreateUser& c) { handled.push_back("create:" + c.name); });
    auto remove =
        commands.register_handler<DeleteUser>([&](const DeleteUser& c) { handled.push_back("delete:" + c.id); });
    CHECK(commands.has_handler<CreateUser>());
    CHECK_FALSE(commands.has_handler<RenameUser>());

    commands.dispatch(CreateUser{"John", "john@example.com"});
    commands.dispatch(DeleteUser{"7"});
    CHECK(handled == std::vector<std::string>{"create:John", "delete:7"});

    SECTION("a variant of commands dispatches the alternative it holds") {
        commands.dispatch(UserCommand{DeleteUser{"8"}});
        CHECK(handled.back() == "delete:8");
    }
}

TEST_CASE("command bus: registering a second handler for a command type is an error naming it") {
    orchestrix::CommandBus commands;
    int first_calls = 0;
    auto first = commands.register_handler<CreateUser>([&](const CreateUser&) { ++first_calls; });
    try {
        auto second = commands.register_handler<CreateUser>([](const CreateUser&) {});
        FAIL("a second handler was accepted");
    } catch (const orchestrix::HandlerAlreadyRegisteredError& e) {
        CHECK(e.command_type() == "users.create");
        CHECK(std::string(e.what()).find("'users.create'") != std::string::npos);
    }
    commands.dispatch(CreateUser{"a", "a@b"});
    CHECK(first_calls == 1); // the first handler is untouched

    SECTION("after the first is unsubscribed another may register") {
        first.unsubscribe();
        int replacement_calls = 0;
        auto replacement = commands.register_handler<CreateUser>([&](const CreateUser&) { ++replacement_calls; });
        commands.dispatch(CreateUser{"a", "a@b"});
        CHECK(replacement_calls == 1);
        CHECK(first_calls == 1);
    }
}

TEST_CASE("command bus: dispatching a command without a handler is an error naming its type") {
    orchestrix::CommandBus commands;
    try {
        commands.dispatch(CreateUser{"a", "a@b"});
        FAIL("dispatch without a handler succeeded");
    } catch (const orchestrix::NoHandlerError& e) {
        CHECK(e.command_type() == "users.create");
    }
    try {
        commands.dispatch(RenameUser{"x"});
        FAIL("dispatch without a handler succeeded");
    } catch (const orchestrix::NoHandlerError& e) {
        CAPTURE(e.command_type());
        CHECK(e.command_type().find("RenameUser") != std::string::npos); // the compiler's spelling
    }
    SECTION("also after its handler was unsubscribed") {
        auto s = commands.register_handler<DeleteUser>([](const DeleteUser&) {});
        s.unsubscribe();
        REQUIRE_THROWS_AS(commands.dispatch(DeleteUser{"1"}), orchestrix::NoHandlerError);
    }
}

TEST_CASE("command bus: an invalid command is refused before its handler runs") {
    orchestrix::CommandBus commands;
    int created = 0;
    int renamed = 0;
    auto a = commands.register_handler<CreateUser>([&](const CreateUser&) { ++created; });
    auto b = commands.register_handler<RenameUser>([&](const RenameUser&) { ++renamed; });

    REQUIRE_THROWS_AS(commands.dispatch(CreateUser{"", "nobody@example.com"}), orchestrix::CommandRejectedError);
    REQUIRE_THROWS_AS(commands.dispatch(CreateUser{"John", "no-at-sign"}), orchestrix::CommandRejectedError);
    REQUIRE_THROWS_AS(commands.dispatch(RenameUser{"a name that is too long"}), std::invalid_argument);
    CHECK(created == 0);
    CHECK(renamed == 0);

    commands.dispatch(RenameUser{"short"});
    CHECK(renamed == 1);
}

TEST_CASE("command bus: a handler's exception reaches the caller unchanged") {
    orchestrix::CommandBus commands;
    auto s = commands.register_handler<DeleteUser>([](const DeleteUser& c) {
        if (c.id == "root") throw std::domain_error("root cannot be deleted");
    });
    REQUIRE_THROWS_AS(commands.dispatch(DeleteUser{"root"}), std::domain_error);
    REQUIRE_NOTHROW(commands.dispatch(DeleteUser{"ann"}));
}

TEST_CASE("command bus: a handler may dispatch another command and register handlers") {
    orchestrix::CommandBus commands;
    std::vector<std::string> handled;
    orchestrix::Subscription late;
    auto create = commands.register_handler<CreateUser>([&](const CreateUser& c) {
        handled.push_back("create");
        late = commands.register_handler<DeleteUser>([&](const DeleteUser&) { handled.push_back("delete"); });
        commands.dispatch(DeleteUser{c.name});
    });
    commands.dispatch(CreateUser{"x", "x@y"});
    CHECK(handled == std::vector<std::string>{"create", "delete"});
}

TEST_CASE("command bus: the registrations of two buses are independent") {
    orchestrix::CommandBus one;
    orchestrix::CommandBus two;
    auto a = one.register_handler<CreateUser>([](const CreateUser&) {});
    REQUIRE_NOTHROW(two.register_handler<CreateUser>([](const CreateUser&) {}).release());
    CHECK(two.has_handler<CreateUser>());
    a.unsubscribe();
    CHECK_FALSE(one.has_handler<CreateUser>());
    CHECK(two.has_handler<CreateUser>());
}
