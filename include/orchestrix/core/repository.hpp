#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace orchestrix {

/// How often `Repository::execute` tries a command that meets a version conflict.
struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    std::uint32_t max_attempts = 3;
};

/// What `Repository::execute` did.
struct CommandResult {
    /// What the store reported for the append (`written == false` if the command raised nothing).
    AppendResult append;
    /// How many attempts it took (1 = no conflict).
    std::uint32_t attempts = 1;
};

namespace detail {

template <class To, class From>
struct variant_converter;

template <class To, class... Fs>
struct variant_converter<To, std::variant<Fs...>> {
    // Converts an event of the store's variant to the aggregate's variant; nullopt if it is no alternative.
    static std::optional<To> convert(const std::variant<Fs...>& from) {
        return std::visit(
            [](const auto& e) -> std::optional<To> {
                if constexpr (alternative_of<decltype(e), To>) {
                    return To{e};
                } else {
                    return std::nullopt;
                }
            },
            from);
    }
};

template <class To, class... Fs>
To widen(const std::variant<Fs...>& from) {
    return std::visit([](const auto& e) -> To { return To{e}; }, from);
}

} // namespace detail

/// Loads and saves aggregates of type `Aggregate` in an event store, one stream per aggregate (the stream
/// id is `stream_prefix + id`).
///
/// The store's event type may be the aggregate's own `std::variant` or a larger variant that contains
/// every alternative of it (an application-wide event type).
template <class Aggregate, event_store Store>
class Repository {
public:
    using aggregate_type = Aggregate;
    using aggregate_events = typename Aggregate::event_type;
    using store_events = typename Store::event_type;

    static_assert(std::is_default_constructible_v<Aggregate>,
                  "Repository<Aggregate, Store>: the aggregate must be default-constructible (a new aggregate "
                  "is default-constructed, then rebuilt from its events)");

    explicit Repository(Store& store, std::string stream_prefix = {})
        : store_(&store), prefix_(std::move(stream_prefix)) {}

    /// The stream that holds the aggregate `id`.
    [[nodiscard]] std::string stream_id(std::string_view id) const {
        std::string stream;
        stream.reserve(prefix_.size() + id.size());
        stream.append(prefix_).append(id);
        return stream;
    }

    /// The aggregate `id` rebuilt from its events, or `std::nullopt` if its stream has no events.
    [[nodiscard]] std::optional<Aggregate> find(std::string_view id) const {
        const std::string stream = stream_id(id);
        Aggregate aggregate{};
        auto replay = [&](const store_events& event, stream_version_t version, std::string_view type) {
            if constexpr (std::is_same_v<store_events, aggregate_events>) {
                (void)type;
                aggregate.replay(event, version);
            } else {
                auto converted = detail::variant_converter<aggregate_events, store_events>::convert(event);
                if (!converted) {
                    throw HistoryError("stream '" + stream + "' holds an event of type '" + std::string(type) +
                                       "' at version " + std::to_string(version) +
                                       ", which the aggregate does not know");
                }
                aggregate.replay(*converted, version);
            }
        };
        if constexpr (visitable_event_store<Store>) {
            // In place: stores that can hand out views are folded without copying an event.
            store_->visit_stream(stream, 1, [&](const RecordedEventView<store_events>& recorded) {
                replay(recorded.event(), recorded.version(), recorded.type());
            });
        } else {
            for (const auto& recorded : store_->read_stream(stream, 1, unlimited))
                replay(recorded.event, recorded.version, recorded.type());
        }
        if (aggregate.version() == 0) return std::nullopt;
        return aggregate;
    }

    /// The aggregate `id` rebuilt from its events. Throws `StreamNotFoundError` if it has none.
    [[nodiscard]] Aggregate load(std::string_view id) const {
        if (auto aggregate = find(id)) return std::move(*aggregate);
        throw StreamNotFoundError(stream_id(id));
    }

    /// Appends the aggregate's uncommitted events, expecting the stream at the version the aggregate was
    /// loaded at, then marks them committed. Throws `ConcurrencyError` if someone else wrote first; the
    /// aggregate is then unchanged.
    AppendResult save(std::string_view id, Aggregate& aggregate) {
        const auto& pending = aggregate.uncommitted_events();
        const stream_version_t loaded = aggregate.committed_version();
        const ExpectedVersion expected = loaded == 0 ? ExpectedVersion::no_stream() : ExpectedVersion::exact(loaded);
        if (pending.empty()) return AppendResult{loaded, 0, 0, false};
        AppendResult result;
        if constexpr (std::is_same_v<store_events, aggregate_events>) {
            result = store_->append(stream_id(id), pending, expected);
        } else {
            std::vector<EventEnvelope<store_events>> widened;
            widened.reserve(pending.size());
            for (const auto& e : pending) widened.emplace_back(detail::widen<store_events>(e.event), e.metadata);
            result = store_->append(stream_id(id), widened, expected);
        }
        aggregate.mark_committed();
        return result;
    }

    /// Loads the aggregate (a new one if it has no events), executes `command` on it and saves it. On a
    /// version conflict, and only then, starts over, up to `retry.max_attempts` attempts in all; the last
    /// conflict is rethrown. Any other exception (a refused command, a store failure) propagates at once.
    template <class Command>
    CommandResult execute(std::string_view id, const Command& command, RetryPolicy retry = {}) {
        const std::uint32_t attempts = retry.max_attempts == 0 ? 1 : retry.max_attempts;
        for (std::uint32_t attempt = 1;; ++attempt) {
            Aggregate aggregate = find(id).value_or(Aggregate{});
            aggregate.execute(command);
            try {
                return CommandResult{save(id, aggregate), attempt};
            } catch (const ConcurrencyError&) {
                if (attempt >= attempts) throw;
            }
        }
    }

    [[nodiscard]] Store& store() const noexcept { return *store_; }

private:
    Store* store_;
    std::string prefix_;
};

} // namespace orchestrix
