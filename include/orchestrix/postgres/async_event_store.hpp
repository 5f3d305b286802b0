#pragma once

// The PostgreSQL event store with an asynchronous face: libpq's non-blocking API, a pool of connections driven
// by one I/O thread (target orchestrix::postgres).

#include <orchestrix/async/completion.hpp>
#include <orchestrix/async/errors.hpp>
#include <orchestrix/async/event_store.hpp>
#include <orchestrix/async/executor.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/postgres/connection.hpp>
#include <orchestrix/postgres/errors.hpp>
#include <orchestrix/postgres/event_store.hpp>

#include <libpq-fe.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace orchestrix {

/// Options of `AsyncPostgresEventStore`.
struct AsyncPostgresOptions {
    /// The most connections the store opens (on demand, without blocking the I/O thread).
    std::size_t pool_size = 4;
    /// The most operations in flight on one connection at once (libpq's pipeline mode; each operation is its
    /// own transaction, ended by its own sync point, so one's failure touches no other). 1 sends an operation
    /// only to a connection with nothing in flight.
    std::size_t pipeline_depth = 1;
    /// Create the tables and the append function if they are missing (as `PostgresOptions::create_schema`).
    bool create_schema = true;
};

namespace detail::postgres {

/// One operation of the asynchronous store: a chain of statements, each sent when the one before has its
/// result. Owned by the I/O loop from submission to completion.
class AsyncOperation {
public:
    explicit AsyncOperation(std::string what) : description(std::move(what)) {}
    AsyncOperation(const AsyncOperation&) = delete;
    AsyncOperation& operator=(const AsyncOperation&) = delete;
    virtual ~AsyncOperation() = default;

    /// The step to send next.
    Statement statement{};
    /// Whether the step may commit (an append's call of the append function): what a broken connection leaves
    /// unknown.
    bool may_commit = false;
    /// What it is, for `OperationCancelledError` ("append to stream 'x'").
    std::string description{};
    /// Set by the operation's stop token (any thread).
    std::atomic<bool> cancel_requested{false};
    /// Registered on the caller's stop token.
    std::optional<std::stop_callback<std::function<void()>>> on_stop{};

    // The I/O thread's bookkeeping.
    std::uint64_t id = 0;
    void* sent_on = nullptr; // the connection its step is in flight on
    bool cancel_issued = false;
    Result step_result{};
    std::exception_ptr step_error{};
    std::string step_sqlstate{};

    /// The step's result arrived: the completion's value, set by `deliver`, or the next step set up (returns
    /// false). Throws the operation's error.
    virtual bool advance(Result& result) = 0;
    /// Makes the completion ready with what `advance` produced (true) or `error`.
    virtual void deliver(std::exception_ptr error) noexcept = 0;
};

template <class T>
class TypedOperation final : public AsyncOperation {
public:
    /// A step's handler: the value, or nothing after setting up the next step (`statement`, `step`).
    using Step = std::function<std::optional<T>(Result&, TypedOperation&)>;

    explicit TypedOperation(std::string what) : AsyncOperation(std::move(what)) {}

    Step step{};

    [[nodiscard]] Completion<T> completion() { return source_.completion(); }

    bool advance(Result& result) override {
        Step current = std::move(step);
        std::optional<T> v = current(result, *this);
        if (!v) return false;
        value_ = std::move(v);
        return true;
    }

