#pragma once

#include <orchestrix/core/aggregate_cache.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/lifecycle.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/detail/chrono.hpp>
#include <orchestrix/detail/function_ref.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

// Retry waits sleep through nanosleep where there is one: <thread> is among the headers orchestrix.hpp
// stays clear of (docs/architecture.md).
#if !defined(_WIN32) && __has_include(<time.h>)
#include <cerrno>
#include <ctime> // nanosleep (POSIX, declared by <time.h>, which <ctime> includes)
#define ORCHESTRIX_RETRY_HAS_NANOSLEEP 1
#else
#include <thread>
#define ORCHESTRIX_RETRY_HAS_NANOSLEEP 0
#endif

namespace orchestrix {

namespace detail {

// Sleeps for `delay` without <thread> (which orchestrix.hpp stays clear of): nanosleep, resumed after a
// signal for the time that was left.
inline void sleep_for(std::chrono::microseconds delay) {
    if (delay.count() <= 0) return;
#if ORCHESTRIX_RETRY_HAS_NANOSLEEP
    timespec request{};
    request.tv_sec = static_cast<time_t>(delay.count() / 1'000'000);
    request.tv_nsec = static_cast<long>(delay.count() % 1'000'000) * 1000L;
    timespec left{};
    while (::nanosleep(&request, &left) != 0 && errno == EINTR) request = left;
#else
    std::this_thread::sleep_for(delay);
#endif
}

} // namespace detail

/// How `Repository::execute` retries a command that meets a version conflict: bounded exponential backoff
/// with full jitter.
///
/// After the n-th failed attempt (n = 1, 2, ...) the thread waits a time drawn uniformly from
/// [0, min(max_delay, initial_delay * 2^(n-1))], then starts over (load, execute, save), up to `max_attempts`
/// attempts in all. The random wait spreads writers that collided apart instead of sending them back
/// together; the bound doubling with each conflict makes room for as many writers as there are.
///
/// The defaults (20 attempts; bounds 5, 10, 20, ... 320 ms, then 500 ms) give up after at most 6.6 s of
/// waiting, 3.3 s on average, and let 8 writers share one stream without a failure on every store
/// (tests/core/repository.cpp, tests/sqlite/retry.cpp, tests/postgres/retry.cpp; figures in
/// docs/reliability.md). Backoff does not queue writers fairly: a writer that has just stored a command
/// starts its next one at once, so under sustained contention a writer may lose many times in a row.
struct RetryPolicy {
    /// Attempts in all, the first included (0 or 1 = never retry).
    std::uint32_t max_attempts = 20;
    /// The bound of the first wait (after the first conflict); each later bound is twice the one before.
    std::chrono::microseconds initial_delay{5'000};
    /// The largest bound: no wait is longer than this.
    std::chrono::microseconds max_delay{500'000};
    /// Called with each wait, before each retry (0 included); empty means the calling thread sleeps
    /// (nanosleep). Tests pass one that records the waits instead of sleeping.
    std::function<void(std::chrono::microseconds)> sleep{};

    /// The bound of the wait after `failed` failed attempts: min(max_delay, initial_delay * 2^(failed-1)),
    /// 0 for `failed == 0` or a delay that is not positive. Never overflows.
    [[nodiscard]] std::chrono::microseconds delay_bound(std::uint32_t failed) const noexcept {
        const std::int64_t initial = initial_delay.count();
        const std::int64_t cap = max_delay.count();
        if (failed == 0 || initial <= 0 || cap <= 0) return std::chrono::microseconds(0);
        if (failed - 1 >= 62 || initial > (cap >> (failed - 1))) return std::chrono::microseconds(cap);
        return std::chrono::microseconds(initial * (std::int64_t{1} << (failed - 1)));
    }

    /// The wait after `failed` failed attempts for the random word `random`: uniform in [0, delay_bound(failed)]
    /// over uniform random words (the modulo's bias is below (bound + 1) / 2^64: nothing for any sensible bound).
    [[nodiscard]] std::chrono::microseconds delay(std::uint32_t failed, std::uint64_t random) const noexcept {
        const auto bound = static_cast<std::uint64_t>(delay_bound(failed).count());
        return std::chrono::microseconds(static_cast<std::int64_t>(random % (bound + 1)));
    }

    /// The wait after `failed` failed attempts, drawn from the calling thread's generator (the one that
    /// makes event ids: seeded from the operating system, and again in a child process after `fork()`, so
    /// writers in forked processes do not wait in step).
    [[nodiscard]] std::chrono::microseconds delay(std::uint32_t failed) const {
        return delay(failed, detail::uuid_random::local().next());
    }

    /// Waits `d`: calls `sleep`, or sleeps if it is empty.
    void wait(std::chrono::microseconds d) const {
        if (sleep) {
            sleep(d);
        } else {
            detail::sleep_for(d);
        }
    }
};

/// What `Repository::execute` did.
struct CommandResult {
    /// What the store reported for the append (`written == false` if the command raised nothing).
    AppendResult append;
    /// How many attempts it took, the stored one included: 1 = no conflict; n = n - 1 conflicts, each
    /// followed by a wait of the `RetryPolicy`.
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

// `events` with `trace` (when valid) in the metadata of those whose trace context is not valid: a copy in
// `storage` when one of them needs it, otherwise `events` itself.
template <class Envelope>
std::span<const Envelope> traced(std::span<const Envelope> events, const TraceContext& trace,
                                 std::vector<Envelope>& storage) {
    if (!trace.valid()) return events;
    bool untraced = false;
    for (const Envelope& e : events) untraced = untraced || !e.metadata.trace.valid();
    if (!untraced) return events;
    storage.assign(events.begin(), events.end());
    for (Envelope& e : storage) {
        if (!e.metadata.trace.valid()) e.metadata.trace = trace;
    }
    return std::span<const Envelope>(storage);
}

// What a command's execution had come to when it ended: which stage threw, and the counts so far.
struct CommandProgress {
    enum class Stage : std::uint8_t { loading, deciding, saving };
    Stage stage = Stage::loading;
    std::uint32_t attempts = 0;
    std::uint64_t replayed = 0;
};

// The observed end of a command: its span ended and `on_command` reported.
inline void finish_command(Observer& observer, const TraceContext& span, const CommandObservation& done,
                           std::string_view error) noexcept {
    const SpanAttribute attributes[] = {
        SpanAttribute{"orchestrix.attempts", {}, static_cast<std::int64_t>(done.attempts), true},
        SpanAttribute{"orchestrix.events_replayed", {}, static_cast<std::int64_t>(done.events_replayed), true},
        SpanAttribute{"orchestrix.outcome",
                      done.outcome == CommandOutcome::succeeded  ? "succeeded"
                      : done.outcome == CommandOutcome::rejected ? "rejected"
                      : done.outcome == CommandOutcome::conflict ? "conflict"
                                                                 : "failed",
                      0, false},
    };
    end_span(observer, span, SpanEnd{done.outcome != CommandOutcome::succeeded, error, attributes});
    call_hook([&] { observer.on_command(done); });
}

// Runs `attempts(progress)` (a command's attempts) under a span named `name` whose parent is the calling
// thread's trace context, made the thread's current context meanwhile (so the events saved carry it), and
// reports the command: succeeded, rejected (the `deciding` stage threw), conflict (`conflict_type` escaped)
// or failed.
template <class Conflict, class Attempts>
auto observed_command(Observer& observer, std::string_view name, std::string_view aggregate, std::string_view stream,
                      Attempts&& attempts) -> decltype(attempts(std::declval<CommandProgress&>())) {
    const auto started = observer_clock::now();
    const SpanAttribute start_attributes[] = {
        SpanAttribute{"orchestrix.stream", stream, 0, false},
        SpanAttribute{"orchestrix.aggregate", aggregate, 0, false},
    };
    const TraceContext span =
        start_span(observer, SpanStart{name, SpanKind::internal, current_trace(), start_attributes});
    std::optional<TraceScope> scope;
    if (span.valid()) scope.emplace(span);
    CommandProgress progress;
    const auto finish = [&](CommandOutcome outcome, std::string_view error) noexcept {
        scope.reset();
        finish_command(observer, span,
                       CommandObservation{aggregate, stream, progress.attempts, progress.replayed,
                                          elapsed_since(started), outcome},
                       error);
    };
    try {
        auto result = std::forward<Attempts>(attempts)(progress);
        finish(CommandOutcome::succeeded, {});
        return result;
    } catch (const Conflict& e) {
        finish(CommandOutcome::conflict, e.what());
        throw;
    } catch (const std::exception& e) {
        finish(progress.stage == CommandProgress::Stage::deciding ? CommandOutcome::rejected : CommandOutcome::failed,
               e.what());
        throw;
    } catch (...) {
        finish(progress.stage == CommandProgress::Stage::deciding ? CommandOutcome::rejected : CommandOutcome::failed,
               "an exception of unknown type");
        throw;
    }
}

} // namespace detail

/// Loads and saves aggregates of type `Aggregate` in an event store, one stream per aggregate (the stream
/// id is `stream_prefix + id`).
///
/// The store's event type may be the aggregate's own `std::variant` or a larger variant that contains
/// every alternative of it (an application-wide event type).
///
/// With a snapshot store (`Repository<Aggregate, Store, SnapshotStore>`, see docs/snapshots.md), loading
/// starts from the aggregate's latest usable snapshot and replays only the events after it, and the policy
/// of its `SnapshotSettings` decides when to take a new one. A snapshot of an older schema version is upcast
/// through the state codec's `decode_old`, if it has one. A snapshot that cannot be used (a newer schema
/// version, an older one that cannot be upcast, undecodable, ahead of the stream) is reported to
/// `SnapshotSettings::on_issue` and the history is replayed in full instead. The aggregate must then declare
/// `static constexpr std::string_view aggregate_type_name = "...";`.
///
/// `observe(&observer)` reports each `execute` (`on_command`, in a span "orchestrix.command <name>") and
/// each snapshot taken, used or ignored (`on_snapshot`). Saved events whose `Metadata::trace` is empty get
/// the command's span context, or the calling thread's `current_trace()` (docs/operations.md).
template <class Aggregate, event_store Store, class Snapshots = NoSnapshots>
class Repository {
public:
    /// Whether this repository reads and takes snapshots.
    static constexpr bool snapshotting = !std::is_same_v<Snapshots, NoSnapshots>;

    using aggregate_type = Aggregate;
    using aggregate_events = typename Aggregate::event_type;
    using store_events = typename Store::event_type;
    using snapshot_store_type = Snapshots;

    static_assert(std::is_default_constructible_v<Aggregate>,
                  "Repository<Aggregate, Store>: the aggregate must be default-constructible (a new aggregate "
                  "is default-constructed, then rebuilt from its events)");
    static_assert(!snapshotting || snapshot_store<Snapshots>,
                  "Repository<Aggregate, Store, Snapshots>: Snapshots must be a snapshot store (e.g. "
                  "orchestrix::InMemorySnapshotStore) with save(const Snapshot&) and latest(id)");
    static_assert(!snapshotting || detail::has_aggregate_type_name<Aggregate>,
                  "Repository with snapshots: the aggregate needs a stable type name; add "
                  "`static constexpr std::string_view aggregate_type_name = \"cart\";` to it");

    explicit Repository(Store& store, std::string stream_prefix = {}) requires(!snapshotting)
        : store_(&store), prefix_(std::move(stream_prefix)) {}

    /// A repository that reads and takes snapshots. Throws `InvalidArgumentError` if `settings.state`
    /// lacks its encode or decode function.
    Repository(Store& store, Snapshots& snapshots, SnapshotSettings<Aggregate> settings,
               std::string stream_prefix = {}) requires snapshotting : store_(&store),
                                                                       prefix_(std::move(stream_prefix)),
                                                                       snapshots_(&snapshots),
                                                                       settings_(std::move(settings)) {
        if (!settings_.state.encode || !settings_.state.decode) {
            throw InvalidArgumentError("settings", "SnapshotSettings::state is empty: set it to "
                                                   "orchestrix::json_state_codec<Aggregate>() (from "
                                                   "<orchestrix/json.hpp>) or a StateCodec of your own");
        }
    }

    /// The stream that holds the aggregate `id`.
    [[nodiscard]] std::string stream_id(std::string_view id) const {
        std::string stream;
        stream.reserve(prefix_.size() + id.size());
        stream.append(prefix_).append(id);
        return stream;
    }

    /// Reports each `execute` and each snapshot taken, used or ignored to `observer` from now on; nullptr
    /// detaches. Not synchronized: attach before the repository is used. The observer must outlive its use.
    void observe(Observer* observer) noexcept { observer_ = observer; }
    /// The attached observer (nullptr if none).
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// The aggregate `id` rebuilt from its snapshot (if any) and events, or `std::nullopt` if its stream has
    /// no events.
    [[nodiscard]] std::optional<Aggregate> find(std::string_view id) const {
        std::uint64_t replayed = 0;
        return find_counted(id, replayed);
    }

private:
    // `find`, adding the number of events replayed to `replayed`.
    std::optional<Aggregate> find_counted(std::string_view id, std::uint64_t& replayed_total) const {
        const std::string stream = stream_id(id);
        Aggregate aggregate{};
        // The clock is read only for a snapshot policy's rebuild time (a read costs as much as a short replay).
        [[maybe_unused]] std::chrono::steady_clock::time_point started{};
        if constexpr (snapshotting) {
            started = std::chrono::steady_clock::now();
            if (auto restored = restore_snapshot(stream)) {
                aggregate = std::move(*restored);
                // A snapshot of a deleted stream's earlier life (taken at or before the version it was deleted
                // at) must not become the state of the recreated stream. One `stream_info` per snapshot load.
                if constexpr (lifecycle_event_store<Store>) {
                    const StreamInfo info = store_->stream_info(stream);
                    if (info.start_version > 1 && aggregate.version() < info.start_version) aggregate = Aggregate{};
                }
            }
        }
        const std::uint64_t replayed = replay_from(stream, aggregate, aggregate.version() + 1);
        replayed_total += replayed;
        if (aggregate.version() == 0) return std::nullopt;
        if constexpr (snapshotting) {
            if (replayed > 0) {
                SnapshotContext<aggregate_events> context;
                context.trigger = SnapshotTrigger::loaded;
                context.stream_id = stream;
                context.version = aggregate.version();
                context.events_replayed = replayed;
                context.rebuild_time =
                    std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started);
                if (wants_snapshot(context)) take_snapshot(stream, aggregate);
            }
        }
        return aggregate;
    }

public:
    /// The aggregate `id` rebuilt from its snapshot (if any) and events. Throws `StreamNotFoundError` if it
    /// has no events.
    [[nodiscard]] Aggregate load(std::string_view id) const {
        if (auto aggregate = find(id)) return std::move(*aggregate);
        throw StreamNotFoundError(stream_id(id));
    }

    /// Appends the aggregate's uncommitted events, expecting the stream at the version the aggregate was
    /// loaded at, then marks them committed and takes a snapshot if the policy says so. Throws
    /// `ConcurrencyError` if someone else wrote first; the aggregate is then unchanged. Events whose
    /// `Metadata::trace` is empty are stored with the calling thread's `current_trace()` (under `execute`
    /// with an observer that traces: the command's span).
    AppendResult save(std::string_view id, Aggregate& aggregate) {
        const auto& pending = aggregate.uncommitted_events();
        const stream_version_t loaded = aggregate.committed_version();
        const ExpectedVersion expected = loaded == 0 ? ExpectedVersion::no_stream() : ExpectedVersion::exact(loaded);
        if (pending.empty()) return AppendResult{loaded, 0, 0, false};
        const std::string stream = stream_id(id);
        // Read on every save, observer or not (one thread_local read): so a trace opened by the caller
        // (`TraceScope`) reaches the stored events even when nothing observes the repository.
        const TraceContext trace = current_trace();
        AppendResult result;
        try {
            if constexpr (std::is_same_v<store_events, aggregate_events>) {
                std::vector<EventEnvelope<aggregate_events>> storage; // filled only when a trace must be added
                result = store_->append(
                    stream, detail::traced(std::span<const EventEnvelope<aggregate_events>>(pending), trace, storage),
                    expected);
            } else {
                std::vector<EventEnvelope<store_events>> widened;
                widened.reserve(pending.size());
                for (const auto& e : pending) {
                    widened.emplace_back(detail::widen<store_events>(e.event), e.metadata);
                    if (trace.valid() && !e.metadata.trace.valid()) widened.back().metadata.trace = trace;
                }
                result = store_->append(stream, std::span<const EventEnvelope<store_events>>(widened), expected);
            }
        } catch (const ConcurrencyError&) {
            // An aggregate that found no events, refused because the stream's events were all truncated away:
            // not a race that a retry could win.
            if constexpr (lifecycle_event_store<Store>) {
                if (loaded == 0) {
                    const StreamInfo info = store_->stream_info(stream);
                    if (info.status == StreamStatus::active && info.first_version > info.start_version) {
                        throw StreamTruncatedError(stream, info.first_version, info.start_version);
                    }
                }
            }
            throw;
        }
        [[maybe_unused]] bool snapshot_now = false;
        if constexpr (snapshotting) {
            SnapshotContext<aggregate_events> context;
            context.trigger = SnapshotTrigger::saved;
            context.stream_id = stream;
            context.version = aggregate.version();
            context.events = std::span<const EventEnvelope<aggregate_events>>(pending.data(), pending.size());
            snapshot_now = wants_snapshot(context);
        }
        aggregate.mark_committed();
        // A soft-deleted stream that this append recreated goes on from the version it was deleted at.
        if (result.written && result.stream_version != aggregate.version()) {
            aggregate.restore_version(result.stream_version);
        }
        if constexpr (snapshotting) {
            if (snapshot_now) take_snapshot(stream, aggregate);
        }
        return result;
    }

    /// Loads the aggregate (a new one if it has no events), executes `command` on it and saves it. On a
    /// version conflict, and only then, waits as `retry` says (`RetryPolicy::delay`) and starts over, up to
    /// `retry.max_attempts` attempts in all; the last conflict is rethrown. Any other exception (a refused
    /// command, a store failure) propagates at once.
    ///
    /// With a cache (`with_cache`), a command starts from the cached aggregate brought up to date with the
    /// events stored after it, and the saved aggregate is cached; a conflict drops the entry.
    ///
    /// With an observer (`observe`), runs in a span "orchestrix.command <aggregate type name, or the stream
    /// prefix>" (child of `current_trace()`, and the thread's current trace meanwhile) and reports
    /// `on_command`: succeeded, rejected (the aggregate's handler or validation threw), conflict (the last
    /// attempt met a version conflict) or failed (loading or saving threw something else).
    template <class Command>
    CommandResult execute(std::string_view id, const Command& command, const RetryPolicy& retry = {}) {
        // Only the decision depends on the command: the rest is instantiated once per repository type.
        return run_command(
            id, [&](Aggregate& aggregate) { aggregate.execute(command); }, retry);
    }

    /// Makes `execute` use `cache` (shared with other repositories and threads as you like; it must outlive
    /// this repository). `find` and `load` always read the store.
    Repository& with_cache(AggregateCache<Aggregate>& cache) noexcept {
        cache_ = &cache;
        return *this;
    }

    [[nodiscard]] Store& store() const noexcept { return *store_; }

    /// The snapshot store (only for a repository with snapshots).
    [[nodiscard]] Snapshots& snapshots() const noexcept requires snapshotting { return *snapshots_; }

private:
    // The aggregate's type name, or "" for an aggregate that declares none.
    static constexpr std::string_view aggregate_name() noexcept {
        if constexpr (detail::has_aggregate_type_name<Aggregate>) {
            return Aggregate::aggregate_type_name;
        } else {
            return {};
        }
    }

    // `execute` with the command's decision as `decide`.
    CommandResult run_command(std::string_view id, detail::FunctionRef<void(Aggregate&)> decide,
                              const RetryPolicy& retry) {
        if (observer_ != nullptr) [[unlikely]] {
            const std::string stream = stream_id(id);
            std::string name = "orchestrix.command ";
            name += aggregate_name().empty() ? std::string_view(prefix_) : aggregate_name();
            return detail::observed_command<ConcurrencyError>(
                *observer_, name, aggregate_name(), stream,
                [&](detail::CommandProgress& progress) { return execute_attempts(id, decide, retry, progress); });
        }
        detail::CommandProgress progress;
        return execute_attempts(id, decide, retry, progress);
    }

    // The attempts of `execute`, recording in `progress` how far they got.
    CommandResult execute_attempts(std::string_view id, detail::FunctionRef<void(Aggregate&)> decide,
                                   const RetryPolicy& retry, detail::CommandProgress& progress) {
        using Stage = detail::CommandProgress::Stage;
        const std::uint32_t attempts = retry.max_attempts == 0 ? 1 : retry.max_attempts;
        for (std::uint32_t attempt = 1;; ++attempt) {
            progress.attempts = attempt;
            progress.stage = Stage::loading;
            Aggregate aggregate = cache_ != nullptr ? warm(id, progress.replayed)
                                                    : find_counted(id, progress.replayed).value_or(Aggregate{});
            progress.stage = Stage::deciding;
            decide(aggregate);
            progress.stage = Stage::saving;
            try {
                CommandResult result{save(id, aggregate), attempt};
                if (cache_ != nullptr) cache_->put(stream_id(id), aggregate);
                return result;
            } catch (const ConcurrencyError&) {
                if (cache_ != nullptr) cache_->erase(stream_id(id));
                if (attempt >= attempts) throw;
            }
            retry.wait(retry.delay(attempt));
        }
    }

    // The cached aggregate `id` brought up to date with the events stored after it, or the aggregate as
    // `find` rebuilds it (a new one if it has no events); adds the events replayed to `replayed`.
    Aggregate warm(std::string_view id, std::uint64_t& replayed) const {
        const std::string stream = stream_id(id);
        if (std::optional<Aggregate> cached = cache_->get(stream)) {
            replayed += replay_from(stream, *cached, cached->version() + 1);
            return std::move(*cached);
        }
        return find_counted(id, replayed).value_or(Aggregate{});
    }

    // Thrown by the replay when the first event read is not at the version asked for (a removed prefix or a
    // recreated stream); caught by `replay_from`, outside the store's read.
    struct HistoryGap {
        stream_version_t found = 0;
    };

    // Replays the events of `stream` from `from` on onto `aggregate`; returns how many. On a lifecycle store
    // (core/lifecycle.hpp), a stream recreated after a soft delete is folded from its new start (a snapshot
    // or cached state of its earlier life is dropped), and a truncated one without a snapshot covering the
    // removed events throws `StreamTruncatedError`.
    std::uint64_t replay_from(const std::string& stream, Aggregate& aggregate, stream_version_t from) const {
        if constexpr (lifecycle_event_store<Store>) {
            try {
                return replay_checked(stream, aggregate, from);
            } catch (const HistoryGap& gap) {
                const StreamInfo info = store_->stream_info(stream);
                if (from < info.start_version && info.first_version == info.start_version &&
                    gap.found == info.start_version) {
                    aggregate = Aggregate{};
                    aggregate.restore_version(info.start_version - 1);
                    return replay_checked(stream, aggregate, info.start_version);
                }
                if (from < info.first_version) throw StreamTruncatedError(stream, info.first_version, from);
                return replay_events(stream, aggregate, from); // a gap the lifecycle does not explain
            }
        } else {
            return replay_events(stream, aggregate, from);
        }
    }

    // `replay_events`, throwing `HistoryGap` when the first event is not at `from`.
    std::uint64_t replay_checked(const std::string& stream, Aggregate& aggregate, stream_version_t from) const {
        bool first = true;
        return replay_events(stream, aggregate, from, [&](stream_version_t version) {
            if (first) {
                first = false;
                if (version != from && version > aggregate.version() + 1) throw HistoryGap{version};
            }
        });
    }

    static void no_check(stream_version_t) noexcept {}

    template <class Check = void (*)(stream_version_t) noexcept>
    std::uint64_t replay_events(const std::string& stream, Aggregate& aggregate, stream_version_t from,
                                Check&& check = &no_check) const {
        auto replay = [&](const store_events& event, stream_version_t version) {
            check(version);
            if constexpr (std::is_same_v<store_events, aggregate_events>) {
                aggregate.replay(event, version);
            } else {
                auto converted = detail::variant_converter<aggregate_events, store_events>::convert(event);
                if (!converted) {
                    throw HistoryError("stream '" + stream + "' holds an event of type '" +
                                       std::string(event_name_of(event)) + "' at version " + std::to_string(version) +
                                       ", which the aggregate does not know");
                }
                aggregate.replay(*converted, version);
            }
        };
        if constexpr (visitable_event_store<Store>) {
            // In place: stores that can hand out views are folded without copying an event.
            return store_->visit_stream(stream, from, [&](const RecordedEventView<store_events>& recorded) {
                replay(recorded.event(), recorded.version());
            });
        } else {
            std::uint64_t count = 0;
            for (const auto& recorded : store_->read_stream(stream, from, unlimited)) {
                replay(recorded.event, recorded.version);
                ++count;
            }
            return count;
        }
    }

    void report(SnapshotIssue::Reason reason, const std::string& stream, stream_version_t version,
                std::string message) const {
        report_snapshot(SnapshotOutcome::ignored, stream, version, reason_name(reason));
        if (settings_.on_issue) settings_.on_issue(SnapshotIssue{reason, stream, version, std::move(message)});
    }

    void report_snapshot(SnapshotOutcome outcome, std::string_view stream, stream_version_t version,
                         std::string_view reason = {}) const noexcept {
        if (observer_ != nullptr) [[unlikely]] {
            detail::call_hook([&] {
                observer_->on_snapshot(SnapshotObservation{aggregate_name(), stream, version, outcome, reason});
            });
        }
    }

    // The aggregate restored from its latest usable snapshot, or nothing (reported) for a full replay.
    std::optional<Aggregate> restore_snapshot(const std::string& stream) const {
        using Reason = SnapshotIssue::Reason;
        std::optional<Snapshot> snapshot;
        try {
            snapshot = snapshots_->latest(stream);
        } catch (const std::exception& e) {
            report(Reason::read_failed, stream, 0, std::string("reading the snapshot failed: ") + e.what());
            return std::nullopt;
        }
        if (!snapshot) return std::nullopt;
        const std::string where = "snapshot of '" + stream + "' at version " + std::to_string(snapshot->version);
        constexpr std::string_view type = Aggregate::aggregate_type_name;
        constexpr std::uint32_t schema = snapshot_schema_version_of<Aggregate>;
        if (snapshot->aggregate_type != type) {
            report(Reason::wrong_aggregate_type, stream, snapshot->version,
                   where + " is of aggregate type '" + snapshot->aggregate_type + "', not '" + std::string(type) +
                       "'; replaying the full history");
            return std::nullopt;
        }
        const bool older = snapshot->schema_version < schema;
        if (snapshot->schema_version > schema || (older && !settings_.state.decode_old)) {
            report(older ? Reason::old_schema_version : Reason::newer_schema_version, stream, snapshot->version,
                   where + " has schema version " + std::to_string(snapshot->schema_version) + ", the aggregate's is " +
                       std::to_string(schema) +
                       (older ? ", and the state codec cannot upcast it (no decode_old)" : "") +
                       "; replaying the full history");
            return std::nullopt;
        }
        const stream_version_t current = store_->stream_version(stream);
        if (snapshot->version == 0 || snapshot->version > current) {
            report(Reason::ahead_of_stream, stream, snapshot->version,
                   where + " is beyond the stream's version " + std::to_string(current) +
                       "; replaying the full history");
            return std::nullopt;
        }
        try {
            Aggregate aggregate = older ? settings_.state.decode_old(snapshot->schema_version, snapshot->state)
                                        : settings_.state.decode(snapshot->state);
            aggregate.restore_version(snapshot->version);
            report_snapshot(SnapshotOutcome::used, stream, snapshot->version);
            return aggregate;
        } catch (const std::exception& e) {
            if (older) {
                report(Reason::upcast_failed, stream, snapshot->version,
                       where + " cannot be upcast from schema version " + std::to_string(snapshot->schema_version) +
                           " to " + std::to_string(schema) + " (" + e.what() + "); replaying the full history");
            } else {
                report(Reason::undecodable, stream, snapshot->version,
                       where + " cannot be decoded (" + e.what() + "); replaying the full history");
            }
            return std::nullopt;
        }
    }

    bool wants_snapshot(const SnapshotContext<aggregate_events>& context) const {
        if (!settings_.policy) return false;
        try {
            return settings_.policy(context);
        } catch (const std::exception& e) {
            report(SnapshotIssue::Reason::save_failed, std::string(context.stream_id), context.version,
                   std::string("the snapshot policy threw: ") + e.what());
            return false;
        }
    }

    // Takes and stores a snapshot; a failure is reported, never thrown (the events are saved already).
    void take_snapshot(const std::string& stream, const Aggregate& aggregate) const {
        try {
            Snapshot snapshot{stream,
                              std::string(Aggregate::aggregate_type_name),
                              aggregate.version(),
                              snapshot_schema_version_of<Aggregate>,
                              settings_.state.encode(aggregate),
                              std::chrono::system_clock::now()};
            snapshots_->save(snapshot);
            report_snapshot(SnapshotOutcome::taken, stream, snapshot.version);
        } catch (const std::exception& e) {
            report(SnapshotIssue::Reason::save_failed, stream, aggregate.version(),
                   "taking the snapshot of '" + stream + "' at version " + std::to_string(aggregate.version()) +
                       " failed: " + e.what());
        }
    }

    struct no_settings {};
    using settings_type = std::conditional_t<snapshotting, SnapshotSettings<Aggregate>, no_settings>;
    using snapshots_pointer = std::conditional_t<snapshotting, Snapshots*, no_settings>;

    Store* store_;
    std::string prefix_;
    [[no_unique_address]] snapshots_pointer snapshots_{};
    [[no_unique_address]] settings_type settings_{};
    AggregateCache<Aggregate>* cache_ = nullptr;
    Observer* observer_ = nullptr; // see observe()
};

} // namespace orchestrix
