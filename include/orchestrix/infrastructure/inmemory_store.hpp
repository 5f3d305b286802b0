#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/detail/uuid_index.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace orchestrix {

/// An event store in memory: typed events (no serialization), for tests and embedded use.
///
/// - Thread-safe: any number of concurrent readers, one writer at a time (a `std::shared_mutex`).
/// - `append` is O(batch) amortised and allocates nothing per event beyond the stored event itself
///   (a stream id longer than the small-string buffer, 15 bytes with libstdc++, is kept per event).
/// - `visit_stream` / `visit_all` hand stored events to a callback in place, without copying; the store
///   is read-locked meanwhile, so the callback must not append to the same store.
template <event_variant Events>
class InMemoryEventStore {
public:
    using event_type = Events;
    using envelope_type = EventEnvelope<Events>;
    using recorded_type = RecordedEvent<Events>;

    InMemoryEventStore() = default;
    InMemoryEventStore(const InMemoryEventStore&) = delete;
    InMemoryEventStore& operator=(const InMemoryEventStore&) = delete;

    /// Appends `events` to `stream` atomically if the stream matches `expected`. See `event_store`.
    AppendResult append(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected) {
        detail::validate_stream_id(stream);
        detail::validate_batch_ids<Events>(stream, events);

        std::unique_lock lock(mutex_);
        auto found = streams_.find(stream);
        const stream_version_t current = found == streams_.end() ? 0 : found->second.size();
        if (events.empty()) return AppendResult{current, 0, 0, false};

        if (auto retry = check_idempotent_retry(stream, events, expected, current)) return *retry;
        if (!expected.matches(current)) throw ConcurrencyError(std::string(stream), expected, current);
        detail::validate_growth(stream, current, log_.size(), events.size());

        if (found == streams_.end()) found = streams_.emplace(std::string(stream), std::vector<position_t>{}).first;
        std::vector<position_t>& positions = found->second;
        positions.reserve(positions.size() + events.size());
        ids_.reserve_more(events.size());

        const auto now = std::chrono::system_clock::now();
        const position_t first = static_cast<position_t>(log_.size()) + 1;
        std::size_t written = 0;
        try {
            for (const envelope_type& e : events) {
                log_.push_back(recorded_type{found->first, current + written + 1, first + written, e.event,
                                             e.metadata});
                log_.back().metadata.recorded_at = now;
                ++written;
            }
        } catch (...) { // all or nothing: undo the partial batch (only allocation can fail here)
            for (; written > 0; --written) log_.pop_back();
            if (positions.empty()) streams_.erase(found);
            throw;
        }
        for (std::size_t i = 0; i < events.size(); ++i) {
            positions.push_back(first + i); // capacity reserved above: cannot throw
            ids_.insert(events[i].metadata.event_id, first + i);
        }
        return AppendResult{current + events.size(), first, first + events.size() - 1, true};
    }

    AppendResult append(std::string_view stream, std::initializer_list<envelope_type> events,
                        ExpectedVersion expected) {
        return append(stream, std::span<const envelope_type>(events.begin(), events.size()), expected);
    }

    /// Events of `stream` from `from_version` on (1 = the first; 0 reads from the start too), at most
    /// `max_count` of them. An unknown stream yields no events.
    [[nodiscard]] std::vector<recorded_type> read_stream(std::string_view stream, stream_version_t from_version = 1,
                                                         std::uint64_t max_count = unlimited) const {
        std::vector<recorded_type> out;
        std::shared_lock lock(mutex_);
        const auto [begin, end] = stream_range(stream, from_version, max_count);
        if (begin == end) return out;
        const std::vector<position_t>& positions = streams_.find(stream)->second;
        out.reserve(end - begin);
        for (std::size_t i = begin; i < end; ++i) out.push_back(log_[positions[i] - 1]);
        return out;
    }

    /// Events of all streams in global order from `from_position` on (1 = the first; 0 reads from the
    /// start too), at most `max_count` of them.
    [[nodiscard]] std::vector<recorded_type> read_all(position_t from_position = 1,
                                                      std::uint64_t max_count = unlimited) const {
        std::vector<recorded_type> out;
        std::shared_lock lock(mutex_);
        const auto [begin, end] = log_range(from_position, max_count);
        out.reserve(end - begin);
        for (std::size_t i = begin; i < end; ++i) out.push_back(log_[i]);
        return out;
    }

