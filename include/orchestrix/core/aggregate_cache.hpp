#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace orchestrix {

/// A bounded cache of aggregates by stream id, least recently used out first: what makes a warm command
/// cost the same at any stream length. Give it to a `Repository` (`with_cache`); `execute` then starts from
/// the cached aggregate, brings it up to date with the events stored after it (none, usually: one lookup),
/// decides, and appends expecting the version it decided at. A conflict drops the entry and the command is
/// retried from the store, so a cached aggregate never decides on a state the store has moved past.
///
/// Thread-safe: any number of repositories, in any number of threads, may share one cache. It holds
/// copies: `get` hands out a copy to work on, `put` keeps a copy. `find` and `load` do not use it.
template <class Aggregate>
class AggregateCache {
    static_assert(std::is_copy_constructible_v<Aggregate>,
                  "orchestrix::AggregateCache: the aggregate must be copy-constructible (the cache keeps copies)");

public:
    /// A cache of at most `capacity` aggregates (at least 1).
    explicit AggregateCache(std::size_t capacity = 10'000) : capacity_(capacity == 0 ? 1 : capacity) {}
    AggregateCache(const AggregateCache&) = delete;
    AggregateCache& operator=(const AggregateCache&) = delete;
    ~AggregateCache() = default;

    /// A copy of the aggregate cached for `stream`, which becomes the most recently used; nothing if none is.
    [[nodiscard]] std::optional<Aggregate> get(std::string_view stream) const {
        const std::lock_guard lock(mutex_);
        const auto found = index_.find(stream);
        if (found == index_.end()) {
            ++misses_;
            return std::nullopt;
        }
        ++hits_;
        entries_.splice(entries_.begin(), entries_, found->second);
        return found->second->aggregate;
    }

    /// Keeps a copy of `aggregate` (with no uncommitted events) for `stream`, unless a newer version of it is
    /// cached already; evicts the least recently used entry when full.
    void put(std::string_view stream, const Aggregate& aggregate) {
        const std::lock_guard lock(mutex_);
        if (const auto found = index_.find(stream); found != index_.end()) {
            if (found->second->aggregate.version() <= aggregate.version()) found->second->aggregate = aggregate;
            entries_.splice(entries_.begin(), entries_, found->second);
            return;
        }
        entries_.push_front(Entry{std::string(stream), aggregate});
        index_.emplace(entries_.front().stream, entries_.begin());
        if (entries_.size() > capacity_) {
            index_.erase(entries_.back().stream);
            entries_.pop_back();
        }
    }

    /// Forgets the aggregate of `stream`, if cached.
    void erase(std::string_view stream) {
        const std::lock_guard lock(mutex_);
        if (const auto found = index_.find(stream); found != index_.end()) {
            const auto entry = found->second;
            index_.erase(found);
            entries_.erase(entry);
        }
    }

    /// Forgets every aggregate.
    void clear() {
        const std::lock_guard lock(mutex_);
        index_.clear();
        entries_.clear();
    }

    [[nodiscard]] std::size_t size() const {
        const std::lock_guard lock(mutex_);
        return entries_.size();
    }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    /// How many `get` calls found an aggregate, and how many did not.
    [[nodiscard]] std::uint64_t hits() const {
        const std::lock_guard lock(mutex_);
        return hits_;
    }
    [[nodiscard]] std::uint64_t misses() const {
        const std::lock_guard lock(mutex_);
        return misses_;
    }

private:
    struct Entry {
        std::string stream;
        Aggregate aggregate;
    };
    using list_type = std::list<Entry>;
    struct view_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    std::size_t capacity_;
    mutable std::mutex mutex_;
    mutable list_type entries_; // most recently used first; nodes never move, so the index's keys stay valid
    std::unordered_map<std::string_view, typename list_type::iterator, view_hash, std::equal_to<>> index_;
    mutable std::uint64_t hits_ = 0;
    mutable std::uint64_t misses_ = 0;
};

} // namespace orchestrix
