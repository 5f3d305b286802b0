#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/chrono.hpp>
#include <orchestrix/memory/stable_array.hpp>
#include <orchestrix/memory/uuid_index.hpp>

#include <algorithm>
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
#include <unordered_map>
#include <vector>

namespace orchestrix {

/// An event store in memory: typed events (no serialization), for tests and embedded use.
///
/// - Thread-safe: any number of concurrent readers, one writer at a time (a `std::shared_mutex`).
/// - `append` is O(batch) amortised and allocates nothing per event beyond the stored event itself (the
///   arrays it appends to grow geometrically).
/// - Each stream keeps its events in one contiguous array, so folding a stream (`visit_stream`) reads
///   nothing but the events; `visit_stream` / `visit_all` hand `RecordedEventView`s to a callback without
///   copying. The store is read-locked meanwhile, so the callback must not append to the same store.
template <event_variant Events>
class InMemoryEventStore {
public:
    using event_type = Events;
    using envelope_type = EventEnvelope<Events>;
    using recorded_type = RecordedEvent<Events>;
    using view_type = RecordedEventView<Events>;

    InMemoryEventStore() = default;
    InMemoryEventStore(const InMemoryEventStore&) = delete;
    InMemoryEventStore& operator=(const InMemoryEventStore&) = delete;

    /// Appends `events` to `stream` atomically if the stream matches `expected`. See `event_store`.
    /// Wakes the callers of `wait_for_position` once the events are readable.
    AppendResult append(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected) {
        AppendResult result = append_locked(stream, events, expected);
        // Only when someone waits: an append with no waiter pays one atomic load, not a lock.
        if (result.written && waiters_.load(std::memory_order_seq_cst) != 0) {
            { std::lock_guard signal(signal_mutex_); } // a waiter is either waiting or will see the new head
            appended_.notify_all();
        }
        return result;
    }

    AppendResult append(std::string_view stream, std::initializer_list<envelope_type> events,
                        ExpectedVersion expected) {
        return append(stream, std::span<const envelope_type>(events.begin(), events.size()), expected);
    }

    /// Appends plain events, not envelopes (a `std::vector<UserRenamed>`, a `std::vector<Events>`, an array):
    /// each gets a fresh id and empty metadata, as in a braced list.
    template <plain_event_range<Events> Range>
    AppendResult append(std::string_view stream, const Range& events, ExpectedVersion expected) {
        const std::vector<envelope_type> envelopes = detail::to_envelopes<Events>(events);
        return append(stream, std::span<const envelope_type>(envelopes), expected);
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
    AppendResult append_locked(std::string_view stream, std::span<const envelope_type> events,
                               ExpectedVersion expected) {
        detail::validate_stream_id(stream);
        detail::validate_batch_ids<Events>(stream, events);

        std::unique_lock lock(mutex_);
        auto found = streams_.find(stream);
        StreamData* data = found == streams_.end() ? nullptr : &found->second;
        const stream_version_t current = data == nullptr ? 0 : data->events.size();
        if (events.empty()) return AppendResult{current, 0, 0, false};

        if (auto retry = check_idempotent_retry(stream, events, expected, current)) return *retry;
        if (!expected.matches(current)) throw ConcurrencyError(std::string(stream), expected, current);
        detail::validate_growth(stream, current, log_.size(), events.size());

        if (data == nullptr) {
            found = streams_.try_emplace(std::string(stream)).first;
            data = &found->second;
            data->id = found->first; // the key stays where it is: unordered_map nodes do not move
        }
        // Make room first, so that once writing starts only copying an event can fail.
        const std::size_t count = events.size();
        try {
            grow(data->events, count);
            data->stored.reserve_more(count);
            grow(log_, count);
        } catch (...) {
            if (data->events.empty()) streams_.erase(found);
            throw;
        }

        const auto now = std::chrono::system_clock::now();
        const position_t first = static_cast<position_t>(log_.size()) + 1;
        try {
            for (std::size_t i = 0; i < count; ++i) {
                data->events.push_back(events[i].event);
                data->stored.emplace_back(events[i].metadata, now, first + i);
            }
        } catch (...) { // all or nothing: undo the partial batch
            data->events.erase(data->events.begin() + static_cast<std::ptrdiff_t>(current), data->events.end());
            data->stored.truncate(current);
            if (data->events.empty()) streams_.erase(found);
            throw;
        }
        for (std::size_t i = 0; i < count; ++i) { // capacity reserved above: none of this can throw
            log_.push_back(LogEntry{data, current + i});
            if (greatest_id_ < events[i].metadata.event_id) greatest_id_ = events[i].metadata.event_id;
        }
        return AppendResult{current + count, first, first + count - 1, true};
    }

public:
    /// Events of `stream` from `from_version` on (1 = the first; 0 reads from the start too), at most
    /// `max_count` of them. An unknown stream yields no events.
    [[nodiscard]] std::vector<recorded_type> read_stream(std::string_view stream, stream_version_t from_version = 1,
                                                         std::uint64_t max_count = unlimited) const {
        std::vector<recorded_type> out;
        std::shared_lock lock(mutex_);
        const StreamData* data = find_stream(stream);
        const auto [begin, end] = range(data == nullptr ? 0 : data->events.size(), from_version, max_count);
        out.reserve(end - begin);
        for (std::size_t i = begin; i < end; ++i) out.push_back(record(*data, i));
        return out;
    }

    /// Events of all streams in global order from `from_position` on (1 = the first; 0 reads from the
    /// start too), at most `max_count` of them.
    [[nodiscard]] std::vector<recorded_type> read_all(position_t from_position = 1,
                                                      std::uint64_t max_count = unlimited) const {
        std::vector<recorded_type> out;
        std::shared_lock lock(mutex_);
        const auto [begin, end] = range(log_.size(), from_position, max_count);
        out.reserve(end - begin);
        for (std::size_t i = begin; i < end; ++i) out.push_back(record(*log_[i].stream, log_[i].index));
        return out;
    }

    /// Calls `visitor(const RecordedEventView<Events>&)` for each event of `stream` from `from_version` on,
    /// in place. Returns the number of events visited.
    template <class Visitor>
    std::uint64_t
    visit_stream(std::string_view stream, stream_version_t from_version, Visitor&& visitor,
                 std::uint64_t max_count = unlimited) const requires std::invocable<Visitor&, const view_type&> {
        std::shared_lock lock(mutex_);
        const StreamData* data = find_stream(stream);
        const auto [begin, end] = range(data == nullptr ? 0 : data->events.size(), from_version, max_count);
        for (std::size_t i = begin; i < end; ++i) std::invoke(visitor, view(*data, i));
        return end - begin;
    }

    /// Calls `visitor(const RecordedEventView<Events>&)` for each event in global order from
    /// `from_position` on, in place. Returns the number of events visited.
    template <class Visitor>
    std::uint64_t
    visit_all(position_t from_position, Visitor&& visitor,
              std::uint64_t max_count = unlimited) const requires std::invocable<Visitor&, const view_type&> {
        std::shared_lock lock(mutex_);
        const auto [begin, end] = range(log_.size(), from_position, max_count);
        for (std::size_t i = begin; i < end; ++i) std::invoke(visitor, view(*log_[i].stream, log_[i].index));
        return end - begin;
    }

    /// The stream's current version: 0 if it does not exist.
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) const {
        std::shared_lock lock(mutex_);
        const StreamData* data = find_stream(stream);
        return data == nullptr ? 0 : data->events.size();
    }

