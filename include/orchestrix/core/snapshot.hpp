#pragma once

// Snapshots: an aggregate's state at a version, so that loading replays only the events after it.
//
// The core keeps a snapshot's state as JSON text (`std::string`) and knows nothing of JSON itself: the
// conversion of an aggregate to and from that text is a `StateCodec`, and <orchestrix/json.hpp>
// provides the nlohmann_json one (`json_state_codec<Aggregate>()`). See docs/snapshots.md.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/chrono.hpp>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace orchestrix {

/// An aggregate's state as of `version`, stored by value.
struct Snapshot {
    /// The aggregate's key in the snapshot store: a repository uses the aggregate's stream id.
    std::string aggregate_id;
    /// The aggregate's stable type name (`Aggregate::aggregate_type_name`).
    std::string aggregate_type;
    /// The stream version the state includes: loading replays events from `version + 1` on.
    stream_version_t version = 0;
    /// The aggregate's `snapshot_schema_version` when the snapshot was taken: an older one is upcast (if the
    /// state codec can) or ignored, a newer one is ignored.
    std::uint32_t schema_version = 1;
    /// The state as JSON text.
    std::string state;
    /// When the snapshot was taken.
    std::chrono::system_clock::time_point taken_at{};

    friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

namespace detail {

/// Throws `InvalidArgumentError` unless a snapshot store may keep `snapshot`: a well-formed aggregate id
/// (as a stream id) and a version from 1 to `max_version`. Every snapshot store checks this first.
inline void validate_snapshot(const Snapshot& snapshot) {
    validate_stream_id(snapshot.aggregate_id);
    if (snapshot.version == 0 || snapshot.version > max_version) {
        throw InvalidArgumentError("snapshot", "snapshot of '" + snapshot.aggregate_id + "' has version " +
                                                   std::to_string(snapshot.version) + "; it must be between 1 and " +
                                                   std::to_string(max_version));
    }
}

} // namespace detail

/// Where snapshots live. `save(snapshot)` keeps a copy (replacing the aggregate's previous snapshot, unless
/// that one has the same schema version and a higher version); `latest(aggregate_id)` returns a copy of the
/// aggregate's snapshot, or nothing.
template <class S>
concept snapshot_store = requires(S& store, const S& const_store, const Snapshot& snapshot, std::string_view id) {
    store.save(snapshot);
    { const_store.latest(id) } -> std::same_as<std::optional<Snapshot>>;
};

/// The type a repository without snapshots uses in place of a snapshot store.
struct NoSnapshots {};

// ---- what an aggregate declares ------------------------------------------------------------------------

namespace detail {
template <class A>
concept has_aggregate_type_name = requires {
    { A::aggregate_type_name } -> std::convertible_to<std::string_view>;
};
template <class A>
concept has_snapshot_schema_version = requires {
    { A::snapshot_schema_version } -> std::convertible_to<std::uint32_t>;
};
} // namespace detail

/// The version of an aggregate's snapshot format: `Aggregate::snapshot_schema_version` if declared, else 1.
/// Bump it whenever the state's JSON changes shape: older snapshots are then upcast by the state codec's
/// `decode_old` if it has one, and ignored otherwise; newer ones are always ignored.
template <class Aggregate>
inline constexpr std::uint32_t snapshot_schema_version_of = [] {
    if constexpr (detail::has_snapshot_schema_version<Aggregate>) {
        return static_cast<std::uint32_t>(Aggregate::snapshot_schema_version);
    } else {
        return std::uint32_t{1};
    }
}();

// ---- policies ------------------------------------------------------------------------------------------

/// When a repository asks its policy.
enum class SnapshotTrigger : std::uint8_t {
    saved,  ///< after `save` appended events
    loaded, ///< after a load replayed at least one event
};

/// What a snapshot policy sees.
template <class Events>
struct SnapshotContext {
    SnapshotTrigger trigger = SnapshotTrigger::saved;
    /// The aggregate's stream id.
    std::string_view stream_id;
    /// The aggregate's version now.
    stream_version_t version = 0;
    /// `saved`: the events just appended, oldest first. `loaded`: empty.
    std::span<const EventEnvelope<Events>> events;
    /// `loaded`: how many events the load replayed (after the snapshot, if one was used). `saved`: 0.
    std::uint64_t events_replayed = 0;
    /// `loaded`: how long the load took (reading the snapshot and replaying). `saved`: zero.
    std::chrono::nanoseconds rebuild_time{0};
};

namespace detail {
/// The base of orchestrix's policy objects: what `||` combines.
struct snapshot_policy_base {};
} // namespace detail

/// Takes a snapshot whenever a save carries the aggregate past a multiple of `n` events (n = 100: at
/// versions 100, 200, ... or the first save beyond each). `n == 0` never does.
struct SnapshotEvery : detail::snapshot_policy_base {
    stream_version_t n = 0;

