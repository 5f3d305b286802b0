#pragma once

// Runs the built `orchestrix` inspector (its path in ORCHESTRIX_CLI_PATH) as a subprocess and hands back
// its exit status, stdout and stderr; and the stores the inspector tests look at.

#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <orchestrix/sqlite/event_store.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cli_test {

/// What a run of the inspector gave.
struct Run {
    int status = -1;
    std::string out{};
    std::string err{};

    [[nodiscard]] nlohmann::json json() const { return nlohmann::json::parse(out); }
};

inline std::string quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out.push_back(c);
        }
    }
    return out + "'";
}

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Runs `orchestrix args...` (stdin from `input`, if given), waiting for it to end.
inline Run run(const std::vector<std::string>& args, const std::string& input = {}) {
    static std::atomic<int> counter{0};
    const test_support::TempDir dir("orchestrix-cli-run");
    std::string command = quote(ORCHESTRIX_CLI_PATH);
    for (const auto& a : args) command += " " + quote(a);
    const std::string out = dir.file("out"), err = dir.file("err"), in = dir.file("in");
    {
        std::ofstream f(in, std::ios::binary);
        f << input;
    }
    command += " < " + quote(in) + " > " + quote(out) + " 2> " + quote(err);
    ++counter;
    const int raw = std::system(command.c_str());
    Run r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

/// The inspector running in the background (`tail --follow`), its output going to a file.
class Background {
public:
    Background(const std::vector<std::string>& args, const test_support::TempDir& dir)
        : out_(dir.file("follow.out")), err_(dir.file("follow.err")) {
        std::vector<std::string> argv{ORCHESTRIX_CLI_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            if (std::freopen(out_.c_str(), "w", stdout) == nullptr ||
                std::freopen(err_.c_str(), "w", stderr) == nullptr) {
                std::_Exit(127);
            }
            std::vector<char*> raw;
            for (auto& a : argv) raw.push_back(a.data());
            raw.push_back(nullptr);
            ::execv(raw[0], raw.data());
            std::_Exit(127);
        }
    }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    ~Background() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int ignored = 0;
            ::waitpid(pid_, &ignored, 0);
        }
    }

    [[nodiscard]] std::string out() const { return slurp(out_); }

    /// Waits up to `timeout` until the output holds `text`.
    [[nodiscard]] bool wait_for(const std::string& text, std::chrono::milliseconds timeout) const {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            if (out().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

    /// Sends SIGINT and returns the exit status (-1 if it did not exit by itself).
    int interrupt() {
        ::kill(pid_, SIGINT);
        int raw = 0;
        ::waitpid(pid_, &raw, 0);
        pid_ = -1;
        return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    }

private:
    std::string out_;
    std::string err_;
    pid_t pid_ = -1;
};

/// Runs `orchestrix args...` on a pseudo-terminal (stdout and stderr both); returns what it printed.
inline std::string run_on_terminal(const std::vector<std::string>& args) {
    std::vector<std::string> argv{ORCHESTRIX_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    if (pid < 0) throw std::runtime_error("forkpty failed");
    if (pid == 0) {
        std::vector<char*> raw;
        for (auto& a : argv) raw.push_back(a.data());
        raw.push_back(nullptr);
        ::execv(raw[0], raw.data());
        std::_Exit(127);
    }
    std::string out;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(master, buffer, sizeof buffer);
        if (n <= 0) break; // EIO once the child has exited
        out.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(master);
    int ignored = 0;
    ::waitpid(pid, &ignored, 0);
    return out;
}

/// Runs SQL on an SQLite file past the store (to damage it, or fill tables the test owns).
inline void sqlite_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    if (rc != SQLITE_OK) throw std::runtime_error("'" + sql + "' failed: " + message);
}

/// The dead-letter table's fixed layout (SQLite).
inline constexpr const char* sqlite_dead_letters_sql = R"sql(
CREATE TABLE IF NOT EXISTS orchestrix_dead_letters (
    projection TEXT NOT NULL, position INTEGER NOT NULL, stream_id TEXT NOT NULL, version INTEGER NOT NULL,
    event_id TEXT NOT NULL, type TEXT NOT NULL, schema_version INTEGER NULL, payload TEXT NULL, metadata TEXT NULL,
    error TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at INTEGER NOT NULL,
    retry_requested INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (projection, position)) WITHOUT ROWID;
)sql";

using Store = orchestrix::SqliteEventStore<test_domain::AccountEvent>;

/// Two accounts: acc-1 at version 3 (positions 1, 2, 4), acc-2 at version 2 (positions 3, 5).
template <class S>
void fill(S& store) {
    using namespace test_domain;
    using orchestrix::ExpectedVersion;
    store.append("acc-1", {AccountOpened{"acc-1", "Ada"}, MoneyDeposited{"acc-1", 100}}, ExpectedVersion::no_stream());
    store.append("acc-2", {AccountOpened{"acc-2", "Bob"}}, ExpectedVersion::no_stream());
    store.append("acc-1", {MoneyWithdrawn{"acc-1", 30}}, ExpectedVersion::exact(2));
    store.append("acc-2", {MoneyDeposited{"acc-2", 5}}, ExpectedVersion::exact(1));
}

} // namespace cli_test
