#pragma once

// Which handlers of an in-process bus a message reaches, shared by `InMemoryBus` and `AsyncInMemoryBus`,
// and what the in-process buses (those two and `CommandBus`) report to an attached `Observer`.

#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/detail/chrono.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <exception>
#include <string>
#include <string_view>
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

// What the buses tell an attached observer. Called only when one is attached; an exception a hook throws
// is swallowed (it must not change what the publish does).

/// `what()` of `error`, for a span's or an observation's error text.
[[nodiscard]] inline std::string bus_error_message(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

/// Starts the span "orchestrix.publish <type>" (producer) under the calling thread's current trace;
/// returns its context, empty when the observer traces nothing (or its hook threw).
[[nodiscard]] inline TraceContext start_publish_span(Observer& observer, std::string_view bus,
                                                     std::string_view type) noexcept {
    constexpr std::string_view prefix = "orchestrix.publish ";
    std::array<char, 128> buffer{}; // the name, without allocating for any usual type name
    std::string long_name;
    std::string_view name;
    try {
        if (prefix.size() + type.size() <= buffer.size()) {
            std::copy(prefix.begin(), prefix.end(), buffer.begin());
            std::copy(type.begin(), type.end(), buffer.begin() + static_cast<std::ptrdiff_t>(prefix.size()));
            name = std::string_view(buffer.data(), prefix.size() + type.size());
        } else {
            long_name.append(prefix).append(type);
            name = long_name;
        }
    } catch (...) { // out of memory for a long name: not traced
        return {};
    }
    const SpanAttribute attributes[] = {{"orchestrix.bus", bus, 0, false}, {"orchestrix.message_type", type, 0, false}};
    return start_span(observer, SpanStart{name, SpanKind::producer, current_trace(), attributes});
}

/// Ends `span`, a span `start_publish_span` started (call it only for a valid one); `message` when `error`.
inline void end_publish_span(Observer& observer, const TraceContext& span, bool error,
                             std::string_view message) noexcept {
    call_hook([&] { observer.end_span(span, SpanEnd{error, error ? message : std::string_view{}, {}}); });
}

/// Reports one publish (`on_publish`) that started at `started`.
inline void report_publish(Observer& observer, std::string_view bus, std::string_view type, std::size_t handlers,
                           std::size_t failures, observer_clock::time_point started) noexcept {
    call_hook([&] { observer.on_publish(PublishObservation{bus, type, handlers, failures, elapsed_since(started)}); });
}

/// Reports one handler that threw (`on_handler_failure`).
inline void report_handler_failure(Observer& observer, std::string_view bus, std::string_view type,
                                   std::string_view error) noexcept {
    call_hook([&] { observer.on_handler_failure(HandlerFailureObservation{bus, type, error}); });
}

} // namespace orchestrix::detail