    /// The global position of the last stored event: 0 if the store is empty.
    [[nodiscard]] position_t head_position() const {
        std::shared_lock lock(mutex_);
        return log_.size();
    }

    /// The number of streams with at least one event.
    [[nodiscard]] std::size_t stream_count() const {
        std::shared_lock lock(mutex_);
        return streams_.size();
    }

private:
    // What a stream keeps beside each event: the caller's metadata stamped with the time, and the position.
    struct Stored {
        Metadata metadata;
        position_t position;

        Stored(const Metadata& m, std::chrono::system_clock::time_point now, position_t p) : position(p) {
            metadata.event_id = m.event_id;
            // Empty strings are not copied: that is an out-of-line call, and most events carry neither id.
            if (!m.correlation_id.empty()) metadata.correlation_id = m.correlation_id;
            if (!m.causation_id.empty()) metadata.causation_id = m.causation_id;
            metadata.recorded_at = now;
        }
    };
    // A stream keeps its events contiguous (a fold touches nothing else) and their metadata and positions
    // beside them in an array that never moves its elements (growing it copies no strings); index i holds
    // version i + 1.
    struct StreamData {
        std::string_view id; // the map's key
        std::vector<Events> events;
        detail::StableArray<Stored> stored;
    };
    struct LogEntry {
        const StreamData* stream;
        std::size_t index;
    };
    struct string_hash {
        using is_transparent = void;
        // Deliberately not noexcept: libstdc++ then keeps each key's hash in its node, so a lookup compares
        // hashes instead of re-hashing and comparing the keys it walks past (7% of a replay by stream id).
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using stream_map = std::unordered_map<std::string, StreamData, string_hash, std::equal_to<>>;

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

    const StreamData* find_stream(std::string_view stream) const {
        auto found = streams_.find(stream);
        return found == streams_.end() ? nullptr : &found->second;
    }

    static recorded_type record(const StreamData& data, std::size_t i) {
        return recorded_type{std::string(data.id), i + 1, data.stored[i].position, data.events[i],
                             data.stored[i].metadata};
    }

    static view_type view(const StreamData& data, std::size_t i) noexcept {
        return view_type{data.id, i + 1, &data.stored[i].position, &data.events[i], &data.stored[i].metadata};
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
        if (indexed_ == log_.size()) return;
        ids_.reserve_more(log_.size() - indexed_);
        for (; indexed_ < log_.size(); ++indexed_) {
            const LogEntry& entry = log_[indexed_];
            ids_.insert(entry.stream->stored[entry.index].metadata.event_id, indexed_ + 1);
        }
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
            const LogEntry& entry = log_[*position - 1];
            return StoredEventLocation{entry.stream->id, entry.index + 1, *position};
        };
        const auto same_event = [&](std::size_t i) {
            const LogEntry& entry = log_[*ids_.find(events[i].metadata.event_id) - 1];
            return entry.stream->events[entry.index] == events[i].event;
        };
        return orchestrix::check_idempotent_retry<Events>(stream, events, expected, current, locate, same_event);
    }

    mutable std::shared_mutex mutex_;
    stream_map streams_;                            // stream id -> the stream
    std::vector<LogEntry> log_;                     // index = global position - 1
    detail::UuidIndex ids_;                         // event id -> global position, for log_[0, indexed_)
    std::size_t indexed_ = 0;                       // how many log entries ids_ covers (see update_id_index)
    Uuid greatest_id_{};                            // the greatest stored id (nil when empty)
    mutable std::atomic<std::uint32_t> waiters_{0}; // callers inside wait_for_position
    mutable std::mutex signal_mutex_;               // taken after mutex_ is released, never while holding it
    mutable std::condition_variable_any appended_;  // notified after each written append
};

} // namespace orchestrix
