// Faults on the PostgreSQL store: the server terminates the appending backend while its transaction waits
// for the events table's lock (pg_terminate_backend, as an administrator or a failover would), or kills
// the store's idle pooled connection. The append reports a typed PostgresError, nothing of it is
// written, and retrying the same batch succeeds exactly once.

#include <orchestrix/postgres/event_store.hpp>

#include "support/catch.hpp"
#include "support/postgres_cluster.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::PostgresEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using orchestrix::ExpectedVersion;

// A plain libpq session: holds the lock, finds and terminates backends.
class Session {
public:
    explicit Session(const std::string& url) : c_(PQconnectdb(url.c_str())) {
        INFO(PQerrorMessage(c_));
        REQUIRE(PQstatus(c_) == CONNECTION_OK);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session() { PQfinish(c_); }

    // Runs `sql`; returns the first column of every row.
    std::vector<std::string> query(const std::string& sql) {
        PGresult* r = PQexec(c_, sql.c_str());
        const auto status = PQresultStatus(r);
        std::vector<std::string> column;
        if (status == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(r); ++i) column.emplace_back(PQgetvalue(r, i, 0));
        }
        const std::string error = PQresultErrorMessage(r);
        PQclear(r);
        INFO(sql << ": " << error);
        REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
        return column;
    }

private:
    PGconn* c_;
};

// The backends of the store under test: client connections to its database, other than the sessions'.
std::vector<std::string> store_backends(Session& admin, const std::string& locker_pid) {
    return admin.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
                       "backend_type = 'client backend' AND pid <> pg_backend_pid() AND pid <> " +
                       locker_pid);
}

} // namespace

TEST_CASE("postgres faults: a backend terminated mid-append writes nothing and the retry succeeds once") {
    const std::string url = test_support::fresh_postgres_database(true);
    Store store(url, orchestrix::PostgresOptions{1, true});
    Session admin(url);
    Session locker(url);
    const std::string locker_pid = locker.query("SELECT pg_backend_pid()").at(0);

    constexpr int rounds = 10;
    int kills_mid_append = 0;
    int kills_idle = 0;
    std::size_t acknowledged = 0;
    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        const std::string stream = "account-" + std::to_string(round);
        const std::vector<Envelope> batch{AccountOpened{stream, "owner"}, MoneyDeposited{stream, round}};

        // The appender queues behind our lock on the events table; terminate it while it waits.
        locker.query("BEGIN");
        locker.query("LOCK TABLE events IN EXCLUSIVE MODE");
        std::optional<std::string> error;
        bool typed = false;
        std::thread appender([&] {
            try {
                (void)store.append(stream, batch, ExpectedVersion::no_stream());
            } catch (const orchestrix::PostgresError& e) {
                typed = true;
                error = e.what();
            } catch (const std::exception& e) {
                error = e.what();
            }
        });
        std::vector<std::string> waiting;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (waiting.empty() && std::chrono::steady_clock::now() < deadline) {
            waiting =
                admin.query("SELECT pid FROM pg_stat_activity WHERE " + locker_pid + " = ANY (pg_blocking_pids(pid))");
            if (waiting.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        REQUIRE(waiting.size() == 1);
        REQUIRE(admin.query("SELECT pg_terminate_backend(" + waiting[0] + ")").at(0) == "t");
        appender.join();
        locker.query("ROLLBACK");
        REQUIRE(error.has_value());
        INFO(*error);
        CHECK(typed);
        ++kills_mid_append;
        REQUIRE(store.stream_version(stream) == 0); // nothing of the batch was written

        // The retry of the same batch writes it; a second retry is idempotent.
        const auto written = store.append(stream, batch, ExpectedVersion::no_stream());
        REQUIRE(written.written);
        acknowledged += batch.size();
        const auto again = store.append(stream, batch, ExpectedVersion::no_stream());
        CHECK_FALSE(again.written);
        CHECK(again.first_position == written.first_position);

        // Kill the store's idle pooled connection: the next call may fail once, then works again.
        const auto idle = store_backends(admin, locker_pid);
        REQUIRE(idle.size() == 1);
        REQUIRE(admin.query("SELECT pg_terminate_backend(" + idle[0] + ")").at(0) == "t");
        ++kills_idle;
        const std::vector<Envelope> next{MoneyDeposited{stream, 1000 + round}};
        bool first_failed = false;
        try {
            (void)store.append(stream, next, ExpectedVersion::exact(2));
        } catch (const orchestrix::PostgresError&) { // the connection was gone: ambiguous, so retry
            first_failed = true;
        }
        // The dead connection never reached the server: the retry writes the batch if the first call failed,
        // and is an idempotent no-op if it did not.
        CHECK(store.append(stream, next, ExpectedVersion::exact(2)).written == first_failed);
        acknowledged += next.size();
    }

    // Every acknowledged event is there exactly once, in a gapless global order.
    const auto all = store.read_all();
    REQUIRE(all.size() == acknowledged);
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].position == i + 1);
    for (int round = 0; round < rounds; ++round) CHECK(store.stream_version("account-" + std::to_string(round)) == 3);
    std::printf("postgres faults: %d backends terminated mid-append and %d idle connections killed; %zu acknowledged "
                "events, 0 lost, 0 duplicated\n",
                kills_mid_append, kills_idle, acknowledged);
}
