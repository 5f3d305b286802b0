#pragma once

#include <atomic>
#include <cstdint>

namespace orchestrix::detail {

/// A reader-writer lock for short critical sections. Taking it and releasing it cost one atomic operation
/// each when no thread waits (glibc's `std::shared_mutex`, a `pthread_rwlock_t`, costs about four times as
/// much). A thread that cannot take it spins briefly, then sleeps on the lock word (`std::atomic::wait`, a
/// futex on Linux) until a release wakes it. Readers are preferred, as with `std::shared_mutex` on glibc: a
/// steady stream of readers can hold a writer back. Meets the Lockable and SharedLockable requirements, so
/// `std::unique_lock` and `std::shared_lock` take it.
class SharedMutex {
public:
    SharedMutex() = default;
    SharedMutex(const SharedMutex&) = delete;
    SharedMutex& operator=(const SharedMutex&) = delete;

    void lock() noexcept {
        if (!try_lock()) [[unlikely]]
            lock_slow();
    }
    [[nodiscard]] bool try_lock() noexcept {
        std::uint32_t expected = 0;
        return state_.compare_exchange_strong(expected, writer, std::memory_order_acquire, std::memory_order_relaxed);
    }
    void unlock() noexcept {
        // No reader can hold it while a writer does: the word is `writer`, plus `sleeping` if someone waits.
        if (state_.exchange(0, std::memory_order_release) & sleeping) [[unlikely]]
            state_.notify_all();
    }

    void lock_shared() noexcept {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        if ((s & writer) != 0 ||
            !state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) [[unlikely]]
            lock_shared_slow();
    }
    [[nodiscard]] bool try_lock_shared() noexcept {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        while ((s & writer) == 0) {
            if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
                return true;
            }
        }
        return false;
    }
    void unlock_shared() noexcept {
        const std::uint32_t previous = state_.fetch_sub(1, std::memory_order_release);
        if (previous == (sleeping | 1)) [[unlikely]] { // the last reader, and a writer sleeps
            state_.fetch_and(~sleeping, std::memory_order_relaxed);
            state_.notify_all();
        }
    }

private:
    static constexpr std::uint32_t writer = std::uint32_t{1} << 31;
    static constexpr std::uint32_t sleeping = std::uint32_t{1} << 30; // a thread waits (or is about to)
    static constexpr int spins = 100;

    void lock_slow() noexcept {
        for (int attempt = 0;; ++attempt) {
            std::uint32_t s = state_.load(std::memory_order_relaxed);
            if ((s & ~sleeping) == 0) { // free; keep the flag, so that this writer's release wakes the others
                if (state_.compare_exchange_weak(s, writer | s, std::memory_order_acquire, std::memory_order_relaxed))
                    return;
                continue;
            }
            wait_for_change(s, attempt);
        }
    }

    void lock_shared_slow() noexcept {
        for (int attempt = 0;; ++attempt) {
            std::uint32_t s = state_.load(std::memory_order_relaxed);
            if ((s & writer) == 0) {
                if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed))
                    return;
                continue;
            }
            wait_for_change(s, attempt);
        }
    }

    // Spins, then flags the word and sleeps until it differs from what was seen.
    void wait_for_change(std::uint32_t seen, int attempt) noexcept {
        if (attempt < spins) return;
        if ((seen & sleeping) == 0) {
            // Flag only the word that was seen: if it changed meanwhile, look again instead of sleeping.
            if (!state_.compare_exchange_strong(seen, seen | sleeping, std::memory_order_relaxed)) return;
            seen |= sleeping;
        }
        state_.wait(seen, std::memory_order_relaxed);
    }

    std::atomic<std::uint32_t> state_{0}; // writer bit, sleeping bit, number of readers
};

} // namespace orchestrix::detail