    void deliver(std::exception_ptr error) noexcept override {
        try {
            if (error) {
                source_.set_exception(std::move(error));
            } else {
                source_.set_value(std::move(*value_));
            }
        } catch (...) { // a continuation that throws: nothing left to tell
        }
    }

private:
    CompletionSource<T> source_{};
    std::optional<T> value_{};
};

/// The error PostgreSQL reported for a statement, as the blocking store's `Connection` reports it.
[[nodiscard]] inline PostgresError statement_error(const PGresult* result, const PGconn* conn, std::string_view doing) {
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const char* text = result != nullptr ? PQresultErrorMessage(result) : nullptr;
    std::string detail = text != nullptr && *text != '\0' ? text : PQerrorMessage(conn);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    return PostgresError(state != nullptr ? state : "", "PostgreSQL failed to " + std::string(doing) + ": " + detail);
}

/// Up to `capacity` non-blocking connections to one URL and the one thread that drives them: it takes the
/// operations submitted from any thread, sends each step on a connection (several in flight on one in
/// pipeline mode, up to `depth`), reads the results as they arrive, and completes the operations. Opens
/// connections on demand with `PQconnectStart`, and again after one broke. A cancellation of an operation in
/// flight sends `PQcancel` from a thread of its own (libpq 15 has no non-blocking cancel).
class AsyncPool {
public:
    AsyncPool(std::string url, std::size_t capacity, std::size_t depth)
        : url_(std::move(url)), depth_(depth), slots_(capacity) {
        int fds[2] = {-1, -1};
        if (::pipe(fds) != 0) throw PostgresError({}, "cannot create the wake-up pipe of the asynchronous store");
        wake_read_ = fds[0];
        wake_write_ = fds[1];
        for (const int fd : fds) {
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        thread_ = std::jthread([this] { run(); });
    }

    AsyncPool(const AsyncPool&) = delete;
    AsyncPool& operator=(const AsyncPool&) = delete;

    ~AsyncPool() {
        shutdown();
        ::close(wake_read_);
        ::close(wake_write_);
    }

    /// Hands `op` to the I/O thread; false (and `op` untouched) after `shutdown`. `stop` cancels it.
    bool submit(std::unique_ptr<AsyncOperation>& op, const std::stop_token& stop) {
        op->id = next_id_.fetch_add(1) + 1;
        if (stop.stop_possible()) {
            AsyncOperation* raw = op.get();
            raw->on_stop.emplace(stop, std::function<void()>([this, raw] {
                                     raw->cancel_requested.store(true);
                                     request_cancel(raw);
                                 }));
        }
        {
            std::lock_guard lock(mutex_);
            if (closing_) {
                op->on_stop.reset();
                return false;
            }
            inbox_.push_back(std::move(op));
        }
        wake();
        return true;
    }

    /// Lets every accepted operation finish, then stops the I/O thread and closes the connections. Idempotent.
    void shutdown() {
        {
            std::lock_guard lock(mutex_);
            closing_ = true;
        }
        wake();
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
        canceller_.shutdown();
    }

    [[nodiscard]] const std::string& url() const noexcept { return url_; }

private:
    enum class SlotState : std::uint8_t { closed, connecting, ready };
    enum class EntryKind : std::uint8_t { prepare, query, sync };

    // A result the connection owes: of a prepare, a query, or a sync point (one per operation step).
    struct Entry {
        EntryKind kind = EntryKind::query;
        AsyncOperation* op = nullptr;
        std::string name{};
    };

    struct Slot {
        PGconn* conn = nullptr;
        SlotState state = SlotState::closed;
        PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
        std::deque<Entry> owed{};
        std::set<std::string> prepared{};
        std::deque<AsyncOperation*> in_flight{}; // in the order sent
        bool flush_pending = false;
        std::size_t cancels = 0; // PQcancel requests sent on this connection
    };

    void wake() noexcept {
        const char byte = 1;
        [[maybe_unused]] const auto written = ::write(wake_write_, &byte, 1); // a full pipe wakes the loop anyway
    }

    void request_cancel(AsyncOperation* op) {
        {
            std::lock_guard lock(mutex_);
            cancels_.push_back(op->id);
        }
        wake();
    }

    // --- the I/O thread ----------------------------------------------------------------------------------

    void run() {
        std::vector<pollfd> fds;
        std::vector<Slot*> polled;
        for (;;) {
            take_inbox();
            dispatch();
            bool closing = false;
            {
                std::lock_guard lock(mutex_);
                closing = closing_ && inbox_.empty();
            }
            if (closing && live_.empty()) break;
            fds.clear();
            polled.clear();
            fds.push_back(pollfd{wake_read_, POLLIN, 0});
            for (Slot& s : slots_) {
                short events = 0;
                if (s.state == SlotState::connecting) {
                    events = s.polling == PGRES_POLLING_READING ? POLLIN : POLLOUT;
                } else if (s.state == SlotState::ready) {
                    events = static_cast<short>(POLLIN | (s.flush_pending ? POLLOUT : 0));
                } else {
                    continue;
                }
                fds.push_back(pollfd{PQsocket(s.conn), events, 0});
                polled.push_back(&s);
            }
            if (::poll(fds.data(), static_cast<nfds_t>(fds.size()), -1) < 0 && errno != EINTR) {
                fail_everything("poll() failed");
                continue;
            }
            if (fds[0].revents != 0) {
                char buffer[256];
                while (::read(wake_read_, buffer, sizeof buffer) > 0) {
                }
            }
            for (std::size_t i = 1; i < fds.size(); ++i) {
                if (fds[i].revents == 0) continue;
                Slot& s = *polled[i - 1];
                if (s.state == SlotState::connecting) {
                    continue_connecting(s);
                } else if (s.state == SlotState::ready) {
                    service(s, fds[i].revents);
                }
            }
        }
        for (Slot& s : slots_) close(s);
    }

    void take_inbox() {
        std::vector<std::unique_ptr<AsyncOperation>> ops;
        std::vector<std::uint64_t> cancels;
        {
            std::lock_guard lock(mutex_);
            ops.swap(inbox_);
            cancels.swap(cancels_);
        }
        for (auto& op : ops) {
            AsyncOperation* raw = op.get();
            live_.emplace(raw->id, std::move(op));
            queue_.push_back(raw);
            if (raw->cancel_requested.load()) cancel(*raw); // stopped while it was being submitted
        }
        for (const std::uint64_t id : cancels) {
            const auto found = live_.find(id);
            if (found != live_.end()) cancel(*found->second);
        }
    }

    // A stop was requested: an operation not sent is dropped; one in flight gets a PQcancel once it is the one
    // its connection's backend runs (an earlier one in the pipeline would be hit otherwise).
    void cancel(AsyncOperation& op) {
        if (op.sent_on == nullptr) {
            const auto queued = std::find(queue_.begin(), queue_.end(), &op);
            if (queued != queue_.end()) queue_.erase(queued);
            finish(op.id, failure_of<OperationCancelledError>(op.description,
                                                              OperationCancelledError::Outcome::not_committed));
            return;
        }
        issue_pending_cancel(*static_cast<Slot*>(op.sent_on));
    }

    void issue_pending_cancel(Slot& s) {
        if (s.in_flight.empty() || s.state != SlotState::ready) return;
        AsyncOperation& head = *s.in_flight.front();
        if (!head.cancel_requested.load() || head.cancel_issued) return;
        head.cancel_issued = true;
        ++s.cancels;
        PGcancel* request = PQgetCancel(s.conn);
        if (request == nullptr) return;
        (void)canceller_.submit(
            [request] {
                char error[256];
                (void)PQcancel(request, error, static_cast<int>(sizeof error));
                PQfreeCancel(request);
                return 0;
            },
            [request] {
                PQfreeCancel(request);
                return StoreError("the asynchronous PostgreSQL store has been shut down");
            });
    }

    // Sends waiting steps where a connection has room, and opens a connection where none has.
    void dispatch() {
        while (!queue_.empty()) {
            Slot* best = nullptr;
            bool connecting = false;
            Slot* closed = nullptr;
            for (Slot& s : slots_) {
                if (s.state == SlotState::ready && s.in_flight.size() < depth_ &&
                    (best == nullptr || s.in_flight.size() < best->in_flight.size())) {
                    best = &s;
                }
                if (s.state == SlotState::connecting) connecting = true;
                if (s.state == SlotState::closed && closed == nullptr) closed = &s;
            }
            const bool grow = best == nullptr || (!best->in_flight.empty() && !connect_refused_);
            if (grow && closed != nullptr && !connecting) {
                start_connecting(*closed);
                continue; // it may have failed at once
            }
            if (best == nullptr) return;
            AsyncOperation* op = queue_.front();
            queue_.pop_front();
            send(*best, *op);
        }
    }

    void start_connecting(Slot& s) {
        s.conn = PQconnectStart(url_.c_str());
        s.state = SlotState::connecting;
        s.polling = PGRES_POLLING_WRITING;
        if (s.conn == nullptr || PQstatus(s.conn) == CONNECTION_BAD) connect_failed(s);
    }

    void continue_connecting(Slot& s) {
        s.polling = PQconnectPoll(s.conn);
        if (s.polling == PGRES_POLLING_FAILED) {
            connect_failed(s);
        } else if (s.polling == PGRES_POLLING_OK) {
            PQsetNoticeProcessor(
                s.conn, [](void*, const char*) {}, nullptr);
            if (PQsetnonblocking(s.conn, 1) != 0 || PQenterPipelineMode(s.conn) != 1) {
                connect_failed(s);
                return;
            }
            s.state = SlotState::ready;
        }
    }

    // A connection could not be opened: if no other can serve, the oldest waiting operation fails with the
    // blocking store's error (the others try again), so that nothing waits for a server that is not there.
    void connect_failed(Slot& s) {
        std::string message = s.conn != nullptr ? PQerrorMessage(s.conn) : "libpq could not allocate a connection";
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        close(s);
        const bool others =
            std::any_of(slots_.begin(), slots_.end(), [](const Slot& o) { return o.state != SlotState::closed; });
        if (others) connect_refused_ = true; // the server may be at its limit: grow again after a step ends
        if (others || queue_.empty()) return;
        AsyncOperation* op = queue_.front();
        queue_.pop_front();
        finish(op->id, failure_of<PostgresError>(std::string(), "cannot connect to PostgreSQL: " + message));
    }

    void send(Slot& s, AsyncOperation& op) {
        const Statement& st = op.statement;
        const auto values = st.params.pointers();
        const auto lengths = st.params.lengths();
        const std::vector<int> formats(values.size(), 1);
        op.sent_on = &s;
        op.step_error = nullptr;
        op.step_sqlstate.clear();
        op.cancel_issued = false;
        s.in_flight.push_back(&op);
        bool ok = true;
        if (!st.name.empty() && s.prepared.count(st.name) == 0) {
            ok = PQsendPrepare(s.conn, st.name.c_str(), st.sql.c_str(), static_cast<int>(st.types.size()),
                               st.types.data()) == 1;
            s.owed.push_back(Entry{EntryKind::prepare, &op, st.name});
            s.prepared.insert(st.name);
        }
        if (ok) {
            ok = (st.name.empty() ? PQsendQueryParams(s.conn, st.sql.c_str(), st.params.count(), st.types.data(),
                                                      values.data(), lengths.data(), formats.data(), 0)
                                  : PQsendQueryPrepared(s.conn, st.name.c_str(), st.params.count(), values.data(),
                                                        lengths.data(), formats.data(), 0)) == 1;
            s.owed.push_back(Entry{EntryKind::query, &op, {}});
        }
        if (ok) {
            ok = PQpipelineSync(s.conn) == 1;
            s.owed.push_back(Entry{EntryKind::sync, &op, {}});
        }
        if (ok) ok = flush(s);
        if (!ok) broken(s);
    }

    bool flush(Slot& s) {
        const int pending = PQflush(s.conn);
        s.flush_pending = pending == 1;
        return pending >= 0;
    }

    void service(Slot& s, short revents) {
        if ((revents & POLLOUT) != 0 && !flush(s)) {
            broken(s);
            return;
        }
        if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            const bool consumed = PQconsumeInput(s.conn) == 1;
            read_results(s);
            if (s.state != SlotState::ready) return;
            if (!consumed || PQstatus(s.conn) == CONNECTION_BAD) broken(s);
        }
    }

