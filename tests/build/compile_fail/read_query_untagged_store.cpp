// Reading by query a store one of whose event types declares no tags must not compile, and the error names
// the event type and says what to write.
// expect-error: read\(query\), visit\(query, \.\.\.\), append
// expect-first-error: in_event<Deposited>::write_auto_tags_const
#include <orchestrix/core/dcb.hpp>
#include <orchestrix/memory/event_store.hpp>

#include <array>
#include <string>
#include <string_view>
#include <variant>

struct Opened {
    static constexpr std::string_view type_name = "account.opened";
    std::string account;
    bool operator==(const Opened&) const = default;
    auto tags() const { return std::array{orchestrix::tag("account", account)}; }
};
struct Deposited {
    static constexpr std::string_view type_name = "account.deposited";
    std::string account;
    bool operator==(const Deposited&) const = default;
#ifndef ORCHESTRIX_EXPECT_ERROR
    auto tags() const { return std::array{orchestrix::tag("account", account)}; }
#endif
};

int main() {
    orchestrix::InMemoryEventStore<std::variant<Opened, Deposited>> store;
    return static_cast<int>(store.read(orchestrix::Query::all()).events.size());
}
