#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace orchestrix {

/// Stream versions count events in a stream: the first event has version 1, and a stream that does not
/// exist (or has no events) is at version 0.
using stream_version_t = std::uint64_t;

/// Global positions order every event in a store: the first event ever appended has position 1.
using position_t = std::uint64_t;

/// The largest stream version or global position any store accepts. It is the largest value that a
/// signed 64-bit integer column (SQLite INTEGER, PostgreSQL BIGINT) can hold, so every store agrees.
inline constexpr std::uint64_t max_version = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// What an append expects of the stream it writes to: the optimistic-concurrency check.
///
/// - `any()`: no check.
/// - `no_stream()`: the stream must not exist yet (version 0).
/// - `stream_exists()`: the stream must have at least one event.
/// - `exact(n)`: the stream must be at version `n` exactly (`exact(0)` is the same as `no_stream()`).
class ExpectedVersion {
public:
    enum class Kind : std::uint8_t { any, no_stream, stream_exists, exact };

    [[nodiscard]] static constexpr ExpectedVersion any() noexcept { return ExpectedVersion{Kind::any, 0}; }
    [[nodiscard]] static constexpr ExpectedVersion no_stream() noexcept { return ExpectedVersion{Kind::no_stream, 0}; }
    [[nodiscard]] static constexpr ExpectedVersion stream_exists() noexcept {
        return ExpectedVersion{Kind::stream_exists, 0};
    }
    /// Throws `InvalidArgumentError` when `version` exceeds `max_version`. (Defined in core/errors.hpp, which
    /// this header includes at its end: the error's home needs `ExpectedVersion` for `ConcurrencyError`.)
    [[nodiscard]] static constexpr ExpectedVersion exact(stream_version_t version);

    [[nodiscard]] constexpr Kind kind() const noexcept { return kind_; }
    /// The expected version for `exact`; 0 otherwise.
    [[nodiscard]] constexpr stream_version_t value() const noexcept { return value_; }

    /// Whether a stream currently at `current` (0 = no stream) satisfies this expectation.
    [[nodiscard]] constexpr bool matches(stream_version_t current) const noexcept {
        switch (kind_) {
        case Kind::any:
            return true;
        case Kind::no_stream:
            return current == 0;
        case Kind::stream_exists:
            return current > 0;
        case Kind::exact:
            return current == value_;
        }
        return false;
    }

    friend constexpr bool operator==(const ExpectedVersion&, const ExpectedVersion&) = default;

private:
    constexpr ExpectedVersion(Kind kind, stream_version_t value) noexcept : kind_(kind), value_(value) {}

    Kind kind_;
    stream_version_t value_;
};

/// "any", "no stream", "stream exists" or "exactly 5": for error messages and logs.
[[nodiscard]] inline std::string to_string(ExpectedVersion expected) {
    switch (expected.kind()) {
    case ExpectedVersion::Kind::any:
        return "any";
    case ExpectedVersion::Kind::no_stream:
        return "no stream";
    case ExpectedVersion::Kind::stream_exists:
        return "stream exists";
    case ExpectedVersion::Kind::exact:
        return "exactly " + std::to_string(expected.value());
    }
    return "unknown";
}

} // namespace orchestrix

// The errors, and ExpectedVersion::exact, which throws one of them.
#include <orchestrix/core/errors.hpp>