    void read_results(Slot& s) {
        while (s.state == SlotState::ready && !s.owed.empty() && PQisBusy(s.conn) == 0) {
            const Entry entry = s.owed.front();
            PGresult* raw = PQgetResult(s.conn);
            if (entry.kind == EntryKind::sync) {
                if (raw == nullptr) return; // the sync point has not arrived
                const bool synced = PQresultStatus(raw) == PGRES_PIPELINE_SYNC;
                PQclear(raw);
                if (!synced) {
                    if (PQstatus(s.conn) == CONNECTION_BAD) return; // the caller finds it broken
                    continue;                                       // a stray result; the sync point comes next
                }
                s.owed.pop_front();
                step_done(s, *entry.op);
                continue;
            }
            if (raw == nullptr) { // the end of this statement's results
                s.owed.pop_front();
                continue;
            }
            Result result(raw);
            AsyncOperation& op = *entry.op;
            const auto status = PQresultStatus(raw);
            if (entry.kind == EntryKind::prepare) {
                if (status != PGRES_COMMAND_OK) {
                    s.prepared.erase(entry.name);
                    record_error(op, raw, s, "prepare " + entry.name);
                }
            } else if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
                op.step_result = std::move(result);
            } else if (status != PGRES_PIPELINE_ABORTED || !op.step_error) {
                record_error(op, raw, s, op.statement.doing);
            }
        }
    }

