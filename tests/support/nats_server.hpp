#pragma once

// Throwaway nats-server processes with JetStream for the tests: one server, or a cluster of three on
// loopback, each in a temporary directory of its own (config, JetStream store, logs), on free ports. Each
// node can be killed (SIGKILL), restarted on the same ports with the same store, paused (SIGSTOP) and
// resumed (SIGCONT): the faults the JetStream tests inject.
//
// The binary comes from $ORCHESTRIX_NATS_SERVER, else `nats-server` on PATH (or Debian's /usr/sbin). Under
// CTest one single server and one cluster serve every test process: the fixture program (nats_server_main.cpp)
// starts them and writes their URLs to $ORCHESTRIX_TEST_NATS_STATE/url and .../cluster_urls; without those
// files a test process starts its own.

#include "support/free_port.hpp"

#include <nats/nats.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace test_support {

/// The nats-server binary: $ORCHESTRIX_NATS_SERVER, else `nats-server` on PATH or in /usr/sbin. Throws if
/// there is none: the JetStream tests never skip.
inline std::filesystem::path nats_server_binary() {
    if (const char* env = std::getenv("ORCHESTRIX_NATS_SERVER"); env != nullptr && *env != '\0') {
        if (::access(env, X_OK) != 0) {
            throw std::runtime_error(std::string("ORCHESTRIX_NATS_SERVER names '") + env +
                                     "', which is not an executable file");
        }
        return env;
    }
    std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    path += ":/usr/sbin:/usr/local/sbin";
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
        if (dir.empty()) continue;
        const auto candidate = std::filesystem::path(dir) / "nats-server";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    throw std::runtime_error("the JetStream tests need nats-server (2.9 or later): install Debian's 'nats-server' "
                             "package or point ORCHESTRIX_NATS_SERVER at the binary");
}

namespace nats_detail {

using test_support::free_port;

inline bool port_accepts(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return ok;
}

inline std::string read_text(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
}

/// The URLs of a comma-separated list (libnats's natsOptions_SetURL takes one URL; SetServers takes a list).
inline std::vector<std::string> split_urls(const std::string& urls) {
    std::vector<std::string> list;
    std::stringstream in(urls);
    for (std::string url; std::getline(in, url, ',');) {
        if (!url.empty()) list.push_back(url);
    }
    return list;
}

/// The body of `GET path` on 127.0.0.1:`port` (a server's monitoring port), or nothing if it does not
/// answer 200 within `timeout`.
inline std::optional<std::string> http_get(int port, const std::string& path,
                                           std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return std::nullopt;
    timeval limit{};
    limit.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    limit.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    std::string response;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
        const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
            char buffer[4096];
            for (ssize_t n = 0; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
                response.append(buffer, static_cast<std::size_t>(n));
            }
        }
    }
    ::close(fd);
    const auto body = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") == std::string::npos || body == std::string::npos) {
        return std::nullopt;
    }
    return response.substr(body + 4);
}

