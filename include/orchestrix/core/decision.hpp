#pragma once

// Decision models: the state a decision needs, folded from the events of a query that is derived from the
// projections' declared event types and tags, and a conditional append that stores the decision only if
// none of those events changed since (dynamic consistency boundaries; docs/dcb.md).

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/detail/type_traits.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

namespace diagnostic {

/// What a decision projection lacks (see namespace diagnostic in core/message.hpp).
template <class Projection>
struct in_decision_projection {
    struct write_using_event_types_variant; // using event_types = std::variant<CourseDefined, ...>;
    template <class Event>
    struct write_void_apply_taking; // void apply(const Event&) { ... }
    template <class Event, class StoreEvents>
    struct remove_from_event_types_or_add_to_store_variant; // Event is not an alternative of StoreEvents
};

template <class...>
inline constexpr bool projection_declares_event_types = false;
template <class...>
inline constexpr bool projection_can_apply = false;
template <class...>
inline constexpr bool store_holds_event = false;

} // namespace diagnostic

namespace detail {

template <class P>
concept has_event_types = variant_type<typename P::event_types>;

template <class P>
concept has_projection_tags = requires(const P& p) {
    { p.tags() } -> tag_range;
};

template <class Projection, class StoreEvents, class List>
struct projection_events_ok : std::false_type {};
template <class Projection, class StoreEvents, class... Es>
struct projection_events_ok<Projection, StoreEvents, std::variant<Es...>>
    : std::bool_constant<((alternative_of<Es, StoreEvents> && requires(Projection& p, const Es& e) {
    p.apply(e); }) &&
                          ...)> {};

template <class Projection>
struct projection_event_list {
    using type = void;
};
template <has_event_types Projection>
struct projection_event_list<Projection> {
    using type = typename Projection::event_types;
};

// Explains, event type by event type, why `Projection` is not a decision projection over `StoreEvents`: call
// `check()` (not in a constant expression, so that its error leaves the repository intact).
template <class Projection, class StoreEvents, class List = typename projection_event_list<Projection>::type>
struct explain_projection {
    static void check() noexcept {
        (void)sizeof(typename diagnostic::in_decision_projection<Projection>::write_using_event_types_variant);
        static_assert(diagnostic::projection_declares_event_types<Projection>,
                      "orchestrix: a decision projection says which events it reads: add `using event_types = "
                      "std::variant<CourseDefined, CourseCapacityChanged>;` and a `void apply(const E&)` for each "
                      "of them");
    }
};
template <class Projection, class StoreEvents, class... Es>
struct explain_projection<Projection, StoreEvents, std::variant<Es...>> {
    template <class E>
    static void one() noexcept {
        using diagnose = diagnostic::in_decision_projection<Projection>;
        if constexpr (!alternative_of<E, StoreEvents>) {
            (void)sizeof(typename diagnose::template remove_from_event_types_or_add_to_store_variant<E, StoreEvents>);
            static_assert(diagnostic::store_holds_event<E, StoreEvents>,
                          "orchestrix: a decision projection lists an event type that is not an alternative of the "
                          "store's event variant: add it to the store's std::variant or remove it from the "
                          "projection's event_types");
        } else if constexpr (!requires(Projection & p, const E& e) { p.apply(e); }) {
            (void)sizeof(typename diagnose::template write_void_apply_taking<const E&>);
            static_assert(diagnostic::projection_can_apply<Projection, E>,
                          "orchestrix: a decision projection has no `void apply(const Event&)` (public) for one of "
                          "its event_types: add one, or remove the event type from event_types");
        }
    }
    static void check() noexcept { (one<Es>(), ...); }
};

template <class List>
struct event_type_names;
template <class... Es>
struct event_type_names<std::variant<Es...>> {
    static std::vector<std::string> get() { return {std::string(event_name<Es>)...}; }
};

// The tags a projection reads (none if it declares no `tags()`).
template <class Projection>
std::vector<std::string> projection_tags(const Projection& p) {
    std::vector<std::string> out;
    if constexpr (has_projection_tags<Projection>) {
        for (const auto& t : p.tags()) out.emplace_back(std::string_view(t));
    }
    return out;
}

template <class Tags>
bool carries_all(const Tags& event_tags, const std::vector<std::string>& wanted) {
    for (const std::string& w : wanted) {
        bool found = false;
        for (const auto& t : event_tags) {
            if (std::string_view(t) == w) {
                found = true;
                break;
            }
        }
        if (!found) return false;
    }
    return true;
}

template <class Events, class Result>
void add_decided(std::vector<EventEnvelope<Events>>& out, Result&& result) {
    using R = std::remove_cvref_t<Result>;
    if constexpr (std::is_same_v<R, EventEnvelope<Events>> || std::is_same_v<R, Events> || alternative_of<R, Events>) {
        out.emplace_back(std::forward<Result>(result));
    } else if constexpr (requires {
                             typename R::value_type;
                             result.has_value();
                         }) { // std::optional
        if (result.has_value()) add_decided<Events>(out, *std::forward<Result>(result));
    } else if constexpr (iterable<R>) {
        for (auto&& e : result) add_decided<Events>(out, e);
    } else {
        static_assert(always_false<R>,
                      "orchestrix::DecisionRepository::execute: the decision returned a type that is not an event "
                      "of the store; return an event, the store's event variant, an std::optional or a "
                      "std::vector of them (empty to store nothing)");
    }
}

} // namespace detail

