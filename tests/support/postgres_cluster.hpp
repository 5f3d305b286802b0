#pragma once

// A throwaway PostgreSQL cluster for the tests: initdb into a temporary directory, start it on 127.0.0.1
// at a free port (its unix socket in that directory too), hand out one fresh database per test, and stop
// and remove it at the end. initdb and postgres refuse to run as root, so as root they run as the
// `postgres` user (runuser), with the directory handed over to it.
//
// The PostgreSQL binaries come from $ORCHESTRIX_POSTGRES_BIN, else the newest /usr/lib/postgresql/*/bin.
// Under CTest one cluster serves every test process: the fixture program (postgres_cluster_main.cpp)
// starts it and writes its URL to $ORCHESTRIX_TEST_POSTGRES_STATE/url; without that file a test process
// starts a cluster of its own.

#include "support/free_port.hpp"

#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace test_support {

/// Whether the PostgreSQL tests were asked to be skipped (ORCHESTRIX_SKIP_POSTGRES=1).
inline bool postgres_skipped() {
    const char* skip = std::getenv("ORCHESTRIX_SKIP_POSTGRES");
    return skip != nullptr && std::string(skip) == "1";
}

inline std::filesystem::path postgres_bin_dir() {
    if (const char* env = std::getenv("ORCHESTRIX_POSTGRES_BIN"); env != nullptr && *env != '\0') return env;
    std::filesystem::path best;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
        const auto bin = entry.path() / "bin";
        if (std::filesystem::exists(bin / "initdb") && (best.empty() || bin.string() > best.string())) best = bin;
    }
    if (best.empty() || !std::filesystem::exists(best / "pg_ctl")) {
        throw std::runtime_error(
            "the PostgreSQL tests need the PostgreSQL server binaries (initdb, pg_ctl): install Debian's "
            "'postgresql' package, point ORCHESTRIX_POSTGRES_BIN at their directory, or set "
            "ORCHESTRIX_SKIP_POSTGRES=1 to skip these tests");
    }
    return best;
}

/// Runs a libpq statement without results on `url`; throws with the server's message.
inline void postgres_exec(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb(url.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        const std::string message = PQerrorMessage(c);
        PQfinish(c);
        throw std::runtime_error("cannot connect to the test cluster: " + message);
    }
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    const std::string message = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error("'" + sql + "' failed: " + message);
}

class PostgresCluster {
public:
    /// Starts a new cluster. Throws (with initdb's or the server's log) if it cannot.
    PostgresCluster() : bin_(postgres_bin_dir()) {
        std::string pattern = (std::filesystem::temp_directory_path() / "orchestrix-pg-XXXXXX").string();
        std::vector<char> buffer(pattern.begin(), pattern.end());
        buffer.push_back('\0');
        if (::mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = buffer.data();
        port_ = free_port();
        if (::geteuid() == 0) {
            const passwd* user = ::getpwnam("postgres");
            if (user == nullptr) {
                throw std::runtime_error("running as root, the PostgreSQL tests need a 'postgres' user to run "
                                         "initdb and postgres as (Debian's postgresql package creates it)");
            }
            if (::chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0) throw std::runtime_error("chown failed");
            as_user_ = "runuser -u postgres -- ";
        }
        const std::string data = (dir_ / "data").string();
        run(as_user_ + q(bin_ / "initdb") + " -D " + q(data) + " -U orchestrix -A trust -E UTF8 --locale=C --no-sync",
            "initdb");
        // Durability is not what these tests measure: fsync off keeps the throwaway cluster quick.
        run(as_user_ + q(bin_ / "pg_ctl") + " -D " + q(data) + " -l " + q(dir_ / "server.log") + " -w -t 60 -o " +
                q("-p " + std::to_string(port_) + " -k " + dir_.string() +
                  " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                  " -c max_connections=200") +
                " start",
            "pg_ctl start");
        started_ = true;
        url_ = url_of("postgres");
    }
    PostgresCluster(const PostgresCluster&) = delete;
    PostgresCluster& operator=(const PostgresCluster&) = delete;
    ~PostgresCluster() { stop(); }

    /// Stops the server and removes its directory.
    void stop() noexcept {
        if (started_) {
            const std::string command =
                as_user_ + q(bin_ / "pg_ctl") + " -D " + q(dir_ / "data") + " -m immediate -w stop > /dev/null 2>&1";
            [[maybe_unused]] const int rc = std::system(command.c_str());
            started_ = false;
        }
        if (!dir_.empty()) {
            std::error_code ignored;
            std::filesystem::remove_all(dir_, ignored);
            dir_.clear();
        }
    }

    /// A shell command that stops the server and removes its directory, for whoever outlives this object;
    /// after `release()` the destructor leaves the cluster running.
    [[nodiscard]] std::string stop_command() const {
        return as_user_ + q(bin_ / "pg_ctl") + " -D " + q(dir_ / "data") + " -m immediate -w stop; rm -rf " + q(dir_);
    }
    void release() noexcept {
        started_ = false;
        dir_.clear();
    }

    /// The URL of the maintenance database.
    [[nodiscard]] const std::string& url() const noexcept { return url_; }
    [[nodiscard]] std::string url_of(const std::string& database) const {
        return "postgresql://orchestrix@127.0.0.1:" + std::to_string(port_) + "/" + database;
    }

private:
    static std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

    void run(const std::string& command, const std::string& what) {
        const auto log = dir_ / (what.substr(0, what.find(' ')) + ".out");
        const std::string full = command + " > " + q(log) + " 2>&1";
        if (std::system(full.c_str()) != 0) {
            std::ifstream in(log);
            std::stringstream out;
            out << in.rdbuf();
            std::ifstream server(dir_ / "server.log");
            out << server.rdbuf();
            throw std::runtime_error(what + " failed (" + command + "):\n" + out.str());
        }
    }

    std::filesystem::path bin_;
    std::filesystem::path dir_;
    std::string as_user_;
    int port_ = 0;
    bool started_ = false;
    std::string url_;
};

/// The cluster this test process uses: the CTest fixture's if it is running, else one of its own.
inline std::string postgres_server_url() {
    if (const char* state = std::getenv("ORCHESTRIX_TEST_POSTGRES_STATE"); state != nullptr) {
        std::ifstream in(std::filesystem::path(state) / "url");
        std::string url;
        if (in && std::getline(in, url) && !url.empty()) return url;
    }
    static PostgresCluster own;
    return own.url();
}

/// A fresh, empty place for a store on the test cluster; returns its URL. By default a schema of its own
/// (quick to create), selected through the URL's search_path; `own_database` gives a whole database, for
/// what is per database (LISTEN/NOTIFY channels).
inline std::string fresh_postgres_database(bool own_database = false) {
    static std::atomic<int> counter{0};
    const std::string server = postgres_server_url();
    const std::string name = "orchestrix_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    if (own_database) {
        postgres_exec(server, "CREATE DATABASE " + name);
        return server.substr(0, server.rfind('/') + 1) + name;
    }
    postgres_exec(server, "CREATE SCHEMA " + name);
    return server + "?options=-csearch_path%3D" + name;
}

} // namespace test_support
