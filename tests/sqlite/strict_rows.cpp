// Stored rows read by the SQLite store stay strictly decoded: a damaged payload or metadata column is refused
// with the typed error naming the row, whichever path (the one-pass read or nlohmann's parser) reads it, and
// rows in an unusual but valid form read back the same events.

#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/sqlite_raw.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <string>
#include <variant>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using orchestrix::ExpectedVersion;
using Kind = orchestrix::DecodeError::Kind;

using test_support::raw_exec;

// SQL text literal of `text` (single quotes doubled).
std::string quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        out.push_back(c);
        if (c == '\'') out.push_back('\'');
    }
    return out + "'";
}

struct Damaged {
    test_support::TempDir dir{"orchestrix-strict-rows"};
    std::string path = dir.file("events.db");
    Store store{path};
    std::string id; // the event id of the row at position 2

    Damaged() {
        REQUIRE(store
                    .append("acc", {AccountOpened{"acc", "Ada"}, MoneyDeposited{"acc", 5}, MoneyDeposited{"acc", 6}},
                            ExpectedVersion::no_stream())
                    .written);
        id = store.read_stream("acc")[1].metadata.event_id.to_string();
    }

    void set(const std::string& column, const std::string& text) {
        raw_exec(path, "UPDATE events SET " + column + " = " + quoted(text) + " WHERE position = 2");
    }

    // Replays the stream as a repository does (visit_stream) and expects the row at position 2 refused.
    void expect_refused(Kind kind, const std::string& json_path) {
        try {
            (void)store.visit_stream("acc", 1, [](const orchestrix::RecordedEventView<AccountEvent>&) {});
            FAIL("a damaged row was decoded");
        } catch (const orchestrix::StoredEventDecodeError& e) {
            CHECK(e.position() == 2);
            CHECK(e.stream_id() == "acc");
            CHECK(e.version() == 2);
            CHECK(e.kind() == kind);
            CHECK(e.json_path() == json_path);
        }
    }
};

} // namespace

TEST_CASE("sqlite strict rows: a duplicate key in the metadata or the payload is refused") {
    Damaged db;
    SECTION("metadata") {
        db.set("metadata", R"({"causation_id":"","correlation_id":"","event_id":")" + db.id + R"(","event_id":")" +
                               db.id + R"("})");
        db.expect_refused(Kind::duplicate_key, "/metadata/event_id");
    }
    SECTION("payload") {
        db.set("payload", R"({"account_id":"acc","amount":5,"amount":5})");
        db.expect_refused(Kind::duplicate_key, "/payload/amount");
    }
}

TEST_CASE("sqlite strict rows: an unknown field in the metadata or the payload is refused") {
    Damaged db;
    SECTION("metadata") {
        db.set("metadata", R"({"causation_id":"","correlation_id":"","event_id":")" + db.id + R"(","user":"x"})");
        db.expect_refused(Kind::unknown_field, "/metadata/user");
    }
    SECTION("payload") {
        db.set("payload", R"({"account_id":"acc","amount":5,"currency":"EUR"})");
        db.expect_refused(Kind::unknown_field, "/payload/currency");
    }
}

TEST_CASE("sqlite strict rows: a value of the wrong type in the metadata or the payload is refused") {
    Damaged db;
    SECTION("metadata") {
        db.set("metadata", R"({"causation_id":"","correlation_id":["x"],"event_id":")" + db.id + R"("})");
        db.expect_refused(Kind::wrong_type, "/metadata/correlation_id");
    }
    SECTION("payload") {
        db.set("payload", R"({"account_id":"acc","amount":"5"})");
        db.expect_refused(Kind::wrong_type, "/payload/amount");
    }
}

TEST_CASE("sqlite strict rows: truncated metadata or payload text is refused") {
    Damaged db;
    SECTION("metadata") {
        db.set("metadata", R"({"causation_id":"","correlation_id":"","event_id":")" + db.id);
        db.expect_refused(Kind::malformed_json, "/metadata/event_id");
    }
    SECTION("payload") {
        db.set("payload", R"({"account_id":"acc","amount":5)");
        db.expect_refused(Kind::malformed_json, "/payload/amount");
    }
}

TEST_CASE("sqlite strict rows: the event id column must be the metadata's id in its canonical lower-case form") {
    Damaged db;
    std::string upper = db.id;
    for (char& c : upper) c = c >= 'a' && c <= 'f' ? static_cast<char>(c - 'a' + 'A') : c;
    REQUIRE(upper != db.id);
    db.set("event_id", upper);
    db.expect_refused(Kind::invalid_value, "/metadata/event_id");
}

TEST_CASE("sqlite strict rows: valid rows in another form than the store writes read back the same events") {
    Damaged db;
    const auto before = db.store.read_stream("acc");
    db.set("metadata", " {\n  \"event_id\" : \"" + db.id + "\" ,\"correlation_id\":null, \"causation_id\" : \"\" }\n");
    db.set("payload", R"( { "amount" : 5 , "account_id" : "\u0061cc" } )");
    const auto after = db.store.read_stream("acc");
    REQUIRE(after.size() == 3);
    CHECK(after[1].event == before[1].event);
    CHECK(after[1].metadata == before[1].metadata);
    CHECK(std::get<MoneyDeposited>(after[1].event) == MoneyDeposited{"acc", 5});
}
