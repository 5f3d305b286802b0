// A saga without an apply() for one of its own events must not compile, and the error names the event.
// expect-error: has no `void apply\(const Event&\)` \(public\)
// expect-first-error: in_saga<Fulfilment>::write_void_apply_taking<const Shipped ?&>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/saga.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>

struct Placed {
    static constexpr std::string_view type_name = "order.placed";
    std::string id;
    bool operator==(const Placed&) const = default;
};
struct Accepted {
    static constexpr std::string_view type_name = "fulfilment.accepted";
    bool operator==(const Accepted&) const = default;
};
struct Shipped {
    static constexpr std::string_view type_name = "fulfilment.shipped";
    bool operator==(const Shipped&) const = default;
};

class Fulfilment : public orchestrix::Saga<Fulfilment, std::variant<Accepted, Shipped>> {
public:
    static constexpr std::string_view saga_type = "fulfilment";
    static std::optional<std::string> correlate(const std::variant<Placed>& e) { return std::get<Placed>(e).id; }
    void handle(const Placed&) { raise(Accepted{}); }
    void apply(const Accepted&) {}
#ifndef ORCHESTRIX_EXPECT_ERROR
    void apply(const Shipped&) {}
#endif
};

int main() {
    orchestrix::InMemoryEventStore<std::variant<Placed>> orders;
    orchestrix::InMemoryEventStore<Fulfilment::event_type> sagas;
    orchestrix::InMemoryCheckpointStore checkpoints;
    orchestrix::InMemoryDeadlineStore deadlines;
    orchestrix::CommandBus bus;
    auto runner = orchestrix::make_saga_runner<Fulfilment>(orders, sagas, checkpoints, deadlines, bus);
    return static_cast<int>(runner->run_until_caught_up());
}
