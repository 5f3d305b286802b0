#pragma once

// A catch-up subscription: every event after a position, in global order, at least once, then live.

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/projection.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

/// Delivers the store's events after position `from` to a handler, in global order: first those stored
/// (catch-up), then each new one as it is committed (live), on its own thread (`start()`) or driven by
/// the caller (`poll_once()`). Its checkpoint lives in memory: keep `checkpoint()` yourself and pass it
/// as `from` next time. Delivery is at least once: after a crash the events after the checkpoint you
/// kept are delivered again; for exactly once, use a `Projection` with a transactional checkpoint store.
///
///     orchestrix::CatchUpSubscription feed(store, 0, [](const orchestrix::RecordedEvent<Events>& e) { ... },
///                                          {.filter = orchestrix::EventFilter::stream_prefix("order-")});
///     feed.start();
///
/// Filters, failure policies and `wait_for` are those of `Projection` (see `ProjectionOptions`).
template <class Store>
class CatchUpSubscription : public ProjectionControls<CatchUpSubscription<Store>> {
public:
    using event_type = typename Store::event_type;
    using recorded_type = RecordedEvent<event_type>;

    /// A subscription to the events of `store` after global position `from` (0 = from the first).
    template <class Handler>
    CatchUpSubscription(const Store& store, position_t from, Handler handler, ProjectionOptions options = {})
        : checkpoints_(from),
          projection_("subscription", store, checkpoints_, checked(std::move(handler)), std::move(options)) {}

    CatchUpSubscription(const CatchUpSubscription&) = delete;
    CatchUpSubscription& operator=(const CatchUpSubscription&) = delete;
    ~CatchUpSubscription() { projection_.stop(); }

private:
    friend class ProjectionControls<CatchUpSubscription>;

    template <class Handler>
    static Handler checked(Handler handler) {
        static_assert(std::is_invocable_v<Handler&, const recorded_type&>,
                      "orchestrix::CatchUpSubscription: the handler must be callable as "
                      "handler(const orchestrix::RecordedEvent<Events>&)");
        return handler;
    }
    struct Checkpoints : InMemoryCheckpointStore {
        explicit Checkpoints(position_t from) { save("subscription", from); }
    };
    Checkpoints checkpoints_;
    Projection<Store, InMemoryCheckpointStore> projection_;
};

} // namespace orchestrix
