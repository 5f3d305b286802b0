#pragma once

// Partitioned projections: one projection split into N partitions by an event key, processed by several
// runners (threads or processes) that share the partitions through leases kept in the checkpoint store.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/lease.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/projection.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

/// Options of a `PartitionedProjection` over events `Events` (docs/projections.md, "Partitioned
/// projections"). Bad values make the constructor throw `InvalidArgumentError` naming the option.
template <class Events>
struct PartitionOptions {
    /// What every runner shares with a plain projection: the filter, the failure policy, the batch size
    /// (events read at a time; at least 1) and the poll interval. The observer is not used.
    ProjectionOptions projection{};
    /// The number of partitions (1 to 4096). Fixed when the projection is first run: a runner started
    /// with another count is refused with `PartitionCountMismatchError`.
    std::uint32_t partitions = 8;
    /// This runner's id in the lease tables; "" = a new UUID for each `PartitionedProjection` object.
    std::string runner_id{};
    /// How long a lease and a heartbeat last unless renewed: a runner that dies loses its partitions to
    /// the live ones this long after its last renewal (positive).
    std::chrono::milliseconds lease_ttl{10'000};
    /// How often a runner renews its leases and heartbeat, and rebalances; 0 = `lease_ttl / 3` (less
    /// than `lease_ttl`).
    std::chrono::milliseconds renew_interval{0};
    /// How often a runner under its fair share looks for free or expired partitions to claim; 0 =
    /// `renew_interval`.
    std::chrono::milliseconds claim_interval{0};
    /// The partition key of an event; empty = its stream id. The partition is `fnv1a_64(key) % partitions`.
    std::function<std::string(const RecordedEvent<Events>&)> partition_by{};
};

/// A projection split into `options.partitions` partitions by a key of each event (by default its stream
/// id), run by any number of runners (this object is one) that share the partitions through leases kept
/// in the checkpoint store's database. Each partition has its own checkpoint ("<name>#<partition>"), and
/// each batch a runner commits for a partition is one transaction that checks it still holds the
/// partition's lease, runs the handler's writes and moves that partition's checkpoint: a runner whose
/// lease expired (a paused process waking up late) can never commit, and every event's effect is
/// committed exactly once, in the global order within its partition.
///
///     orchestrix::PartitionOptions<BankEvent> options;
///     options.partitions = 8;
///     orchestrix::PartitionedProjection balances("balances", store, read_model,
///         [](orchestrix::PostgresTransaction& tx, const orchestrix::RecordedEvent<BankEvent>& e) { ... },
///         options);
///     balances.start(); // in every runner process
///
/// - The handler is `handler(transaction_type&, const RecordedEvent<Events>&, const PartitionLease&)`,
///   `handler(transaction_type&, const RecordedEvent<Events>&)` or `handler(const RecordedEvent<Events>&)`.
/// - Every `renew_interval` a runner renews its leases and its heartbeat. Its fair share is
///   ceil(partitions / live runners): under it, it claims free or expired partitions; over it, it
///   releases the extra ones between batches. `stop()` (and the destructor) release them at once.
/// - The failure policy is the plain projection's: retry, skip (kept in `skipped()`, and as a dead letter
///   of the partition's checkpoint key by a `dead_letter_store`) or stop (`failure()`; the runner releases
///   its partitions and `poll_once()` and `wait_for()` throw `ProjectionStoppedError`).
/// - Driven by its own thread (`start()` / `stop()`) or by the caller (`poll_once()`); thread-safe accessors.
template <class Store, class Checkpoints>
class PartitionedProjection {
    static_assert(event_store<Store>, "orchestrix::PartitionedProjection<Store, Checkpoints>: Store must be an event "
                                      "store (orchestrix::event_store), e.g. PostgresEventStore<Events>");
    static_assert(checkpoint_store<Checkpoints> && lease_store<Checkpoints>,
                  "orchestrix::PartitionedProjection<Store, Checkpoints>: the checkpoint store must keep leases "
                  "(orchestrix::lease_store): use PostgresCheckpointStore (runner processes on any machines), "
                  "SqliteCheckpointStore (processes on one machine) or InMemoryCheckpointStore (threads)");

public:
    using event_type = typename Store::event_type;
    using recorded_type = RecordedEvent<event_type>;
    using transaction_type = typename Checkpoints::transaction_type;
    using options_type = PartitionOptions<event_type>;

