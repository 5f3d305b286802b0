#pragma once

// Checkpoints: how far a projection got, and the events it skipped (dead letters). The `checkpoint_store`
// and `dead_letter_store` concepts, and the in-memory store.

#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/lease.hpp>
#include <orchestrix/projection/options.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

namespace detail {
/// Whether `T` is a `std::optional`: the durable checkpoint stores bind an empty one as NULL.
template <class T>
inline constexpr bool is_optional = false;
template <class T>
inline constexpr bool is_optional<std::optional<T>> = true;
} // namespace detail

/// Where projections keep their checkpoints (the global position of the last event they processed, 0 for
/// none), and the transactions their read models are written in.
///
/// - `load(name)`: the checkpoint of projection `name` (0 if it has none).
/// - `save(name, position)`: sets it, in a transaction of its own.
/// - `transact(body)`: runs `body(transaction_type&)` in one transaction: committed if `body` returns,
///   rolled back if it throws (the exception propagates).
/// - `advance(tx, name, from, to)`: in `tx`, moves the checkpoint from `from` to `to`; if it is not at
///   `from` when `tx` commits, the whole transaction is rolled back with `CheckpointConflictError`.
/// - `reset(tx, name)`: in `tx`, sets the checkpoint to 0 (for a rebuild).
///
/// A projection's handler gets the same `transaction_type&`: whatever it writes through it commits
/// together with the checkpoint or not at all. That is what makes a projection exactly-once. A store whose
/// transactions roll back what the handler wrote declares `static constexpr bool rolls_back_writes = true;`
/// (projections then commit a batch of events per transaction; otherwise one event per transaction).
template <class C>
concept checkpoint_store = requires(C& store, std::string_view name, position_t position,
                                    typename C::transaction_type& tx, void (*body)(typename C::transaction_type&)) {
    { store.load(name) } -> std::same_as<position_t>;
    store.save(name, position);
    store.transact(body);
    store.advance(tx, name, position, position);
    store.reset(tx, name);
};

/// An event a projection skipped after its handler failed (failure policy `skip`), kept so that it can be
/// retried through the handler or discarded later: a row of `orchestrix_dead_letters` in the durable
/// checkpoint stores (docs/operations.md, "Dead letters").
struct DeadLetter {
    /// The event's global position (with the projection's name, the dead letter's key).
    position_t position = 0;
    std::string stream_id{};
    stream_version_t version = 0;
    /// The event id as text; "" when unknown.
    std::string event_id{};
    /// The event's stable type name; "" when unknown.
    std::string type{};
    /// The stored form of the event (its schema version and the JSON text of its payload and metadata), as
    /// the store holds it; nothing when the store cannot hand it out raw (the in-memory store).
    std::optional<std::uint32_t> schema_version{};
    std::optional<std::string> payload{};
    std::optional<std::string> metadata{};
    /// The message of the last failure.
    std::string error{};
    /// Failed attempts to process the event: handler calls, or reads of an event that cannot be decoded.
    std::uint32_t attempts = 0;
    /// When the last attempt failed (microsecond precision).
    std::chrono::system_clock::time_point failed_at{};
    /// A tool asked for a retry: the projection retries it through its handler at its next poll.
    bool retry_requested = false;

    friend bool operator==(const DeadLetter&, const DeadLetter&) = default;
};

/// What `Projection::retry_dead_letters()` came to.
struct DeadLetterRetries {
    /// Handled through the handler and removed.
    std::uint64_t succeeded = 0;
    /// Failed again: kept, with the new error and one more attempt.
    std::uint64_t failed = 0;
};

/// A checkpoint store that also keeps dead letters, each written in the same transaction as the
/// checkpoint move or the read-model writes it goes with:
///
/// - `add_dead_letter(tx, name, letter)`: in `tx`, keeps `letter` for projection `name` (replacing one at
///   the same position).
/// - `dead_letters(name)`: the dead letters of `name`, in position order.
/// - `dead_letter_retries_requested(name)`: the positions of those whose `retry_requested` is set.
/// - `remove_dead_letter(tx, name, position)`: in `tx`, removes one; returns whether it was there.
/// - `remove_dead_letters(tx, name)`: in `tx`, removes all of `name`'s; returns how many there were.
/// - `update_dead_letter(tx, name, position, error, failed_at)`: in `tx`, records one more failed attempt
///   (error, attempts + 1, failed_at) and clears `retry_requested`; returns whether it was there.
/// - `request_dead_letter_retry(name, position)`: sets `retry_requested`, in a transaction of its own;
///   returns whether it was there.
template <class C>
concept dead_letter_store = checkpoint_store<C> &&
    requires(C& store, typename C::transaction_type& tx, std::string_view name, position_t position,
             const DeadLetter& letter, std::string_view error, std::chrono::system_clock::time_point at) {
    store.add_dead_letter(tx, name, letter);
    { store.dead_letters(name) } -> std::same_as<std::vector<DeadLetter>>;
    { store.dead_letter_retries_requested(name) } -> std::same_as<std::vector<position_t>>;
    { store.remove_dead_letter(tx, name, position) } -> std::same_as<bool>;
    { store.remove_dead_letters(tx, name) } -> std::same_as<std::uint64_t>;
    { store.update_dead_letter(tx, name, position, error, at) } -> std::same_as<bool>;
    { store.request_dead_letter_retry(name, position) } -> std::same_as<bool>;
};

