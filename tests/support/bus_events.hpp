#pragma once

// Events shared by the bus tests: users being created and renamed, and a numbered event for ordering.

#include <orchestrix/core/message.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace bus_test {

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

// Carries who published it and its sequence number within that publisher.
struct Numbered {
    static constexpr std::string_view type_name = "test.numbered";
    std::uint32_t producer = 0;
    std::uint64_t sequence = 0;
    bool operator==(const Numbered&) const = default;
};

using UserEvent = std::variant<UserCreated, UserRenamed, Numbered>;

// Not part of UserEvent.
struct Unrelated {
    static constexpr std::string_view type_name = "test.unrelated";
    bool operator==(const Unrelated&) const = default;
};

} // namespace bus_test
