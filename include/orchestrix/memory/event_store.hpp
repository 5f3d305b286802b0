#pragma once

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_fields.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/lifecycle.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/personal_fields.hpp>
#include <orchestrix/detail/chrono.hpp>
#include <orchestrix/detail/shared_mutex.hpp>
#include <orchestrix/memory/stable_array.hpp>
#include <orchestrix/memory/uuid_index.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

/// An event store in memory: typed events (no serialization), for tests and embedded use.
///
/// - Thread-safe: any number of concurrent readers, one writer at a time (a reader-writer lock).
/// - `append` is O(batch) amortised and allocates nothing per event beyond the stored event itself (the
///   arrays it appends to grow geometrically).
/// - Each stream keeps its events in one contiguous array, so folding a stream (`visit_stream`) reads
///   nothing but the events; `visit_stream` / `visit_all` hand `RecordedEventView`s to a callback without
///   copying. The store is read-locked meanwhile, so the callback must not append to the same store.
/// - When every event type declares its tags (`tagged_event_variant`), the store is a `dcb_event_store`:
///   it keeps, per tag and per event type, the positions of the events that carry it, so `read(query)` and
///   the condition of a conditional `append` cost a binary search and the matching events, not a scan.
/// - `observe(&observer)` reports every append and read to an `Observer` (store kind "memory").
/// - A `lifecycle_event_store` (docs/lifecycle.md): `delete_stream`, `truncate_stream` and `apply_retention`
///   free the removed events at once (their payloads, metadata, id and tag index entries); `append` looks
///   at a stream's lifecycle state only when the stream holds no events. `erase_personal_data` forgets a
///   data subject by erasing its `Personal<T>` values in place.
template <event_variant Events>
class InMemoryEventStore {
public:
    using event_type = Events;
    using envelope_type = EventEnvelope<Events>;
    using recorded_type = RecordedEvent<Events>;
    using view_type = RecordedEventView<Events>;

private:
    static constexpr bool tagged = tagged_event_variant<Events>;

public:
    InMemoryEventStore() = default;
    InMemoryEventStore(const InMemoryEventStore&) = delete;
    InMemoryEventStore& operator=(const InMemoryEventStore&) = delete;

    /// The kind this store reports to its observer.
    static constexpr std::string_view store_kind = "memory";

    /// Reports every append (`on_append`) and read (`on_read`) to `observer` from now on; nullptr detaches.
    /// Not synchronized: attach before the store is used. The observer must outlive the store's use.
    void observe(Observer* observer) noexcept { observer_ = observer; }
    /// The attached observer (nullptr if none).
    [[nodiscard]] Observer* observer() const noexcept { return observer_; }

    /// Appends `events` to `stream` atomically if the stream matches `expected`. See `event_store`.
    /// Wakes the callers of `wait_for_position` once the events are readable.
    AppendResult append(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected) {
        if (observer_ != nullptr) [[unlikely]] {
            return detail::observed_append(*observer_, store_kind, stream, events.size(),
                                           [&] { return append_and_notify(stream, events, expected, nullptr); });
        }
        return append_and_notify(stream, events, expected, nullptr);
    }

    AppendResult append(std::string_view stream, std::initializer_list<envelope_type> events,
                        ExpectedVersion expected) {
        return append(stream, std::span<const envelope_type>(events.begin(), events.size()), expected);
    }

    /// Appends plain events, not envelopes (a `std::vector<UserRenamed>`, a `std::vector<Events>`, an array):
    /// each gets a fresh id and empty metadata, as in a braced list.
    template <plain_event_range<Events> Range>
    AppendResult append(std::string_view stream, const Range& events, ExpectedVersion expected) {
        // The envelopes are this call's own: the store moves their events in instead of copying them again.
        std::vector<envelope_type> envelopes = detail::to_envelopes<Events>(events);
        if (observer_ != nullptr) [[unlikely]] {
            return detail::observed_append(*observer_, store_kind, stream, envelopes.size(), [&] {
                return append_and_notify(stream, envelopes, expected, nullptr, Source::owned);
            });
        }
        return append_and_notify(stream, envelopes, expected, nullptr, Source::owned);
    }

    /// Appends `events` to `stream` atomically if the stream matches `expected` and no event matching
    /// `condition.fail_if_events_match` is stored after `condition.after` (`AppendConditionError` naming
    /// the first). See `dcb_event_store`.
    AppendResult append(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected,
                        const AppendCondition& condition) requires tagged {
        if (observer_ != nullptr) [[unlikely]] {
            return detail::observed_append(*observer_, store_kind, stream, events.size(), [&] {
                detail::validate_query_types<Events>(condition.fail_if_events_match);
                return append_and_notify(stream, events, expected, &condition);
            });
        }
        detail::validate_query_types<Events>(condition.fail_if_events_match);
        return append_and_notify(stream, events, expected, &condition);
    }

    AppendResult append(std::string_view stream, std::initializer_list<envelope_type> events, ExpectedVersion expected,
                        const AppendCondition& condition) requires tagged {
        return append(stream, std::span<const envelope_type>(events.begin(), events.size()), expected, condition);
    }

    template <plain_event_range<Events> Range>
    AppendResult append(std::string_view stream, const Range& events, ExpectedVersion expected,
                        const AppendCondition& condition) requires tagged {
        std::vector<envelope_type> envelopes = detail::to_envelopes<Events>(events);
        const auto run = [&] {
            detail::validate_query_types<Events>(condition.fail_if_events_match);
            return append_and_notify(stream, envelopes, expected, &condition, Source::owned);
        };
        if (observer_ != nullptr) [[unlikely]]
            return detail::observed_append(*observer_, store_kind, stream, envelopes.size(), run);
        return run();
    }

