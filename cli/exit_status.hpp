#pragma once

// The exit statuses of the orchestrix inspector (docs/operations.md, "Inspector CLI").

namespace orchestrix_cli::exit_status {

inline constexpr int ok = 0;
/// `verify` found problems; or what was asked for (a stream, a dead letter) is not there.
inline constexpr int findings = 1;
inline constexpr int not_found = 1;
/// The command line is wrong (an unknown option, a missing argument, a PostgreSQL address in a build
/// without PostgreSQL).
inline constexpr int usage = 2;
/// No file at the SQLite path given (the inspector never creates one).
inline constexpr int store_not_found = 3;
/// The file is not an SQLite database.
inline constexpr int not_a_database = 4;
/// The database holds no orchestrix store, or one of a layout this program does not know.
inline constexpr int foreign_schema = 5;
/// The store is locked by another connection past --busy-timeout.
inline constexpr int locked = 6;
/// A malformed PostgreSQL URL or connection string.
inline constexpr int bad_address = 7;
/// The PostgreSQL server refused or did not answer the connection.
inline constexpr int unreachable = 8;
/// The database failed otherwise (an I/O error, a permission, a damaged file).
inline constexpr int store_error = 9;
/// An import file or line that cannot be read.
inline constexpr int bad_input = 10;

} // namespace orchestrix_cli::exit_status
