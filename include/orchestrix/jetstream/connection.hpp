#pragma once

// The libnats calls the JetStream store makes, wrapped: one connection with its JetStream context, owned
// messages, and errors turned into `JetStreamError`.

#include <orchestrix/jetstream/errors.hpp>

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace orchestrix::detail::jetstream {

/// No JetStream error code.
inline constexpr jsErrCode no_code = static_cast<jsErrCode>(0);

/// A libnats message, destroyed with it.
struct MessageDeleter {
    void operator()(natsMsg* message) const noexcept { natsMsg_Destroy(message); }
};
using Message = std::unique_ptr<natsMsg, MessageDeleter>;

/// The bytes of a message's body.
[[nodiscard]] inline std::string_view body(natsMsg* message) noexcept {
    const char* data = natsMsg_GetData(message);
    const int length = natsMsg_GetDataLength(message);
    return data == nullptr || length <= 0 ? std::string_view()
                                          : std::string_view(data, static_cast<std::size_t>(length));
}

/// Whether a failed call may have failed only for now: no answer in time, no server to answer (a leader
/// election, a reconnect), or a connection being re-established.
[[nodiscard]] inline bool transient(natsStatus status, jsErrCode code) noexcept {
    if (status == NATS_TIMEOUT || status == NATS_NO_RESPONDERS || status == NATS_CONNECTION_CLOSED ||
        status == NATS_CONNECTION_DISCONNECTED || status == NATS_STALE_CONNECTION || status == NATS_IO_ERROR ||
        status == NATS_NO_SERVER) {
        return true;
    }
    // JetStream not available for now: "temporarily unavailable", "cluster not assigned to this server",
    // "cluster can not handle request" (no leader yet), "incomplete results".
    return status == NATS_ERR && (code == JSClusterNotAvailErr || code == JSClusterNotAssignedErr ||
                                  code == JSClusterNotLeaderErr || code == JSClusterIncompleteErr);
}

/// Throws `JetStreamError` for a failed call: `what` says what was being done.
[[noreturn]] inline void fail(natsStatus status, jsErrCode code, const std::string& what) {
    std::string message = "JetStream: " + what + " failed: " + natsStatus_GetText(status);
    if (code != 0) message += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
    // The thread's last libnats error says more, when it is this failure's (it may be an earlier call's).
    natsStatus last_status = NATS_OK;
    const char* last = nats_GetLastError(&last_status);
    if (last_status == status && last != nullptr && *last != '\0' &&
        std::string_view(last) != natsStatus_GetText(status)) {
        message += ": ";
        message += last;
    }
    throw JetStreamError(natsStatus_GetText(status), static_cast<int>(code), message, transient(status, code));
}

/// One connection to a NATS server or cluster and its JetStream context. Thread-safe (libnats is).
class Connection {
public:
    /// Connects to `urls` (one URL or several, comma-separated). Reconnects forever while the object lives;
    /// a server that leaves two pings `ping_interval` apart unanswered (a stopped process, a partition) is
    /// left for another of the list.
    Connection(const std::string& urls, std::chrono::milliseconds request_timeout,
               std::chrono::milliseconds ping_interval = std::chrono::milliseconds(2000))
        : timeout_(request_timeout) {
        natsOptions* options = nullptr;
        natsStatus s = natsOptions_Create(&options);
        if (s != NATS_OK) fail(s, no_code, "create the connection options");
        std::vector<std::string> servers;
        std::size_t start = 0;
        while (start <= urls.size()) {
            const std::size_t comma = urls.find(',', start);
            const std::string url = urls.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!url.empty()) servers.push_back(url);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
        std::vector<const char*> pointers;
        pointers.reserve(servers.size());
        for (const auto& server : servers) pointers.push_back(server.c_str());
        if (s == NATS_OK) s = natsOptions_SetServers(options, pointers.data(), static_cast<int>(pointers.size()));
        if (s == NATS_OK) s = natsOptions_SetTimeout(options, static_cast<int64_t>(request_timeout.count()));
        if (s == NATS_OK) s = natsOptions_SetMaxReconnect(options, -1);
        if (s == NATS_OK) s = natsOptions_SetReconnectWait(options, 100);
        if (s == NATS_OK) s = natsOptions_SetPingInterval(options, static_cast<int64_t>(ping_interval.count()));
        if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(options, 2);
        if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(options, false, nullptr, nullptr);
        if (s == NATS_OK) s = natsConnection_Connect(&connection_, options);
        natsOptions_Destroy(options);
        if (s != NATS_OK) fail(s, no_code, "connect to " + (urls.empty() ? std::string("(no URL)") : urls));
        jsOptions js_options;
        jsOptions_Init(&js_options);
        js_options.Wait = static_cast<int64_t>(request_timeout.count());
        s = natsConnection_JetStream(&js_, connection_, &js_options);
        if (s != NATS_OK) {
            natsConnection_Destroy(connection_);
            fail(s, no_code, "open a JetStream context");
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() {
        jsCtx_Destroy(js_);
        natsConnection_Destroy(connection_);
    }

    [[nodiscard]] natsConnection* nats() const noexcept { return connection_; }
    [[nodiscard]] jsCtx* js() const noexcept { return js_; }
    [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return timeout_; }
    /// The largest message the server takes (its `max_payload`).
    [[nodiscard]] std::int64_t max_payload() const noexcept { return natsConnection_GetMaxPayload(connection_); }

private:
    natsConnection* connection_ = nullptr;
    jsCtx* js_ = nullptr;
    std::chrono::milliseconds timeout_;
};

} // namespace orchestrix::detail::jetstream