    /// Calls `visitor(const RecordedEvent<Events>&)` for each event of `stream` from `from_version` on, in
    /// place. Returns the number of events visited.
    template <class Visitor>
        requires std::invocable<Visitor&, const recorded_type&>
    std::uint64_t visit_stream(std::string_view stream, stream_version_t from_version, Visitor&& visitor,
                               std::uint64_t max_count = unlimited) const {
        std::shared_lock lock(mutex_);
        const auto [begin, end] = stream_range(stream, from_version, max_count);
        if (begin == end) return 0;
        const std::vector<position_t>& positions = streams_.find(stream)->second;
        for (std::size_t i = begin; i < end; ++i) std::invoke(visitor, log_[positions[i] - 1]);
        return end - begin;
    }

    /// Calls `visitor(const RecordedEvent<Events>&)` for each event in global order from `from_position`
    /// on, in place. Returns the number of events visited.
    template <class Visitor>
        requires std::invocable<Visitor&, const recorded_type&>
    std::uint64_t visit_all(position_t from_position, Visitor&& visitor, std::uint64_t max_count = unlimited) const {
        std::shared_lock lock(mutex_);
        const auto [begin, end] = log_range(from_position, max_count);
        for (std::size_t i = begin; i < end; ++i) std::invoke(visitor, log_[i]);
        return end - begin;
    }

    /// The stream's current version: 0 if it does not exist.
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) const {
        std::shared_lock lock(mutex_);
        auto found = streams_.find(stream);
        return found == streams_.end() ? 0 : found->second.size();
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
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using stream_map = std::unordered_map<std::string, std::vector<position_t>, string_hash, std::equal_to<>>;

    struct index_range {
        std::size_t begin;
        std::size_t end;
    };

    // Indices [begin, end) into the stream's position list. Caller holds the lock.
    index_range stream_range(std::string_view stream, stream_version_t from_version, std::uint64_t max_count) const {
        auto found = streams_.find(stream);
        if (found == streams_.end()) return {0, 0};
        const std::size_t size = found->second.size();
        const std::size_t begin = from_version <= 1 ? 0 : std::min<std::uint64_t>(from_version - 1, size);
        const std::size_t end = begin + std::min<std::uint64_t>(max_count, size - begin);
        return {begin, end};
    }

    // Indices [begin, end) into the global log. Caller holds the lock.
    index_range log_range(position_t from_position, std::uint64_t max_count) const {
        const std::size_t size = log_.size();
        const std::size_t begin = from_position <= 1 ? 0 : std::min<std::uint64_t>(from_position - 1, size);
        const std::size_t end = begin + std::min<std::uint64_t>(max_count, size - begin);
        return {begin, end};
    }

    // If the batch's ids are stored already, decides whether this is an idempotent retry (returns the
    // original result) or a misuse (throws). Returns nothing when none of the ids is stored.
    std::optional<AppendResult> check_idempotent_retry(std::string_view stream, std::span<const envelope_type> events,
                                                       ExpectedVersion expected, stream_version_t current) const {
        std::size_t stored = 0;
        const Uuid* stored_id = nullptr;
        for (const envelope_type& e : events) {
            if (ids_.find(e.metadata.event_id)) {
                ++stored;
                stored_id = &e.metadata.event_id;
            }
        }
        if (stored == 0) return std::nullopt;
        if (stored != events.size()) {
            throw IdempotencyError(IdempotencyError::Reason::partial_overlap, std::string(stream), *stored_id);
        }
        const recorded_type* first = nullptr;
        for (std::size_t i = 0; i < events.size(); ++i) {
            const envelope_type& e = events[i];
            const recorded_type& r = log_[*ids_.find(e.metadata.event_id) - 1];
            if (r.stream_id != stream) {
                throw IdempotencyError(IdempotencyError::Reason::different_stream, std::string(stream),
                                       e.metadata.event_id);
            }
            if (first == nullptr) first = &r;
            if (r.version != first->version + i) {
                throw IdempotencyError(IdempotencyError::Reason::different_order, std::string(stream),
                                       e.metadata.event_id);
            }
            if (!(r.event == e.event)) {
                throw IdempotencyError(IdempotencyError::Reason::different_payload, std::string(stream),
                                       e.metadata.event_id);
            }
        }
        const stream_version_t before = first->version - 1;
        const bool expectation_held = expected.kind() == ExpectedVersion::Kind::any ||
                                      expected.kind() == ExpectedVersion::Kind::stream_exists ||
                                      expected.matches(before);
        if (!expectation_held) throw ConcurrencyError(std::string(stream), expected, current);
        const stream_version_t last_version = before + events.size();
        const position_t last_position = log_[*ids_.find(events.back().metadata.event_id) - 1].position;
        return AppendResult{last_version, first->position, last_position, false};
    }

    mutable std::shared_mutex mutex_;
    std::deque<recorded_type> log_;  // index = global position - 1
    stream_map streams_;             // stream id -> global positions of its events, in version order
    detail::UuidIndex ids_;          // event id -> global position
};

} // namespace orchestrix
