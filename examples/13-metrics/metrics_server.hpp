#pragma once

// A /metrics endpoint for Prometheus to scrape, served with cpp-httplib on a thread of its own: each GET writes
// the registry in the text exposition format.

#include <orchestrix/prometheus/metrics.hpp>

#include <httplib.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

namespace metrics_example {

class MetricsServer {
public:
    /// Serves `registry`, which must outlive the server, at `/metrics` on `host`; `port` 0 takes a free port.
    /// Throws `std::runtime_error` if it cannot listen there.
    MetricsServer(const orchestrix::prometheus::Registry& registry, const std::string& host, int port = 0)
        : registry_(registry) {
        server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
            response.set_content(registry_.serialize(), std::string(orchestrix::prometheus::text_content_type));
        });
        port_ = port == 0 ? server_.bind_to_any_port(host) : (server_.bind_to_port(host, port) ? port : -1);
        if (port_ <= 0) throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
        // Bound and listening: connections queue until the thread accepts them.
        thread_ = std::thread([this] {
            server_.listen_after_bind();
            finished_.store(true);
        });
    }
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;
    ~MetricsServer() { stop(); }

    /// The port it listens on.
    [[nodiscard]] int port() const noexcept { return port_; }

    /// Stops serving and waits for the server's thread.
    void stop() {
        if (!thread_.joinable()) return;
        // httplib's stop() does nothing before the server runs: wait until it does (or gave up).
        while (!server_.is_running() && !finished_.load()) std::this_thread::yield();
        server_.stop();
        thread_.join();
    }

private:
    const orchestrix::prometheus::Registry& registry_;
    httplib::Server server_;
    int port_ = 0;
    std::atomic<bool> finished_{false};
    std::thread thread_;
};

} // namespace metrics_example