/// Checkpoints and dead letters in memory: for tests, for subscriptions that need no durability, and for
/// in-memory read models. Thread-safe.
///
/// A transaction collects checkpoint moves and dead-letter changes and applies them when its body returns
/// (all or none). The read model is the handler's own: in memory nothing can roll it back, so a handler
/// that throws must leave it unchanged (or be idempotent) for the in-memory projection to be exactly-once.
/// Dead letters here have no stored form (`payload`, `metadata` and `schema_version` are empty).
/// A handler can make its in-memory writes part of the transaction with `tx.on_commit(write)`.
///
/// Also a `lease_store` for partitioned projections whose runners are threads of one process: leases
/// expire by `std::chrono::steady_clock`, and `check_lease` is checked at commit, with the moves.
class InMemoryCheckpointStore {
public:
    /// The checkpoint moves of one transaction, applied at commit.
    class Transaction {
    public:
        Transaction() = default;

        /// Runs `write` when the transaction commits (in the order given, on the committing thread, under
        /// the store's lock, so that writes of transactions are applied in their commit order; `write` must
        /// not call the store), and not at all if it rolls back: how an in-memory read model commits with
        /// the checkpoint.
        void on_commit(std::function<void()> write) { on_commit_.push_back(std::move(write)); }

    private:
        friend class InMemoryCheckpointStore;
        struct Move {
            std::string name;
            bool check = true;
            position_t from = 0;
            position_t to = 0;
        };
        struct DeadLetterChange {
            enum class Kind : std::uint8_t { add, remove, remove_all, update } kind = Kind::add;
            std::string name{};
            DeadLetter letter{}; // add: the letter; update: its position, error and failed_at
        };
        struct LeaseCheck {
            std::string projection{};
            std::string runner{};
            std::uint32_t partition = 0;
            std::uint64_t token = 0;
        };
        std::vector<Move> moves_;
        std::vector<DeadLetterChange> dead_letters_;
        std::vector<LeaseCheck> leases_;
        std::vector<std::function<void()>> on_commit_;
    };
    using transaction_type = Transaction;
    /// Nothing rolls a handler's in-memory writes back: projections commit event by event.
    static constexpr bool rolls_back_writes = false;

    InMemoryCheckpointStore() = default;
    InMemoryCheckpointStore(const InMemoryCheckpointStore&) = delete;
    InMemoryCheckpointStore& operator=(const InMemoryCheckpointStore&) = delete;

    /// The checkpoint of `name` (0 if it has none).
    [[nodiscard]] position_t load(std::string_view name) const {
        std::lock_guard lock(mutex_);
        auto found = checkpoints_.find(name);
        return found == checkpoints_.end() ? 0 : found->second;
    }

    /// Sets the checkpoint of `name`.
    void save(std::string_view name, position_t position) {
        std::lock_guard lock(mutex_);
        checkpoints_.insert_or_assign(std::string(name), position);
    }

    /// Runs `body(Transaction&)`; applies its checkpoint moves if it returns. See `checkpoint_store`.
    template <class Body>
    requires std::invocable<Body&, Transaction&>
    void transact(Body&& body) {
        Transaction tx;
        std::invoke(body, tx);
        std::lock_guard lock(mutex_);
        commit(tx);
        for (auto& write : tx.on_commit_) write(); // under the lock: in commit order across threads
    }

    /// Records the partition count of `projection` if it has none; returns the count it has.
    std::uint32_t register_partitions(std::string_view projection, std::uint32_t partitions) {
        std::lock_guard lock(mutex_);
        auto& p = partitioned_[std::string(projection)];
        if (p.leases.empty()) p.leases.resize(partitions);
        return static_cast<std::uint32_t>(p.leases.size());
    }

    /// Marks `runner` live for `ttl`; returns the live runners of `projection`.
    std::uint32_t heartbeat(std::string_view projection, std::string_view runner, std::chrono::milliseconds ttl) {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        auto& runners = partitioned_[std::string(projection)].runners;
        runners.insert_or_assign(std::string(runner), now + ttl);
        std::erase_if(runners, [&](const auto& r) { return r.second <= now; });
        return static_cast<std::uint32_t>(runners.size());
    }

