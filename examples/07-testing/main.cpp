// 07-testing: the quickstart's User aggregate (examples/01-quickstart) tested with the given/when/then
// fixture and plain asserts. Each check throws orchestrix::FixtureFailure with the expected and actual
// events side by side if it does not hold; uncaught, that ends the program with the explanation.

#include <orchestrix/orchestrix.hpp>
#include <orchestrix/testing/aggregate_fixture.hpp>

#include <cassert>
#include <iostream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

// The quickstart's domain, unchanged.
struct CreateUser {
    std::string name;
    std::string email;
};
struct RenameUser {
    std::string name;
};

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

// Optional: how failure messages show the events' payloads (nlohmann to_json or an fmt formatter work too).
std::ostream& operator<<(std::ostream& os, const UserCreated& e) {
    return os << "{" << e.user_id << ", " << e.name << ", " << e.email << "}";
}
std::ostream& operator<<(std::ostream& os, const UserRenamed& e) { return os << "{" << e.name << "}"; }

using Fixture = orchestrix::AggregateFixture<User>;

namespace {
int checks = 0;
void ran(std::string_view check) {
    ++checks;
    std::cout << "  ok  " << check << "\n";
}
} // namespace

int main() {
    std::cout << "User aggregate, given/when/then:\n";

    Fixture()
        .given()
        .when(CreateUser{"John", "john@example.com"})
        .then(UserCreated{"user-123", "John", "john@example.com"});
    ran("creating a user raises user.created");

    Fixture()
        .given(UserCreated{"user-123", "John", "john@example.com"})
        .when(RenameUser{"John Smith"})
        .then(UserRenamed{"John Smith"})
        .then_state("the name is John Smith", [](const User& u) { return u.name() == "John Smith"; });
    ran("renaming a user raises user.renamed and changes the name");

    Fixture().given(UserCreated{"user-123", "John", "john@example.com"}).when(RenameUser{"John"}).then_nothing();
    ran("renaming to the same name raises nothing");

    Fixture()
        .given(UserCreated{"user-123", "John", "john@example.com"})
        .when(CreateUser{"Jane", "jane@example.com"})
        .then_error<std::logic_error>("already exists");
    ran("creating an existing user is refused");

    Fixture()
        .given(UserCreated{"user-123", "John", "john@example.com"}, UserRenamed{"Johnny"})
        .when(RenameUser{"John"})
        .then(UserRenamed{"John"});
    ran("a renamed user can take the old name back");

    // What a failing check reports: the expected and the actual events side by side.
    try {
        Fixture()
            .given(UserCreated{"user-123", "John", "john@example.com"})
            .when(RenameUser{"Jon"})
            .then(UserRenamed{"John Smith"});
        assert(false && "the fixture accepted a wrong event");
        return 1;
    } catch (const orchestrix::FixtureFailure& failure) {
        const std::string message = failure.what();
        assert(message.find("user.renamed {John Smith} | user.renamed {Jon}") != std::string::npos);
        ran("a wrong event is reported; the report reads:");
        std::cout << message << "\n";
    }

    std::cout << checks << " checks passed\n";
    return checks == 6 ? 0 : 1;
}
