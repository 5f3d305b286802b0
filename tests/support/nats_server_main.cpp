// The CTest fixture that gives every JetStream test process one shared single nats-server and one shared
// 3-node JetStream cluster:
//   orchestrix_nats_server start STATE_DIR   starts them, writes STATE_DIR/url, STATE_DIR/cluster_urls and
//                                            STATE_DIR/stop (a shell command that kills them and removes
//                                            their directories)
//   orchestrix_nats_server stop STATE_DIR    runs that command and removes the files

#include "support/fixture_state.hpp"
#include "support/nats_server.hpp"

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " start|stop STATE_DIR\n";
        return 2;
    }
    const std::string action = argv[1];
    const std::filesystem::path state = argv[2];
    try {
        if (action == "start") {
            std::filesystem::create_directories(state);
            test_support::NatsServerConfig config;
            config.detached = true; // the servers outlive this process
            test_support::NatsServer server(config);
            std::ofstream(state / "stop") << server.stop_command() << "\n";
            test_support::NatsCluster cluster(3, true);
            std::ofstream(state / "stop") << server.stop_command() << "; " << cluster.stop_command() << "\n";
            std::ofstream(state / "url") << server.url() << "\n";
            std::ofstream(state / "cluster_urls") << cluster.urls() << "\n";
            std::cout << "nats-server running at " << server.url() << ", a 3-node JetStream cluster at "
                      << cluster.urls() << "\n";
            server.release();
            cluster.release();
            return 0;
        }
        if (action == "stop") return test_support::run_stop_command(state, {"url", "cluster_urls"});
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    std::cerr << "unknown action '" << action << "'\n";
    return 2;
}
