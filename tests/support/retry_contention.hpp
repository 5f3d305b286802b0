#pragma once

// Writers racing `Repository::execute` on one stream, with the default `RetryPolicy` unless told otherwise:
// threads sharing one store in this process, or forked processes with a store each. Every writer deposits
// distinct amounts into the account "shared" (stream "account-shared"), opened first; the checks then want
// every command stored once, in versions 1..N without a gap. Used by tests/core/repository.cpp (in memory),
// tests/sqlite/retry.cpp and tests/postgres/retry.cpp.
//
// ORCHESTRIX_REPORT_RETRIES=1 prints each run's tally (how many commands took how many attempts), and
// ORCHESTRIX_RETRY_POLICY=attempts/initial_us/max_us replaces the default policy, to measure another one
// ("3/0/0" is the policy before backoff: 3 attempts, no wait).

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <orchestrix/core/aggregate_cache.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/repository.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace test_support {

/// How many commands took how many attempts, and how many failed.
struct RetryTally {
    static constexpr std::size_t bins = 64;
    /// [n]: the commands stored at attempt n (n >= 1).
    std::array<std::uint64_t, bins> by_attempts{};
    /// Commands that gave up with `ConcurrencyError` after the policy's last attempt.
    std::uint64_t conflicts_given_up = 0;
    /// Commands that failed with another exception (always a bug here).
    std::uint64_t other_errors = 0;

    void add(std::uint32_t attempts) { ++by_attempts[std::min<std::size_t>(attempts, bins - 1)]; }
    void merge(const RetryTally& other) {
        for (std::size_t i = 0; i < bins; ++i) by_attempts[i] += other.by_attempts[i];
        conflicts_given_up += other.conflicts_given_up;
        other_errors += other.other_errors;
    }
    [[nodiscard]] std::uint64_t stored() const {
        std::uint64_t n = 0;
        for (const auto count : by_attempts) n += count;
        return n;
    }
    /// Conflicts met by the stored commands (each attempt but the last was one).
    [[nodiscard]] std::uint64_t conflicts() const {
        std::uint64_t n = 0;
        for (std::size_t i = 1; i < bins; ++i) n += (i - 1) * by_attempts[i];
        return n;
    }
    [[nodiscard]] std::size_t max_attempts() const {
        for (std::size_t i = bins - 1; i > 0; --i)
            if (by_attempts[i] > 0) return i;
        return 0;
    }
    /// "200 commands, 143 conflicts, attempts 1:120 2:45 3:20 ..., given up 0, other errors 0".
    [[nodiscard]] std::string summary() const {
        std::string out = std::to_string(stored()) + " commands stored, " + std::to_string(conflicts()) +
                          " conflicts, max attempts " + std::to_string(max_attempts()) + ", attempts";
        for (std::size_t i = 1; i < bins; ++i)
            if (by_attempts[i] > 0) out += " " + std::to_string(i) + ":" + std::to_string(by_attempts[i]);
        out += ", given up " + std::to_string(conflicts_given_up) + ", other errors " + std::to_string(other_errors);
        return out;
    }
};

inline void report_tally(const char* what, const RetryTally& tally) {
    const char* report = std::getenv("ORCHESTRIX_REPORT_RETRIES");
    if (report != nullptr && *report != '\0' && *report != '0') {
        std::printf("[retries] %s: %s\n", what, tally.summary().c_str());
        std::fflush(stdout);
    }
}

/// The default policy, or the one ORCHESTRIX_RETRY_POLICY describes.
inline orchestrix::RetryPolicy contention_policy() {
    orchestrix::RetryPolicy policy;
    const char* text = std::getenv("ORCHESTRIX_RETRY_POLICY");
    if (text == nullptr || *text == '\0') return policy;
    unsigned attempts = 0;
    long long initial = 0;
    long long max = 0;
    int used = 0;
    if (std::string_view(text).find_first_not_of("0123456789/") != std::string_view::npos ||
        std::sscanf(text, "%u/%lld/%lld%n", &attempts, &initial, &max, &used) != 3 ||
        static_cast<std::size_t>(used) != std::string_view(text).size()) {
        throw std::invalid_argument("ORCHESTRIX_RETRY_POLICY must be attempts/initial_us/max_us, not " +
                                    std::string(text));
    }
    policy.max_attempts = attempts;
    policy.initial_delay = std::chrono::microseconds(initial);
    policy.max_delay = std::chrono::microseconds(max);
    return policy;
}

/// The amount writer `writer` deposits with its `i`-th command: distinct for every command.
inline std::int64_t shared_amount(int writer, int i) { return std::int64_t{writer} * 1'000'000 + i + 1; }

/// Executes writer `writer`'s `commands` deposits through a repository of its own; never throws.
template <class Store>
RetryTally run_writer(Store& store, int writer, int commands, const orchestrix::RetryPolicy& policy,
                      orchestrix::AggregateCache<test_domain::Account>* cache = nullptr) {
    orchestrix::Repository<test_domain::Account, Store> accounts(store, "account-");
    if (cache != nullptr) accounts.with_cache(*cache);
    RetryTally tally;
    for (int i = 0; i < commands; ++i) {
        try {
            tally.add(accounts.execute("shared", test_domain::Deposit{shared_amount(writer, i)}, policy).attempts);
        } catch (const orchestrix::ConcurrencyError&) {
            ++tally.conflicts_given_up;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "writer %d, command %d failed: %s\n", writer, i, e.what());
            ++tally.other_errors;
        }
    }
    return tally;
}

