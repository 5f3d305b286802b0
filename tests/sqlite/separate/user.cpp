// A file that uses a SQLite store compiled in another file (instance.cpp), through a repository: the calls
// behave as with a store compiled here. Its object file is checked by the test "sqlite separate
// compilation: the user's file compiles none of the store's code" (tests/sqlite/separate/no_store_code.cmake).

#include "sqlite/separate/ledger.hpp"

#include "support/catch.hpp"
#include "support/temp_dir.hpp"

#include <orchestrix/core/errors.hpp>

#include <string>
#include <variant>

TEST_CASE("sqlite separate compilation: a store compiled in another file appends, reads and decides") {
    test_support::TempDir dir;
    const std::string path = dir.file("ledger.db");
    {
        ledger::Store store(path);
        ledger::Ledgers ledgers(store);
        ledgers.execute("ledger-1", ledger::Open{"Ada"});
        ledgers.execute("ledger-1", ledger::Credit{40});
        ledgers.execute("ledger-1", ledger::Credit{2});
        CHECK(ledgers.load("ledger-1").balance() == 42);
        CHECK_THROWS_AS(ledgers.execute("ledger-2", ledger::Credit{1}), std::runtime_error);

        const auto events = store.read_stream("ledger-1");
        REQUIRE(events.size() == 3);
        CHECK(std::get<ledger::Opened>(events[0].event).owner == "Ada");
        CHECK(std::get<ledger::Credited>(events[2].event).amount == 2);
        CHECK_THROWS_AS(store.append("ledger-1", {ledger::Credited{5}}, orchestrix::ExpectedVersion::exact(2)),
                        orchestrix::ConcurrencyError);
    }
    // What was written is read back by a store opened again on the file.
    ledger::Store reopened(path);
    CHECK(reopened.stream_version("ledger-1") == 3);
    CHECK(ledger::Ledgers(reopened).load("ledger-1").balance() == 42);
}