/// A libnats connection to `url` (one URL or several, comma-separated) that does not reconnect: each call
/// of the fixture opens one, asks, and closes it.
class Connection {
public:
    explicit Connection(const std::string& url, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
        natsOptions* options = nullptr;
        natsStatus s = natsOptions_Create(&options);
        const auto list = split_urls(url);
        std::vector<const char*> servers;
        for (const auto& one : list) servers.push_back(one.c_str());
        if (s == NATS_OK) s = natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
        if (s == NATS_OK) s = natsOptions_SetTimeout(options, timeout.count());
        if (s == NATS_OK) s = natsOptions_SetAllowReconnect(options, false);
        if (s == NATS_OK) s = natsConnection_Connect(&connection_, options);
        natsOptions_Destroy(options);
        if (s != NATS_OK) {
            connection_ = nullptr;
            error_ = std::string(natsStatus_GetText(s));
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() {
        if (connection_ != nullptr) natsConnection_Destroy(connection_);
    }

    [[nodiscard]] bool connected() const noexcept { return connection_ != nullptr; }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }

    /// The reply to a request, or nothing (and `error()` says why) if none came within `timeout`.
    std::optional<std::string> request(const std::string& subject, const std::string& body,
                                       std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
        if (connection_ == nullptr) return std::nullopt;
        natsMsg* reply = nullptr;
        const natsStatus s =
            natsConnection_RequestString(&reply, connection_, subject.c_str(), body.c_str(), timeout.count());
        if (s != NATS_OK) {
            error_ = std::string(natsStatus_GetText(s));
            return std::nullopt;
        }
        std::string data(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
        natsMsg_Destroy(reply);
        return data;
    }

private:
    natsConnection* connection_ = nullptr;
    std::string error_;
};

/// The JSON reply of a JetStream API request, or nothing if there was none or it reports an error.
inline std::optional<nlohmann::json> js_api(const std::string& url, const std::string& subject,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
    Connection connection(url, timeout);
    const auto reply = connection.request(subject, "", timeout);
    if (!reply) return std::nullopt;
    nlohmann::json document = nlohmann::json::parse(*reply, nullptr, false);
    if (document.is_discarded() || !document.is_object() || document.contains("error")) return std::nullopt;
    return document;
}

} // namespace nats_detail

/// Where a `NatsServer` listens and what it is called; a cluster node also knows its cluster's routes.
struct NatsServerConfig {
    std::string name = "orchestrix-nats";
    int client_port = 0; // 0: a free port
    /// The HTTP monitoring port (`/jsz`, `/varz`); 0: a free port.
    int monitor_port = 0;
    /// For a cluster node: its cluster port and the cluster ports of every node (its own included).
    int cluster_port = 0;
    std::vector<int> routes{};
    std::string cluster_name = "orchestrix";
    /// Starts the server in a session of its own (setsid), so that it outlives this process and its process
    /// group: for the CTest fixture, whose servers serve other processes.
    bool detached = false;
};

/// One nats-server process with JetStream, in a temporary directory of its own: `nats.conf`, the JetStream
/// store under `jetstream/`, its log in `server.log` (and what it prints to stdout or stderr in
/// `console.log`). The constructor returns when the server answers JetStream requests (for a cluster node,
/// `start(false)` does not wait: the cluster waits for all its nodes together).
class NatsServer {
public:
    explicit NatsServer(NatsServerConfig config = {}, bool wait = true)
        : binary_(nats_server_binary()), config_(std::move(config)) {
        std::string pattern = (std::filesystem::temp_directory_path() / "orchestrix-nats-XXXXXX").string();
        std::vector<char> buffer(pattern.begin(), pattern.end());
        buffer.push_back('\0');
        if (::mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = buffer.data();
        // A port found free can be taken before the server binds it (another test's connection may get it as
        // its local port): the server then exits at once, and is started again on other ports it was free
        // to choose.
        const bool choose_client = config_.client_port == 0;
        const bool choose_monitor = config_.monitor_port == 0;
        for (int attempt = 1;; ++attempt) {
            if (choose_client) config_.client_port = nats_detail::free_port();
            if (choose_monitor) config_.monitor_port = nats_detail::free_port();
            write_config();
            start();
            if (!wait) return;
            try {
                wait_ready();
                return;
            } catch (const std::runtime_error&) {
                if (running() || !port_taken() || !(choose_client || choose_monitor) || attempt == 5) throw;
                clear_logs();
            }
        }
    }

    /// Whether the server's log says that a port it was to listen on was taken.
    [[nodiscard]] bool port_taken() const { return log().find("address already in use") != std::string::npos; }
    NatsServer(const NatsServer&) = delete;
    NatsServer& operator=(const NatsServer&) = delete;
    ~NatsServer() { stop(); }

    [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(config_.client_port); }
    [[nodiscard]] int client_port() const noexcept { return config_.client_port; }
    [[nodiscard]] const std::string& name() const noexcept { return config_.name; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] const std::filesystem::path& directory() const noexcept { return dir_; }
    /// Whether the process runs (it may be paused).
    [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
    [[nodiscard]] bool paused() const noexcept { return paused_; }

    /// Kills the server at once (SIGKILL) and reaps it: no shutdown, whatever it had not written is lost.
    void kill() {
        if (pid_ <= 0) throw std::logic_error("nats-server " + config_.name + " is not running");
        ::kill(pid_, SIGKILL);
        reap();
    }

    /// Starts the server again with the same name, ports and JetStream store; returns when it answers
    /// JetStream requests (for a cluster node: when it has a meta leader again).
    void restart(std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
        if (pid_ > 0) throw std::logic_error("nats-server " + config_.name + " is still running");
        start();
        wait_ready(timeout);
    }

    /// Stops the process (SIGSTOP): it keeps its sockets but answers nothing, like a machine that hangs.
    void pause() {
        if (pid_ <= 0) throw std::logic_error("nats-server " + config_.name + " is not running");
        if (::kill(pid_, SIGSTOP) != 0) throw std::runtime_error("SIGSTOP failed");
        paused_ = true;
        // kill() returns before the signal is acted on: on a loaded machine the process could still answer
        // for a while. Return only once every thread of it is stopped.
        wait_for_threads(true);
    }
    /// Lets a paused process go on (SIGCONT).
    void resume() {
        if (pid_ <= 0) throw std::logic_error("nats-server " + config_.name + " is not running");
        if (::kill(pid_, SIGCONT) != 0) throw std::runtime_error("SIGCONT failed");
        paused_ = false;
        wait_for_threads(false);
    }

    /// Waits until the client port accepts, a `$JS.API.INFO` request is answered without an error and, for a
    /// cluster node, the node knows a JetStream meta leader; throws with the server's log if that does not
    /// happen in `timeout`.
    void wait_ready(std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        bool accepting = false;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                paused_ = false;
                throw std::runtime_error("nats-server " + config_.name + " exited while starting:\n" + log());
            }
            if (!accepting) accepting = nats_detail::port_accepts(config_.client_port);
            if (accepting && nats_detail::js_api(url(), "$JS.API.INFO") &&
                (config_.cluster_port == 0 || meta_leader())) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        throw std::runtime_error("nats-server " + config_.name + " at " + url() + " did not " +
                                 (accepting ? "answer $JS.API.INFO" : "accept connections") + " within " +
                                 std::to_string(timeout.count()) + " ms:\n" + log());
    }

    /// The server's JetStream report (`GET /jsz` on its monitoring port, with `query` such as
    /// "?streams=true"), or nothing if it does not answer.
    [[nodiscard]] std::optional<nlohmann::json> jsz(const std::string& query = "") const {
        const auto body = nats_detail::http_get(config_.monitor_port, "/jsz" + query);
        if (!body) return std::nullopt;
        nlohmann::json document = nlohmann::json::parse(*body, nullptr, false);
        if (document.is_discarded() || !document.is_object()) return std::nullopt;
        return document;
    }

    /// The name of the JetStream meta leader this node knows of (for a cluster node), or nothing.
    [[nodiscard]] std::optional<std::string> meta_leader() const {
        const auto report = jsz();
        if (!report || !report->contains("meta_cluster")) return std::nullopt;
        const auto& meta = (*report)["meta_cluster"];
        if (!meta.contains("leader") || !meta["leader"].is_string() || meta["leader"].get<std::string>().empty()) {
            return std::nullopt;
        }
        return meta["leader"].get<std::string>();
    }

    /// The server's log and console output.
    [[nodiscard]] std::string log() const {
        return nats_detail::read_text(dir_ / "server.log") + nats_detail::read_text(dir_ / "console.log");
    }

    /// Stops the server (SIGTERM, SIGKILL if it has not exited after 10 s) and removes its directory.
    void stop() noexcept {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            if (paused_) ::kill(pid_, SIGCONT);
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            int status = 0;
            while (::waitpid(pid_, &status, WNOHANG) == 0) {
                if (std::chrono::steady_clock::now() > deadline) {
                    ::kill(pid_, SIGKILL);
                    ::waitpid(pid_, &status, 0);
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            pid_ = 0;
            paused_ = false;
        }
        if (!dir_.empty()) {
            std::error_code ignored;
            std::filesystem::remove_all(dir_, ignored);
            dir_.clear();
        }
    }

    /// A shell command that kills the server and removes its directory, for whoever outlives this object;
    /// after `release()` the destructor leaves the server running.
    [[nodiscard]] std::string stop_command() const {
        return "kill -KILL " + std::to_string(pid_) + " 2>/dev/null; rm -rf '" + dir_.string() + "'";
    }
    void release() noexcept {
        pid_ = 0;
        dir_.clear();
    }

private:
    void clear_logs() const {
        std::error_code ignored;
        std::filesystem::remove(dir_ / "server.log", ignored);
        std::filesystem::remove(dir_ / "console.log", ignored);
    }

    void write_config() const {
        std::ofstream out(dir_ / "nats.conf");
        out << "server_name: \"" << config_.name << "\"\n"
            << "listen: \"127.0.0.1:" << config_.client_port << "\"\n"
            << "http: \"127.0.0.1:" << config_.monitor_port << "\"\n"
            << "log_file: \"" << (dir_ / "server.log").string()
            << "\"\n"
            // Room for the largest batch the contract suite appends (one event at the codec's 1 MiB limit).
            << "max_payload: 8388608\n"
            << "jetstream {\n  store_dir: \"" << (dir_ / "jetstream").string() << "\"\n"
            << "  max_memory_store: 268435456\n  max_file_store: 1073741824\n}\n";
        if (config_.cluster_port != 0) {
            out << "cluster {\n  name: \"" << config_.cluster_name << "\"\n"
                << "  listen: \"127.0.0.1:" << config_.cluster_port << "\"\n  routes: [\n";
            for (const int port : config_.routes) out << "    \"nats-route://127.0.0.1:" << port << "\"\n";
            out << "  ]\n}\n";
        }
        if (!out) throw std::runtime_error("could not write " + (dir_ / "nats.conf").string());
    }

    void start() {
        const std::string binary = binary_.string();
        const std::string config = (dir_ / "nats.conf").string();
        const std::string console = (dir_ / "console.log").string();
        std::vector<std::string> arguments{binary, "-c", config};
        std::vector<char*> argv;
        for (auto& argument : arguments) argv.push_back(argument.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attributes;
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attributes);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, console.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        // The child starts with no signal blocked and default handlers, whatever this process set.
        sigset_t none;
        sigset_t all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attributes, &none);
        posix_spawnattr_setsigdefault(&attributes, &all);
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        if (config_.detached) flags = static_cast<short>(flags | POSIX_SPAWN_SETSID);
        posix_spawnattr_setflags(&attributes, flags);
        pid_t pid = 0;
        const int rc = ::posix_spawn(&pid, binary.c_str(), &actions, &attributes, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
        if (rc != 0) throw std::runtime_error("could not start " + binary + ": " + std::strerror(rc));
        pid_ = pid;
        paused_ = false;
    }

    void reap() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = 0;
        paused_ = false;
    }

    /// Waits until every thread of the process is stopped (`stopped`) or none is, as /proc shows it.
    void wait_for_threads(bool stopped) const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        const std::filesystem::path tasks = "/proc/" + std::to_string(pid_) + "/task";
        for (;;) {
            bool all = true;
            std::error_code error;
            for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
                std::ifstream in(task.path() / "stat");
                std::string line;
                if (!std::getline(in, line)) continue; // the thread ended
                const auto close = line.rfind(')');
                if (close == std::string::npos || close + 2 >= line.size()) continue;
                const char state = line[close + 2];
                if ((state == 'T') != stopped) {
                    all = false;
                    break;
                }
            }
            if (error) throw std::runtime_error("cannot list " + tasks.string() + ": " + error.message());
            if (all) return;
            if (std::chrono::steady_clock::now() > deadline) {
                throw std::runtime_error("nats-server " + config_.name +
                                         (stopped ? " did not stop" : " did not go on") + " within 20 s of the signal");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }

    std::filesystem::path binary_;
    NatsServerConfig config_;
    std::filesystem::path dir_;
    pid_t pid_ = 0;
    bool paused_ = false;
};

/// A JetStream cluster of `size` (3) nodes on loopback, every route known to every node. The constructor
/// returns when every node answers JetStream requests, which needs a meta leader.
class NatsCluster {
public:
    explicit NatsCluster(std::size_t size = 3, bool detached = false) {
        // As for one server: a node whose port was taken before it bound it exits at once; the cluster is
        // then started again, on other ports.
        for (int attempt = 1;; ++attempt) {
            try {
                start_nodes(size, detached);
                break;
            } catch (const std::runtime_error&) {
                const bool taken = std::any_of(nodes_.begin(), nodes_.end(),
                                               [](const auto& node) { return !node->running() && node->port_taken(); });
                if (!taken || attempt == 5) throw;
                nodes_.clear();
            }
        }
        wait_for_meta_leader(std::chrono::milliseconds(60000));
    }