/// Opens the shared account (the first command, version 1).
template <class Store>
void open_shared_account(Store& store) {
    orchestrix::Repository<test_domain::Account, Store> accounts(store, "account-");
    REQUIRE(accounts.execute("shared", test_domain::OpenAccount{"shared", "everyone"}).append.stream_version == 1);
}

/// No aggregate cache for any writer.
inline orchestrix::AggregateCache<test_domain::Account>* no_cache(int /*writer*/) { return nullptr; }

/// `writers` threads, started together, each executing `commands` deposits on the shared account of `store`
/// through a repository of its own, with the aggregate cache `cache_for(writer)` (none by default).
template <class Store, class CacheFor = decltype(&no_cache)>
RetryTally race_threads(Store& store, int writers, int commands,
                        const orchestrix::RetryPolicy& policy = contention_policy(), CacheFor cache_for = &no_cache) {
    RetryTally total;
    std::mutex mutex;
    std::latch start(writers);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            start.arrive_and_wait();
            const RetryTally mine = run_writer(store, w, commands, policy, cache_for(w));
            const std::lock_guard lock(mutex);
            total.merge(mine);
        });
    }
    for (auto& t : threads) t.join();
    return total;
}

/// `processes` forked processes, each opening its own store with `make_store()` (a `std::unique_ptr` to a
/// store) and executing `commands` deposits on the shared account with the default policy. Each child sends
/// its tally back through a pipe; a child that cannot fails the test.
template <class MakeStore>
RetryTally race_processes(MakeStore make_store, int processes, int commands) {
    std::vector<pid_t> children;
    std::vector<int> pipes;
    for (int p = 0; p < processes; ++p) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(fds[0]);
            int code = 0;
            try {
                auto store = make_store();
                const RetryTally tally = run_writer(*store, p, commands, contention_policy());
                if (::write(fds[1], &tally, sizeof tally) != static_cast<ssize_t>(sizeof tally)) code = 3;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "writer process %d failed: %s\n", p, e.what());
                code = 2;
            }
            ::_exit(code);
        }
        ::close(fds[1]);
        children.push_back(child);
        pipes.push_back(fds[0]);
    }
    RetryTally total;
    for (std::size_t i = 0; i < children.size(); ++i) {
        RetryTally tally;
        const auto got = ::read(pipes[i], &tally, sizeof tally);
        ::close(pipes[i]);
        int status = 0;
        REQUIRE(::waitpid(children[i], &status, 0) == children[i]);
        INFO("writer process " << i << " exit status " << status);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
        CHECK(got == static_cast<ssize_t>(sizeof tally));
        if (got == static_cast<ssize_t>(sizeof tally)) total.merge(tally);
    }
    return total;
}

/// Checks the shared account's stream after `writers` writers executed `commands` deposits each: the
/// opening, then every deposit exactly once, in versions 1..N without a gap.
template <class Store>
void check_shared_stream(const Store& store, int writers, int commands) {
    const auto events = store.read_stream("account-shared");
    const auto total = static_cast<std::size_t>(writers) * static_cast<std::size_t>(commands) + 1;
    CHECK(store.stream_version("account-shared") == total);
    REQUIRE(events.size() == total);
    REQUIRE(std::holds_alternative<test_domain::AccountOpened>(events[0].event));
    std::set<std::int64_t> amounts;
    std::size_t gaps = 0;
    std::size_t not_deposits = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (events[i].version != i + 1) ++gaps;
        if (i == 0) continue;
        if (const auto* deposit = std::get_if<test_domain::MoneyDeposited>(&events[i].event)) {
            amounts.insert(deposit->amount);
        } else {
            ++not_deposits;
        }
    }
    CHECK(gaps == 0);
    CHECK(not_deposits == 0);
    std::size_t missing = 0;
    for (int w = 0; w < writers; ++w)
        for (int i = 0; i < commands; ++i)
            if (!amounts.contains(shared_amount(w, i))) ++missing;
    CHECK(missing == 0);
    CHECK(amounts.size() == total - 1); // no amount twice
}

} // namespace test_support