    /// The events matching `query` with a position greater than `after`, in global order, at most
    /// `max_count`, and the position the read covers (`QueryResult`). Throws `InvalidArgumentError("query")`
    /// for a type name that is not one of `Events`.
    [[nodiscard]] QueryResult<Events> read(const Query& query, position_t after = 0,
                                           std::uint64_t max_count = unlimited) const requires tagged {
        QueryResult<Events> out;
        out.position = visit(
            query, after, [&](const view_type& e) { out.events.push_back(e.to_owned()); }, max_count);
        return out;
    }

    /// Calls `visitor(const RecordedEventView<Events>&)` in place for each event `read(query, after,
    /// max_count)` would return; returns the position the read covers.
    template <class Visitor>
    position_t visit(const Query& query, position_t after, Visitor&& visitor,
                     std::uint64_t max_count = unlimited) const requires tagged
        && std::invocable<Visitor&, const view_type&> {
        std::uint64_t visited = 0;
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            const position_t covered = visit_query(query, after, visitor, max_count, visited);
            detail::report_read(*observer_, store_kind, ReadKind::query, {}, visited, started);
            return covered;
        }
        return visit_query(query, after, visitor, max_count, visited);
    }

    // A store of events that do not all declare tags cannot be read by query: these say why at compile time,
    // naming the event type (templates, so that only a call instantiates them).
    template <std::same_as<Query> Q>
    QueryResult<Events> read(const Q&, position_t = 0, std::uint64_t = unlimited) const requires(!tagged) {
        untagged_events<Q>();
        return {};
    }
    template <std::same_as<Query> Q, class Visitor>
    position_t visit(const Q&, position_t, Visitor&&, std::uint64_t = unlimited) const requires(!tagged) {
        untagged_events<Q>();
        return 0;
    }

    /// Waits until the event at global position `position` is stored (`head_position() >= position`),
    /// at most `timeout`, or until `stop` is requested. Returns whether it is stored. What a live
    /// subscription waits on instead of polling.
    [[nodiscard]] bool wait_for_position(position_t position, std::chrono::milliseconds timeout,
                                         std::stop_token stop = {}) const {
        // Announce the waiter before reading the head: an append that misses the announcement has already
        // published its events, so the predicate below sees them.
        waiters_.fetch_add(1, std::memory_order_seq_cst);
        struct Leave {
            std::atomic<std::uint32_t>& count;
            ~Leave() { count.fetch_sub(1, std::memory_order_seq_cst); }
        } leave{waiters_};
        std::unique_lock signal(signal_mutex_);
        return appended_.wait_for(signal, stop, timeout, [&] { return head_position() >= position; });
    }

private:
    template <class Dependent>
    static void untagged_events() {
        // One error per event type without tags, naming it and saying what to write.
        detail::explain_tagged_variant<Events>::check();
    }

    // Whose envelopes an append stores: the caller's (copied) or the store's own temporaries (moved from).
    enum class Source : bool { borrowed, owned };

    AppendResult append_and_notify(std::string_view stream, std::span<const envelope_type> events,
                                   ExpectedVersion expected, const AppendCondition* condition,
                                   Source source = Source::borrowed) {
        AppendResult result = append_locked(stream, events, expected, condition, source);
        if (result.written) notify_waiters();
        return result;
    }

    // `visit(query, ...)`; `visited`: how many events the visitor was handed.
    template <class Visitor>
    position_t visit_query(const Query& query, position_t after, Visitor& visitor, std::uint64_t max_count,
                           std::uint64_t& visited) const {
        detail::validate_query_types<Events>(query);
        std::shared_lock lock(mutex_);
        const position_t head = head_locked();
        if (max_count == 0) return after;
        if (after >= head) return head;
        std::vector<position_t> matches = matching_positions(query, after, max_count);
        for (const position_t p : matches) {
            const LogEntry& e = entry(p);
            std::invoke(visitor, view(*e.stream, e.index));
            ++visited;
        }
        return matches.size() == max_count ? matches.back() : head;
    }

    // Only when someone waits: an append with no waiter pays one atomic load, not a lock.
    void notify_waiters() {
        if (waiters_.load(std::memory_order_seq_cst) != 0) {
            { std::lock_guard signal(signal_mutex_); } // a waiter is either waiting or will see the new head
            appended_.notify_all();
        }
    }

    AppendResult append_locked(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected,
                               const AppendCondition* condition, Source source) {
        detail::validate_stream_id(stream);
        detail::validate_batch_ids<Events>(stream, events);
        [[maybe_unused]] const auto tags = batch_tags(events);

        std::unique_lock lock(mutex_);
        auto found = streams_.find(stream);
        StreamData* data = found == streams_.end() ? nullptr : &found->second;
        // `base`: the version before the batch's first event; `current`: what `expected` is checked against
        // (they differ only for a deleted stream, which the append recreates).
        stream_version_t base = data == nullptr ? 0 : data->base + data->events.size();
        stream_version_t current = base;
        StreamLife* life = nullptr;
        if (data == nullptr && !lives_.empty()) [[unlikely]] { // no stored events: the stream's life decides
            if (auto row = lives_.find(stream); row != lives_.end()) {
                life = &row->second;
                current = detail::admit_append(stream, info_of(life, nullptr), expected);
                base = life->version;
            }
        }
        if (events.empty()) return AppendResult{current, 0, 0, false};

        if (auto retry = check_idempotent_retry(stream, events, expected, current)) return *retry;
        if (!expected.matches(current)) throw ConcurrencyError(std::string(stream), expected, current);
        if constexpr (tagged) {
            if (condition != nullptr) {
                const position_t after = condition->after.value_or(0);
                if (const position_t conflict = first_match(condition->fail_if_events_match, after)) {
                    throw AppendConditionError(std::string(stream), conflict, condition->after);
                }
            }
        }
        const position_t head = head_locked();
        detail::validate_growth(stream, base, head, events.size());

        if (data == nullptr) {
            found = streams_.try_emplace(std::string(stream)).first;
            data = &found->second;
            data->id = found->first; // the key stays where it is: unordered_map nodes do not move
            data->base = base;
        }
        // Make room first, so that once writing starts only copying an event can fail.
        const std::size_t count = events.size();
        const std::size_t stored_before = data->events.size();
        const std::size_t extras_before = data->extras.size();
        try {
            data->events.reserve_more(count);
            data->records.reserve_more(count);
            std::size_t with_extras = 0;
            for (const envelope_type& e : events)
                if (extras_type::carried_by(e.metadata)) ++with_extras;
            if (with_extras > 0) data->extras.reserve_more(with_extras);
            grow(log_, count);
            if constexpr (tagged) reserve_index(events, tags);
        } catch (...) {
            if (data->events.empty()) streams_.erase(found);
            throw;
        }

        const auto now = std::chrono::system_clock::now();
        const position_t first = head + 1;
        try {
            for (std::size_t i = 0; i < count; ++i) {
                if (source == Source::owned) {
                    // The envelope is a non-const temporary of this store's (the span only views it as const).
                    data->events.emplace_back(std::move(const_cast<envelope_type&>(events[i]).event));
                } else {
                    data->events.emplace_back(events[i].event);
                }
                const Metadata& m = events[i].metadata;
                std::size_t extras = 0;
                if (extras_type::carried_by(m)) [[unlikely]] {
                    // Empty strings are not copied: that is an out-of-line call.
                    extras_type& x = data->extras.emplace_back();
                    if (!m.correlation_id.empty()) x.correlation_id = m.correlation_id;
                    if (!m.causation_id.empty()) x.causation_id = m.causation_id;
                    x.trace = m.trace;
                    extras = data->extras.size();
                }
                data->records.emplace_back(Record{m.event_id, first + i, now, extras});
            }
        } catch (...) { // all or nothing: undo the partial batch
            data->events.truncate(stored_before);
            data->records.truncate(stored_before);
            data->extras.truncate(extras_before);
            if (data->events.empty()) streams_.erase(found);
            throw;
        }
        for (std::size_t i = 0; i < count; ++i) { // capacity reserved above: none of this can throw
            log_.push_back(LogEntry{data, stored_before + i});
            if (greatest_id_ < events[i].metadata.event_id) greatest_id_ = events[i].metadata.event_id;
            if constexpr (tagged) index_event(data->events[stored_before + i], tags[i], first + i);
        }
        if (life != nullptr && life->status == StreamStatus::deleted) { // recreated: a new life begins
            life->status = StreamStatus::active;
            life->start_version = base + 1;
            life->recreation = Recreation::on_append;
        }
        return AppendResult{base + count, first, first + count - 1, true};
    }

