#pragma once

// The events every saga records in its own stream beside the saga's own events (docs/sagas.md): which
// domain event it handled, which steps completed and were compensated, its deadlines and how it ended.
// Plain structs of the standard library, so that any store can keep them (<orchestrix/json/saga.hpp> gives
// their JSON conversions for the durable stores).

#include <orchestrix/core/expected_version.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace orchestrix {

/// The saga handled the domain event at `position` (id `event_id`): recorded first in the batch of every
/// handling that changed the saga, so that the event is never handled twice.
struct SagaTriggered {
    static constexpr std::string_view type_name = "orchestrix.saga.triggered";
    position_t position = 0;
    std::string event_id{};
    bool operator==(const SagaTriggered&) const = default;
};

/// A step's command was accepted: the step will be compensated if the saga fails later.
struct SagaStepCompleted {
    static constexpr std::string_view type_name = "orchestrix.saga.step_completed";
    std::string step{};
    bool operator==(const SagaStepCompleted&) const = default;
};

/// The saga failed (a step's command was refused, a deadline passed, `fail()`): its completed steps are
/// compensated in reverse order.
struct SagaCompensationStarted {
    static constexpr std::string_view type_name = "orchestrix.saga.compensation_started";
    std::string reason{};
    bool operator==(const SagaCompensationStarted&) const = default;
};

/// A completed step was compensated, after `attempts` attempts.
struct SagaStepCompensated {
    static constexpr std::string_view type_name = "orchestrix.saga.step_compensated";
    std::string step{};
    std::uint32_t attempts = 1;
    bool operator==(const SagaStepCompensated&) const = default;
};

/// A compensation kept failing: the saga stops and waits for a person (`SagaRunner::retry_compensation`).
struct SagaNeedsAttention {
    static constexpr std::string_view type_name = "orchestrix.saga.needs_attention";
    std::string step{};
    std::string error{};
    std::uint32_t attempts = 0;
    bool operator==(const SagaNeedsAttention&) const = default;
};

/// A deadline was set (or moved) to `due_micros` (microseconds since the Unix epoch).
struct SagaDeadlineScheduled {
    static constexpr std::string_view type_name = "orchestrix.saga.deadline_scheduled";
    std::string name{};
    std::int64_t due_micros = 0;
    bool operator==(const SagaDeadlineScheduled&) const = default;
};

/// A deadline was cancelled before it passed.
struct SagaDeadlineCancelled {
    static constexpr std::string_view type_name = "orchestrix.saga.deadline_cancelled";
    std::string name{};
    bool operator==(const SagaDeadlineCancelled&) const = default;
};

/// A deadline passed and the saga handled it (`on_deadline`).
struct SagaDeadlineReached {
    static constexpr std::string_view type_name = "orchestrix.saga.deadline_reached";
    std::string name{};
    bool operator==(const SagaDeadlineReached&) const = default;
};

/// The saga ended successfully (`complete()`).
struct SagaCompleted {
    static constexpr std::string_view type_name = "orchestrix.saga.completed";
    bool operator==(const SagaCompleted&) const = default;
};

/// A saga's stored events: its own (`Events...`) and those the library records.
template <class... Events>
using saga_events =
    std::variant<Events..., SagaTriggered, SagaStepCompleted, SagaCompensationStarted, SagaStepCompensated,
                 SagaNeedsAttention, SagaDeadlineScheduled, SagaDeadlineCancelled, SagaDeadlineReached, SagaCompleted>;

} // namespace orchestrix
