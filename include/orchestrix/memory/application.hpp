#pragma once

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/memory/bus.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/memory/snapshot_store.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

namespace detail {

// Publishes the events an append wrote (nothing for an idempotent retry or an empty batch), reading them
// back from the store so that handlers get them with stream version, global position and metadata.
template <class Store, class Bus>
void publish_appended(const Store& store, Bus& bus, const AppendResult& result) {
    if (!result.written || result.first_position == 0) return;
    bus.publish_all(store.read_all(result.first_position, result.last_position - result.first_position + 1));
}

} // namespace detail

/// A repository of an `InMemoryApplication`: the `Repository` API, and every save publishes the events it
/// appended on the application's bus, after the store committed them.
template <class Aggregate, class Events, class Snapshots = NoSnapshots>
class PublishingRepository {
public:
    using repository_type = Repository<Aggregate, InMemoryEventStore<Events>, Snapshots>;
    using aggregate_type = Aggregate;

    PublishingRepository(repository_type repository, InMemoryBus<Events>& bus)
        : repository_(std::move(repository)), bus_(&bus) {}

    /// The stream that holds the aggregate `id`.
    [[nodiscard]] std::string stream_id(std::string_view id) const { return repository_.stream_id(id); }

    /// See `Repository::find`.
    [[nodiscard]] std::optional<Aggregate> find(std::string_view id) const { return repository_.find(id); }

    /// See `Repository::load`.
    [[nodiscard]] Aggregate load(std::string_view id) const { return repository_.load(id); }

    /// Appends the aggregate's uncommitted events (see `Repository::save`), then publishes them as
    /// `RecordedEvent`s. If the append fails (e.g. `ConcurrencyError`), nothing is published. If handlers
    /// fail, the events are stored and the aggregate is marked committed all the same; every handler has
    /// run, and one `HandlerError` reports the failures.
    AppendResult save(std::string_view id, Aggregate& aggregate) {
        const AppendResult result = repository_.save(id, aggregate);
        detail::publish_appended(repository_.store(), *bus_, result);
        return result;
    }

    /// Loads, executes and saves with retries on version conflicts (see `Repository::execute`), then
    /// publishes the events of the attempt that was stored.
    template <class Command>
    CommandResult execute(std::string_view id, const Command& command, RetryPolicy retry = {}) {
        const CommandResult result = repository_.execute(id, command, retry);
        detail::publish_appended(repository_.store(), *bus_, result.append);
        return result;
    }

    /// The repository underneath (saving through it publishes nothing).
    [[nodiscard]] repository_type& repository() noexcept { return repository_; }

    /// Reports each command and snapshot of the repository underneath to `observer` (see
    /// `Repository::observe`); nullptr detaches. The bus reports its publishes to its own observer.
    void observe(Observer* observer) noexcept { repository_.observe(observer); }
    /// The repository's observer, or nullptr.
    [[nodiscard]] Observer* observer() const noexcept { return repository_.observer(); }

private:
    repository_type repository_;
    InMemoryBus<Events>* bus_;
};

/// Everything an application needs, in memory: an event store, a snapshot store and a message bus wired
/// together, for tests, prototypes and single-process programs.
///
///     orchestrix::InMemoryApplication<UserEvent> app;
///     auto welcome = app.bus().subscribe<UserCreated>([](const UserCreated& e) { send_mail(e); });
///     auto users = app.repository<User>("user-");
///     users.execute("123", CreateUser{"John", "john@example.com"});   // stored, then published
///
/// The rule it keeps: events are published only after the store committed them, by the thread that
/// saved them, as `RecordedEvent<Events>` (so handlers of an alternative, of `Events` and of
/// `RecordedEvent<Events>` all get them); a failed append publishes nothing. Two threads saving at once
/// may publish in an order other than the store's; a reader that needs the global order reads the store
/// (`event_store().read_all(position)`).
///
/// `observe(&observer)` attaches one `Observer` to the store, the bus and every repository made afterwards
/// (docs/operations.md).
template <event_variant Events>
class InMemoryApplication {
public:
    using event_type = Events;
    using store_type = InMemoryEventStore<Events>;
    using bus_type = InMemoryBus<Events>;
    using snapshot_store_type = InMemorySnapshotStore;

    InMemoryApplication() = default;
    InMemoryApplication(const InMemoryApplication&) = delete;
    InMemoryApplication& operator=(const InMemoryApplication&) = delete;

    [[nodiscard]] store_type& event_store() noexcept { return store_; }
    [[nodiscard]] const store_type& event_store() const noexcept { return store_; }
    [[nodiscard]] bus_type& bus() noexcept { return bus_; }
    [[nodiscard]] snapshot_store_type& snapshot_store() noexcept { return snapshots_; }

    /// Attaches `observer` (nullptr detaches) to the event store (appends and reads), the bus (publishes)
    /// and the repositories `repository()` makes from now on (commands and snapshots). Not synchronized:
    /// attach before the application is used. The observer must outlive its use.
    void observe(Observer* observer) noexcept {
        observer_ = observer;
        store_.observe(observer);
        bus_.observe(observer);
    }
    /// The attached observer, or nullptr.
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// Appends `events` to `stream` (see `InMemoryEventStore::append`), then publishes what was written.
    /// Throws what the append throws, having published nothing; or `HandlerError` after the events were
    /// stored and every handler ran.
    AppendResult append(std::string_view stream, std::span<const EventEnvelope<Events>> events,
                        ExpectedVersion expected) {
        const AppendResult result = store_.append(stream, events, expected);
        detail::publish_appended(store_, bus_, result);
        return result;
    }

    AppendResult append(std::string_view stream, std::initializer_list<EventEnvelope<Events>> events,
                        ExpectedVersion expected) {
        return append(stream, std::span<const EventEnvelope<Events>>(events.begin(), events.size()), expected);
    }

    /// A repository of `Aggregate` (streams `stream_prefix + id`) whose saves publish.
    template <class Aggregate>
    [[nodiscard]] PublishingRepository<Aggregate, Events> repository(std::string stream_prefix = {}) {
        PublishingRepository<Aggregate, Events> made(
            Repository<Aggregate, store_type>(store_, std::move(stream_prefix)), bus_);
        made.observe(observer_);
        return made;
    }

    /// A repository of `Aggregate` that also reads and takes snapshots in the application's snapshot
    /// store, as `settings` say (see docs/snapshots.md).
    template <class Aggregate>
    [[nodiscard]] PublishingRepository<Aggregate, Events, snapshot_store_type>
    repository(SnapshotSettings<Aggregate> settings, std::string stream_prefix = {}) {
        PublishingRepository<Aggregate, Events, snapshot_store_type> made(
            Repository<Aggregate, store_type, snapshot_store_type>(store_, snapshots_, std::move(settings),
                                                                   std::move(stream_prefix)),
            bus_);
        made.observe(observer_);
        return made;
    }

private:
    store_type store_;
    snapshot_store_type snapshots_;
    bus_type bus_;
    Observer* observer_ = nullptr;
};

} // namespace orchestrix
