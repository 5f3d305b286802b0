#pragma once

// JSON conversions of the events every saga records (core/saga_events.hpp), so that a durable store
// (SQLite, PostgreSQL) can keep a saga's stream: `SqliteEventStore<MySaga::event_type>` needs them, and the
// saga's own events need theirs, as any event does.

#include <orchestrix/core/saga_events.hpp>
#include <orchestrix/json/errors.hpp>

#include <nlohmann/json.hpp>

namespace orchestrix {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaTriggered, position, event_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaStepCompleted, step)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaCompensationStarted, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaStepCompensated, step, attempts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaNeedsAttention, step, error, attempts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaDeadlineScheduled, name, due_micros)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaDeadlineCancelled, name)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SagaDeadlineReached, name)

inline void to_json(nlohmann::json& j, const SagaCompleted&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json& j, SagaCompleted&) {
    if (!j.is_object()) {
        throw DecodeError(DecodeError::Kind::wrong_type, std::string(SagaCompleted::type_name), "",
                          "a saga's completion is a JSON object");
    }
}

} // namespace orchestrix
