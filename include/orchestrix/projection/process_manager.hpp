#pragma once

// Process managers: workflows that react to events, keep their own state and send commands.

#include <orchestrix/core/message.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/memory/command_bus.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/projection.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

/// A deterministic id derived from `source` (an event id), a `purpose` (e.g. the process manager's name)
/// and an `index`: the same inputs always give the same id, different inputs different ids (a 122-bit
/// mix, RFC 9562 version 8; not a cryptographic hash). What lets a command sent again after a crash be
/// recognised as the same command.
[[nodiscard]] constexpr Uuid derived_id(const Uuid& source, std::string_view purpose,
                                        std::uint64_t index = 0) noexcept {
    auto mix = [](std::uint64_t x) {
        x ^= x >> 30U;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27U;
        x *= 0x94d049bb133111ebULL;
        return x ^ (x >> 31U);
    };
    std::uint64_t high = 0x6a09e667f3bcc908ULL;
    std::uint64_t low = 0xbb67ae8584caa73bULL;
    auto absorb = [&](std::uint64_t word) {
        high = mix(high ^ word);
        low = mix(low + word + (high << 1U));
        high ^= low;
    };
    for (std::size_t i = 0; i < 16; i += 8) {
        std::uint64_t word = 0;
        for (std::size_t k = 0; k < 8; ++k) word = (word << 8U) | source.bytes()[i + k];
        absorb(word);
    }
    absorb(purpose.size());
    for (char c : purpose) absorb(static_cast<unsigned char>(c));
    absorb(index);
    Uuid::bytes_type b{};
    for (std::size_t i = 0; i < 8; ++i) {
        b[i] = static_cast<std::uint8_t>(high >> (56 - 8 * i));
        b[8 + i] = static_cast<std::uint8_t>(low >> (56 - 8 * i));
    }
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0FU) | 0x80U); // version 8: custom
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3FU) | 0x80U); // RFC 9562 variant
    return Uuid(b);
}

/// A process manager: a projection whose handler also sends commands through a `CommandBus`. It keeps
/// its state where the checkpoint store keeps its transaction (a table in SQLite or PostgreSQL), so state
/// and checkpoint commit together.
///
///     orchestrix::ProcessManager fulfilment("fulfilment", store, checkpoints, commands,
///         [](auto& step) {
///             if (const auto* placed = std::get_if<OrderPlaced>(&step.event().event))
///                 step.send(ReserveStock{.reservation_id = step.command_id().to_string(), ...});
///         });
///
/// **The guarantee.** Every event is handled until its transaction commits, and the state written and the
/// checkpoint commit together: after a restart the manager resumes after the last committed event, with
/// the state of that moment, and never handles a committed event again. Commands are sent while the
/// event is handled, before that commit. If the process dies (or the handler fails and is retried) after
/// a command was sent but before the commit, the event is handled again and the command is sent again:
/// commands are sent **at least once**, never lost. A command sent again carries the same id:
/// `step.command_id(k)` is derived from the triggering event's id, the manager's name and `k`, so the
/// receiving side recognises it (an aggregate that remembers the ids it handled, or an append whose event
/// ids are derived from the command id, which the store then treats as an idempotent retry) and the
/// command takes effect exactly once.
template <class Store, checkpoint_store Checkpoints>
class ProcessManager : public ProjectionControls<ProcessManager<Store, Checkpoints>> {
public:
    using event_type = typename Store::event_type;
    using recorded_type = RecordedEvent<event_type>;
    using transaction_type = typename Checkpoints::transaction_type;

    /// What the handler gets for each event: the event, the transaction to keep state in, and the way to
    /// send commands.
    class Step {
    public:
        Step(std::string_view manager, transaction_type& tx, const recorded_type& event, CommandBus& bus) noexcept
            : manager_(manager), tx_(&tx), event_(&event), bus_(&bus) {}

        /// The event being handled.
        [[nodiscard]] const recorded_type& event() const noexcept { return *event_; }
        /// The transaction state is kept in; it commits with the checkpoint.
        [[nodiscard]] transaction_type& transaction() const noexcept { return *tx_; }
        /// The id of the `index`-th command sent for this event: the same each time the event is handled.
        [[nodiscard]] Uuid command_id(std::uint64_t index = 0) const noexcept {
            return derived_id(event_->metadata.event_id, manager_, index);
        }
        /// Dispatches `command` through the command bus; its handler's exceptions fail this step.
        template <class C>
        void send(const C& command) {
            bus_->dispatch(command);
            ++sent_;
        }
        /// How many commands this step has sent.
        [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }

    private:
        std::string_view manager_;
        transaction_type* tx_;
        const recorded_type* event_;
        CommandBus* bus_;
        std::uint64_t sent_ = 0;
    };

    /// A process manager named `name` (its checkpoint's key, and part of every command id) over `store`.
    template <class Handler>
    ProcessManager(std::string name, const Store& store, Checkpoints& checkpoints, CommandBus& bus, Handler handler,
                   ProjectionOptions options = {})
        : name_(name),
          projection_(std::move(name), store, checkpoints, bind(std::move(handler), bus), std::move(options)) {}

    ProcessManager(const ProcessManager&) = delete;
    ProcessManager& operator=(const ProcessManager&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return projection_.name(); }

private:
    friend class ProjectionControls<ProcessManager>;

    template <class Handler>
    auto bind(Handler handler, CommandBus& bus) {
        static_assert(std::is_invocable_v<Handler&, Step&>,
                      "orchestrix::ProcessManager: the handler must be callable as handler(Step&), e.g. "
                      "[](auto& step) { ... step.send(command); }");
        return [this, h = std::move(handler), &bus](transaction_type& tx, const recorded_type& e) mutable {
            Step step(name_, tx, e, bus);
            std::invoke(h, step);
        };
    }

    std::string name_;
    Projection<Store, Checkpoints> projection_;
};

} // namespace orchestrix
