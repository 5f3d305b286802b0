#pragma once

// Dynamic consistency boundaries (DCB): events carry tags, a query selects events by type and tag, and an
// append can be made conditional on no event matching a query having been appended after the position a
// decision read. docs/dcb.md explains when to use them instead of (or beside) aggregates.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/range.hpp>
#include <orchestrix/detail/type_traits.hpp>
#include <orchestrix/detail/utf8.hpp>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

/// The longest tag (in bytes) an event may carry.
inline constexpr std::size_t max_tag_length = 256;

/// The tag `key:value`, the usual form of a tag: `tag("course", "c1")` is "course:c1".
[[nodiscard]] inline std::string tag(std::string_view key, std::string_view value) {
    std::string out;
    out.reserve(key.size() + 1 + value.size());
    out.append(key).push_back(':');
    out.append(value);
    return out;
}

/// The tags of an event that has none: `auto tags() const { return orchestrix::no_tags; }`.
inline constexpr std::array<std::string_view, 0> no_tags{};

/// Where the tags of an event type come from, for a type you cannot change (by default its `tags()`):
///
///     template <> struct orchestrix::event_tags<legacy::Enrolled> {
///         static std::array<std::string, 1> of(const legacy::Enrolled& e) { return {orchestrix::tag("course", e.c)}; }
///     };
template <class E>
struct event_tags;

namespace detail {

/// A range of tags: anything a range-based `for` walks whose elements convert to `std::string_view`
/// (`std::array<std::string, N>`, `std::vector<std::string>`, `orchestrix::no_tags`).
template <class R>
concept tag_range = iterable<const R> && requires(const R& r) {
    { *std::ranges::begin(r) } -> std::convertible_to<std::string_view>;
};

template <class E>
concept has_member_tags = requires(const E& e) {
    { e.tags() } -> tag_range;
};

template <class E>
struct default_event_tags {};

template <has_member_tags E>
struct default_event_tags<E> {
    static decltype(auto) of(const E& e) { return e.tags(); }
};

} // namespace detail

template <class E>
struct event_tags : detail::default_event_tags<E> {};

/// An event type whose events carry tags: it declares `tags() const` (returning a range of strings, e.g.
/// `std::array<std::string, 2>`, or `orchestrix::no_tags`), or `event_tags<E>` is specialised for it.
template <class E>
concept tagged_event = requires(const E& e) {
    { event_tags<E>::of(e) } -> detail::tag_range;
};

/// The tags of `event`, as its type declares them.
template <tagged_event E>
[[nodiscard]] decltype(auto) tags_of(const E& event) {
    return event_tags<E>::of(event);
}

namespace detail {

template <class V>
struct tagged_variant_check : std::false_type {};
template <class... Ts>
struct tagged_variant_check<std::variant<Ts...>> : std::bool_constant<(tagged_event<Ts> && ...)> {};

// Explains, type by type, why a variant is not a tagged_event_variant: call `check()` (not in a constant
// expression, so that the compiler reports the helper's static_assert alone).
template <class V>
struct explain_tagged_variant {
    static void check() noexcept {}
};
template <class... Ts>
struct explain_tagged_variant<std::variant<Ts...>> {
    template <class E>
    static void one() noexcept {
        if constexpr (!tagged_event<E>) {
            (void)sizeof(typename diagnostic::in_event<E>::write_auto_tags_const);
            static_assert(diagnostic::event_declares_tags<E>,
                          "orchestrix: read(query), visit(query, ...), append(..., condition) and "
                          "DecisionRepository need a store whose event types all declare tags: add `auto "
                          "tags() const { return std::array{orchestrix::tag(\"course\", course_id)}; }` to it, or "
                          "`auto tags() const { return orchestrix::no_tags; }` for an event without tags");
        }
    }
    static void check() noexcept { (one<Ts>(), ...); }
};

} // namespace detail

/// A variant of events every alternative of which declares its tags: what a store needs to be read by
/// query (`read(query)`, conditional `append`).
template <class V>
concept tagged_event_variant = event_variant<V> && detail::tagged_variant_check<V>::value;

