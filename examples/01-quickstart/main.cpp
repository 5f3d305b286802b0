// 01-quickstart: an aggregate, a command, the in-memory store, step by step (the README's tour).
// A command goes to an aggregate, the aggregate raises events, a store keeps them, and the aggregate
// is rebuilt from the stored events.

#include <orchestrix/orchestrix.hpp>

#include <iostream>
#include <string>
#include <string_view>
#include <variant>

// Commands: plain structs.
struct CreateUser {
    std::string name;
    std::string email;
};
struct RenameUser {
    std::string name;
};

// Events: plain structs with a stable name.
struct UserCreated {
    static constexpr std::string_view type_name = "user.created";
    std::string user_id;
    std::string name;
    std::string email;
    bool operator==(const UserCreated&) const = default;
};
struct UserRenamed {
    static constexpr std::string_view type_name = "user.renamed";
    std::string name;
    bool operator==(const UserRenamed&) const = default;
};
using UserEvent = std::variant<UserCreated, UserRenamed>;

// The aggregate: handle() decides, apply() evolves the state.
class User : public orchestrix::AggregateRoot<User, UserEvent> {
public:
    void handle(const CreateUser& c) {
        if (!id_.empty()) throw std::logic_error("user already exists");
        raise(UserCreated{"user-123", c.name, c.email});
    }
    void handle(const RenameUser& c) {
        if (c.name == name_) return; // nothing changes, nothing is raised
        raise(UserRenamed{c.name});
    }

    void apply(const UserCreated& e) {
        id_ = e.user_id;
        name_ = e.name;
        email_ = e.email;
    }
    void apply(const UserRenamed& e) { name_ = e.name; }

    [[nodiscard]] const std::string& id() const { return id_; }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const std::string& email() const { return email_; }

private:
    std::string id_, name_, email_;
};

int main() {
    User user;
    user.execute(CreateUser{"John", "john@example.com"});
    user.execute(RenameUser{"John Smith"});
    std::cout << "raised " << user.uncommitted_events().size() << " events, user is at version " << user.version()
              << "\n";

    orchestrix::InMemoryEventStore<UserEvent> store;
    const auto result = store.append("user-123", user.uncommitted_events(), orchestrix::ExpectedVersion::no_stream());
    user.mark_committed();
    std::cout << "stored them at global positions " << result.first_position << ".." << result.last_position
              << "; stream 'user-123' is at version " << result.stream_version << "\n";

    for (const auto& recorded : store.read_stream("user-123")) {
        std::cout << "  v" << recorded.version << "  " << recorded.type() << "  id "
                  << recorded.metadata.event_id.to_string() << "\n";
    }

    // Rebuild from the stored events.
    const User loaded = User::from_history(store.read_stream("user-123"));
    std::cout << "rebuilt: " << loaded.id() << " '" << loaded.name() << "' <" << loaded.email() << "> at version "
              << loaded.version() << "\n";

    // Optimistic concurrency: a writer that expects an older version is refused.
    try {
        store.append("user-123", {UserRenamed{"Johnny"}}, orchestrix::ExpectedVersion::exact(1));
    } catch (const orchestrix::ConcurrencyError& e) {
        std::cout << "refused: " << e.what() << "\n";
    }

    // A repository loads, executes, saves, and retries on a version conflict.
    orchestrix::Repository<User, orchestrix::InMemoryEventStore<UserEvent>> users(store);
    const auto outcome = users.execute("user-123", RenameUser{"J. Smith"});
    std::cout << "renamed through the repository in " << outcome.attempts << " attempt(s); now '"
              << users.load("user-123").name() << "' at version " << outcome.append.stream_version << "\n";
    return loaded.name() == "John Smith" ? 0 : 1;
}