/// A decision projection: a small state folded from the events a decision needs, declared as
///
///     struct CourseCapacity {
///         using event_types = std::variant<CourseDefined, CourseCapacityChanged>; // the events it reads
///         std::string course_id;                                                 // which ones: ...
///         auto tags() const { return std::array{orchestrix::tag("course", course_id)}; } // ... tagged so
///         std::int64_t capacity = 0;
///         void apply(const CourseDefined& e) { capacity = e.capacity; }           // one per event type
///         void apply(const CourseCapacityChanged& e) { capacity = e.capacity; }
///     };
///
/// Its query item is (its `event_types`, its `tags()`): events of any of those types carrying all of those
/// tags (any tags if it declares no `tags()`). An event type without `apply`, or one the store does not hold,
/// is a compile error naming it.
template <class P, class StoreEvents>
concept decision_projection = std::copy_constructible<P> && detail::has_event_types<P> &&
    detail::projection_events_ok<P, StoreEvents, typename P::event_types>::value;

/// The query item a projection reads.
template <class Projection>
[[nodiscard]] QueryItem projection_query_item(const Projection& p) {
    return QueryItem{detail::event_type_names<typename Projection::event_types>::get(), detail::projection_tags(p)};
}

/// The state of one decision: its projections folded from the store, the query they were read with and the
/// position the read covers. `DecisionRepository::append` makes its append conditional on both.
template <class... Projections>
struct Decision {
    std::tuple<Projections...> state;
    Query query;
    position_t position = 0;

    /// The `AppendCondition` that stores a decision made on this state only if it still holds.
    [[nodiscard]] AppendCondition condition() const { return AppendCondition{query, position}; }
};

/// Reads, decides and appends decisions that span streams: the DCB counterpart of `Repository`.
///
/// `load(projections...)` reads the events of the projections' query (one read, in global order) and
/// applies each to every projection whose event types and tags it matches. `append(stream, events,
/// decision)` appends to `stream` on the condition that no event matching the decision's query was stored
/// after the position it read (`AppendConditionError` otherwise). `execute(stream, projections, decide)`
/// does both and, on a conflict, reads and decides again, as `Repository::execute` does (`RetryPolicy`).
///
/// `observe(&observer)` reports each `execute` (`on_command`, in a span "orchestrix.decision"), as
/// `Repository` does. Appended events whose `Metadata::trace` is empty get the span's context, or the
/// calling thread's `current_trace()`.
template <class Store>
class DecisionRepository {
    static_assert(event_store<Store>, "DecisionRepository<Store>: Store must be an orchestrix event store");
    static constexpr bool usable = dcb_event_store<Store>;

public:
    using store_type = Store;
    using event_type = typename Store::event_type;
    using envelope_type = EventEnvelope<event_type>;

