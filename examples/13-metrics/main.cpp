// 13-metrics: Prometheus metrics of an orchestrix application, served at /metrics.
// A PrometheusObserver is attached to the in-memory store, the repository, the bus and a projection; a known
// workload runs, and an HTTP server (cpp-httplib) serves the registry in the Prometheus text format.
//
//   example-13-metrics                 runs the workload, scrapes its own /metrics once, prints it and exits
//   example-13-metrics --serve [PORT]  runs the workload, then serves http://127.0.0.1:PORT/metrics (default
//                                      9464) until interrupted: curl http://127.0.0.1:9464/metrics

#include "bank.hpp"
#include "metrics_server.hpp"

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    const bool serve = argc > 1 && std::string(argv[1]) == "--serve";
    const int port = serve && argc > 2 ? std::atoi(argv[2]) : (serve ? 9464 : 0);

    orchestrix::prometheus::Registry registry;
    orchestrix::PrometheusObserver observer(registry);
    metrics_example::Bank bank(observer);
    metrics_example::run_workload(bank);
    std::cout << "alice: " << bank.balance("alice") << ", bob: " << bank.balance("bob") << std::endl;

    metrics_example::MetricsServer server(registry, "127.0.0.1", port);
    if (serve) {
        std::cout << "serving http://127.0.0.1:" << server.port() << "/metrics (Ctrl-C stops)" << std::endl;
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }

    // Scrape it once, as Prometheus would, and print what it serves.
    httplib::Client client("127.0.0.1", server.port());
    const auto response = client.Get("/metrics");
    if (!response || response->status != 200) {
        std::cerr << "scraping /metrics failed\n";
        return 1;
    }
    std::cout << "GET /metrics (" << response->get_header_value("Content-Type") << "):\n" << response->body;
    return response->body.find("orchestrix_appends_total{store=\"memory\",outcome=\"written\"} 6") == std::string::npos
               ? 1
               : 0;
}
