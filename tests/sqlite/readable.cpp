// What append accepts, every reader can read: the SQLite store (tests/support/readable_contract.hpp).

#include <orchestrix/sqlite.hpp>

#include "support/catch.hpp"
#include "support/temp_dir.hpp"

#include <sqlite3.h>

#include <memory>
#include <string>
#include <tuple>

#include "support/readable_events.hpp"

namespace {

struct SqliteReadableFactory {
    using store_type = orchestrix::SqliteEventStore<readable::Events>;
    test_support::TempDir dir{"orchestrix-readable"};

    std::unique_ptr<store_type> make(orchestrix::JsonCodec<readable::Events> codec) {
        return std::make_unique<store_type>(dir.file("events.db"),
                                            orchestrix::SqliteOptions{orchestrix::SqliteSynchronous::normal, {}},
                                            std::move(codec));
    }

    std::string insert_raw(const readable::RawRow& row) {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(dir.file("events.db").c_str(), &db) == SQLITE_OK);
        sqlite3_stmt* stmt = nullptr;
        REQUIRE(sqlite3_prepare_v2(db,
                                   "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
                                   "payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
                                   -1, &stmt, nullptr) == SQLITE_OK);
        sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(row.position));
        sqlite3_bind_text(stmt, 2, row.stream_id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 3, static_cast<sqlite3_int64>(row.version));
        sqlite3_bind_text(stmt, 4, row.event_id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 5, row.type.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 6, row.schema_version);
        sqlite3_bind_text(stmt, 7, row.payload.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 8, row.metadata.c_str(), -1, SQLITE_TRANSIENT);
        const int rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        REQUIRE(rc == SQLITE_DONE);
        return row.payload;
    }
};

} // namespace

#define ORCHESTRIX_READABLE_STORES std::tuple<SqliteReadableFactory>
#include "support/readable_contract.hpp"