    static void record_error(AsyncOperation& op, const PGresult* raw, const Slot& s, std::string_view doing) {
        if (op.step_error) return;
        PostgresError error = statement_error(raw, s.conn, doing);
        op.step_sqlstate = error.sqlstate();
        op.step_error = std::make_exception_ptr(std::move(error));
    }

    // The step's sync point arrived: its result or error is complete.
    void step_done(Slot& s, AsyncOperation& op) {
        connect_refused_ = false;
        s.in_flight.pop_front();
        op.sent_on = nullptr;
        issue_pending_cancel(s);
        if (op.step_error) {
            const bool cancelled_by_server = op.step_sqlstate == "57014";
            if (cancelled_by_server && !op.cancel_requested.load() && s.cancels > 0) {
                // Hit by a cancel meant for another operation on this connection: it did not take effect; send
                // it again.
                queue_.push_front(&op);
                return;
            }
            if (cancelled_by_server && op.cancel_requested.load()) {
                finish(op.id, failure_of<OperationCancelledError>(op.description,
                                                                  OperationCancelledError::Outcome::not_committed));
                return;
            }
            finish(op.id, std::exchange(op.step_error, nullptr)); // the completion's alone from now on
            return;
        }
        Result result = std::move(op.step_result);
        bool done = false;
        std::exception_ptr failure;
        try {
            done = op.advance(result);
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) { // delivered once the handler above let go of it: the completion's alone from now on
            finish(op.id, std::move(failure));
            return;
        }
        if (done) {
            finish(op.id, nullptr);
        } else if (op.cancel_requested.load()) { // between steps: the step before took no effect
            finish(op.id, failure_of<OperationCancelledError>(op.description,
                                                              OperationCancelledError::Outcome::not_committed));
        } else {
            queue_.push_front(&op);
        }
    }

