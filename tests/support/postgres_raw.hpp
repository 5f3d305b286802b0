#pragma once

// A libpq connection of a test's own, for what the store does not offer: holding a transaction open,
// writing or damaging rows past the store, reading the server's statistics.

#include "support/catch.hpp"

#include <libpq-fe.h>

#include <string>
#include <vector>

namespace test_support {

class RawConnection {
public:
    explicit RawConnection(const std::string& url) : c_(PQconnectdb(url.c_str())) {
        INFO(PQerrorMessage(c_));
        REQUIRE(PQstatus(c_) == CONNECTION_OK);
    }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;
    ~RawConnection() { PQfinish(c_); }

    // Runs `sql` (without parameters it may hold several statements); returns the first column of the first
    // row ("" if none). Fails the test if the server refuses it.
    std::string exec(const std::string& sql, const std::vector<std::string>& params = {}) {
        PGresult* r = nullptr;
        if (params.empty()) {
            r = PQexec(c_, sql.c_str());
        } else {
            std::vector<const char*> values;
            for (const auto& p : params) values.push_back(p.c_str());
            r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                             0);
        }
        const auto status = PQresultStatus(r);
        std::string first = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        const std::string error = PQresultErrorMessage(r);
        PQclear(r);
        INFO(sql << ": " << error);
        REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
        return first;
    }

    // Runs SQL of several statements.
    void script(const std::string& sql) { (void)exec(sql); }

    [[nodiscard]] PGconn* get() const noexcept { return c_; }

private:
    PGconn* c_;
};

} // namespace test_support