    /// Runner `options.runner_id` of the partitioned projection `name` over `store`, keeping checkpoints and
    /// leases in `checkpoints`. Records the partition count (or checks it: `PartitionCountMismatchError`);
    /// claims nothing yet.
    template <class Handler>
    PartitionedProjection(std::string name, const Store& store, Checkpoints& checkpoints, Handler handler,
                          options_type options = {})
        : name_(std::move(name)), store_(&store), checkpoints_(&checkpoints), options_(std::move(options)),
          handler_(wrap(std::move(handler))) {
        validate();
        const std::uint32_t stored = checkpoints_->register_partitions(name_, options_.partitions);
        if (stored != options_.partitions) throw PartitionCountMismatchError(name_, stored, options_.partitions);
    }

    PartitionedProjection(const PartitionedProjection&) = delete;
    PartitionedProjection& operator=(const PartitionedProjection&) = delete;
    ~PartitionedProjection() { stop(); }

    /// Renews, rebalances and claims when due, then reads one batch from the lowest checkpoint of the
    /// partitions this runner holds and commits it partition by partition. Returns the number of events
    /// read (0 when caught up or holding nothing). Throws `ProjectionStoppedError` once stopped on a failure.
    std::uint64_t poll_once() { return step({}); }

    /// Calls `poll_once()` until it reads nothing. Returns the number of events read.
    std::uint64_t run_until_caught_up() {
        std::uint64_t total = 0;
        while (const std::uint64_t n = poll_once()) total += n;
        return total;
    }

    /// Starts the runner's thread (if it is not running); clears a failure that stopped it.
    void start() {
        std::lock_guard control(control_mutex_);
        if (thread_.joinable()) {
            if (running()) return;
            thread_.join();
        }
        {
            std::lock_guard lock(state_mutex_);
            failure_.reset();
            finished_ = false;
            started_ = true;
            next_renewal_ = {};
        }
        thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
    }

    /// Stops the runner's thread and waits for it (the batch in progress commits or rolls back), then
    /// releases this runner's leases and heartbeat at once, so that the live runners take its partitions.
    void stop() {
        std::lock_guard control(control_mutex_);
        if (thread_.joinable()) {
            thread_.request_stop();
            thread_.join();
        }
        std::lock_guard run_lock(run_mutex_);
        release_all();
        std::lock_guard lock(state_mutex_);
        started_ = false;
    }

    /// Whether the runner's thread is running.
    [[nodiscard]] bool running() const {
        std::lock_guard lock(state_mutex_);
        return started_ && !finished_;
    }

    /// Waits until every partition (whichever runner holds it) has processed every event up to global
    /// position `position`, as the checkpoint store records it; at most `timeout`. Returns whether they
    /// have. Without a running thread it runs `poll_once()` itself. Throws `ProjectionStoppedError` if this
    /// runner stops on a failure before.
    [[nodiscard]] bool wait_for(position_t position, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto f = failure()) throw ProjectionStoppedError(name_, std::move(*f));
            if (all_at(position)) return true;
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if (running() || poll_once() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }

    /// The leases this runner holds, by partition.
    [[nodiscard]] std::vector<PartitionLease> held() const {
        std::lock_guard lock(state_mutex_);
        std::vector<PartitionLease> out;
        for (const auto& [partition, h] : held_) out.push_back({partition, h.token});
        return out;
    }

    /// The checkpoint of every partition (index = partition), as the checkpoint store records it.
    [[nodiscard]] std::vector<position_t> checkpoints() const {
        std::vector<position_t> out;
        for (std::uint32_t p = 0; p < options_.partitions; ++p)
            out.push_back(checkpoints_->load(partition_checkpoint_name(name_, p)));
        return out;
    }

    /// The partition of event `e` (by `options.partition_by`, or its stream id).
    [[nodiscard]] std::uint32_t partition_of(const recorded_type& e) const {
        if (options_.partition_by) return orchestrix::partition_of(options_.partition_by(e), options_.partitions);
        return orchestrix::partition_of(e.stream_id, options_.partitions);
    }

