#pragma once

#include <orchestrix/core/errors.hpp>

#include <string>
#include <utility>

namespace orchestrix {

/// PostgreSQL refused or failed an operation (a lost connection, a constraint, a permission).
/// `sqlstate()` is PostgreSQL's five-character error code ("" when the connection itself failed).
class PostgresError : public StoreError {
public:
    PostgresError(std::string sqlstate, const std::string& message)
        : StoreError(message), sqlstate_(std::move(sqlstate)) {}

    /// The SQLSTATE, e.g. "23505" for a unique violation, "57P01" when the server shuts down.
    [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }

private:
    std::string sqlstate_;
};

} // namespace orchestrix
