#pragma once

// SQL run on a database file directly, past the store, as another program (or a damaged disk) would.

#include "support/catch.hpp"

#include <sqlite3.h>

#include <string>

namespace test_support {

/// Runs `sql` on the database file at `path` through a connection of its own; fails the test if it fails.
inline void raw_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    INFO(message);
    REQUIRE(rc == SQLITE_OK);
}

} // namespace test_support
