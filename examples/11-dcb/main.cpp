// 11-dcb: decisions that span streams, with dynamic consistency boundaries (docs/dcb.md).
//
// Three invariants no single aggregate can hold, each kept by a decision that reads the events it depends
// on (by type and tag), decides, and appends on the condition that none of those events changed since:
//   1. a course has limited seats, and a student may join at most 3 courses (8 threads race for 5 seats);
//   2. a user name is taken once, whatever stream the claim goes to;
//   3. money moves between two accounts without either going below zero.

#include <orchestrix/orchestrix.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

namespace school {

using orchestrix::tag;

// Events: each declares the tags that let a decision find it.
struct CourseDefined {
    static constexpr std::string_view type_name = "course.defined";
    std::string course_id;
    int capacity = 0;
    bool operator==(const CourseDefined&) const = default;
    auto tags() const { return std::array{tag("course", course_id)}; }
};
struct StudentSubscribed {
    static constexpr std::string_view type_name = "course.student_subscribed";
    std::string student_id, course_id;
    bool operator==(const StudentSubscribed&) const = default;
    auto tags() const { return std::array{tag("student", student_id), tag("course", course_id)}; }
};
struct UsernameClaimed {
    static constexpr std::string_view type_name = "user.username_claimed";
    std::string username, user_id;
    bool operator==(const UsernameClaimed&) const = default;
    auto tags() const { return std::array{tag("username", username)}; }
};
struct AccountOpened {
    static constexpr std::string_view type_name = "account.opened";
    std::string account_id;
    std::int64_t balance = 0;
    bool operator==(const AccountOpened&) const = default;
    auto tags() const { return std::array{tag("account", account_id)}; }
};
struct MoneyTransferred {
    static constexpr std::string_view type_name = "account.money_transferred";
    std::string from, to;
    std::int64_t amount = 0;
    bool operator==(const MoneyTransferred&) const = default;
    auto tags() const { return std::array{tag("account", from), tag("account", to)}; }
};
using Event = std::variant<CourseDefined, StudentSubscribed, UsernameClaimed, AccountOpened, MoneyTransferred>;

// Decision projections: the state a decision needs, each from the events of its types carrying its tags.
struct CourseCapacity {
    using event_types = std::variant<CourseDefined>;
    std::string course_id;
    int capacity = 0;
    bool exists = false;
    auto tags() const { return std::array{tag("course", course_id)}; }
    void apply(const CourseDefined& e) {
        capacity = e.capacity;
        exists = true;
    }
};
struct CourseSubscriptions {
    using event_types = std::variant<StudentSubscribed>;
    std::string course_id;
    int count = 0;
    auto tags() const { return std::array{tag("course", course_id)}; }
    void apply(const StudentSubscribed&) { ++count; }
};
struct StudentSubscriptions {
    using event_types = std::variant<StudentSubscribed>;
    std::string student_id;
    int count = 0;
    auto tags() const { return std::array{tag("student", student_id)}; }
    void apply(const StudentSubscribed&) { ++count; }
};
struct UsernameTaken {
    using event_types = std::variant<UsernameClaimed>;
    std::string username;
    bool taken = false;
    auto tags() const { return std::array{tag("username", username)}; }
    void apply(const UsernameClaimed&) { taken = true; }
};
struct Balance {
    using event_types = std::variant<AccountOpened, MoneyTransferred>;
    std::string account_id;
    std::int64_t amount = 0;
    auto tags() const { return std::array{tag("account", account_id)}; }
    void apply(const AccountOpened& e) { amount = e.balance; }
    void apply(const MoneyTransferred& e) { amount += e.to == account_id ? e.amount : -e.amount; }
};

struct Refused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class Store>
void subscribe(orchestrix::DecisionRepository<Store>& decisions, const std::string& student,
               const std::string& course) {
    decisions.execute("course-" + course,
                      std::tuple{CourseCapacity{course}, CourseSubscriptions{course}, StudentSubscriptions{student}},
                      [&](const CourseCapacity& c, const CourseSubscriptions& taken, const StudentSubscriptions& mine) {
                          if (!c.exists) throw Refused("no course " + course);
                          if (taken.count >= c.capacity) throw Refused("course " + course + " is full");
                          if (mine.count >= 3) throw Refused(student + " already takes 3 courses");
                          return StudentSubscribed{student, course};
                      });
}

template <class Store>
void claim(orchestrix::DecisionRepository<Store>& decisions, const std::string& username, const std::string& user) {
    decisions.execute("user-" + user, std::tuple{UsernameTaken{username}}, [&](const UsernameTaken& name) {
        if (name.taken) throw Refused("user name '" + username + "' is taken");
        return UsernameClaimed{username, user};
    });
}

template <class Store>
void transfer(orchestrix::DecisionRepository<Store>& decisions, const std::string& from, const std::string& to,
              std::int64_t amount) {
    decisions.execute("transfers", std::tuple{Balance{from}, Balance{to}}, [&](const Balance& source, const Balance&) {
        if (source.amount < amount) throw Refused("account " + from + " cannot pay " + std::to_string(amount));
        return MoneyTransferred{from, to, amount};
    });
}

} // namespace school

int main() {
    using namespace school;
    orchestrix::InMemoryEventStore<Event> store;
    orchestrix::DecisionRepository decisions(store);

    // 1. Eight students race for the last five seats of a course.
    store.append("course-cpp", {CourseDefined{"cpp", 5}}, orchestrix::ExpectedVersion::no_stream());
    std::atomic<int> joined{0};
    std::atomic<int> turned_away{0};
    std::vector<std::thread> students;
    for (int i = 0; i < 8; ++i) {
        students.emplace_back([&, i] {
            try {
                subscribe(decisions, "student-" + std::to_string(i), "cpp");
                ++joined;
            } catch (const Refused&) {
                ++turned_away;
            }
        });
    }
    for (auto& s : students) s.join();
    const auto seats = decisions.load(CourseCapacity{"cpp"}, CourseSubscriptions{"cpp"});
    std::cout << "course cpp: " << joined << " joined, " << turned_away << " turned away, "
              << std::get<1>(seats.state).count << " of " << std::get<0>(seats.state).capacity << " seats taken\n";

    // 2. A user name is claimed once.
    claim(decisions, "ada", "u1");
    try {
        claim(decisions, "ada", "u2");
    } catch (const Refused& e) {
        std::cout << "second claim refused: " << e.what() << '\n';
    }

    // 3. Transfers between accounts never overdraw one, though each touches two.
    store.append("account-a", {AccountOpened{"a", 100}}, orchestrix::ExpectedVersion::no_stream());
    store.append("account-b", {AccountOpened{"b", 0}}, orchestrix::ExpectedVersion::no_stream());
    transfer(decisions, "a", "b", 70);
    try {
        transfer(decisions, "a", "b", 50);
    } catch (const Refused& e) {
        std::cout << "transfer refused: " << e.what() << '\n';
    }
    const auto balances = decisions.load(Balance{"a"}, Balance{"b"});
    std::cout << "balances: a = " << std::get<0>(balances.state).amount
              << ", b = " << std::get<1>(balances.state).amount << '\n';

    const bool ok = joined == 5 && std::get<1>(seats.state).count == 5 && std::get<0>(balances.state).amount == 30 &&
                    std::get<1>(balances.state).amount == 70;
    return ok ? 0 : 1;
}
