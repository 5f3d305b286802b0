#pragma once

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/snapshot.hpp>

#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace orchestrix {

/// A snapshot store in memory: thread-safe (concurrent readers, one writer), stores copies, keeps one
/// snapshot per aggregate id.
class InMemorySnapshotStore {
public:
    InMemorySnapshotStore() = default;
    InMemorySnapshotStore(const InMemorySnapshotStore&) = delete;
    InMemorySnapshotStore& operator=(const InMemorySnapshotStore&) = delete;

    /// Keeps a copy of `snapshot` as its aggregate's latest, unless the stored one has the same schema
    /// version and a higher version (a slower writer never replaces a newer snapshot with an older one).
    /// Throws `InvalidArgumentError` for an empty or malformed aggregate id or a version of 0.
    void save(const Snapshot& snapshot) {
        detail::validate_snapshot(snapshot);
        std::unique_lock lock(mutex_);
        const auto found = snapshots_.find(snapshot.aggregate_id);
        if (found == snapshots_.end()) {
            snapshots_.emplace(snapshot.aggregate_id, snapshot);
            return;
        }
        const Snapshot& stored = found->second;
        if (stored.schema_version == snapshot.schema_version && stored.version > snapshot.version) return;
        found->second = snapshot;
    }

    /// A copy of the latest snapshot of `aggregate_id`, or nothing.
    [[nodiscard]] std::optional<Snapshot> latest(std::string_view aggregate_id) const {
        std::shared_lock lock(mutex_);
        const auto found = snapshots_.find(aggregate_id);
        if (found == snapshots_.end()) return std::nullopt;
        return found->second;
    }

    /// Forgets the snapshot of `aggregate_id`; returns whether there was one.
    bool erase(std::string_view aggregate_id) {
        std::unique_lock lock(mutex_);
        const auto found = snapshots_.find(aggregate_id);
        if (found == snapshots_.end()) return false;
        snapshots_.erase(found);
        return true;
    }

    /// The number of aggregates with a snapshot.
    [[nodiscard]] std::size_t size() const {
        std::shared_lock lock(mutex_);
        return snapshots_.size();
    }

private:
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, Snapshot, id_hash, std::equal_to<>> snapshots_;
};

static_assert(snapshot_store<InMemorySnapshotStore>);

} // namespace orchestrix