    /// Waits until every running, unpaused node names the same JetStream meta leader and that leader reports
    /// every other node as a current member of the meta group (what creating an R3 stream needs); returns
    /// the leader's index, throws after `timeout`.
    std::size_t wait_for_meta_leader(std::chrono::milliseconds timeout) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string last = "no answer";
        do {
            std::optional<std::string> agreed;
            bool agree = true;
            for (const auto& node : nodes_) {
                if (!node->running() || node->paused()) continue;
                const auto leader = node->meta_leader();
                if (!leader || (agreed && *agreed != *leader)) {
                    agree = false;
                    break;
                }
                agreed = leader;
            }
            const auto index = agree && agreed ? index_of(*agreed) : std::nullopt;
            if (index) {
                const auto report = nodes_[*index]->jsz();
                if (report && report->contains("meta_cluster")) {
                    const auto& meta = (*report)["meta_cluster"];
                    last = meta.dump();
                    std::size_t current = 0;
                    if (meta.contains("replicas") && meta["replicas"].is_array()) {
                        for (const auto& replica : meta["replicas"]) {
                            if (replica.value("current", false) && !replica.value("offline", false)) ++current;
                        }
                    }
                    if (current + 1 == nodes_.size()) return *index;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        } while (std::chrono::steady_clock::now() < deadline);
        throw std::runtime_error("the JetStream cluster has no meta leader with every node current after " +
                                 std::to_string(timeout.count()) + " ms: " + last + "\n" + nodes_.front()->log());
    }

    [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }
    [[nodiscard]] NatsServer& node(std::size_t i) { return *nodes_.at(i); }
    [[nodiscard]] const NatsServer& node(std::size_t i) const { return *nodes_.at(i); }

    /// Every node's client URL, comma-separated: what a client that should fail over is given.
    [[nodiscard]] std::string urls() const {
        std::string joined;
        for (const auto& node : nodes_) joined += (joined.empty() ? "" : ",") + node->url();
        return joined;
    }

    /// The index of the node named `name`, or nothing.
    [[nodiscard]] std::optional<std::size_t> index_of(const std::string& name) const {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (nodes_[i]->name() == name) return i;
        }
        return std::nullopt;
    }