    // The connection broke: every operation in flight on it fails (a cancelled one reports whether it may have
    // committed); later operations get a new connection.
    void broken(Slot& s) {
        std::string message = PQerrorMessage(s.conn);
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        std::deque<AsyncOperation*> affected = std::move(s.in_flight);
        s.in_flight.clear();
        s.owed.clear();
        close(s);
        for (AsyncOperation* op : affected) {
            op->sent_on = nullptr;
            std::exception_ptr error;
            if (op->cancel_requested.load()) {
                error = std::make_exception_ptr(OperationCancelledError(
                    op->description, op->may_commit ? OperationCancelledError::Outcome::unknown
                                                    : OperationCancelledError::Outcome::not_committed));
            } else if (op->step_error) {
                error = std::exchange(op->step_error, nullptr);
            } else {
                error = std::make_exception_ptr(
                    PostgresError({}, "PostgreSQL failed to " + op->statement.doing + ": " + message));
            }
            finish(op->id, std::move(error));
        }
    }

    void close(Slot& s) {
        if (s.conn != nullptr) PQfinish(s.conn);
        s.conn = nullptr;
        s.state = SlotState::closed;
        s.owed.clear();
        s.prepared.clear();
        s.in_flight.clear();
        s.flush_pending = false;
        s.cancels = 0;
    }

    void fail_everything(const std::string& why) {
        for (Slot& s : slots_) {
            if (s.state == SlotState::ready) broken(s);
        }
        while (!queue_.empty()) {
            AsyncOperation* op = queue_.front();
            queue_.pop_front();
            finish(op->id, failure_of<PostgresError>(std::string(), why));
        }
    }

    // `error` as the completion's failure, made here so that the I/O thread keeps no share of it (nor of its
    // message) once the completion is set: the consumer alone lets it go.
    template <class E, class... Args>
    static std::exception_ptr failure_of(Args&&... args) {
        return std::make_exception_ptr(E(std::forward<Args>(args)...));
    }

    // Completes the operation (its continuation runs here, on the I/O thread) and lets it go.
    void finish(std::uint64_t id, std::exception_ptr error) {
        const auto found = live_.find(id);
        if (found == live_.end()) return;
        std::unique_ptr<AsyncOperation> op = std::move(found->second);
        live_.erase(found);
        op->on_stop.reset(); // no cancellation from now on
        op->deliver(std::move(error));
    }

    std::string url_;
    std::size_t depth_;
    std::vector<Slot> slots_;
    int wake_read_ = -1;
    int wake_write_ = -1;

    std::atomic<std::uint64_t> next_id_{0};
    std::mutex mutex_; // guards inbox_, cancels_, closing_
    std::vector<std::unique_ptr<AsyncOperation>> inbox_;
    std::vector<std::uint64_t> cancels_;
    bool closing_ = false;

