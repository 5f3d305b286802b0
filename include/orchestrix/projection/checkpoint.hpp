#pragma once

// Checkpoints: how far a projection got. The `checkpoint_store` concept, and the in-memory store.

#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/options.hpp>

#include <concepts>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

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

/// Checkpoints in memory: for tests, for subscriptions that need no durability, and for in-memory read
/// models. Thread-safe.
///
/// A transaction collects checkpoint moves and applies them when its body returns (all or none). The read
/// model is the handler's own: in memory nothing can roll it back, so a handler that throws must leave it
/// unchanged (or be idempotent) for the in-memory projection to be exactly-once.
class InMemoryCheckpointStore {
public:
    /// The checkpoint moves of one transaction, applied at commit.
    class Transaction {
    public:
        Transaction() = default;

    private:
        friend class InMemoryCheckpointStore;
        struct Move {
            std::string name;
            bool check = true;
            position_t from = 0;
            position_t to = 0;
        };
        std::vector<Move> moves_;
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
        for (const auto& m : tx.moves_) { // check every move first: all or none
            if (!m.check) continue;
            auto found = checkpoints_.find(std::string_view(m.name));
            const position_t actual = found == checkpoints_.end() ? 0 : found->second;
            if (actual != m.from) throw CheckpointConflictError(m.name, m.from, actual);
        }
        for (const auto& m : tx.moves_) checkpoints_.insert_or_assign(m.name, m.to);
    }

    /// In `tx`, moves the checkpoint of `name` from `from` to `to` (checked at commit).
    void advance(Transaction& tx, std::string_view name, position_t from, position_t to) {
        tx.moves_.push_back({std::string(name), true, from, to});
    }

    /// In `tx`, sets the checkpoint of `name` to 0.
    void reset(Transaction& tx, std::string_view name) { tx.moves_.push_back({std::string(name), false, 0, 0}); }

private:
    mutable std::mutex mutex_;
    std::map<std::string, position_t, std::less<>> checkpoints_;
};

} // namespace orchestrix