    /// Extends the leases `runner` owns by `ttl` from now; returns them.
    std::vector<PartitionLease> renew_leases(std::string_view projection, std::string_view runner,
                                             std::chrono::milliseconds ttl) {
        std::lock_guard lock(mutex_);
        std::vector<PartitionLease> out;
        auto& leases = partitioned_[std::string(projection)].leases;
        const auto now = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < leases.size(); ++i) {
            if (leases[i].owner != runner || leases[i].owner.empty()) continue;
            leases[i].expires_at = now + ttl;
            out.push_back({static_cast<std::uint32_t>(i), leases[i].token});
        }
        return out;
    }

    /// The partitions of `projection` nobody holds: free, or their lease expired.
    std::vector<std::uint32_t> claimable_partitions(std::string_view projection) {
        std::lock_guard lock(mutex_);
        std::vector<std::uint32_t> out;
        const auto& leases = partitioned_[std::string(projection)].leases;
        const auto now = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < leases.size(); ++i)
            if (leases[i].claimable(now)) out.push_back(static_cast<std::uint32_t>(i));
        return out;
    }

    /// Takes the lease of `partition` for `runner` if nobody holds it; returns its new token.
    std::optional<std::uint64_t> claim_lease(std::string_view projection, std::uint32_t partition,
                                             std::string_view runner, std::chrono::milliseconds ttl) {
        std::lock_guard lock(mutex_);
        auto& leases = partitioned_[std::string(projection)].leases;
        const auto now = std::chrono::steady_clock::now();
        if (partition >= leases.size() || !leases[partition].claimable(now)) return std::nullopt;
        auto& lease = leases[partition];
        lease.owner = std::string(runner);
        lease.expires_at = now + ttl;
        return ++lease.token;
    }

    /// Frees the lease of `partition` if `runner` holds it with `token`.
    void release_lease(std::string_view projection, std::uint32_t partition, std::string_view runner,
                       std::uint64_t token) {
        std::lock_guard lock(mutex_);
        auto& leases = partitioned_[std::string(projection)].leases;
        if (partition >= leases.size() || leases[partition].owner != runner || leases[partition].token != token) return;
        leases[partition].owner.clear();
    }

    /// Ends the heartbeat of `runner`.
    void remove_runner(std::string_view projection, std::string_view runner) {
        std::lock_guard lock(mutex_);
        auto& runners = partitioned_[std::string(projection)].runners;
        if (auto found = runners.find(runner); found != runners.end()) runners.erase(found);
    }

    /// In `tx`: at commit, `runner` must hold the unexpired lease of `partition` with `token`, or nothing
    /// of `tx` is applied and `LeaseLostError` is thrown.
    void check_lease(Transaction& tx, std::string_view projection, std::uint32_t partition, std::string_view runner,
                     std::uint64_t token) {
        tx.leases_.push_back({std::string(projection), std::string(runner), partition, token});
    }

private:
    struct Lease {
        std::string owner{}; // "" = free
        std::uint64_t token = 0;
        std::chrono::steady_clock::time_point expires_at{};
        [[nodiscard]] bool claimable(std::chrono::steady_clock::time_point now) const {
            return owner.empty() || expires_at <= now;
        }
    };
    struct Partitioned {
        std::vector<Lease> leases{};
        std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> runners{};
    };

    // Called with mutex_ held: checks the leases and moves of `tx`, then applies it (all or none).
    void commit(Transaction& tx) {
        const auto now = std::chrono::steady_clock::now();
        for (const auto& l : tx.leases_) {
            auto found = partitioned_.find(l.projection);
            const bool held = found != partitioned_.end() && l.partition < found->second.leases.size() &&
                              found->second.leases[l.partition].owner == l.runner &&
                              found->second.leases[l.partition].token == l.token &&
                              found->second.leases[l.partition].expires_at > now;
            if (!held) throw LeaseLostError(l.projection, l.partition, l.runner, l.token);
        }
        for (const auto& m : tx.moves_) { // check every move first: all or none
            if (!m.check) continue;
            auto found = checkpoints_.find(std::string_view(m.name));
            const position_t actual = found == checkpoints_.end() ? 0 : found->second;
            if (actual != m.from) throw CheckpointConflictError(m.name, m.from, actual);
        }
        for (const auto& m : tx.moves_) checkpoints_.insert_or_assign(m.name, m.to);
        for (auto& change : tx.dead_letters_) apply(change);
    }