    // The I/O thread's own.
    std::unordered_map<std::uint64_t, std::unique_ptr<AsyncOperation>> live_;
    std::deque<AsyncOperation*> queue_; // steps waiting for a connection, oldest first
    bool connect_refused_ = false;      // the last connection attempt failed while others were open

    detail::Executor canceller_{1};
    std::jthread thread_; // last: started when everything else exists
};

} // namespace detail::postgres

/// `PostgresEventStore`'s event store with an asynchronous face, on libpq's non-blocking API: every operation
/// returns at once with a `Completion` (an `async_event_store`).
///
///     orchestrix::AsyncPostgresEventStore<UserEvent> store("postgresql://app@db/bank");
///     AppendResult r = co_await store.append_async("user-1", {UserCreated{...}}, ExpectedVersion::no_stream());
///
/// - The same tables, the same server-side functions (`orchestrix_append`, `orchestrix_append_tagged` for
///   tagged events), the same statements and the same typed errors as `PostgresEventStore`, delivered through
///   the completion; an idempotent retry's lookup of the stored events is a further step of the same operation.
/// - One I/O thread drives a pool of up to `AsyncPostgresOptions::pool_size` non-blocking connections with
///   `poll()`, opened on demand; `pipeline_depth` above 1 queues several operations on one connection (pipeline
///   mode), each its own transaction. The constructor blocks (it connects once and creates the schema); nothing
///   after it does. Events are validated and encoded on the calling thread.
/// - Continuations of the completions run on the I/O thread, as do the decoding of the rows read: a
///   continuation must not block (waiting on another of this store's completions there never ends).
/// - Cancellation, through the trailing `std::stop_token`: before the operation is sent it completes with
///   `OperationCancelledError` (`not_committed`) and nothing is sent; after, a cancel request goes to the server
///   (`PQcancel`, from a thread of its own) and the operation reports what happened: its normal result if it
///   completed first (an append that committed), `not_committed` if the server cancelled it (SQLSTATE 57014),
///   `unknown` if the connection broke before an answer.
/// - A broken connection (server restart, terminated backend) fails the operations in flight on it with
///   `PostgresError`, as the blocking store's call would fail; later operations get a new connection.
/// - `shutdown()` (also run by the destructor) lets every accepted operation finish; later ones complete with
///   `StoreError`.
template <event_variant Events, class Codec = JsonCodec<Events>>
class AsyncPostgresEventStore {
    static_assert(event_codec<Codec, Events>,
                  "orchestrix: AsyncPostgresEventStore's Codec must model orchestrix::event_codec, as "
                  "JsonCodec<Events> does");

public:
    using event_type = Events;
    using codec_type = Codec;
    using envelope_type = EventEnvelope<Events>;
    using recorded_type = RecordedEvent<Events>;

    /// Connects to the database at `url` (as `PostgresEventStore`), creates the schema if asked, and starts the
    /// I/O thread. Throws `PostgresError`, or `InvalidArgumentError` for a pool size or pipeline depth of 0.
    explicit AsyncPostgresEventStore(std::string url, AsyncPostgresOptions options = {}, Codec codec = Codec{})
        : codec_(std::move(codec)),
          pool_(prepared_url(std::move(url), options), options.pool_size, options.pipeline_depth) {}

    AsyncPostgresEventStore(const AsyncPostgresEventStore&) = delete;
    AsyncPostgresEventStore& operator=(const AsyncPostgresEventStore&) = delete;
    ~AsyncPostgresEventStore() { shutdown(); }