    explicit DecisionRepository(Store& store) noexcept : store_(&store) {
        if constexpr (!tagged_event_variant<event_type>) {
            detail::explain_tagged_variant<event_type>::check();
        } else {
            static_assert(usable, "DecisionRepository<Store>: Store must be a dcb_event_store (read(query, after, "
                                  "max_count) and a conditional append), as InMemoryEventStore, SqliteEventStore "
                                  "and PostgresEventStore are");
        }
    }

    /// Reports each `execute` to `observer` from now on; nullptr detaches. Not synchronized: attach before
    /// the repository is used. The observer must outlive its use.
    void observe(Observer* observer) noexcept { observer_ = observer; }
    /// The attached observer (nullptr if none).
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// Folds `projections` (each starting as given: its ids set, its state empty) from the store.
    template <class... Projections>
    [[nodiscard]] Decision<Projections...> load(Projections... projections) const {
        if constexpr (!(decision_projection<Projections, event_type> && ...)) {
            (detail::explain_projection<Projections, event_type>::check(), ...);
        }
        std::uint64_t folded = 0;
        return load_counted(folded, std::move(projections)...);
    }

private:
    // `load`, adding the number of events read to `folded`.
    template <class... Projections>
    Decision<Projections...> load_counted(std::uint64_t& folded, Projections... projections) const {
        static_assert(sizeof...(Projections) > 0, "DecisionRepository::load: pass at least one projection");
        Decision<Projections...> decision{std::tuple<Projections...>(std::move(projections)...), Query::all(), 0};
        // A projection that is not a decision projection was explained by `load` or `execute`.
        if constexpr ((decision_projection<Projections, event_type> && ...) && usable) {
            read_into(decision, folded);
        }
        return decision;
    }

    template <class... Projections>
    void read_into(Decision<Projections...>& decision, std::uint64_t& folded) const {
        std::vector<QueryItem> items;
        std::apply([&](const auto&... p) { (items.push_back(projection_query_item(p)), ...); }, decision.state);
        std::array<std::vector<std::string>, sizeof...(Projections)> tags;
        for (std::size_t i = 0; i < items.size(); ++i) tags[i] = items[i].tags;
        decision.query = Query::of(std::move(items));
        // Whether a projection reading events of type E filters them by tag (else their tags are not built).
        const auto needs_tags = [&]<class E, std::size_t... I>(std::index_sequence<I...>) {
            return ((alternative_of<E, typename std::tuple_element_t<I, std::tuple<Projections...>>::event_types> &&
                     !tags[I].empty()) ||
                    ...);
        };
        decision.position = store_->visit(decision.query, 0, [&](const RecordedEventView<event_type>& e) {
            ++folded;
            std::visit(
                [&](const auto& event) {
                    using E = std::remove_cvref_t<decltype(event)>;
                    if (needs_tags.template operator()<E>(std::index_sequence_for<Projections...>{})) {
                        const auto& event_tags = tags_of(event);
                        apply_to<E>(decision.state, event, event_tags, tags, std::index_sequence_for<Projections...>{});
                    } else { // no projection of this type filters by tag: the event's own tags are not needed
                        apply_to<E>(decision.state, event, no_tags, tags, std::index_sequence_for<Projections...>{});
                    }
                },
                e.event());
        });
    }

public:
    /// Appends `events` to `stream` (any expected version) if no event matching `decision.query` was stored
    /// after `decision.position`. Throws `AppendConditionError` otherwise; nothing is written then. Events
    /// whose `Metadata::trace` is empty are stored with the calling thread's `current_trace()`.
    template <class... Projections>
    AppendResult append(std::string_view stream, std::span<const envelope_type> events,
                        const Decision<Projections...>& decision) {
        std::vector<envelope_type> storage; // filled only when a trace must be added
        return store_->append(stream, detail::traced(events, current_trace(), storage), ExpectedVersion::any(),
                              decision.condition());
    }

