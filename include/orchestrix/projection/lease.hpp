#pragma once

// Partitions and leases of partitioned projections: the partition an event key falls in, the checkpoint
// key of a partition, and the `lease_store` concept the checkpoint stores that hold leases model.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/projection/errors.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orchestrix {

/// The character that separates a partitioned projection's name from a partition number in its
/// checkpoint keys ("balances#3"). Projection names may not contain it, so no ordinary projection's
/// checkpoint can share a key with a partition's.
inline constexpr char partition_separator = '#';

/// The 64-bit FNV-1a hash of `key`'s bytes (offset basis 14695981039346656037, prime 1099511628211). It
/// depends on nothing but the bytes: the same on every machine, compiler and build, for ever, so that
/// every runner puts an event in the same partition.
[[nodiscard]] constexpr std::uint64_t fnv1a_64(std::string_view key) noexcept {
    std::uint64_t hash = 14695981039346656037ULL;
    for (const char c : key) {
        hash ^= static_cast<std::uint8_t>(c);
        hash *= 1099511628211ULL;
    }
    return hash;
}

/// The partition (0 to `partitions` - 1) of an event whose partition key is `key`: `fnv1a_64(key) %
/// partitions`. Throws `InvalidArgumentError` for zero partitions.
[[nodiscard]] constexpr std::uint32_t partition_of(std::string_view key, std::uint32_t partitions) {
    if (partitions == 0)
        throw InvalidArgumentError("partitions", "a partitioned projection needs at least 1 partition");
    return static_cast<std::uint32_t>(fnv1a_64(key) % partitions);
}

/// The checkpoint key of partition `partition` of projection `name`: "<name>#<partition>".
[[nodiscard]] inline std::string partition_checkpoint_name(std::string_view name, std::uint32_t partition) {
    std::string key(name);
    key += partition_separator;
    key += std::to_string(partition);
    return key;
}

/// A lease a runner holds: the partition, and the fencing token it got when it claimed it (every claim of a
/// partition gets a larger token than the one before).
struct PartitionLease {
    std::uint32_t partition = 0;
    std::uint64_t token = 0;

    friend bool operator==(const PartitionLease&, const PartitionLease&) = default;
};

/// A checkpoint store that also keeps the leases of partitioned projections, in the same database as the
/// checkpoints and the read model (docs/projections.md, "Partitioned projections"). `ttl` is how long a
/// lease or a heartbeat lasts from now, by the store's clock (PostgreSQL: the server's; SQLite and in
/// memory: this machine's).
///
/// - `register_partitions(projection, count)`: records the projection's partition count if it has none,
///   and returns the count it has (the caller refuses a different one).
/// - `heartbeat(projection, runner, ttl)`: marks `runner` live for `ttl`; returns the number of live runners
///   of `projection`, this one included.
/// - `renew_leases(projection, runner, ttl)`: extends every lease `runner` still owns; returns them.
/// - `claimable_partitions(projection)`: the partitions nobody holds (free, or their lease expired).
/// - `claim_lease(projection, partition, runner, ttl)`: takes the lease if it is free or expired, with a new
///   token, and returns the token; nothing if another runner holds it.
/// - `release_lease(projection, partition, runner, token)`: frees it, if `runner` still holds it with `token`.
/// - `remove_runner(projection, runner)`: ends `runner`'s heartbeat.
/// - `check_lease(tx, projection, partition, runner, token)`: in `tx`, makes sure `runner` holds the
///   unexpired lease with `token` until `tx` ends, or rolls `tx` back with `LeaseLostError`. A claim of that
///   partition by another runner waits for `tx`, so a runner commits only while it holds the lease.
template <class C>
concept lease_store = requires(C& store, typename C::transaction_type& tx, std::string_view projection,
                               std::string_view runner, std::uint32_t partition, std::uint64_t token,
                               std::chrono::milliseconds ttl) {
    { store.register_partitions(projection, partition) } -> std::same_as<std::uint32_t>;
    { store.heartbeat(projection, runner, ttl) } -> std::same_as<std::uint32_t>;
    { store.renew_leases(projection, runner, ttl) } -> std::same_as<std::vector<PartitionLease>>;
    { store.claimable_partitions(projection) } -> std::same_as<std::vector<std::uint32_t>>;
    { store.claim_lease(projection, partition, runner, ttl) } -> std::same_as<std::optional<std::uint64_t>>;
    store.release_lease(projection, partition, runner, token);
    store.remove_runner(projection, runner);
    store.check_lease(tx, projection, partition, runner, token);
};

} // namespace orchestrix
