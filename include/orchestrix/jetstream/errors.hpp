#pragma once

#include <orchestrix/core/errors.hpp>

#include <string>
#include <utility>

namespace orchestrix {

/// NATS or JetStream refused or failed an operation: no server reachable, a request that timed out, a
/// stream that cannot be created, or a message in the store's stream that the store did not write.
/// `status()` is libnats' status text ("Timeout", "No Responders Available For Request", ...) and
/// `jetstream_code()` JetStream's API error code (0 when the server gave none). An append that throws it
/// may or may not have been stored; retrying it with the same event ids is safe (idempotent).
class JetStreamError : public StoreError {
public:
    JetStreamError(std::string status, int jetstream_code, const std::string& message, bool retryable = false)
        : StoreError(message), status_(std::move(status)), jetstream_code_(jetstream_code), retryable_(retryable) {}

    /// libnats' status text, or "" when the store itself found the problem.
    [[nodiscard]] const std::string& status() const noexcept { return status_; }
    /// JetStream's API error code (e.g. 10059: stream not found), or 0.
    [[nodiscard]] int jetstream_code() const noexcept { return jetstream_code_; }
    /// Whether the same call may succeed later: no answer in time, no server to answer (a leader election,
    /// a reconnect under way). The store has already retried it for `JetStreamOptions::retry_for`.
    [[nodiscard]] bool retryable() const noexcept { return retryable_; }

private:
    std::string status_;
    int jetstream_code_ = 0;
    bool retryable_ = false;
};

} // namespace orchestrix