    /// `$JS.API.STREAM.INFO.<stream>` as answered through the first running, unpaused node that answers, or
    /// nothing if none does (no stream leader, no such stream).
    [[nodiscard]] std::optional<nlohmann::json> stream_info(const std::string& stream) const {
        for (const auto& node : nodes_) {
            if (!node->running() || node->paused()) continue;
            if (auto info = nats_detail::js_api(node->url(), "$JS.API.STREAM.INFO." + stream)) return info;
        }
        return std::nullopt;
    }

    /// The index of the node that leads the JetStream stream `stream` now, or nothing (no leader yet).
    [[nodiscard]] std::optional<std::size_t> leader_of(const std::string& stream) const {
        const auto info = stream_info(stream);
        if (!info || !info->contains("cluster")) return std::nullopt;
        const auto& cluster = (*info)["cluster"];
        if (!cluster.contains("leader") || !cluster["leader"].is_string()) return std::nullopt;
        return index_of(cluster["leader"].get<std::string>());
    }

    /// Waits until `stream` has a leader (other than `not_this` if given); throws after `timeout`.
    std::size_t wait_for_leader(const std::string& stream, std::chrono::milliseconds timeout,
                                std::optional<std::size_t> not_this = std::nullopt) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        do {
            const auto leader = leader_of(stream);
            if (leader && leader != not_this) return *leader;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        } while (std::chrono::steady_clock::now() < deadline);
        throw std::runtime_error("JetStream stream '" + stream + "' has no leader after " +
                                 std::to_string(timeout.count()) + " ms");
    }