    /// Loads `projections`, calls `decide(const Projections&...)` and appends what it returns (an event, the
    /// store's event variant, an envelope, an `std::optional` or a `std::vector` of them; nothing appended if
    /// empty) to `stream` on the decision's condition. On `AppendConditionError` it waits as `retry` says and
    /// starts over, up to `retry.max_attempts` attempts; the last conflict is rethrown. Whatever `decide`
    /// throws (a refusal) propagates at once.
    template <class... Projections, class Decide>
    CommandResult execute(std::string_view stream, std::tuple<Projections...> projections, Decide&& decide,
                          const RetryPolicy& retry = {}) {
        static_assert(std::is_invocable_v<Decide&, const Projections&...>,
                      "DecisionRepository::execute: `decide` must take the projections, in order, as "
                      "`const Projection&...`");
        if constexpr (!(decision_projection<Projections, event_type> && ...)) {
            (detail::explain_projection<Projections, event_type>::check(), ...);
        }
        if (observer_ != nullptr) [[unlikely]] {
            return detail::observed_command<AppendConditionError>(
                *observer_, "orchestrix.decision", {}, stream, [&](detail::CommandProgress& progress) {
                    return execute_attempts(stream, projections, decide, retry, progress);
                });
        }
        detail::CommandProgress progress;
        return execute_attempts(stream, projections, decide, retry, progress);
    }

    [[nodiscard]] Store& store() const noexcept { return *store_; }

private:
    // The attempts of `execute`, recording in `progress` how far they got.
    template <class... Projections, class Decide>
    CommandResult execute_attempts(std::string_view stream, const std::tuple<Projections...>& projections,
                                   Decide& decide, const RetryPolicy& retry, detail::CommandProgress& progress) {
        using Stage = detail::CommandProgress::Stage;
        const std::uint32_t attempts = retry.max_attempts == 0 ? 1 : retry.max_attempts;
        for (std::uint32_t attempt = 1;; ++attempt) {
            progress.attempts = attempt;
            progress.stage = Stage::loading;
            Decision<Projections...> decision =
                std::apply([&](const auto&... p) { return load_counted(progress.replayed, p...); }, projections);
            progress.stage = Stage::deciding;
            std::vector<envelope_type> events;
            detail::add_decided<event_type>(events, std::apply(decide, std::as_const(decision.state)));
            progress.stage = Stage::saving;
            // One thread_local read per attempt: the decision's span, or the caller's trace, reaches the events.
            const TraceContext trace = current_trace();
            if (trace.valid()) {
                for (envelope_type& e : events) {
                    if (!e.metadata.trace.valid()) e.metadata.trace = trace;
                }
            }
            try {
                const AppendCondition condition{std::move(decision.query), decision.position}; // not copied
                return CommandResult{
                    store_->append(stream, std::span<const envelope_type>(events), ExpectedVersion::any(), condition),
                    attempt};
            } catch (const AppendConditionError&) {
                if (attempt >= attempts) throw;
            }
            retry.wait(retry.delay(attempt));
        }
    }

    template <class E, class State, class EventTags, std::size_t N, std::size_t... I>
    static void apply_to(State& state, const E& event, const EventTags& event_tags,
                         const std::array<std::vector<std::string>, N>& tags, std::index_sequence<I...>) {
        (apply_one<E, I>(std::get<I>(state), event, event_tags, tags[I]), ...);
    }

    template <class E, std::size_t I, class Projection, class EventTags>
    static void apply_one(Projection& p, const E& event, const EventTags& event_tags,
                          const std::vector<std::string>& wanted) {
        if constexpr (alternative_of<E, typename Projection::event_types>) {
            if (detail::carries_all(event_tags, wanted)) p.apply(event);
        }
    }

    Store* store_;
    Observer* observer_ = nullptr; // see observe()
};

} // namespace orchestrix