public:
    /// Events of `stream` from `from_version` on (1 = the first; 0 reads from the start too), at most
    /// `max_count` of them. An unknown stream yields no events.
    [[nodiscard]] std::vector<recorded_type> read_stream(std::string_view stream, stream_version_t from_version = 1,
                                                         std::uint64_t max_count = unlimited) const {
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            std::vector<recorded_type> out = read_stream_unobserved(stream, from_version, max_count);
            detail::report_read(*observer_, store_kind, ReadKind::stream, stream, out.size(), started);
            return out;
        }
        return read_stream_unobserved(stream, from_version, max_count);
    }

    /// Events of all streams in global order from `from_position` on (1 = the first; 0 reads from the
    /// start too), at most `max_count` of them.
    [[nodiscard]] std::vector<recorded_type> read_all(position_t from_position = 1,
                                                      std::uint64_t max_count = unlimited) const {
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            std::vector<recorded_type> out = read_all_unobserved(from_position, max_count);
            detail::report_read(*observer_, store_kind, ReadKind::all, {}, out.size(), started);
            return out;
        }
        return read_all_unobserved(from_position, max_count);
    }

    /// Calls `visitor(const RecordedEventView<Events>&)` for each event of `stream` from `from_version` on,
    /// in place. Returns the number of events visited.
    template <class Visitor>
    std::uint64_t
    visit_stream(std::string_view stream, stream_version_t from_version, Visitor&& visitor,
                 std::uint64_t max_count = unlimited) const requires std::invocable<Visitor&, const view_type&> {
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            const std::uint64_t visited = visit_stream_unobserved(stream, from_version, visitor, max_count);
            detail::report_read(*observer_, store_kind, ReadKind::stream, stream, visited, started);
            return visited;
        }
        return visit_stream_unobserved(stream, from_version, visitor, max_count);
    }

    /// Calls `visitor(const RecordedEventView<Events>&)` for each event in global order from
    /// `from_position` on, in place. Returns the number of events visited.
    template <class Visitor>
    std::uint64_t
    visit_all(position_t from_position, Visitor&& visitor,
              std::uint64_t max_count = unlimited) const requires std::invocable<Visitor&, const view_type&> {
        if (observer_ != nullptr) [[unlikely]] {
            const auto started = detail::observer_clock::now();
            const std::uint64_t visited = visit_all_unobserved(from_position, visitor, max_count);
            detail::report_read(*observer_, store_kind, ReadKind::all, {}, visited, started);
            return visited;
        }
        return visit_all_unobserved(from_position, visitor, max_count);
    }

    /// The stream's current version: 0 if it was never written, or is deleted; the last version written
    /// for a stream whose events were all truncated away.
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) const {
        std::shared_lock lock(mutex_);
        if (const StreamData* data = find_stream(stream)) return data->base + data->events.size();
        const auto row = lives_.find(stream);
        return row == lives_.end() || row->second.status != StreamStatus::active ? 0 : row->second.version;
    }

    /// The global position of the last event ever stored: 0 if the store is empty. Removing events does
    /// not lower it.
    [[nodiscard]] position_t head_position() const {
        std::shared_lock lock(mutex_);
        return head_locked();
    }

    /// The number of streams with at least one event.
    [[nodiscard]] std::size_t stream_count() const {
        std::shared_lock lock(mutex_);
        return streams_.size();
    }

    /// Checks `expected` against `stream_version(stream)` (`ConcurrencyError`), removes every event of the
    /// stream and marks it deleted (soft) or tombstoned (hard). See `lifecycle_event_store`. Throws
    /// `InvalidArgumentError("stream")` for a malformed id and `StreamDeletedError` for a soft delete of a
    /// tombstone.
    RemovalResult delete_stream(std::string_view stream, ExpectedVersion expected, DeleteOptions options = {}) {
        detail::validate_stream_id(stream);
        std::unique_lock lock(mutex_);
        auto found = streams_.find(stream);
        auto row = lives_.find(stream);
        const StreamInfo info =
            info_of(row == lives_.end() ? nullptr : &row->second, found == streams_.end() ? nullptr : &found->second);
        if (info.status == StreamStatus::tombstoned) {
            if (options.mode == DeleteMode::hard) return RemovalResult{0, info.version};
            throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
        }
        detail::check_expected(stream, expected, info.status == StreamStatus::active ? info.version : 0);
        if (row == lives_.end()) row = lives_.try_emplace(std::string(stream)).first; // before anything changes
        std::uint64_t removed = 0;
        if (found != streams_.end()) {
            removed = found->second.events.size();
            remove_front(found, found->second.events.size());
        }
        row->second = StreamLife{info.version, info.start_version,
                                 options.mode == DeleteMode::hard ? StreamStatus::tombstoned : StreamStatus::deleted,
                                 options.recreation};
        return RemovalResult{removed, info.version};
    }

    /// Removes the events of `stream` with versions below `before`; the stream's version is unchanged. See
    /// `lifecycle_event_store`. Throws `InvalidArgumentError("stream")` for a malformed id,
    /// `InvalidArgumentError("before")` for `before` above `version + 1` and `StreamDeletedError` for a
    /// tombstone.
    RemovalResult truncate_stream(std::string_view stream, stream_version_t before) {
        detail::validate_stream_id(stream);
        std::unique_lock lock(mutex_);
        auto found = streams_.find(stream);
        auto row = lives_.find(stream);
        const StreamInfo info =
            info_of(row == lives_.end() ? nullptr : &row->second, found == streams_.end() ? nullptr : &found->second);
        if (info.status == StreamStatus::tombstoned) {
            throw StreamDeletedError(std::string(stream), StreamDeletedError::Reason::tombstoned);
        }
        if (info.status == StreamStatus::deleted) return RemovalResult{0, info.version};
        if (before > info.version + 1) {
            throw InvalidArgumentError("before", "truncate_stream('" + std::string(stream) + "', " +
                                                     std::to_string(before) + "): the stream's last version is " +
                                                     std::to_string(info.version) + ", so `before` can be at most " +
                                                     std::to_string(info.version + 1));
        }
        if (before <= info.first_version || found == streams_.end()) return RemovalResult{0, info.version};
        const auto count = static_cast<std::size_t>(before - info.first_version);
        remove_counted(found, row, count, info);
        return RemovalResult{count, info.version};
    }

    /// Applies each matching rule to each active stream (the rule removing most wins). See
    /// `lifecycle_event_store`. Throws `InvalidArgumentError("rules")` for a negative `max_age`.
    RetentionReport apply_retention(std::span<const RetentionRule> rules, std::chrono::system_clock::time_point now) {
        detail::validate_retention_rules(rules);
        std::unique_lock lock(mutex_);
        std::vector<std::pair<std::string_view, std::size_t>> plan; // stream id (the map's key), events to remove
        for (const auto& [id, data] : streams_) {
            const stream_version_t version = data.base + data.events.size();
            stream_version_t bound = 0; // remove the versions below it
            for (const RetentionRule& rule : rules) {
                if (!detail::retention_matches(rule, id)) continue;
                if (rule.max_count) bound = std::max(bound, detail::retention_count_bound(version, *rule.max_count));
                if (rule.max_age) bound = std::max(bound, age_bound(data, cutoff(now, *rule.max_age)));
            }
            if (bound > data.base + 1) plan.emplace_back(id, static_cast<std::size_t>(bound - data.base - 1));
        }
        RetentionReport report;
        for (const auto& [id, count] : plan) {
            auto found = streams_.find(id);
            auto row = lives_.find(id);
            const StreamInfo info = info_of(row == lives_.end() ? nullptr : &row->second, &found->second);
            remove_counted(found, row, count, info); // `id` may dangle from here on
            ++report.streams_truncated;
            report.events_removed += count;
        }
        return report;
    }

    /// The stream's life (`StreamInfo`); the default (never written) for an unknown or malformed id.
    [[nodiscard]] StreamInfo stream_info(std::string_view stream) const {
        std::shared_lock lock(mutex_);
        const auto row = lives_.find(stream);
        return info_of(row == lives_.end() ? nullptr : &row->second, find_stream(stream));
    }

    /// The events removed by `delete_stream`, `truncate_stream` and `apply_retention` in total.
    [[nodiscard]] std::uint64_t removed_count() const {
        std::shared_lock lock(mutex_);
        return removed_;
    }

    /// Forgets a data subject: erases in place (`Personal<T>::erase()`) every `Personal<T>` of `subject` in
    /// every stored event, and returns how many values it erased. Every read from then on (and every
    /// projection or subscription that reads the store) sees them erased; positions, versions and the rest
    /// of each event stay. The event types must be searchable (`personal_searchable_v`: plain aggregates, or
    /// types with `for_each_personal`), which is checked at compile time. Throws
    /// `InvalidArgumentError("subject")` for a malformed subject id. Write-locks the store for one pass over
    /// every event.
    std::uint64_t erase_personal_data(std::string_view subject) {
        detail::check_personal_searchable<Events>();
        detail::validate_subject(subject);
        if constexpr (!detail::personal_walk_needed_v<Events>) {
            return 0;
        } else {
            std::unique_lock lock(mutex_);
            std::uint64_t erased = 0;
            for (auto& stream : streams_) {
                stream.second.events.for_each(
                    [&](Events& event) { erased += detail::erase_subject_unchecked(event, subject); });
            }
            return erased;
        }
    }

