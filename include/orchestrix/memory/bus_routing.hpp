#pragma once

// Which handlers of an in-process bus a message reaches, shared by `InMemoryBus` and `AsyncInMemoryBus`.

#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>

#include <cstddef>
#include <type_traits>
#include <variant>

namespace orchestrix::detail {

/// How a bus for the event variant `Events` files its handlers: one slot per alternative (at the
/// alternative's index), then one for the handlers of `Events` itself (every event) and one for those of
/// `RecordedEvent<Events>`.
template <class Events>
struct bus_routing {
    static constexpr std::size_t all_slot = std::variant_size_v<Events>;
    static constexpr std::size_t recorded_slot = all_slot + 1;
    static constexpr std::size_t slot_count = all_slot + 2;

    /// Whether a handler may subscribe to `M`: an alternative of `Events`, `Events`, or `RecordedEvent<Events>`.
    template <class M>
    static constexpr bool accepts =
        alternative_of<M, Events> || std::is_same_v<M, Events> || std::is_same_v<M, RecordedEvent<Events>>;

    /// The slot of the handlers subscribed to `M` (one that `accepts`).
    template <class M>
    static constexpr std::size_t slot_of = alternative_of<M, Events>   ? variant_index_v<M, Events>
                                           : std::is_same_v<M, Events> ? all_slot
                                                                       : recorded_slot;
};

} // namespace orchestrix::detail
