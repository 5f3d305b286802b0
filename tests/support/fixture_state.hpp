#pragma once

// What the CTest fixture programs of the test servers (PostgreSQL, nats-server) share: the `stop` action,
// which runs the shell command the `start` action wrote to STATE_DIR/stop and removes the state files.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

namespace test_support {

/// Removes `files` (and `stop`) from `state` and runs the command in `state/stop`, if any; 0 if it succeeded.
inline int run_stop_command(const std::filesystem::path& state, std::initializer_list<const char*> files) {
    std::ifstream in(state / "stop");
    std::stringstream command;
    command << in.rdbuf();
    for (const char* file : files) std::filesystem::remove(state / file);
    std::filesystem::remove(state / "stop");
    if (command.str().empty()) return 0;
    const std::string run = command.str() + " > /dev/null 2>&1";
    return std::system(run.c_str()) == 0 ? 0 : 1;
}

} // namespace test_support
