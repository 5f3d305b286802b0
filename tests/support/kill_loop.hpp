#pragma once

// The fork-and-SIGKILL loop of the crash tests: a child process projects, the parent kills it at a random
// moment, reads the checkpoint it left, appends more events and starts the next child.

#include "support/catch.hpp"
#include "support/env.hpp"

#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace test_support {

// How a child tells the parent where it is, over a pipe: `started` once it has opened its databases,
// `committed` after each batch it committed, `finished` when it caught up.
class KillReporter {
public:
    static constexpr std::uint64_t started_message = ~std::uint64_t{0} - 1;
    static constexpr std::uint64_t finished_message = ~std::uint64_t{0};

    explicit KillReporter(int fd) noexcept : fd_(fd) {}

    void started() const { send(started_message); }
    void committed(std::uint64_t checkpoint) const { send(checkpoint); }
    void finished() const { send(finished_message); }

private:
    void send(std::uint64_t message) const {
        if (::write(fd_, &message, sizeof message) != static_cast<ssize_t>(sizeof message)) ::_exit(4);
    }
    int fd_;
};

// What the rounds of a kill loop came to.
struct KillLoopResult {
    // The checkpoint after each round, 0 first.
    std::vector<std::uint64_t> observed{0};
    // Events appended so far.
    std::uint64_t appended = 0;
    std::uint64_t killed_projecting = 0; // SIGKILLs that landed after `started`, before `finished`
    std::uint64_t killed_opening = 0;    // SIGKILLs that landed before `started`
    std::uint64_t not_killed = 0;        // children that finished before the SIGKILL
};

// Runs `rounds` rounds. Before each, `append(first, count)` appends events so that `total / 2` are stored
// before the first round and the rest arrive spread over the others. Each round forks a child that runs
// `project(batch, reporter)` (a random batch size of 1 to 64; it opens its stores, calls `reporter.started()`,
// `reporter.committed(checkpoint)` after each batch and `reporter.finished()` once caught up, then returns)
// and kills it with SIGKILL at a random moment: mostly while it projects (after a random number of its
// batches, fewer than it has to commit, and a random part of the next), every fifth round while it opens its
// databases. The child must die of that SIGKILL or exit normally; `checkpoint()` then reads, in the parent,
// the checkpoint it left (kept in `observed`).
template <class Append, class Project, class Checkpoint>
KillLoopResult kill_loop(std::uint64_t rounds, std::uint64_t total, std::mt19937_64& random, Append&& append,
                         Project&& project, Checkpoint&& checkpoint) {
    KillLoopResult out;
    for (std::uint64_t round = 0; round < rounds; ++round) {
        const std::uint64_t target =
            round == 0 ? total / 2 : total / 2 + (total - total / 2) * round / (rounds - 1 == 0 ? 1 : rounds - 1);
        if (target > out.appended) {
            append(out.appended, target - out.appended);
            out.appended = target;
        }
        const auto batch = static_cast<std::uint64_t>(1 + random() % 64);
        const std::uint64_t batches = (out.appended - out.observed.back() + batch - 1) / batch; // the child's work
        int progress[2];
        REQUIRE(::pipe(progress) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(progress[0]);
            try {
                project(batch, KillReporter(progress[1]));
                ::_exit(0);
            } catch (...) {
                ::_exit(3);
            }
        }
        ::close(progress[1]);
        bool was_started = false;
        bool was_finished = false;
        std::uint64_t committed = 0; // batches the child reported committed
        const auto next_report = [&] {
            std::uint64_t message = 0;
            if (::read(progress[0], &message, sizeof message) != static_cast<ssize_t>(sizeof message)) return false;
            if (message == KillReporter::started_message) {
                was_started = true;
            } else if (message == KillReporter::finished_message) {
                was_finished = true;
            } else {
                ++committed;
            }
            return true;
        };
        if (round % 5 != 4) {
            const std::uint64_t wait_for_batches = batches == 0 ? 0 : random() % batches;
            while ((!was_started || committed < wait_for_batches) && !was_finished && next_report()) {
            }
            std::this_thread::sleep_for(
                std::chrono::microseconds(random() % 1'000 + env_count("ORCHESTRIX_KILL_EXTRA_US", 0)));
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(random() % 5'000));
        }
        ::kill(child, SIGKILL);
        while (next_report()) { // the rest of its reports, up to its end
        }
        ::close(progress[0]);
        int status = 0;
        ::waitpid(child, &status, 0);
        INFO("round " << round << ": batch size " << batch << ", " << batches << " batches to do, " << committed
                      << " committed");
        const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        CHECK((killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
        if (killed && was_started && !was_finished) {
            ++out.killed_projecting;
        } else if (killed && !was_started) {
            ++out.killed_opening;
        } else {
            ++out.not_killed;
        }
        out.observed.push_back(checkpoint());
    }
    return out;
}

} // namespace test_support