    /// Waits until `stream` has a leader and every replica reports itself current (a restarted node has
    /// caught up); throws after `timeout`.
    void wait_for_replicas_current(const std::string& stream, std::chrono::milliseconds timeout) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string last = "no answer";
        do {
            if (const auto info = stream_info(stream)) {
                last = info->contains("cluster") ? (*info)["cluster"].dump() : info->dump();
                if (replicas_current(*info)) return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        } while (std::chrono::steady_clock::now() < deadline);
        throw std::runtime_error("the replicas of JetStream stream '" + stream + "' are not current after " +
                                 std::to_string(timeout.count()) + " ms: " + last);
    }

    /// Each node's own view of the JetStream stream `stream` (from its `/jsz`): whether it runs, the stream
    /// leader it knows, and the messages and last sequence of its copy. For the messages of failed tests.
    [[nodiscard]] std::string describe(const std::string& stream) const {
        std::string out;
        for (const auto& node : nodes_) {
            out += node->name() + (node->running() ? (node->paused() ? " (paused)" : "") : " (killed)") + ": ";
            const auto report =
                node->running() && !node->paused() ? node->jsz("?streams=true") : std::optional<nlohmann::json>{};
            bool found = false;
            if (report && report->contains("account_details")) {
                for (const auto& account : (*report)["account_details"]) {
                    if (!account.contains("stream_detail")) continue;
                    for (const auto& detail : account["stream_detail"]) {
                        if (detail.value("name", "") != stream) continue;
                        found = true;
                        const auto& state = detail.contains("state") ? detail["state"] : nlohmann::json::object();
                        out +=
                            "leader " +
                            (detail.contains("cluster") ? detail["cluster"].value("leader", "?") : std::string("?")) +
                            ", messages " + std::to_string(state.value("messages", std::uint64_t{0})) +
                            ", last sequence " + std::to_string(state.value("last_seq", std::uint64_t{0}));
                    }
                }
            }
            if (!found) out += "no report";
            out += "\n";
        }
        return out;
    }

