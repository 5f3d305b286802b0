// The CTest fixture that gives every PostgreSQL test process one shared throwaway cluster:
//   orchestrix_postgres_cluster start STATE_DIR   starts it, writes STATE_DIR/url and STATE_DIR/stop
//   orchestrix_postgres_cluster stop STATE_DIR    stops it and removes its files
// With ORCHESTRIX_SKIP_POSTGRES=1 both do nothing.

#include "support/fixture_state.hpp"
#include "support/postgres_cluster.hpp"

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
    if (test_support::postgres_skipped()) {
        std::cout << "ORCHESTRIX_SKIP_POSTGRES=1: no PostgreSQL cluster\n";
        return 0;
    }
    try {
        if (action == "start") {
            std::filesystem::create_directories(state);
            test_support::PostgresCluster cluster;
            std::ofstream(state / "stop") << cluster.stop_command() << "\n";
            std::ofstream(state / "url") << cluster.url() << "\n";
            std::cout << "PostgreSQL test cluster running at " << cluster.url() << "\n";
            cluster.release();
            return 0;
        }
        if (action == "stop") return test_support::run_stop_command(state, {"url"});
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    std::cerr << "unknown action '" << action << "'\n";
    return 2;
}
