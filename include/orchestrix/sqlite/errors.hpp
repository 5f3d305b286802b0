#pragma once

#include <orchestrix/core/errors.hpp>

#include <string>

namespace orchestrix {

/// SQLite refused or failed an operation (I/O error, a full disk, a locked or corrupt database file).
/// `code()` is SQLite's extended result code (e.g. `SQLITE_BUSY`, `SQLITE_IOERR_FSYNC`).
class SqliteError : public StoreError {
public:
    SqliteError(int code, const std::string& message) : StoreError(message), code_(code) {}

    /// SQLite's extended result code.
    [[nodiscard]] int code() const noexcept { return code_; }
    /// The primary result code (`code() & 0xff`), e.g. `SQLITE_CONSTRAINT` for every constraint failure.
    [[nodiscard]] int primary_code() const noexcept { return code_ & 0xff; }

private:
    int code_;
};

} // namespace orchestrix