    template <class Events>
    [[nodiscard]] bool operator()(const SnapshotContext<Events>& c) const noexcept {
        if (n == 0 || c.trigger != SnapshotTrigger::saved) return false;
        const stream_version_t before = c.version - std::min<stream_version_t>(c.version, c.events.size());
        return c.version / n > before / n;
    }
};

/// Takes a snapshot after a load that took `threshold` or longer (and replayed at least one event).
struct SnapshotWhenLoadExceeds : detail::snapshot_policy_base {
    std::chrono::nanoseconds threshold{0};

    template <class Events>
    [[nodiscard]] bool operator()(const SnapshotContext<Events>& c) const noexcept {
        return c.trigger == SnapshotTrigger::loaded && c.events_replayed > 0 && c.rebuild_time >= threshold;
    }
};

/// Takes a snapshot after a save that appended an event for which `predicate` returns true. The predicate
/// takes one event type (`const OrderShipped&`: other events do not match), several through overloads or
/// `const auto&`, or the aggregate's whole event variant.
template <class Predicate>
struct SnapshotWhenEvent : detail::snapshot_policy_base {
    Predicate predicate;

    template <class Events>
    [[nodiscard]] bool operator()(const SnapshotContext<Events>& c) const {
        if (c.trigger != SnapshotTrigger::saved) return false;
        for (const auto& envelope : c.events) {
            if (matches(envelope.event)) return true;
        }
        return false;
    }

private:
    template <class Events>
    bool matches(const Events& event) const {
        if constexpr (std::is_invocable_r_v<bool, const Predicate&, const Events&>) {
            return static_cast<bool>(std::invoke(predicate, event));
        } else {
            return std::visit(
                [this](const auto& e) -> bool {
                    if constexpr (std::is_invocable_r_v<bool, const Predicate&, decltype(e)>) {
                        return static_cast<bool>(std::invoke(predicate, e));
                    } else {
                        return false;
                    }
                },
                event);
        }
    }
};

/// Never takes a snapshot (a repository with snapshots still reads the ones it finds).
struct SnapshotNever : detail::snapshot_policy_base {
    template <class Events>
    [[nodiscard]] bool operator()(const SnapshotContext<Events>& /*context*/) const noexcept {
        return false;
    }
};

/// A policy of your own: `decide(const SnapshotContext<Events>&) -> bool`.
template <class Decide>
struct SnapshotIf : detail::snapshot_policy_base {
    Decide decide;

    template <class Events>
    [[nodiscard]] bool operator()(const SnapshotContext<Events>& c) const {
        return static_cast<bool>(std::invoke(decide, c));
    }
};

/// Takes a snapshot when either policy says so (`a || b`).
template <class A, class B>
struct SnapshotEither : detail::snapshot_policy_base {
    A first;
    B second;