public:
    /// In `tx`, moves the checkpoint of `name` from `from` to `to` (checked at commit).
    void advance(Transaction& tx, std::string_view name, position_t from, position_t to) {
        tx.moves_.push_back({std::string(name), true, from, to});
    }

    /// In `tx`, sets the checkpoint of `name` to 0.
    void reset(Transaction& tx, std::string_view name) { tx.moves_.push_back({std::string(name), false, 0, 0}); }

    /// In `tx`, keeps `letter` as a dead letter of `name` (replacing one at the same position).
    void add_dead_letter(Transaction& tx, std::string_view name, const DeadLetter& letter) {
        tx.dead_letters_.push_back({Change::Kind::add, std::string(name), letter});
    }

    /// The dead letters of `name`, in position order.
    [[nodiscard]] std::vector<DeadLetter> dead_letters(std::string_view name) const {
        std::lock_guard lock(mutex_);
        std::vector<DeadLetter> out;
        auto found = dead_letters_.find(name);
        if (found == dead_letters_.end()) return out;
        for (const auto& [position, letter] : found->second) out.push_back(letter);
        return out;
    }

    /// The positions of the dead letters of `name` whose retry was requested, in order.
    [[nodiscard]] std::vector<position_t> dead_letter_retries_requested(std::string_view name) const {
        std::lock_guard lock(mutex_);
        std::vector<position_t> out;
        auto found = dead_letters_.find(name);
        if (found == dead_letters_.end()) return out;
        for (const auto& [position, letter] : found->second) {
            if (letter.retry_requested) out.push_back(position);
        }
        return out;
    }

    /// In `tx`, removes the dead letter of `name` at `position`; returns whether there is one now.
    bool remove_dead_letter(Transaction& tx, std::string_view name, position_t position) {
        DeadLetter key;
        key.position = position;
        tx.dead_letters_.push_back({Change::Kind::remove, std::string(name), std::move(key)});
        return contains(name, position);
    }

    /// In `tx`, removes every dead letter of `name`; returns how many there are now.
    std::uint64_t remove_dead_letters(Transaction& tx, std::string_view name) {
        tx.dead_letters_.push_back({Change::Kind::remove_all, std::string(name), {}});
        std::lock_guard lock(mutex_);
        auto found = dead_letters_.find(name);
        return found == dead_letters_.end() ? 0 : found->second.size();
    }

    /// In `tx`, records one more failed attempt of the dead letter of `name` at `position` (`error`,
    /// `failed_at`, attempts + 1) and clears its `retry_requested`; returns whether there is one now.
    bool update_dead_letter(Transaction& tx, std::string_view name, position_t position, std::string_view error,
                            std::chrono::system_clock::time_point failed_at) {
        DeadLetter change;
        change.position = position;
        change.error = std::string(error);
        change.failed_at = failed_at;
        tx.dead_letters_.push_back({Change::Kind::update, std::string(name), std::move(change)});
        return contains(name, position);
    }

    /// Asks for a retry of the dead letter of `name` at `position` (at the projection's next poll);
    /// returns whether there is one.
    bool request_dead_letter_retry(std::string_view name, position_t position) {
        std::lock_guard lock(mutex_);
        auto found = dead_letters_.find(name);
        if (found == dead_letters_.end()) return false;
        auto letter = found->second.find(position);
        if (letter == found->second.end()) return false;
        letter->second.retry_requested = true;
        return true;
    }

private:
    using Change = Transaction::DeadLetterChange;

    [[nodiscard]] bool contains(std::string_view name, position_t position) const {
        std::lock_guard lock(mutex_);
        auto found = dead_letters_.find(name);
        return found != dead_letters_.end() && found->second.count(position) != 0;
    }

    // Called with mutex_ held, at commit.
    void apply(Change& change) {
        auto& letters = dead_letters_[change.name];
        const position_t position = change.letter.position;
        switch (change.kind) {
        case Change::Kind::add:
            letters.insert_or_assign(position, std::move(change.letter));
            break;
        case Change::Kind::remove:
            letters.erase(position);
            break;
        case Change::Kind::remove_all:
            letters.clear();
            break;
        case Change::Kind::update: {
            auto found = letters.find(position);
            if (found == letters.end()) break;
            found->second.error = std::move(change.letter.error);
            found->second.failed_at = change.letter.failed_at;
            ++found->second.attempts;
            found->second.retry_requested = false;
            break;
        }
        }
        if (letters.empty()) dead_letters_.erase(change.name);
    }

    mutable std::mutex mutex_;
    std::map<std::string, position_t, std::less<>> checkpoints_;
    std::map<std::string, std::map<position_t, DeadLetter>, std::less<>> dead_letters_;
    std::map<std::string, Partitioned, std::less<>> partitioned_;
};

} // namespace orchestrix