    /// Appends `events` to `stream` if it matches `expected` (see `PostgresEventStore::append`); `stop` cancels.
    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::vector<envelope_type> events,
                                                        ExpectedVersion expected, std::stop_token stop = {}) {
        using Op = detail::postgres::TypedOperation<AppendResult>;
        namespace pg = detail::postgres;
        auto op = std::make_unique<Op>("append to stream '" + stream + "'");
        try {
            auto data = std::make_shared<AppendData>();
            data->batch =
                durable::prepare_append<Events>(codec_, stream, std::span<const envelope_type>(events), nullptr);
            data->ids.reserve(events.size());
            for (const auto& e : events) data->ids.push_back(e.metadata.event_id);
            data->stream = std::move(stream);
            data->events = std::move(events);
            data->expected = expected;
            if (data->ids.empty()) {
                op->statement = pg::stream_version_statement(data->stream);
                op->step = [](pg::Result& r, Op&) -> std::optional<AppendResult> {
                    return AppendResult{static_cast<stream_version_t>(r.int64(0, 0)), 0, 0, false};
                };
            } else {
                op->statement = pg::append_statement<Events>(data->stream, data->ids, data->batch, expected, nullptr);
                op->may_commit = true;
                op->step = [this, data](pg::Result& r, Op& self) { return appended(r, self, data); };
            }
        } catch (...) {
            return Completion<AppendResult>::failed_with(std::current_exception());
        }
        return submit(std::move(op), stop);
    }

    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::initializer_list<envelope_type> events,
                                                        ExpectedVersion expected, std::stop_token stop = {}) {
        return append_async(std::move(stream), std::vector<envelope_type>(events), expected, std::move(stop));
    }

    [[nodiscard]] Completion<AppendResult> append_async(std::string stream, std::span<const envelope_type> events,
                                                        ExpectedVersion expected, std::stop_token stop = {}) {
        return append_async(std::move(stream), std::vector<envelope_type>(events.begin(), events.end()), expected,
                            std::move(stop));
    }

    /// Events of `stream` from `from_version` on, at most `max_count` (see `PostgresEventStore::read_stream`).
    // NOLINTNEXTLINE(performance-unnecessary-value-param): async_event_store takes its arguments by value
    [[nodiscard]] Completion<std::vector<recorded_type>> read_stream_async(std::string stream,
                                                                           stream_version_t from_version = 1,
                                                                           std::uint64_t max_count = unlimited,
                                                                           std::stop_token stop = {}) {
        if (max_count == 0 || !detail::is_valid_stream_id(stream)) {
            return Completion<std::vector<recorded_type>>::ready_with();
        }
        auto op = std::make_unique<detail::postgres::TypedOperation<std::vector<recorded_type>>>("read of stream '" +
                                                                                                 stream + "'");
        op->statement = detail::postgres::read_stream_statement(stream, from_version, max_count);
        op->step = [this](detail::postgres::Result& r, auto&) { return std::optional(decode(r)); };
        return submit(std::move(op), stop);
    }

    /// Events of every stream in global order from `from_position` on, at most `max_count`.
    [[nodiscard]] Completion<std::vector<recorded_type>>
    read_all_async(position_t from_position = 1, std::uint64_t max_count = unlimited, std::stop_token stop = {}) {
        if (max_count == 0) return Completion<std::vector<recorded_type>>::ready_with();
        auto op = std::make_unique<detail::postgres::TypedOperation<std::vector<recorded_type>>>("read of all events");
        op->statement = detail::postgres::read_all_statement(from_position, max_count);
        op->step = [this](detail::postgres::Result& r, auto&) { return std::optional(decode(r)); };
        return submit(std::move(op), stop);
    }

    /// The stream's current version (see `PostgresEventStore::stream_version`).
    // NOLINTNEXTLINE(performance-unnecessary-value-param): async_event_store takes its arguments by value
    [[nodiscard]] Completion<stream_version_t> stream_version_async(std::string stream, std::stop_token stop = {}) {
        if (!detail::is_valid_stream_id(stream)) return Completion<stream_version_t>::ready_with(0U);
        auto op = std::make_unique<detail::postgres::TypedOperation<stream_version_t>>(
            "read of the version of stream '" + stream + "'");
        op->statement = detail::postgres::stream_version_statement(stream);
        op->step = [](detail::postgres::Result& r, auto&) {
            return std::optional(static_cast<stream_version_t>(r.int64(0, 0)));
        };
        return submit(std::move(op), stop);
    }

    /// The global position of the last committed event: 0 if the store is empty.
    [[nodiscard]] Completion<position_t> head_position_async(std::stop_token stop = {}) {
        auto op = std::make_unique<detail::postgres::TypedOperation<position_t>>("read of the head position");
        op->statement = detail::postgres::Statement{{}, detail::postgres::head_sql, {}, {}, "read the head"};
        op->step = [](detail::postgres::Result& r, auto&) {
            return std::optional(static_cast<position_t>(r.int64(0, 0)));
        };
        return submit(std::move(op), stop);
    }

    /// Lets every operation accepted so far finish, then stops the I/O thread and closes the connections.
    /// Operations issued afterwards complete with `StoreError`. Idempotent.
    void shutdown() { pool_.shutdown(); }

    /// The codec events go through.
    [[nodiscard]] const Codec& codec() const noexcept { return codec_; }