private:
    std::vector<recorded_type> read_stream_unobserved(std::string_view stream, stream_version_t from_version,
                                                      std::uint64_t max_count) const {
        std::vector<recorded_type> out;
        std::shared_lock lock(mutex_);
        const StreamData* data = find_stream(stream);
        const auto [begin, end] = stream_range(data, from_version, max_count);
        out.reserve(end - begin);
        for (std::size_t i = begin; i < end; ++i) out.push_back(record(*data, i));
        return out;
    }

    std::vector<recorded_type> read_all_unobserved(position_t from_position, std::uint64_t max_count) const {
        std::vector<recorded_type> out;
        std::shared_lock lock(mutex_);
        const position_t head = head_locked();
        const position_t from = std::max<position_t>(from_position, 1);
        if (from <= head) {
            out.reserve(static_cast<std::size_t>(std::min({max_count, head - from + 1, head - removed_})));
        }
        for_each_live(from_position, max_count,
                      [&](const LogEntry& e, position_t) { out.push_back(record(*e.stream, e.index)); });
        return out;
    }

    template <class Visitor>
    std::uint64_t visit_stream_unobserved(std::string_view stream, stream_version_t from_version, Visitor& visitor,
                                          std::uint64_t max_count) const {
        std::shared_lock lock(mutex_);
        const StreamData* data = find_stream(stream);
        const auto [begin, end] = stream_range(data, from_version, max_count);
        if (begin == end) return 0;
        // Block by block: the events' and the records' blocks split the range at the same places.
        data->events.for_each_run(begin, end, [&](const Events* events, std::size_t count, std::size_t first) {
            const Record* records = &data->records[first];
            for (std::size_t k = 0; k < count; ++k) std::invoke(visitor, view(*data, first + k, events[k], records[k]));
        });
        return end - begin;
    }

    template <class Visitor>
    std::uint64_t visit_all_unobserved(position_t from_position, Visitor& visitor, std::uint64_t max_count) const {
        std::shared_lock lock(mutex_);
        return for_each_live(from_position, max_count,
                             [&](const LogEntry& e, position_t) { std::invoke(visitor, view(*e.stream, e.index)); });
    }

    using extras_type = typename view_type::Extras;
    // What a stream keeps beside each event (40 bytes): its id, position and recording time, and where its
    // `Extras` are (correlation id, causation id, trace: kept apart, for the events that carry any).
    struct Record {
        Uuid event_id{};
        position_t position = 0;
        std::chrono::system_clock::time_point recorded_at{};
        std::size_t extras = 0; // 0: none; else 1 + its index in the stream's `extras`
    };
    static_assert(sizeof(void*) != 8 || sizeof(Record) == 40, "docs/event-stores.md gives a record's size");
    // A stream keeps its events, and their records beside them, in arrays of blocks of 8, 16, 32, ...
    // elements that never move (appending copies nothing that is stored: no reallocation, and no freed
    // arrays left behind in the heap); a fold walks the events block by block. The extras of the events that
    // carry any are in a third array. Index i holds version base + i + 1 (base > 0 once earlier events were
    // removed, or for a recreated stream). A stream holds at least one event: one whose events are all
    // removed leaves the map.
    struct StreamData {
        std::string_view id; // the map's key
        stream_version_t base = 0;
        detail::StableArray<Events> events;
        detail::StableArray<Record> records;
        detail::StableArray<extras_type> extras;
    };
    // The lifecycle state of a stream a lifecycle operation touched (`stream_info`); `version` is the last
    // version written as of the moment the stream last held no events.
    struct StreamLife {
        stream_version_t version = 0;
        stream_version_t start_version = 1;
        StreamStatus status = StreamStatus::active;
        Recreation recreation = Recreation::on_append;
    };
    struct LogEntry {
        const StreamData* stream; // nullptr once the event was removed
        std::size_t index;
    };
    struct string_hash {
        using is_transparent = void;
        // Deliberately not noexcept: libstdc++ then keeps each key's hash in its node, so a lookup compares
        // hashes instead of re-hashing and comparing the keys it walks past (7% of a replay by stream id).
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using stream_map = std::unordered_map<std::string, StreamData, string_hash, std::equal_to<>>;
    using life_map = std::unordered_map<std::string, StreamLife, string_hash, std::equal_to<>>;

    struct index_range {
        std::size_t begin;
        std::size_t end;
    };

    // Doubles a vector's capacity when `extra` more elements would not fit (reserve() alone would grow
    // it to the exact size on every append).
    template <class T>
    static void grow(std::vector<T>& v, std::size_t extra) {
        const std::size_t needed = v.size() + extra;
        if (needed > v.capacity()) v.reserve(std::max(needed, v.capacity() * 2));
    }

    // Indices [begin, end) of a sequence of `size` elements numbered from 1, starting at `from` (0 = 1).
    static index_range range(std::size_t size, std::uint64_t from, std::uint64_t max_count) noexcept {
        const std::size_t begin = from <= 1 ? 0 : static_cast<std::size_t>(std::min<std::uint64_t>(from - 1, size));
        const std::size_t end = begin + static_cast<std::size_t>(std::min<std::uint64_t>(max_count, size - begin));
        return {begin, end};
    }

    // Indices [begin, end) of a stream's arrays holding the versions from `from` (0 = the first), at most
    // `max_count`.
    static index_range stream_range(const StreamData* data, stream_version_t from, std::uint64_t max_count) noexcept {
        if (data == nullptr) return {0, 0};
        return range(data->events.size(), from <= data->base ? 0 : from - data->base, max_count);
    }

    const StreamData* find_stream(std::string_view stream) const {
        auto found = streams_.find(stream);
        return found == streams_.end() ? nullptr : &found->second;
    }

    static recorded_type record(const StreamData& data, std::size_t i) { return view(data, i).to_owned(); }

    static view_type view(const StreamData& data, std::size_t i) noexcept {
        return view(data, i, data.events[i], data.records[i]);
    }

    static view_type view(const StreamData& data, std::size_t i, const Events& event, const Record& r) noexcept {
        const extras_type* extras = r.extras == 0 ? nullptr : &data.extras[r.extras - 1];
        return view_type{data.id, data.base + i + 1, r.position, &event, &r.event_id, r.recorded_at, extras};
    }

    // The global position of the last event ever stored.
    position_t head_locked() const noexcept { return log_base_ + log_.size(); }

    // The log entry of the event at `position` (one after log_base_).
    const LogEntry& entry(position_t position) const noexcept {
        return log_[static_cast<std::size_t>(position - 1 - log_base_)];
    }

    // Calls `f(entry, position)` for each stored event from `from` (0 = the first) in global order, at most
    // `max_count`; returns how many.
    template <class F>
    std::uint64_t for_each_live(position_t from, std::uint64_t max_count, F&& f) const {
        std::size_t i = from <= log_base_ + 1
                            ? 0
                            : static_cast<std::size_t>(std::min<std::uint64_t>(from - 1 - log_base_, log_.size()));
        i = std::max(i, live_from_);
        std::uint64_t visited = 0;
        for (; i < log_.size() && visited < max_count; ++i) {
            const LogEntry& e = log_[i];
            if (e.stream == nullptr) continue;
            f(e, log_base_ + i + 1);
            ++visited;
        }
        return visited;
    }

    // What `stream_info` reports for a stream with lifecycle state `life` and stored events `data` (either
    // may be absent).
    static StreamInfo info_of(const StreamLife* life, const StreamData* data) noexcept {
        StreamInfo info;
        if (life != nullptr) {
            info.version = life->version;
            info.start_version = life->start_version;
            info.status = life->status;
            info.recreation = life->recreation;
        }
        if (data != nullptr) {
            info.version = data->base + data->events.size();
            info.first_version = data->base + 1;
        } else {
            info.first_version = info.version + 1;
        }
        return info;
    }

    // The time before which `max_age` removes events at `now` (the earliest time point if that is before
    // the clock's range).
    static std::chrono::system_clock::time_point cutoff(std::chrono::system_clock::time_point now,
                                                        std::chrono::seconds max_age) noexcept {
        using duration = std::chrono::system_clock::duration;
        constexpr auto longest = std::chrono::duration_cast<std::chrono::seconds>(duration::max());
        const auto age = std::chrono::duration_cast<duration>(std::min(max_age, longest));
        if (now.time_since_epoch() < duration::min() + age) return std::chrono::system_clock::time_point::min();
        return now - age;
    }

    // The version up to which a stream's events were recorded before `cutoff` (its first event recorded at
    // or after it; version + 1 if there is none): retention by age removes the versions below it.
    static stream_version_t age_bound(const StreamData& data, std::chrono::system_clock::time_point cutoff) {
        std::size_t i = 0;
        while (i < data.events.size() && data.records[i].recorded_at < cutoff) ++i;
        return data.base + i + 1;
    }

    // Removes the first `count` events of the stream at `found` (a truncation), keeping its lifecycle row
    // `row` (created if missing) in step: a stream left without events keeps its version there.
    void remove_counted(typename stream_map::iterator found, typename life_map::iterator row, std::size_t count,
                        const StreamInfo& info) {
        if (count == found->second.events.size() && row == lives_.end()) {
            row = lives_.try_emplace(std::string(found->first)).first; // before anything changes
        }
        remove_front(found, count);
        if (row != lives_.end()) {
            row->second.version = info.version;
            row->second.start_version = info.start_version;
        }
    }

    // Removes the first `count` (1 or more) events of the stream at `found`, from every read and index,
    // and frees them: a stream that keeps some moves them to freshly allocated arrays, one that keeps none
    // leaves the map. Allocates before it changes anything, so that a failure leaves the store as it was.
    void remove_front(typename stream_map::iterator found, std::size_t count) {
        StreamData& data = found->second;
        const std::size_t kept = data.events.size() - count;

        // The index lists that hold the removed positions (tagged stores).
        using tag_iterator = typename decltype(DcbIndex::by_tag)::iterator;
        [[maybe_unused]] std::vector<tag_iterator> tag_lists;
        [[maybe_unused]] std::array<bool, std::variant_size_v<Events>> type_lists{};
        if constexpr (tagged) {
            for (std::size_t i = 0; i < count; ++i) {
                for (const std::string& t : detail::checked_tags(data.events[i])) {
                    const auto list = index_.by_tag.find(std::string_view(t));
                    if (list != index_.by_tag.end()) tag_lists.push_back(list);
                }
                type_lists[data.events[i].index()] = true;
            }
            const auto by_node = [](const tag_iterator& a, const tag_iterator& b) { return &*a < &*b; };
            std::sort(tag_lists.begin(), tag_lists.end(), by_node);
            tag_lists.erase(std::unique(tag_lists.begin(), tag_lists.end()), tag_lists.end());
        }
        // The kept events, in a node of their own (a map node's StreamData never moves, and the new arrays
        // hold nothing of the removed events).
        typename stream_map::node_type replacement;
        if (kept > 0) {
            stream_map scratch;
            auto fresh = scratch.try_emplace(found->first).first;
            StreamData& target = fresh->second;
            target.id = fresh->first;
            target.base = data.base + count;
            target.events.reserve_more(kept);
            target.records.reserve_more(kept);
            std::size_t kept_extras = 0;
            for (std::size_t i = count; i < data.events.size(); ++i)
                if (data.records[i].extras != 0) ++kept_extras;
            if (kept_extras > 0) target.extras.reserve_more(kept_extras);
            for (std::size_t i = count; i < data.events.size(); ++i) {
                target.events.emplace_back(std::move_if_noexcept(data.events[i]));
            }
            for (std::size_t i = count; i < data.events.size(); ++i) { // reserved, moved: nothing throws
                Record r = data.records[i];
                if (r.extras != 0) {
                    target.extras.emplace_back(std::move_if_noexcept(data.extras[r.extras - 1]));
                    r.extras = target.extras.size();
                }
                target.records.emplace_back(r);
            }
            replacement = scratch.extract(fresh);
        }

        // Nothing below allocates.
        for (std::size_t i = 0; i < count; ++i) {
            const position_t p = data.records[i].position;
            if (p <= indexed_) ids_.erase(data.records[i].event_id);
            log_[static_cast<std::size_t>(p - 1 - log_base_)] = LogEntry{nullptr, 0};
        }
        if constexpr (tagged) {
            const auto removed = [&](position_t p) { return entry(p).stream == nullptr; };
            for (const tag_iterator& list : tag_lists) {
                std::erase_if(list->second, removed);
                if (list->second.empty()) {
                    index_.by_tag.erase(list);
                } else if (list->second.capacity() / 4 > list->second.size()) {
                    list->second.shrink_to_fit();
                }
            }
            for (std::size_t t = 0; t < type_lists.size(); ++t) {
                if (!type_lists[t]) continue;
                std::erase_if(index_.by_type[t], removed);
                if (index_.by_type[t].capacity() / 4 > index_.by_type[t].size()) index_.by_type[t].shrink_to_fit();
            }
        }
        streams_.erase(found);
        if (kept > 0) {
            const auto inserted = streams_.insert(std::move(replacement)).position;
            const StreamData& moved = inserted->second;
            for (std::size_t i = 0; i < kept; ++i) {
                log_[static_cast<std::size_t>(moved.records[i].position - 1 - log_base_)] = LogEntry{&moved, i};
            }
        }
        removed_ += count;
        compact_log();
    }

    // Drops the removed entries at the front of the log once they are at least half of it (amortised: each
    // entry is moved at most once per halving); the positions before the first entry left are `log_base_`.
    void compact_log() noexcept {
        while (live_from_ < log_.size() && log_[live_from_].stream == nullptr) ++live_from_;
        if (live_from_ == 0 || live_from_ * 2 < log_.size()) return;
        log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(live_from_));
        log_base_ += live_from_;
        live_from_ = 0;
        log_.shrink_to_fit();
    }

    // Whether every id of the batch is greater than every stored id, in increasing order: then none of
    // them can be stored, and the id index need not be consulted. Ids from `Uuid::generate` on one thread
    // always pass; a retry, or ids made on several threads, take the index.
    bool all_ids_newer(std::span<const envelope_type> events) const noexcept {
        const Uuid* previous = &greatest_id_;
        for (const envelope_type& e : events) {
            if (!(*previous < e.metadata.event_id)) return false;
            previous = &e.metadata.event_id;
        }
        return true;
    }

    // Brings the id index up to date with the log: indexes the ids appended since it was last used.
    // Each id is indexed at most once, so the cost is amortised over the appends that skipped it.
    void update_id_index() {
        const position_t head = head_locked();
        if (indexed_ == head) return;
        position_t p = std::max(indexed_, log_base_);
        ids_.reserve_more(static_cast<std::size_t>(head - p));
        for (; p < head; ++p) {
            const LogEntry& e = log_[static_cast<std::size_t>(p - log_base_)];
            if (e.stream != nullptr) ids_.insert(e.stream->records[e.index].event_id, p + 1);
        }
        indexed_ = head;
    }

    // If the batch's ids are stored already, decides whether this is an idempotent retry (returns the
    // original result) or a misuse (throws). Returns nothing when none of the ids is stored.
    std::optional<AppendResult> check_idempotent_retry(std::string_view stream, std::span<const envelope_type> events,
                                                       ExpectedVersion expected, stream_version_t current) {
        if (all_ids_newer(events)) return std::nullopt;
        update_id_index();
        const auto locate = [&](std::size_t i) -> std::optional<StoredEventLocation> {
            const auto position = ids_.find(events[i].metadata.event_id);
            if (!position) return std::nullopt;
            const LogEntry& e = entry(*position);
            return StoredEventLocation{e.stream->id, e.stream->base + e.index + 1, *position};
        };
        const auto same_event = [&](std::size_t i) {
            const LogEntry& e = entry(*ids_.find(events[i].metadata.event_id));
            return orchestrix::same_event(e.stream->events[e.index], events[i].event);
        };
        const auto start_of_life = [&] {
            const auto row = lives_.find(stream);
            return row == lives_.end() ? stream_version_t{1} : row->second.start_version;
        };
        return orchestrix::check_idempotent_retry<Events>(stream, events, expected, current, locate, same_event,
                                                          start_of_life);
    }

    // The tags of each event of a batch, checked before the store is locked (nothing for untagged events).
    static auto batch_tags(std::span<const envelope_type> events) {
        if constexpr (tagged) {
            std::vector<std::vector<std::string>> tags;
            tags.reserve(events.size());
            for (const envelope_type& e : events) tags.push_back(detail::checked_tags(e.event));
            return tags;
        } else {
            return 0;
        }
    }

    // What a tagged store keeps beside the log: per tag and per event type, the positions of the events
    // that carry it, ascending.
    struct DcbIndex {
        std::unordered_map<std::string, std::vector<position_t>, string_hash, std::equal_to<>> by_tag;
        std::array<std::vector<position_t>, std::variant_size_v<Events>> by_type;
    };
    struct NoIndex {};

    // Makes room in the index for a batch, so that `index_event` cannot fail once events are written.
    template <class Tags>
    void reserve_index(std::span<const envelope_type> events, const Tags& tags) {
        for (std::size_t i = 0; i < events.size(); ++i) {
            for (const std::string& t : tags[i]) {
                auto found = index_.by_tag.find(std::string_view(t));
                if (found == index_.by_tag.end()) found = index_.by_tag.try_emplace(t).first;
                grow(found->second, events.size());
            }
            grow(index_.by_type[events[i].event.index()], events.size());
        }
    }

    template <class Tags>
    void index_event(const Events& event, const Tags& tags, position_t position) noexcept {
        for (const std::string& t : tags) index_.by_tag.find(std::string_view(t))->second.push_back(position);
        index_.by_type[event.index()].push_back(position);
    }

    // The variant index of the event type named `name` (validate_query_types has checked it exists).
    static std::size_t type_index(std::string_view name) noexcept {
        return []<class... Ts>(std::variant<Ts...>*, std::string_view n) {
            constexpr std::array<std::string_view, sizeof...(Ts)> names{event_name<Ts>...};
            std::size_t i = 0;
            while (i < names.size() && names[i] != n) ++i;
            return i;
        }(static_cast<Events*>(nullptr), name);
    }

    // Calls `f(position)` for each event after `after` matching `item`, ascending, while `f` returns true.
    template <class F>
    void for_each_item_match(const QueryItem& item, position_t after, F&& f) const {
        std::array<bool, std::variant_size_v<Events>> wanted{};
        for (const std::string& type : item.types) {
            const std::size_t i = type_index(type);
            if (i < wanted.size()) wanted[i] = true;
        }
        const auto type_ok = [&](position_t p) {
            if (item.types.empty()) return true;
            const LogEntry& e = entry(p);
            return wanted[e.stream->events[e.index].index()];
        };
        if (!item.tags.empty()) {
            // Walk the shortest tag's positions; the others and the type are checked by lookup.
            std::vector<const std::vector<position_t>*> lists;
            for (const std::string& t : item.tags) {
                const auto found = index_.by_tag.find(std::string_view(t));
                if (found == index_.by_tag.end()) return;
                lists.push_back(&found->second);
            }
            std::sort(lists.begin(), lists.end(), [](const auto* a, const auto* b) { return a->size() < b->size(); });
            const std::vector<position_t>& shortest = *lists.front();
            for (auto it = std::upper_bound(shortest.begin(), shortest.end(), after); it != shortest.end(); ++it) {
                const position_t p = *it;
                bool all = type_ok(p);
                for (std::size_t l = 1; l < lists.size() && all; ++l)
                    all = std::binary_search(lists[l]->begin(), lists[l]->end(), p);
                if (all && !f(p)) return;
            }
            return;
        }
        // Types only: merge the types' position lists.
        std::vector<std::pair<std::vector<position_t>::const_iterator, std::vector<position_t>::const_iterator>> heads;
        for (std::size_t i = 0; i < wanted.size(); ++i) {
            if (!wanted[i]) continue;
            const std::vector<position_t>& list = index_.by_type[i];
            auto begin = std::upper_bound(list.begin(), list.end(), after);
            if (begin != list.end()) heads.emplace_back(begin, list.end());
        }
        while (!heads.empty()) {
            auto next = std::min_element(heads.begin(), heads.end(),
                                         [](const auto& a, const auto& b) { return *a.first < *b.first; });
            if (!f(*next->first)) return;
            if (++next->first == next->second) heads.erase(next);
        }
    }

    // The first position after `after` of an event matching `query`; 0 if there is none.
    position_t first_match(const Query& query, position_t after) const {
        if (query.matches_all()) {
            position_t first = 0;
            for_each_live(after + 1, 1, [&](const LogEntry&, position_t p) { first = p; });
            return first;
        }
        position_t best = 0;
        for (const QueryItem& item : query.items()) {
            for_each_item_match(item, after, [&](position_t p) {
                if (best == 0 || p < best) best = p;
                return false;
            });
        }
        return best;
    }

    // The positions after `after` of the events matching `query`, ascending, at most `max_count`.
    std::vector<position_t> matching_positions(const Query& query, position_t after, std::uint64_t max_count) const {
        std::vector<position_t> out;
        if (query.matches_all()) {
            for_each_live(after + 1, max_count, [&](const LogEntry&, position_t p) { out.push_back(p); });
            return out;
        }
        for (const QueryItem& item : query.items()) {
            std::uint64_t taken = 0;
            for_each_item_match(item, after, [&](position_t p) {
                out.push_back(p);
                return ++taken < max_count;
            });
        }
        if (query.items().size() > 1) {
            std::sort(out.begin(), out.end());
            out.erase(std::unique(out.begin(), out.end()), out.end());
        }
        if (out.size() > max_count) out.resize(static_cast<std::size_t>(max_count));
        return out;
    }

    mutable detail::SharedMutex mutex_;
    stream_map streams_;                            // stream id -> the stream
    std::vector<LogEntry> log_;                     // index = global position - 1 - log_base_
    position_t log_base_ = 0;                       // positions before log_'s first entry (all removed)
    std::size_t live_from_ = 0;                     // log_ entries before it are all removed
    life_map lives_;                                // stream id -> its life, for streams lifecycle touched
    std::uint64_t removed_ = 0;                     // events removed by lifecycle operations
    detail::UuidIndex ids_;                         // event id -> global position, for positions up to indexed_
    position_t indexed_ = 0;                        // the positions ids_ covers (see update_id_index)
    Uuid greatest_id_{};                            // the greatest stored id (nil when empty)
    mutable std::atomic<std::uint32_t> waiters_{0}; // callers inside wait_for_position
    mutable std::mutex signal_mutex_;               // taken after mutex_ is released, never while holding it
    mutable std::condition_variable_any appended_;  // notified after each written append
    [[no_unique_address]] std::conditional_t<tagged, DcbIndex, NoIndex> index_; // tagged stores only
    Observer* observer_ = nullptr;                                              // see observe()
};

} // namespace orchestrix