namespace detail {

/// Whether `tag` is a usable tag: 1 to `max_tag_length` bytes of valid UTF-8 without NUL characters.
[[nodiscard]] constexpr bool is_valid_tag(std::string_view tag) noexcept {
    return !tag.empty() && tag.size() <= max_tag_length && tag.find('\0') == std::string_view::npos &&
           is_valid_utf8(tag);
}

/// Throws `InvalidArgumentError(argument)` unless `tag` is a usable tag; `whose` says where it came from.
inline void validate_tag(std::string_view tag, const char* argument, std::string_view whose) {
    if (is_valid_tag(tag)) return;
    std::string problem =
        tag.empty() ? "is empty"
        : tag.size() > max_tag_length
            ? "is " + std::to_string(tag.size()) + " bytes long; the limit is " + std::to_string(max_tag_length)
        : tag.find('\0') != std::string_view::npos ? "contains a NUL character"
                                                   : "is not valid UTF-8";
    throw InvalidArgumentError(argument, std::string(whose) + ": a tag " + problem);
}

/// Calls `f(std::string_view)` for each tag of the event `event` holds.
template <tagged_event_variant Events, class F>
void for_each_tag(const Events& event, F&& f) {
    std::visit(
        [&](const auto& e) {
            for (const auto& t : tags_of(e)) f(std::string_view(t));
        },
        event);
}

/// The distinct tags of `event`, sorted, each checked (`InvalidArgumentError("events")` naming the event type).
template <tagged_event_variant Events>
[[nodiscard]] std::vector<std::string> checked_tags(const Events& event) {
    std::vector<std::string> out;
    for_each_tag(event, [&](std::string_view t) {
        if (!is_valid_tag(t)) validate_tag(t, "events", "event '" + std::string(event_name_of(event)) + "'");
        out.emplace_back(t);
    });
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

} // namespace detail

/// One item of a `Query`: events of one of `types` (any type if empty) that carry every tag of `tags` (any
/// tags if empty). An item names at least one type or tag.
struct QueryItem {
    /// Event type names (`event_name<E>`); the event's type must be one of them.
    std::vector<std::string> types;
    /// Tags; the event must carry all of them.
    std::vector<std::string> tags;

    friend bool operator==(const QueryItem&, const QueryItem&) = default;
};

/// The query item for events of types `Es...` carrying every tag of `tags` (any of `Es`; all of `tags`):
/// `query_item<CourseDefined, CourseCapacityChanged>({orchestrix::tag("course", id)})`.
template <named_event... Es>
[[nodiscard]] QueryItem query_item(std::vector<std::string> tags = {}) {
    return QueryItem{{std::string(event_name<Es>)...}, std::move(tags)};
}

/// What a decision reads and what its append is conditional on: events matching any of its items (an OR of
/// items; within an item, any of its types AND all of its tags), or every event (`Query::all()`).
class Query {
public:
    /// The query that matches every event.
    [[nodiscard]] static Query all() { return Query(); }

    /// The query that matches events matching any of `items`. Throws `InvalidArgumentError("query")` for no
    /// items, an item with neither types nor tags (use `Query::all()` to match everything), or a malformed tag.
    [[nodiscard]] static Query of(std::vector<QueryItem> items) {
        if (items.empty()) {
            throw InvalidArgumentError("query", "a query needs at least one item (Query::all() matches every event)");
        }
        for (QueryItem& item : items) normalise(item);
        Query q;
        q.items_ = std::move(items);
        q.all_ = false;
        return q;
    }

    [[nodiscard]] static Query of(std::initializer_list<QueryItem> items) { return of(std::vector<QueryItem>(items)); }

    /// Whether this is `Query::all()`.
    [[nodiscard]] bool matches_all() const noexcept { return all_; }

    /// The items (none for `Query::all()`), each with its types and tags sorted and distinct.
    [[nodiscard]] const std::vector<QueryItem>& items() const noexcept { return items_; }

    /// Whether an event of type `type` carrying `tags` matches.
    template <class Tags>
    [[nodiscard]] bool matches(std::string_view type, const Tags& tags) const {
        if (all_) return true;
        return std::any_of(items_.begin(), items_.end(),
                           [&](const QueryItem& item) { return matches(item, type, tags); });
    }

    /// Whether `event` matches.
    template <tagged_event_variant Events>
    [[nodiscard]] bool matches(const Events& event) const {
        if (all_) return true;
        return std::visit(
            [&](const auto& e) {
                const auto& tags = tags_of(e); // the tags live as long as this range
                return matches(event_name_of(event), tags);
            },
            event);
    }