private:
    struct AppendData {
        std::string stream{};
        std::vector<envelope_type> events{};
        std::vector<Uuid> ids{};
        durable::PreparedBatch batch{};
        ExpectedVersion expected = ExpectedVersion::any();
        stream_version_t current = 0;
        std::vector<std::optional<durable::StoredEventRow>> stored{};
    };
    using AppendOp = detail::postgres::TypedOperation<AppendResult>;

    // The secure steps of an append after the append function answered: status 2 (some ids stored) looks up the
    // stored rows, then the stream's start of life, then decides as the blocking store does.
    std::optional<AppendResult> appended(detail::postgres::Result& r, AppendOp& self,
                                         const std::shared_ptr<AppendData>& data) {
        namespace pg = detail::postgres;
        if (auto written = pg::append_outcome(r, data->stream, data->ids.size(), data->expected, nullptr)) {
            return written;
        }
        data->current = pg::append_current(r);
        self.may_commit = false;
        self.statement = pg::stored_rows_statement(data->ids);
        self.step = [this, data](pg::Result& rows, AppendOp& next) -> std::optional<AppendResult> {
            data->stored = pg::stored_rows(rows, data->ids);
            next.statement = pg::stream_info_statement(data->stream);
            next.step = [this, data](pg::Result& info, AppendOp&) -> std::optional<AppendResult> {
                const stream_version_t start = pg::stream_info(info).start_version;
                return pg::retry_outcome(durable::check_idempotent_retry<Events>(
                                             codec_, data->stream, std::span<const envelope_type>(data->events),
                                             data->batch.encoded,
                                             std::span<const std::optional<durable::StoredEventRow>>(data->stored),
                                             data->expected, data->current, [start] { return start; }),
                                         data->stream);
            };
            return std::nullopt;
        };
        return std::nullopt;
    }

    // The rows of a read, decoded as the blocking store decodes them.
    std::vector<recorded_type> decode(const detail::postgres::Result& r) const {
        std::vector<recorded_type> out;
        const int rows = r.rows();
        out.reserve(static_cast<std::size_t>(rows));
        for (int row = 0; row < rows; ++row) {
            bool schema_ok = true;
            const RawRecordedEventView raw = detail::postgres::row_view(r, row, schema_ok);
            if (!schema_ok) {
                durable::damaged_column(raw.position, std::string(raw.stream_id), raw.version,
                                        detail::postgres::bad_schema_version.column,
                                        detail::postgres::bad_schema_version.problem);
            }
            out.push_back(durable::decode_row<Events>(
                codec_, SerializedEventView(raw.type, raw.schema_version, raw.payload, raw.metadata),
                std::string(raw.stream_id), raw.version, raw.position, raw.recorded_at, raw.event_id));
        }
        return out;
    }

    template <class T>
    Completion<T> submit(std::unique_ptr<detail::postgres::TypedOperation<T>> op, const std::stop_token& stop) {
        if (stop.stop_requested()) {
            return Completion<T>::failed_with(std::make_exception_ptr(
                OperationCancelledError(op->description, OperationCancelledError::Outcome::not_committed)));
        }
        Completion<T> completion = op->completion();
        std::unique_ptr<detail::postgres::AsyncOperation> base = std::move(op);
        if (!pool_.submit(base, stop)) {
            return Completion<T>::failed_with(std::make_exception_ptr(
                StoreError("the asynchronous PostgreSQL store has been shut down; the operation was not run")));
        }
        return completion;
    }

    // Checks the options, connects once and creates the schema (blocking, in the constructor).
    static std::string prepared_url(std::string url, const AsyncPostgresOptions& options) {
        if (options.pool_size == 0) {
            throw InvalidArgumentError("pool_size", "AsyncPostgresEventStore needs at least 1 connection");
        }
        if (options.pipeline_depth == 0) {
            throw InvalidArgumentError("pipeline_depth",
                                       "AsyncPostgresEventStore needs a pipeline depth of at least 1");
        }
        detail::postgres::Connection c(url);
        if (options.create_schema) (void)c.exec(detail::postgres::schema_sql, "create the orchestrix schema");
        return url;
    }

    Codec codec_;
    detail::postgres::AsyncPool pool_; // after codec_: its thread stops before the codec goes
};

} // namespace orchestrix