    template <class Events>
    [[nodiscard]] bool operator()(const SnapshotContext<Events>& c) const {
        return first(c) || second(c);
    }
};

/// A policy object (one of the above, or a combination of them).
template <class P>
concept snapshot_policy = std::derived_from<std::remove_cvref_t<P>, detail::snapshot_policy_base> &&
    std::copy_constructible<std::remove_cvref_t<P>>;

/// Both policies: a snapshot whenever either wants one.
template <snapshot_policy A, snapshot_policy B>
[[nodiscard]] SnapshotEither<std::remove_cvref_t<A>, std::remove_cvref_t<B>> operator||(A&& a, B&& b) {
    return {{}, std::forward<A>(a), std::forward<B>(b)};
}

/// A snapshot every `n` events (see `SnapshotEvery`).
[[nodiscard]] inline SnapshotEvery snapshot_every(stream_version_t n) noexcept { return {{}, n}; }

/// A snapshot after a load that took `threshold` or longer.
template <class Rep, class Period>
[[nodiscard]] SnapshotWhenLoadExceeds snapshot_when_load_exceeds(std::chrono::duration<Rep, Period> threshold) {
    return {{}, std::chrono::duration_cast<std::chrono::nanoseconds>(threshold)};
}

/// A snapshot after saving an event for which `predicate` holds (see `SnapshotWhenEvent`).
template <class Predicate>
[[nodiscard]] SnapshotWhenEvent<std::decay_t<Predicate>> snapshot_when_event(Predicate&& predicate) {
    return {{}, std::forward<Predicate>(predicate)};
}

/// A snapshot after saving any event of type `E`.
template <event E>
[[nodiscard]] auto snapshot_on() {
    return snapshot_when_event([](const E&) { return true; });
}

/// No snapshots.
[[nodiscard]] inline SnapshotNever never_snapshot() noexcept { return {}; }

/// A policy from a callable taking `const SnapshotContext<Events>&`.
template <class Decide>
[[nodiscard]] SnapshotIf<std::decay_t<Decide>> snapshot_if(Decide&& decide) {
    return {{}, std::forward<Decide>(decide)};
}

// ---- repository settings -------------------------------------------------------------------------------

/// Converts an aggregate's state to snapshot text and back. `decode` returns a default-constructed
/// aggregate with the state restored (version 0; the repository restores the version) or throws.
/// `json_state_codec<Aggregate>()` from <orchestrix/json.hpp> is the nlohmann_json one; its
/// `upcast(k, upcaster)` fills in `decode_old`.
template <class Aggregate>
struct StateCodec {
    /// The state, written at the aggregate's current `snapshot_schema_version`.
    std::function<std::string(const Aggregate&)> encode;
    /// A state written at the current schema version.
    std::function<Aggregate(std::string_view)> decode;
    /// Optional: a state written at an older schema version (`schema_version` is the snapshot's), upcast to
    /// the current one and decoded; throws if it cannot be. Empty: older snapshots are ignored.
    std::function<Aggregate(std::uint32_t schema_version, std::string_view)> decode_old{};
};

/// Why a repository did not use or could not take a snapshot. Loading then replays the full history, and
/// saving has still succeeded: a snapshot problem never yields a wrong state and never fails a command.
struct SnapshotIssue {
    enum class Reason : std::uint8_t {
        old_schema_version,   ///< taken with an older `snapshot_schema_version`, and no `decode_old` to upcast it
        newer_schema_version, ///< taken by a program with a newer `snapshot_schema_version`
        wrong_aggregate_type, ///< the snapshot belongs to another aggregate type
        ahead_of_stream,      ///< its version is beyond the stream's (the events were lost or rewritten)
        undecodable,          ///< the state text could not be decoded
        read_failed,          ///< the snapshot store could not be read
        save_failed,          ///< taking or saving a snapshot failed (the events were saved)
        upcast_failed,        ///< taken with an older schema version, and `decode_old` threw (e.g. a missing
                              ///< step in the upcaster chain, an upcaster that threw, an upcast state that
                              ///< does not decode)
    };

    Reason reason;
    std::string stream_id;
    /// The snapshot's version (for `save_failed`: the version it was to be taken at).
    stream_version_t version = 0;
    /// What went wrong, as a sentence.
    std::string message;
};

/// The name of `reason` as the enumerator spells it ("old_schema_version", "undecodable", ...): the
/// `SnapshotObservation::reason` an observer gets for an ignored snapshot.
[[nodiscard]] constexpr std::string_view reason_name(SnapshotIssue::Reason reason) noexcept {
    using Reason = SnapshotIssue::Reason;
    switch (reason) {
    case Reason::old_schema_version:
        return "old_schema_version";
    case Reason::newer_schema_version:
        return "newer_schema_version";
    case Reason::wrong_aggregate_type:
        return "wrong_aggregate_type";
    case Reason::ahead_of_stream:
        return "ahead_of_stream";
    case Reason::undecodable:
        return "undecodable";
    case Reason::read_failed:
        return "read_failed";
    case Reason::save_failed:
        return "save_failed";
    case Reason::upcast_failed:
        return "upcast_failed";
    }
    return "unknown";
}

/// How a repository takes and reads snapshots.
///
///     orchestrix::SnapshotSettings<Cart> settings{
///         .policy = orchestrix::snapshot_every(100) || orchestrix::snapshot_on<CartCheckedOut>(),
///         .state = orchestrix::json_state_codec<Cart>(),
///         .on_issue = [](const orchestrix::SnapshotIssue& issue) { log(issue.message); },
///     };
template <class Aggregate>
struct SnapshotSettings {
    using events_type = typename Aggregate::event_type;

    /// When to take one (empty: never, but existing snapshots are still read).
    std::function<bool(const SnapshotContext<events_type>&)> policy{};
    /// How the state becomes text and back. Required.
    StateCodec<Aggregate> state{};
    /// Told about every snapshot that was ignored or could not be taken (may be empty).
    std::function<void(const SnapshotIssue&)> on_issue{};
};

} // namespace orchestrix