    /// Whether an event of type `type` carrying `tags` matches `item`.
    template <class Tags>
    [[nodiscard]] static bool matches(const QueryItem& item, std::string_view type, const Tags& tags) {
        if (!item.types.empty() && std::find(item.types.begin(), item.types.end(), type) == item.types.end()) {
            return false;
        }
        for (const std::string& wanted : item.tags) {
            bool found = false;
            for (const auto& t : tags) {
                if (std::string_view(t) == wanted) {
                    found = true;
                    break;
                }
            }
            if (!found) return false;
        }
        return true;
    }

    friend bool operator==(const Query&, const Query&) = default;

private:
    Query() = default;

    static void normalise(QueryItem& item) {
        if (item.types.empty() && item.tags.empty()) {
            throw InvalidArgumentError("query", "a query item needs at least one type or tag (Query::all() matches "
                                                "every event)");
        }
        for (const std::string& type : item.types) {
            if (type.empty()) throw InvalidArgumentError("query", "a query item has an empty event type name");
        }
        for (const std::string& t : item.tags) detail::validate_tag(t, "query", "query item");
        std::sort(item.types.begin(), item.types.end());
        item.types.erase(std::unique(item.types.begin(), item.types.end()), item.types.end());
        std::sort(item.tags.begin(), item.tags.end());
        item.tags.erase(std::unique(item.tags.begin(), item.tags.end()), item.tags.end());
    }

    std::vector<QueryItem> items_;
    bool all_ = true;
};

/// The condition of a conditional append: it fails (`AppendConditionError`) if any event matching
/// `fail_if_events_match` is stored after position `after` (after position 0, i.e. at all, if `after` is
/// nothing). A decision passes its query and the position its read returned.
struct AppendCondition {
    Query fail_if_events_match;
    std::optional<position_t> after{};

    friend bool operator==(const AppendCondition&, const AppendCondition&) = default;
};

/// What `read(query, after)` returns: the matching events in global order, and the position the read covers.
template <event_variant Events>
struct QueryResult {
    /// The events matching the query after `after`, in global order.
    std::vector<RecordedEvent<Events>> events;
    /// Every event matching the query at or before this position is in `events` (or before `after`): the
    /// store's head position when it was read, or the last returned event's position when `max_count` cut
    /// the read short. Pass it as `AppendCondition::after`.
    position_t position = 0;
};

/// A store that can be read by query and appended to on a condition (the DCB specification, dcb.events):
///
/// - `read(query, after, max_count)` returns the events matching `query` with a position greater than
///   `after`, in global order, and the position the read covers (`QueryResult`);
/// - `visit(query, after, visitor, max_count)` hands them to `visitor(const RecordedEventView<Events>&)` in
///   place and returns that position;
/// - `append(stream, events, expected, condition)` appends as `append(stream, events, expected)` does, and
///   also fails with `AppendConditionError` if an event matching `condition.fail_if_events_match` is stored
///   after `condition.after`. An idempotent retry of a stored batch succeeds without checking the condition
///   (the batch's own events may match it).
///
/// Every event's tags are stored as its type declares them when it is appended (`tagged_event`).
template <class S>
concept dcb_event_store = event_store<S> && tagged_event_variant<typename S::event_type> &&
    requires(S& store, const S& const_store, std::string_view stream,
             std::span<const EventEnvelope<typename S::event_type>> events, ExpectedVersion expected,
             const Query& query, const AppendCondition& condition, position_t after, std::uint64_t number) {
    { const_store.read(query, after, number) } -> std::same_as<QueryResult<typename S::event_type>>;
    { store.append(stream, events, expected, condition) } -> std::same_as<AppendResult>;
};

namespace detail {

/// Throws `InvalidArgumentError("query")` if an item of `query` names a type that is not an alternative of
/// `Events`: such an item could never match, and a misspelt name would make a condition that never fails.
template <event_variant Events>
void validate_query_types(const Query& query) {
    for (const QueryItem& item : query.items()) {
        for (const std::string& type : item.types) {
            const bool known = []<class... Ts>(std::variant<Ts...>*, std::string_view name) {
                return ((event_name<Ts> == name) || ...);
            }(static_cast<Events*>(nullptr), type);
            if (!known) {
                throw InvalidArgumentError("query", "query names the event type '" + type +
                                                        "', which is not one of the store's event types");
            }
        }
    }
}

} // namespace detail

} // namespace orchestrix