    /// A shell command that kills every node and removes their directories; see `NatsServer::release`.
    [[nodiscard]] std::string stop_command() const {
        std::string command;
        for (const auto& node : nodes_) command += (command.empty() ? "" : "; ") + node->stop_command();
        return command;
    }
    void release() noexcept {
        for (auto& node : nodes_) node->release();
    }

private:
    void start_nodes(std::size_t size, bool detached) {
        static std::atomic<int> counter{0};
        const std::string cluster = "orchestrix-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
        std::vector<int> cluster_ports;
        for (std::size_t i = 0; i < size; ++i) cluster_ports.push_back(nats_detail::free_port());
        for (std::size_t i = 0; i < size; ++i) {
            NatsServerConfig config;
            config.name = cluster + "-n" + std::to_string(i);
            config.cluster_port = cluster_ports[i];
            config.routes = cluster_ports;
            config.cluster_name = cluster;
            config.detached = detached;
            nodes_.push_back(std::make_unique<NatsServer>(config, false));
        }
        for (const auto& node : nodes_) node->wait_ready(std::chrono::milliseconds(60000));
    }

    bool replicas_current(const nlohmann::json& info) const {
        if (!info.contains("cluster")) return false;
        const auto& cluster = info["cluster"];
        if (!cluster.contains("leader") || !cluster.contains("replicas") || !cluster["replicas"].is_array()) {
            return false;
        }
        if (cluster["replicas"].size() + 1 != nodes_.size()) return false;
        for (const auto& replica : cluster["replicas"]) {
            if (!replica.value("current", false) || replica.value("offline", false)) return false;
        }
        return true;
    }

    std::vector<std::unique_ptr<NatsServer>> nodes_;
};

/// The single server this test process uses: the CTest fixture's if it is running, else one of its own.
inline std::string nats_test_url() {
    if (const char* state = std::getenv("ORCHESTRIX_TEST_NATS_STATE"); state != nullptr) {
        std::ifstream in(std::filesystem::path(state) / "url");
        std::string url;
        if (in && std::getline(in, url) && !url.empty()) return url;
    }
    static NatsServer own;
    return own.url();
}

/// The 3-node cluster this test process uses (its URLs, comma-separated): the CTest fixture's if it is
/// running, else one of its own.
inline std::string nats_test_cluster_urls() {
    if (const char* state = std::getenv("ORCHESTRIX_TEST_NATS_STATE"); state != nullptr) {
        std::ifstream in(std::filesystem::path(state) / "cluster_urls");
        std::string urls;
        if (in && std::getline(in, urls) && !urls.empty()) return urls;
    }
    static NatsCluster own;
    return own.urls();
}

/// A JetStream stream name no other call returns, in this process or another: each test store gets a
/// stream of its own on the shared servers.
inline std::string fresh_jetstream_stream_name() {
    static std::atomic<int> counter{0};
    return "orchestrix_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

} // namespace test_support