    /// How many times this runner found, when it committed, that it had lost a lease.
    [[nodiscard]] std::uint64_t leases_lost() const {
        std::lock_guard lock(state_mutex_);
        return leases_lost_;
    }

    /// The failure that stopped this runner, if any.
    [[nodiscard]] std::optional<EventFailure> failure() const {
        std::lock_guard lock(state_mutex_);
        return failure_;
    }

    /// Every event this runner skipped after a failure (failure policy `skip`), in order.
    [[nodiscard]] std::vector<EventFailure> skipped() const {
        std::lock_guard lock(state_mutex_);
        return skipped_;
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& runner_id() const noexcept { return options_.runner_id; }
    [[nodiscard]] const options_type& options() const noexcept { return options_; }

private:
    using handler_type = std::function<void(transaction_type&, const recorded_type&, const PartitionLease&)>;
    static constexpr std::uint32_t max_partitions = 4096;

    struct Held {
        std::uint64_t token = 0;
        position_t checkpoint = 0;
    };

    template <class Handler>
    static handler_type wrap(Handler handler) {
        if constexpr (std::is_invocable_v<Handler&, transaction_type&, const recorded_type&, const PartitionLease&>) {
            return handler_type(std::move(handler));
        } else if constexpr (std::is_invocable_v<Handler&, transaction_type&, const recorded_type&>) {
            return [h = std::move(handler)](transaction_type& tx, const recorded_type& e,
                                            const PartitionLease&) mutable { std::invoke(h, tx, e); };
        } else {
            static_assert(std::is_invocable_v<Handler&, const recorded_type&>,
                          "orchestrix::PartitionedProjection: the handler must be callable as "
                          "handler(Checkpoints::transaction_type&, const RecordedEvent<Events>&, const "
                          "PartitionLease&), handler(Checkpoints::transaction_type&, const RecordedEvent<Events>&) "
                          "or handler(const RecordedEvent<Events>&)");
            return [h = std::move(handler)](transaction_type&, const recorded_type& e, const PartitionLease&) mutable {
                std::invoke(h, e);
            };
        }
    }

    void validate() {
        if (name_.empty()) throw InvalidArgumentError("name", "a partitioned projection needs a non-empty name");
        if (name_.find(partition_separator) != std::string::npos) {
            throw InvalidArgumentError("name", "partitioned projection name '" + name_ + "' contains '" +
                                                   std::string(1, partition_separator) +
                                                   "', which separates the name from the partition in checkpoint keys");
        }
        if (options_.partitions == 0 || options_.partitions > max_partitions) {
            throw InvalidArgumentError("partitions", "PartitionOptions::partitions must be from 1 to " +
                                                         std::to_string(max_partitions) + ", not " +
                                                         std::to_string(options_.partitions));
        }
        if (options_.lease_ttl.count() <= 0) {
            throw InvalidArgumentError("lease_ttl", "PartitionOptions::lease_ttl must be positive, not " +
                                                        std::to_string(options_.lease_ttl.count()) + " ms");
        }
        if (options_.renew_interval.count() == 0) options_.renew_interval = options_.lease_ttl / 3;
        if (options_.renew_interval.count() <= 0 || options_.renew_interval >= options_.lease_ttl) {
            throw InvalidArgumentError("renew_interval",
                                       "PartitionOptions::renew_interval must be positive and less than lease_ttl (" +
                                           std::to_string(options_.lease_ttl.count()) + " ms), not " +
                                           std::to_string(options_.renew_interval.count()) + " ms");
        }
        if (options_.claim_interval.count() == 0) options_.claim_interval = options_.renew_interval;
        if (options_.claim_interval.count() < 0) {
            throw InvalidArgumentError("claim_interval", "PartitionOptions::claim_interval must not be negative, not " +
                                                             std::to_string(options_.claim_interval.count()) + " ms");
        }
        if (options_.projection.batch_size == 0)
            throw InvalidArgumentError("batch_size", "ProjectionOptions::batch_size must be at least 1, not 0");
        if (options_.projection.poll_interval.count() <= 0) {
            throw InvalidArgumentError("poll_interval", "ProjectionOptions::poll_interval must be positive, not " +
                                                            std::to_string(options_.projection.poll_interval.count()) +
                                                            " ms");
        }
        if (options_.runner_id.empty()) options_.runner_id = Uuid::generate().to_string();
    }

    void run(std::stop_token stop) {
        try {
            while (!stop.stop_requested()) {
                if (step(stop) != 0) continue;
                std::chrono::steady_clock::duration wait = options_.projection.poll_interval;
                {
                    std::lock_guard lock(state_mutex_);
                    const auto now = std::chrono::steady_clock::now();
                    wait = std::min({wait, next_renewal_ - now, next_claim_ - now});
                }
                pause(stop, std::chrono::duration_cast<std::chrono::milliseconds>(wait));
            }
        } catch (const ProjectionStoppedError&) { // recorded in failure_; the thread ends
        }
        {
            std::lock_guard run_lock(run_mutex_);
            release_all();
        }
        std::lock_guard lock(state_mutex_);
        finished_ = true;
    }

    void pause(const std::stop_token& stop, std::chrono::milliseconds duration) {
        detail::pause_for(pause_mutex_, pause_, stop, duration);
    }

    [[nodiscard]] bool all_at(position_t position) const {
        for (std::uint32_t p = 0; p < options_.partitions; ++p)
            if (checkpoints_->load(partition_checkpoint_name(name_, p)) < position) return false;
        return true;
    }

    std::uint64_t step(std::stop_token stop) {
        std::lock_guard run_lock(run_mutex_);
        {
            std::lock_guard lock(state_mutex_);
            if (failure_) throw ProjectionStoppedError(name_, *failure_);
        }
        if (!maintain(stop)) return 0;
        (void)take_claimed();
        std::map<std::uint32_t, Held> held;
        {
            std::lock_guard lock(state_mutex_);
            held = held_;
        }
        if (held.empty()) return 0;
        position_t from = std::numeric_limits<position_t>::max();
        for (const auto& [partition, h] : held) from = std::min(from, h.checkpoint);
        std::vector<recorded_type> events;
        try {
            events = store_->read_all(from + 1, options_.projection.batch_size);
        } catch (...) {
            store_failed(stop, from + 1, std::current_exception());
            return 0;
        }
        if (events.empty()) return 0;
        const position_t end = events.back().position;
        std::map<std::uint32_t, std::vector<const recorded_type*>> mine;
        for (const auto& e : events) {
            std::uint32_t p = 0;
            try {
                p = partition_of(e);
            } catch (...) { // the partition key function threw: this event cannot be placed
                stop_with(detail::failure_of(e, std::current_exception(), 1));
            }
            auto found = held.find(p);
            if (found == held.end() || e.position <= found->second.checkpoint) continue;
            if (!options_.projection.filter.matches(e.type(), e.stream_id)) continue;
            mine[p].push_back(&e);
        }
        for (const auto& [partition, h] : held) {
            if (h.checkpoint >= end) continue;
            commit_partition(stop, partition, mine[partition], end);
            if (stop.stop_requested()) break;
            // Renewals and claims come due during a long batch too: a partition claimed now is read in
            // the next batch, from its own checkpoint, instead of after the rest of this one.
            if (maintain(stop) && take_claimed()) break;
        }
        std::lock_guard lock(state_mutex_);
        store_failures_ = 0;
        return events.size();
    }

    // Heartbeat, renewal and rebalancing when due; claims when under the fair share and a claim is due.
    // Returns false if the checkpoint store failed (handled as a store failure).
    bool maintain(std::stop_token stop) {
        const auto now = std::chrono::steady_clock::now();
        bool renew = false;
        bool claim = false;
        {
            std::lock_guard lock(state_mutex_);
            renew = now >= next_renewal_;
            claim = renew || now >= next_claim_;
        }
        if (!renew && !claim) return true;
        try {
            if (renew) renew_and_rebalance();
            if (claim) claim_free(!renew);
            return true;
        } catch (const ProjectionStoppedError&) {
            throw;
        } catch (...) {
            store_failed(stop, lowest_checkpoint() + 1, std::current_exception());
            return false;
        }
    }

    void renew_and_rebalance() {
        const auto ttl = options_.lease_ttl;
        const std::uint32_t live = std::max<std::uint32_t>(checkpoints_->heartbeat(name_, runner_id(), ttl), 1);
        const std::vector<PartitionLease> renewed = checkpoints_->renew_leases(name_, runner_id(), ttl);
        const std::size_t share = (options_.partitions + live - 1) / live;
        std::vector<PartitionLease> extra;
        {
            std::lock_guard lock(state_mutex_);
            next_renewal_ = std::chrono::steady_clock::now() + options_.renew_interval;
            share_ = share;
            std::map<std::uint32_t, Held> kept;
            for (const PartitionLease& lease : renewed) {
                auto found = held_.find(lease.partition);
                if (found != held_.end() && found->second.token == lease.token) {
                    kept.emplace(lease.partition, found->second);
                } else {
                    kept.emplace(lease.partition, Held{lease.token, 0}); // owned under this id before: adopted
                    adopted_.push_back(lease.partition);
                }
            }
            held_ = std::move(kept);
            while (held_.size() > share) {
                auto last = std::prev(held_.end());
                extra.push_back({last->first, last->second.token});
                held_.erase(last);
            }
        }
        for (const PartitionLease& lease : extra)
            checkpoints_->release_lease(name_, lease.partition, runner_id(), lease.token);
        load_adopted();
    }

    // Claims free or expired partitions up to the fair share. `recount`: the live runners are counted
    // again first if any partition is free (a dead runner's heartbeat expires before its leases do, so
    // its partitions move within one claim interval of their expiry, not one renewal interval).
    void claim_free(bool recount) {
        {
            std::lock_guard lock(state_mutex_);
            next_claim_ = std::chrono::steady_clock::now() + options_.claim_interval;
        }
        const std::vector<std::uint32_t> claimable = checkpoints_->claimable_partitions(name_);
        if (claimable.empty()) return;
        std::size_t share = 0;
        if (recount) {
            const std::uint32_t live =
                std::max<std::uint32_t>(checkpoints_->heartbeat(name_, runner_id(), options_.lease_ttl), 1);
            share = (options_.partitions + live - 1) / live;
            std::lock_guard lock(state_mutex_);
            share_ = share;
        } else {
            std::lock_guard lock(state_mutex_);
            share = share_;
        }
        for (const std::uint32_t partition : claimable) {
            {
                std::lock_guard lock(state_mutex_);
                if (held_.size() >= share) break;
                if (held_.count(partition) != 0) continue;
            }
            const auto token = checkpoints_->claim_lease(name_, partition, runner_id(), options_.lease_ttl);
            if (!token) continue;
            // After the claim: no earlier holder can commit any more, so this checkpoint is final.
            const position_t checkpoint = checkpoints_->load(partition_checkpoint_name(name_, partition));
            std::lock_guard lock(state_mutex_);
            held_[partition] = Held{*token, checkpoint};
            claimed_ = true;
        }
    }

    // Whether a partition was claimed since the last call.
    bool take_claimed() {
        std::lock_guard lock(state_mutex_);
        return std::exchange(claimed_, false);
    }

    void load_adopted() {
        std::vector<std::uint32_t> adopted;
        {
            std::lock_guard lock(state_mutex_);
            adopted.swap(adopted_);
        }
        for (const std::uint32_t partition : adopted) {
            const position_t checkpoint = checkpoints_->load(partition_checkpoint_name(name_, partition));
            std::lock_guard lock(state_mutex_);
            if (auto found = held_.find(partition); found != held_.end()) found->second.checkpoint = checkpoint;
        }
    }

    [[nodiscard]] position_t lowest_checkpoint() const {
        std::lock_guard lock(state_mutex_);
        position_t lowest = 0;
        bool first = true;
        for (const auto& [partition, h] : held_) {
            lowest = first ? h.checkpoint : std::min(lowest, h.checkpoint);
            first = false;
        }
        return lowest;
    }

    // Releases every lease and the heartbeat (the caller holds run_mutex_); a failure to reach the store
    // leaves them to expire.
    void release_all() noexcept {
        std::map<std::uint32_t, Held> held;
        {
            std::lock_guard lock(state_mutex_);
            held.swap(held_);
            next_renewal_ = {};
            next_claim_ = {};
        }
        try {
            for (const auto& [partition, h] : held) checkpoints_->release_lease(name_, partition, runner_id(), h.token);
            checkpoints_->remove_runner(name_, runner_id());
        } catch (...) { // NOLINT(bugprone-empty-catch): the leases expire after lease_ttl instead
        }
    }

    // The commit of one transaction for `partition` failed because the lease is gone: drop the partition.
    void lost(std::uint32_t partition) {
        std::lock_guard lock(state_mutex_);
        held_.erase(partition);
        ++leases_lost_;
    }

    // Another writer moved the partition's checkpoint (not a runner of this projection: they hold leases).
    void reload(std::uint32_t partition) {
        const position_t stored = checkpoints_->load(partition_checkpoint_name(name_, partition));
        std::lock_guard lock(state_mutex_);
        if (auto found = held_.find(partition); found != held_.end()) found->second.checkpoint = stored;
    }

    // The lease and checkpoint this runner has for `partition`, if it still holds it.
    [[nodiscard]] std::optional<Held> holding(std::uint32_t partition) const {
        std::lock_guard lock(state_mutex_);
        auto found = held_.find(partition);
        if (found == held_.end()) return std::nullopt;
        return found->second;
    }

    void advanced(std::uint32_t partition, position_t to) {
        std::lock_guard lock(state_mutex_);
        if (auto found = held_.find(partition); found != held_.end()) found->second.checkpoint = to;
    }

    enum class Outcome : std::uint8_t { committed, gone, failed };

    // One transaction for `partition`: checks the lease, runs `body(tx, lease)` (the handler's writes),
    // moves the checkpoint to `to`. `failed` leaves the exception in `error`.
    template <class Body>
    Outcome commit(std::uint32_t partition, position_t to, Body&& body, std::exception_ptr& error) {
        const std::optional<Held> h = holding(partition);
        if (!h) return Outcome::gone;
        const PartitionLease lease{partition, h->token};
        const std::string key = partition_checkpoint_name(name_, partition);
        try {
            checkpoints_->transact([&](transaction_type& tx) {
                body(tx, lease);
                checkpoints_->check_lease(tx, name_, partition, runner_id(), lease.token);
                checkpoints_->advance(tx, key, h->checkpoint, to);
            });
        } catch (const LeaseLostError&) {
            lost(partition);
            return Outcome::gone;
        } catch (const CheckpointConflictError&) {
            reload(partition);
            return Outcome::gone;
        } catch (...) {
            error = std::current_exception();
            return Outcome::failed;
        }
        advanced(partition, to);
        return Outcome::committed;
    }

    // Commits `events` (of `partition`, after its checkpoint) and moves its checkpoint to `end`: one
    // transaction on a store that rolls back the handler's writes, else one per event; a failed batch is
    // replayed event by event under the failure policy.
    void commit_partition(std::stop_token stop, std::uint32_t partition,
                          const std::vector<const recorded_type*>& events, position_t end) {
        std::exception_ptr error;
        if constexpr (detail::transactional_checkpoints<Checkpoints>) {
            bool handler_failed = false;
            const Outcome outcome = commit(
                partition, end,
                [&](transaction_type& tx, const PartitionLease& lease) {
                    for (const recorded_type* e : events) {
                        try {
                            handler_(tx, *e, lease);
                        } catch (...) {
                            handler_failed = true;
                            throw;
                        }
                    }
                },
                error);
            if (outcome != Outcome::failed) return;
            if (!handler_failed) {
                store_failed(stop, lowest_checkpoint() + 1, error);
                return;
            }
        }
        for (const recorded_type* e : events)
            if (!process_one(stop, partition, *e)) return;
        const Outcome outcome = commit(
            partition, end, [](transaction_type&, const PartitionLease&) {}, error);
        if (outcome == Outcome::failed) store_failed(stop, lowest_checkpoint() + 1, error);
    }

    // Processes `e` in transactions of its own under the failure policy. Returns false if the partition is
    // gone or the runner was stopped.
    bool process_one(std::stop_token stop, std::uint32_t partition, const recorded_type& e) {
        const FailurePolicy& policy = options_.projection.on_failure;
        std::exception_ptr error;
        std::uint32_t attempt = 1;
        for (; attempt <= policy.attempts(); ++attempt) {
            if (attempt > 1) {
                report(detail::failure_of(e, error, attempt - 1), FailureAction::retry);
                pause(stop, policy.backoff_before(attempt));
                if (stop.stop_requested()) return false;
            }
            const Outcome outcome = commit(
                partition, e.position,
                [&](transaction_type& tx, const PartitionLease& lease) { handler_(tx, e, lease); }, error);
            if (outcome == Outcome::committed) return true;
            if (outcome == Outcome::gone) return false;
        }
        EventFailure failure = detail::failure_of(e, error, attempt - 1);
        if (policy.final_action() != FailureAction::skip) stop_with(std::move(failure));
        [[maybe_unused]] const DeadLetter letter = detail::dead_letter_of<Checkpoints>(*store_, failure);
        const std::string key = partition_checkpoint_name(name_, partition);
        const Outcome outcome = commit(
            partition, e.position,
            [&](transaction_type& tx, const PartitionLease&) {
                if constexpr (dead_letter_store<Checkpoints>) checkpoints_->add_dead_letter(tx, key, letter);
            },
            error);
        if (outcome == Outcome::gone) return false;
        if (outcome == Outcome::failed) {
            failure.error = detail::exception_message(error);
            failure.exception = error;
            stop_with(std::move(failure));
        }
        report(failure, FailureAction::skip);
        std::lock_guard lock(state_mutex_);
        skipped_.push_back(std::move(failure));
        return true;
    }

    [[noreturn]] void stop_with(EventFailure failure) {
        report(failure, FailureAction::stop);
        release_all();
        {
            std::lock_guard lock(state_mutex_);
            failure_ = failure;
        }
        throw ProjectionStoppedError(name_, std::move(failure));
    }

    void report(const EventFailure& failure, FailureAction action) const {
        detail::call_on_error(options_.projection, failure, action);
    }

    // The store or the checkpoint store failed (not the handler): retried after the policy's backoff; after
    // `max_attempts` failures in a row the runner stops, naming the first position it could not process.
    void store_failed(std::stop_token stop, position_t position, std::exception_ptr error) {
        std::uint32_t failures = 0;
        {
            std::lock_guard lock(state_mutex_);
            failures = ++store_failures_;
            next_renewal_ = {}; // renew (or learn what was lost) before the next attempt
        }
        EventFailure failure{position, {}, 0, {}, {}, detail::exception_message(error), failures, error, {}};
        const std::uint32_t allowed = std::max<std::uint32_t>(options_.projection.on_failure.max_attempts, 1);
        if (failures >= allowed) {
            {
                std::lock_guard lock(state_mutex_);
                store_failures_ = 0;
            }
            stop_with(std::move(failure));
        }
        report(failure, FailureAction::retry);
        const FailurePolicy backoff = FailurePolicy::retry(allowed, options_.projection.on_failure.initial_backoff);
        pause(stop, backoff.backoff_before(failures + 1));
    }

    std::string name_;
    const Store* store_;
    Checkpoints* checkpoints_;
    options_type options_;
    handler_type handler_;

    mutable std::mutex state_mutex_; // guards what follows, up to the thread
    std::map<std::uint32_t, Held> held_;
    std::vector<std::uint32_t> adopted_;
    std::size_t share_ = 0;
    std::chrono::steady_clock::time_point next_renewal_{};
    std::chrono::steady_clock::time_point next_claim_{};
    std::optional<EventFailure> failure_;
    std::vector<EventFailure> skipped_;
    std::uint64_t leases_lost_ = 0;
    bool claimed_ = false;
    std::uint32_t store_failures_ = 0;
    bool started_ = false;
    bool finished_ = false;

    std::mutex run_mutex_;     // one step at a time
    std::mutex control_mutex_; // start / stop
    std::mutex pause_mutex_;
    std::condition_variable_any pause_;
    std::jthread thread_; // last: stopped and joined before the rest is destroyed
};

} // namespace orchestrix
