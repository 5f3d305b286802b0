// 04-bus: subscribing handlers to event types on the in-memory bus.
// Handlers subscribe to event types; publishing an event runs them, in subscription order, before
// publish returns. The in-memory application publishes what a repository saves, after the commit.

#include <orchestrix/orchestrix.hpp>

#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

struct UserCreated {
    static constexpr std::string_view type_name = "user.created";
    std::string user_id;
    std::string name;
    bool operator==(const UserCreated&) const = default;
};
struct UserRenamed {
    static constexpr std::string_view type_name = "user.renamed";
    std::string user_id;
    std::string name;
    bool operator==(const UserRenamed&) const = default;
};
using UserEvent = std::variant<UserCreated, UserRenamed>;

struct CreateUser {
    std::string user_id;
    std::string name;
};
struct DeleteUser {
    static constexpr std::string_view type_name = "users.delete";
    std::string user_id;
};

class User : public orchestrix::AggregateRoot<User, UserEvent> {
public:
    void handle(const CreateUser& c) { raise(UserCreated{c.user_id, c.name}); }
    void apply(const UserCreated& e) { name_ = e.name; }
    void apply(const UserRenamed& e) { name_ = e.name; }

private:
    std::string name_;
};

int main() {
    orchestrix::InMemoryBus<UserEvent> bus;

    // Subscribe to events: the subscription unsubscribes when it goes out of scope.
    auto created =
        bus.subscribe<UserCreated>([](const UserCreated& e) { std::cout << "User created: " << e.user_id << "\n"; });
    auto everything = bus.subscribe<UserEvent>(
        [](const UserEvent& e) { std::cout << "  (audit log: " << orchestrix::event_name_of(e) << ")\n"; });

    // Publish an event: the handlers run now, on this thread.
    bus.publish(UserCreated{"123", "John"});

    // A failing handler does not stop the others; publish reports every failure at the end.
    auto flaky = bus.subscribe<UserRenamed>([](const UserRenamed&) { throw std::runtime_error("mail server down"); });
    try {
        bus.publish(UserRenamed{"123", "John Smith"});
    } catch (const orchestrix::HandlerError& e) {
        std::cout << "publish reported: " << e.what() << "\n";
    }
    flaky.unsubscribe();

    // Commands: exactly one handler per command type.
    orchestrix::CommandBus commands;
    orchestrix::InMemoryApplication<UserEvent> app; // event store + snapshot store + bus
    auto users = app.repository<User>("user-");
    auto welcome =
        app.bus().subscribe<orchestrix::RecordedEvent<UserEvent>>([](const orchestrix::RecordedEvent<UserEvent>& r) {
            std::cout << "stored, then published: " << r.type() << " at " << r.stream_id << " v" << r.version << "\n";
        });
    auto create_user =
        commands.register_handler<CreateUser>([&](const CreateUser& c) { (void)users.execute(c.user_id, c); });
    commands.dispatch(CreateUser{"456", "Jane"});

    try {
        commands.dispatch(DeleteUser{"456"});
    } catch (const orchestrix::NoHandlerError& e) {
        std::cout << "dispatch refused: " << e.what() << "\n";
    }
    return users.load("456").version() == 1 ? 0 : 1;
}
