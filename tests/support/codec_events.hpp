#pragma once

// Events for the serialization tests: one with a hand-written strict from_json, others with nlohmann's
// generated conversions, a nested struct, containers, narrow integers, an empty event, and an event at
// schema version 3.

#include <orchestrix/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace codec_domain {

struct Address {
    std::string street;
    std::string city;
    bool operator==(const Address&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Address, street, city)

// Hand-written conversions with orchestrix's checked readers.
struct UserRegistered {
    static constexpr std::string_view type_name = "user.registered";
    std::string user_id;
    std::string name;
    std::optional<std::string> email;
    bool active = false;
    bool operator==(const UserRegistered&) const = default;
};

inline void to_json(nlohmann::json& j, const UserRegistered& e) {
    j = nlohmann::json{{"user_id", e.user_id}, {"name", e.name}, {"active", e.active}};
    j["email"] = e.email ? nlohmann::json(*e.email) : nlohmann::json(nullptr);
}

inline void from_json(const nlohmann::json& j, UserRegistered& e) {
    e.user_id = orchestrix::json_field<std::string>(j, "user_id");
    e.name = orchestrix::json_field<std::string>(j, "name");
    e.email = orchestrix::json_field_or<std::optional<std::string>>(j, "email", std::nullopt);
    e.active = orchestrix::json_field<bool>(j, "active");
}

// Plain generated conversions: nlohmann would narrow silently; the codec must not let it.
struct ScoreRecorded {
    static constexpr std::string_view type_name = "score.recorded";
    std::string user_id;
    std::int8_t level = 0;
    std::int32_t points = 0;
    std::uint64_t total = 0;
    double ratio = 0.0;
    bool operator==(const ScoreRecorded&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ScoreRecorded, user_id, level, points, total, ratio)

// Schema version 3: v1 had {user_id, tags}; v2 added counters; v3 added address.
struct ProfileTagged {
    static constexpr std::string_view type_name = "profile.tagged";
    static constexpr std::uint32_t schema_version = 3;
    std::string user_id;
    std::vector<std::string> tags;
    std::map<std::string, std::int64_t> counters;
    Address address;
    bool operator==(const ProfileTagged&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ProfileTagged, user_id, tags, counters, address)

// No fields at all.
struct SessionEnded {
    static constexpr std::string_view type_name = "session.ended";
    bool operator==(const SessionEnded&) const = default;
};
inline void to_json(nlohmann::json& j, const SessionEnded&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json& j, SessionEnded&) {
    if (!j.is_object()) throw std::invalid_argument("session.ended: expected an object");
}

using CodecEvent = std::variant<UserRegistered, ScoreRecorded, ProfileTagged, SessionEnded>;

} // namespace codec_domain
