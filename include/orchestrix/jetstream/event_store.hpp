#pragma once

// An event store on a NATS JetStream stream: a single server, or a cluster replicating the stream (R3).

#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/durable/store_base.hpp>
#include <orchestrix/jetstream/batch.hpp>
#include <orchestrix/jetstream/connection.hpp>
#include <orchestrix/jetstream/errors.hpp>
#include <orchestrix/jetstream/subject.hpp>
#include <orchestrix/json/codec.hpp>

#include <nats/nats.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace orchestrix {

/// Options of `JetStreamEventStore`.
struct JetStreamOptions {
    /// The server, or several (comma-separated) of a cluster: "nats://10.0.0.1:4222,nats://10.0.0.2:4222".
    std::string url = "nats://127.0.0.1:4222";
    /// The JetStream stream that holds the events (one store, one stream).
    std::string stream = "orchestrix";
    /// The stream's subjects are the prefix, a dot and the token of the stream id
    /// (`jetstream::encode_subject_token`); the prefix is tokens of ASCII letters, digits, `-` and `_`
    /// separated by dots.
    std::string subject_prefix = "orchestrix";
    /// Create the JetStream stream if it is missing (file storage, `replicas` copies, every subject under
    /// the prefix, de-duplication window `duplicate_window`). An existing stream is used as it is, if its
    /// subjects include every subject under the prefix.
    bool create_stream = true;
    /// Copies of the stream when the store creates it: 1 on a single server, 3 (or 5) in a cluster.
    int replicas = 1;
    /// JetStream's de-duplication window when the store creates the stream.
    std::chrono::seconds duplicate_window{120};
    /// How long one request to the server may take.
    std::chrono::milliseconds request_timeout{5000};
    /// How long a call retries what may succeed later (no answer in time, no stream leader during an
    /// election, a reconnect) before it throws `JetStreamError` (`retryable()`).
    std::chrono::milliseconds retry_for{20000};
    /// How often the connection pings its server: a server that leaves two pings unanswered (a stopped
    /// process, a network partition) is taken for gone and the connection moves to another server of `url`.
    std::chrono::milliseconds ping_interval{2000};
};

/// The header each stored message carries with the global position of its batch's last event.
inline constexpr std::string_view jetstream_last_position_header = "Orchestrix-Last-Position";

/// Waits for appends to be stored: what wakes a live projection or subscription instead of polling. An
/// ordered, headers-only consumer of the store's subjects from the messages stored after it was made
/// (no state on the server: the projection's checkpoint lives with its read model).
class JetStreamListener {
public:
    /// Opens the consumer on `connection`, for the messages of `stream` on `subjects` stored from now on.
    JetStreamListener(const detail::jetstream::Connection& connection, const std::string& stream,
                      const std::string& subjects) {
        jsSubOptions options;
        jsSubOptions_Init(&options);
        options.Stream = stream.c_str();
        options.Ordered = true;
        options.Config.HeadersOnly = true;
        options.Config.DeliverPolicy = js_DeliverNew;
        natsSubscription* subscription = nullptr;
        jsErrCode code = detail::jetstream::no_code;
        const natsStatus s =
            js_SubscribeSync(&subscription, connection.js(), subjects.c_str(), nullptr, &options, &code);
        if (s != NATS_OK) detail::jetstream::fail(s, code, "listen on '" + subjects + "'");
        subscription_.reset(subscription);
    }

    /// Waits up to `timeout` for appends to be stored. Returns the highest global position they reported,
    /// or nothing if none was stored in time. Throws `JetStreamError` if the consumer failed.
    [[nodiscard]] std::optional<position_t> wait_for_notification(std::chrono::milliseconds timeout) {
        std::optional<position_t> latest;
        auto wait = static_cast<int64_t>(std::max<std::int64_t>(timeout.count(), 1));
        for (;;) {
            natsMsg* raw = nullptr;
            const natsStatus s = natsSubscription_NextMsg(&raw, subscription_.get(), wait);
            if (s == NATS_TIMEOUT) return latest;
            if (s != NATS_OK) detail::jetstream::fail(s, detail::jetstream::no_code, "wait for appends");
            const detail::jetstream::Message message(raw);
            const char* value = nullptr;
            std::uint64_t position = 0;
            if (natsMsgHeader_Get(raw, jetstream_last_position_header.data(), &value) == NATS_OK && value != nullptr) {
                const std::string_view text(value);
                (void)std::from_chars(text.data(), text.data() + text.size(), position);
            }
            latest = std::max<position_t>(latest.value_or(0), position);
            wait = 1; // take what else is queued, without waiting
        }
    }

private:
    struct Unsubscribe {
        void operator()(natsSubscription* subscription) const noexcept {
            (void)natsSubscription_Unsubscribe(subscription);
            natsSubscription_Destroy(subscription);
        }
    };
    std::unique_ptr<natsSubscription, Unsubscribe> subscription_;
};

/// An event store on a NATS JetStream stream, shared by any number of processes: a single server, or a
/// cluster that replicates the stream so that it survives the loss of a server.
///
/// - **One append, one message.** An append's batch is one message (`jetstream/batch.hpp`) on the
///   subject of its stream (`<subject_prefix>.<encoded stream id>`): it is stored whole or not at all.
///   The message carries the positions and versions of its events.
/// - **One order.** Every append is published with JetStream's expected-last-sequence check on the whole
///   stream: it is stored only if no other message was stored since the writer last looked. Appends are
///   therefore serialized across every writer (a writer that lost the race catches up and tries again),
///   positions and versions are contiguous, and a message's sequence order is its events' position order:
///   a reader reading "after my checkpoint" never skips an event that is stored late. JetStream acknowledges
///   an append once a majority of the stream's replicas has it.
/// - **A catalog of the stream in each store object.** To check an expected version and an event id without
///   reading the stream, the store keeps, for each message it has read, its sequence, stream, first position
///   and version and event count, and for each event its id (a few dozen bytes an event).
///   It reads every message once, when it is made and then those other writers stored since: each read
///   asks the server for the stream's last sequence (one round trip) and reads what is new; an append
///   checks on the catalog as it is and publishes with its last sequence as the expected one (one round
///   trip), and only when JetStream refuses that (another writer came first) or the append is refused
///   does it catch up first.
/// - **Idempotent by event id, for ever.** The catalog knows every stored id, so the retry rules of
///   `event_store` hold however long after the first append a retry comes. An append whose answer was lost
///   (a timeout, a leader that died before it answered) is re-sent with the same message id: JetStream's
///   de-duplication window (`JetStreamOptions::duplicate_window`) answers it with the stored message, and
///   after the window the expected-last-sequence check refuses it and the catalog finds its ids.
/// - **Failures.** What may succeed later (no answer, a leader election, a reconnect) is retried for
///   `JetStreamOptions::retry_for`; then the call throws `JetStreamError` (`retryable()`), and an append
///   that throws it may or may not be stored: send it again with the same event ids.
/// - **Limits.** A batch must fit in one message: the server's `max_payload` (1 MB by default; raise it
///   with the codec's `EncodeOptions::max_bytes`), else the append throws `InvalidArgumentError("events")`
///   and writes nothing. Read by query (`read(query)`, a conditional append) reads the messages after the
///   query's position: it costs a read of them, not an index lookup. No lifecycle operations
///   (`delete_stream`, `truncate_stream`): JetStream removes messages only by age, count or purge, which
///   would break the positions: the store creates its stream with deletes and purges denied, and refuses
///   an existing stream with a limit on age, messages, bytes or messages per subject.
/// - Thread-safe; one connection per store object.
template <event_variant Events, class Codec = JsonCodec<Events>>
class JetStreamEventStore : public DurableStoreBase<JetStreamEventStore<Events, Codec>, Events, Codec> {
    using base_type = DurableStoreBase<JetStreamEventStore, Events, Codec>;
    friend base_type;

public:
    using typename base_type::envelope_type;
    using typename base_type::event_type;
    using typename base_type::recorded_type;
    using typename base_type::view_type;

    /// The kind this store reports to its observer (`observe`).
    static constexpr std::string_view store_kind = "jetstream";

    /// Connects, finds the JetStream stream (creating it if asked) and reads its messages into the
    /// catalog. Throws `InvalidArgumentError` for a malformed option, `JetStreamError` if the servers cannot
    /// be reached, the stream is missing or has other subjects, or holds a message the store did not write.
    explicit JetStreamEventStore(JetStreamOptions options = {}, Codec codec = Codec{})
        : options_(std::move(options)), codec_(std::move(codec)) {
        jetstream::validate_subject_prefix(options_.subject_prefix);
        if (options_.stream.empty() || options_.stream.find_first_of(".*> \t\r\n") != std::string::npos) {
            throw InvalidArgumentError("stream", "the JetStream stream name '" + options_.stream +
                                                     "' must be non-empty, without '.', '*', '>' or white space");
        }
        if (options_.replicas < 1 || options_.replicas > 5) {
            throw InvalidArgumentError("replicas", "a JetStream stream has 1 to 5 replicas, not " +
                                                       std::to_string(options_.replicas));
        }
        if (options_.request_timeout.count() <= 0) {
            throw InvalidArgumentError("request_timeout", "the request timeout must be positive");
        }
        if (options_.ping_interval.count() <= 0) {
            throw InvalidArgumentError("ping_interval", "the ping interval must be positive");
        }
        connection_ = std::make_unique<detail::jetstream::Connection>(options_.url, options_.request_timeout,
                                                                      options_.ping_interval);
        retrying("find the stream", [&] { ensure_stream(); });
        const std::lock_guard lock(mutex_);
        retrying("read the stream", [&] { catch_up(); });
    }

    JetStreamEventStore(const JetStreamEventStore&) = delete;
    JetStreamEventStore& operator=(const JetStreamEventStore&) = delete;
    ~JetStreamEventStore() = default;

    // `append` (plain and conditional, of a span, a braced list or plain events), `read_stream`, `read_all`,
    // `visit_stream`, `visit_all`, `read_raw`, `append_raw`, and `read` and `visit` by query:
    // `DurableStoreBase`, on `append_batch` below.

    /// The stream's current version: 0 if it does not exist or `stream` is malformed.
    [[nodiscard]] stream_version_t stream_version(std::string_view stream) const {
        const std::lock_guard lock(mutex_);
        retrying("read the stream", [&] { catch_up(); });
        return catalog_.version_of(stream);
    }

    /// The global position of the last stored event: 0 if the store is empty.
    [[nodiscard]] position_t head_position() const {
        const std::lock_guard lock(mutex_);
        retrying("read the stream", [&] { catch_up(); });
        return catalog_.head;
    }

    /// The number of streams with events.
    [[nodiscard]] std::uint64_t stream_count() const {
        const std::lock_guard lock(mutex_);
        retrying("read the stream", [&] { catch_up(); });
        return catalog_.streams.size();
    }

    /// A listener that wakes when appends are stored (what a live `Projection` or `CatchUpSubscription`
    /// waits on). Throws `JetStreamError`.
    [[nodiscard]] JetStreamListener listen() const {
        return JetStreamListener(*connection_, options_.stream, wildcard());
    }

    /// The subject an event of `stream` is published on: `<subject_prefix>.<encode_subject_token(stream)>`.
    [[nodiscard]] std::string subject_of(std::string_view stream) const {
        return options_.subject_prefix + "." + jetstream::encode_subject_token(stream);
    }

    /// The options the store was made with.
    [[nodiscard]] const JetStreamOptions& options() const noexcept { return options_; }

    /// The codec events go through.
    [[nodiscard]] const Codec& codec() const noexcept { return codec_; }

private:
    // What the store knows of every message it has read: enough to check an expected version and an event
    // id, and to find the messages a read needs, without reading the stream.
    struct Catalog {
        struct MessageEntry {
            std::uint64_t sequence = 0;
            position_t first_position = 0;
            stream_version_t first_version = 0;
            std::uint32_t count = 0;
            std::uint32_t stream = 0;
        };
        struct StreamEntry {
            std::string id;
            stream_version_t version = 0;
            std::vector<std::uint32_t> messages; // indexes into `messages`, in order
        };
        struct IdEntry {
            std::uint32_t message = 0;
            std::uint32_t offset = 0;
        };

        std::vector<MessageEntry> messages;
        std::vector<StreamEntry> streams;
        std::unordered_map<std::string, std::uint32_t> stream_index;
        std::unordered_map<Uuid, IdEntry> ids;
        std::uint64_t last_sequence = 0;
        position_t head = 0;

        [[nodiscard]] const StreamEntry* find(std::string_view stream) const {
            const auto it = stream_index.find(std::string(stream));
            return it == stream_index.end() ? nullptr : &streams[it->second];
        }
        [[nodiscard]] stream_version_t version_of(std::string_view stream) const {
            const StreamEntry* entry = find(stream);
            return entry == nullptr ? 0 : entry->version;
        }
        // The index of the message holding `position` (or the first after it), or messages.size().
        [[nodiscard]] std::size_t message_at(position_t position) const {
            const auto it = std::partition_point(messages.begin(), messages.end(), [&](const MessageEntry& m) {
                return m.first_position + m.count <= position;
            });
            return static_cast<std::size_t>(it - messages.begin());
        }
    };

    // A message fetched from the server, decoded.
    struct Fetched {
        std::uint64_t sequence = 0;
        std::string subject;
        detail::jetstream::Message message;
        jetstream::BatchView batch;
    };

    // Runs `call`, retrying what may succeed later for `retry_for`; then rethrows with what was being done.
    template <class Call>
    void retrying(std::string_view what, Call&& call) const {
        const auto deadline = std::chrono::steady_clock::now() + options_.retry_for;
        auto pause = std::chrono::milliseconds(20);
        for (;;) {
            try {
                call();
                return;
            } catch (const JetStreamError& e) {
                if (!e.retryable()) throw;
                if (std::chrono::steady_clock::now() + pause > deadline) {
                    throw JetStreamError(e.status(), e.jetstream_code(),
                                         std::string(e.what()) + " (" + std::string(what) + ", retried for " +
                                             std::to_string(options_.retry_for.count()) + " ms)",
                                         true);
                }
            }
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::milliseconds(500));
        }
    }

    [[nodiscard]] std::string wildcard() const { return options_.subject_prefix + ".>"; }

    void ensure_stream() {
        jsStreamInfo* info = nullptr;
        jsErrCode code = detail::jetstream::no_code;
        natsStatus s = js_GetStreamInfo(&info, connection_->js(), options_.stream.c_str(), nullptr, &code);
        if (s == NATS_NOT_FOUND || (s != NATS_OK && code == JSStreamNotFoundErr)) {
            if (!options_.create_stream) {
                throw JetStreamError(natsStatus_GetText(s), static_cast<int>(code),
                                     "JetStream: the stream '" + options_.stream +
                                         "' does not exist (JetStreamOptions::create_stream is off)");
            }
            const std::string subject = wildcard();
            const char* subjects[] = {subject.c_str()};
            jsStreamConfig config;
            jsStreamConfig_Init(&config);
            config.Name = options_.stream.c_str();
            config.Subjects = subjects;
            config.SubjectsLen = 1;
            config.Storage = js_FileStorage;
            config.Replicas = options_.replicas;
            config.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.duplicate_window).count();
            config.DenyDelete = true;
            config.DenyPurge = true;
            code = detail::jetstream::no_code;
            s = js_AddStream(&info, connection_->js(), &config, nullptr, &code);
            if (s != NATS_OK && code == JSStreamNameExistErr) { // created by another process meanwhile
                code = detail::jetstream::no_code;
                s = js_GetStreamInfo(&info, connection_->js(), options_.stream.c_str(), nullptr, &code);
            }
            if (s != NATS_OK) detail::jetstream::fail(s, code, "create the stream '" + options_.stream + "'");
        } else if (s != NATS_OK) {
            detail::jetstream::fail(s, code, "read the stream '" + options_.stream + "'");
        }
        bool covered = false;
        std::string removes; // how the stream would remove messages by itself
        if (const jsStreamConfig* config = info->Config; config != nullptr) {
            for (int i = 0; i < config->SubjectsLen; ++i) {
                const std::string_view subject = config->Subjects[i];
                covered = covered || subject == wildcard() || subject == ">";
            }
            if (config->MaxAge > 0) removes = "a maximum age";
            if (config->MaxMsgs > 0) removes = "a maximum number of messages";
            if (config->MaxBytes > 0) removes = "a maximum size";
            if (config->MaxMsgsPerSubject > 0) removes = "a maximum number of messages per subject";
            if (config->Retention != js_LimitsPolicy) removes = "a retention other than limits";
        }
        jsStreamInfo_Destroy(info);
        if (!covered) {
            throw JetStreamError({}, 0,
                                 "JetStream: the stream '" + options_.stream + "' does not take the subjects '" +
                                     wildcard() + "' the store publishes on");
        }
        if (!removes.empty()) {
            throw JetStreamError({}, 0,
                                 "JetStream: the stream '" + options_.stream + "' has " + removes +
                                     ": it would remove stored events, and positions must stay contiguous");
        }
    }

    // The stream's last sequence, asked of the server.
    [[nodiscard]] std::uint64_t last_sequence() const {
        jsStreamInfo* info = nullptr;
        jsErrCode code = detail::jetstream::no_code;
        const natsStatus s = js_GetStreamInfo(&info, connection_->js(), options_.stream.c_str(), nullptr, &code);
        if (s != NATS_OK) detail::jetstream::fail(s, code, "read the state of the stream '" + options_.stream + "'");
        const std::uint64_t last = info->State.LastSeq;
        jsStreamInfo_Destroy(info);
        return last;
    }

    // One message by sequence; nothing if there is none (never written, or removed).
    [[nodiscard]] std::optional<Fetched> get(std::uint64_t sequence) const {
        natsMsg* raw = nullptr;
        jsErrCode code = detail::jetstream::no_code;
        const natsStatus s = js_GetMsg(&raw, connection_->js(), options_.stream.c_str(), sequence, nullptr, &code);
        if (s == NATS_NOT_FOUND || (s != NATS_OK && code == JSNoMessageFoundErr)) return std::nullopt;
        if (s != NATS_OK) detail::jetstream::fail(s, code, "read message " + std::to_string(sequence));
        Fetched out;
        out.message.reset(raw);
        out.sequence = sequence;
        const char* subject = natsMsg_GetSubject(raw);
        out.subject = subject == nullptr ? "" : subject;
        out.batch = decode(out.sequence, out.subject, detail::jetstream::body(raw));
        return out;
    }

    // The messages from `first` to `last` (sequences) on `filter` (a subject, or the store's wildcard),
    // in order, each handed to `each(Fetched&&)`: a few by sequence, more through an ordered consumer.
    template <class Each>
    void fetch(const std::vector<std::uint64_t>& sequences, const std::string& filter, Each&& each) const {
        if (sequences.empty()) return;
        if (sequences.size() <= 4) {
            for (const std::uint64_t sequence : sequences) {
                std::optional<Fetched> message = get(sequence);
                if (!message) {
                    throw JetStreamError({}, 0,
                                         "JetStream: message " + std::to_string(sequence) + " of the stream '" +
                                             options_.stream + "' is gone (was the stream purged?)");
                }
                each(std::move(*message));
            }
            return;
        }
        scan(sequences.front(), sequences.back(), filter, [&](Fetched&& message) {
            if (std::binary_search(sequences.begin(), sequences.end(), message.sequence)) each(std::move(message));
        });
    }

    // Every message from sequence `first` to `last` on `filter`, through an ordered consumer.
    template <class Each>
    void scan(std::uint64_t first, std::uint64_t last, const std::string& filter, Each&& each) const {
        jsSubOptions options;
        jsSubOptions_Init(&options);
        options.Stream = options_.stream.c_str();
        options.Ordered = true;
        options.Config.DeliverPolicy = js_DeliverByStartSequence;
        options.Config.OptStartSeq = first;
        natsSubscription* subscription = nullptr;
        jsErrCode code = detail::jetstream::no_code;
        natsStatus s = js_SubscribeSync(&subscription, connection_->js(), filter.c_str(), nullptr, &options, &code);
        if (s != NATS_OK) detail::jetstream::fail(s, code, "open a consumer on '" + filter + "'");
        const std::unique_ptr<natsSubscription, void (*)(natsSubscription*)> guard(
            subscription, [](natsSubscription* sub) {
                (void)natsSubscription_Unsubscribe(sub);
                natsSubscription_Destroy(sub);
            });
        for (;;) {
            natsMsg* raw = nullptr;
            s = natsSubscription_NextMsg(&raw, subscription, static_cast<int64_t>(options_.request_timeout.count()));
            if (s != NATS_OK)
                detail::jetstream::fail(s, code,
                                        "read messages " + std::to_string(first) + " to " + std::to_string(last) +
                                            " on '" + filter + "'");
            Fetched out;
            out.message.reset(raw);
            jsMsgMetaData* meta = nullptr;
            s = natsMsg_GetMetaData(&meta, raw);
            if (s != NATS_OK) detail::jetstream::fail(s, code, "read a message's metadata");
            out.sequence = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
            if (out.sequence < first) continue;
            const char* subject = natsMsg_GetSubject(raw);
            out.subject = subject == nullptr ? "" : subject;
            out.batch = decode(out.sequence, out.subject, detail::jetstream::body(raw));
            const std::uint64_t sequence = out.sequence;
            if (sequence <= last) each(std::move(out));
            if (sequence >= last) return;
        }
    }

    // A message's batch; a message the store did not write is a `JetStreamError` naming it.
    [[nodiscard]] jetstream::BatchView decode(std::uint64_t sequence, std::string_view subject,
                                              std::string_view body) const {
        std::optional<jetstream::BatchView> batch = jetstream::decode_batch(body);
        if (!batch) {
            throw JetStreamError({}, 0,
                                 "JetStream: message " + std::to_string(sequence) + " of the stream '" +
                                     options_.stream + "' (subject '" + std::string(subject) +
                                     "') is not an orchestrix batch: the store's subjects must carry only its "
                                     "own messages");
        }
        return std::move(*batch);
    }

    // The stream id of a subject of the store.
    [[nodiscard]] std::string stream_of(std::uint64_t sequence, std::string_view subject) const {
        const std::string prefix = options_.subject_prefix + ".";
        std::optional<std::string> stream;
        if (subject.substr(0, prefix.size()) == prefix) {
            stream = jetstream::decode_subject_token(subject.substr(prefix.size()));
        }
        if (!stream || !detail::is_valid_stream_id(*stream)) {
            throw JetStreamError({}, 0,
                                 "JetStream: message " + std::to_string(sequence) + " has the subject '" +
                                     std::string(subject) + "', which is not the subject of a stream id");
        }
        return std::move(*stream);
    }

    // Adds a message to the catalog (under the lock): the next in the store's order, or a `JetStreamError`.
    void ingest(std::uint64_t sequence, const std::string& stream, const jetstream::BatchView& batch,
                std::span<const Uuid> ids) const {
        auto [it, added] =
            catalog_.stream_index.try_emplace(stream, static_cast<std::uint32_t>(catalog_.streams.size()));
        if (added) catalog_.streams.push_back(typename Catalog::StreamEntry{stream, 0, {}});
        typename Catalog::StreamEntry& entry = catalog_.streams[it->second];
        if (batch.first_position != catalog_.head + 1 || batch.first_version != entry.version + 1) {
            if (added) {
                catalog_.streams.pop_back();
                catalog_.stream_index.erase(it);
            }
            throw JetStreamError({}, 0,
                                 "JetStream: message " + std::to_string(sequence) + " of the stream '" +
                                     options_.stream + "' holds positions from " +
                                     std::to_string(batch.first_position) + " and versions of '" + stream + "' from " +
                                     std::to_string(batch.first_version) + ", where the store expects " +
                                     std::to_string(catalog_.head + 1) + " and " + std::to_string(entry.version + 1));
        }
        const auto index = static_cast<std::uint32_t>(catalog_.messages.size());
        const auto count = static_cast<std::uint32_t>(ids.size());
        catalog_.messages.push_back(
            typename Catalog::MessageEntry{sequence, batch.first_position, batch.first_version, count, it->second});
        entry.messages.push_back(index);
        entry.version += count;
        catalog_.head += count;
        catalog_.last_sequence = sequence;
        for (std::uint32_t i = 0; i < count; ++i) catalog_.ids.try_emplace(ids[i], typename Catalog::IdEntry{index, i});
    }

    void ingest(const Fetched& message) const {
        std::vector<Uuid> ids;
        ids.reserve(message.batch.events.size());
        for (const auto& e : message.batch.events) ids.push_back(e.id);
        ingest(message.sequence, stream_of(message.sequence, message.subject), message.batch, ids);
    }

    // Reads into the catalog what was stored since it was last read (under the lock).
    void catch_up() const {
        const std::uint64_t last = last_sequence();
        if (last <= catalog_.last_sequence) return;
        std::vector<std::uint64_t> sequences;
        if (last - catalog_.last_sequence <= 4) {
            for (std::uint64_t s = catalog_.last_sequence + 1; s <= last; ++s) {
                if (std::optional<Fetched> message = get(s)) ingest(*message);
            }
            catalog_.last_sequence = last;
            return;
        }
        scan(catalog_.last_sequence + 1, last, wildcard(), [&](Fetched&& message) { ingest(message); });
        catalog_.last_sequence = last;
    }

    // Hands the events of `message` from `from_position` on to `visitor`, at most `max_count` in all.
    template <class Visitor>
    void visit_batch(const Fetched& message, const std::string& stream, position_t from_position,
                     std::uint64_t max_count, std::uint64_t& visited, Visitor& visitor) const {
        const jetstream::BatchView& batch = message.batch;
        const auto recorded_at = durable::from_micros(batch.recorded_at_micros);
        for (std::size_t i = 0; i < batch.events.size() && visited < max_count; ++i) {
            const position_t position = batch.first_position + i;
            if (position < from_position) continue;
            const jetstream::BatchEventView& e = batch.events[i];
            const std::string id = e.id.to_string();
            RawRecordedEventView raw;
            raw.position = position;
            raw.stream_id = stream;
            raw.version = batch.first_version + i;
            raw.event_id = id;
            raw.type = e.type;
            raw.schema_version = e.schema_version;
            raw.payload = e.payload;
            raw.metadata = e.metadata;
            raw.recorded_at = recorded_at;
            static constexpr durable::ColumnDamage bad_schema{"schema_version", "is 0"};
            this->visit_row(visitor, raw, e.schema_version == 0 ? &bad_schema : nullptr);
            ++visited;
        }
    }

    template <class Visitor>
    std::uint64_t visit_stream_rows(std::string_view stream, stream_version_t from_version, std::uint64_t max_count,
                                    Visitor& visitor) const {
        std::vector<std::uint64_t> sequences;
        std::string id;
        position_t from_position = 0;
        {
            const std::lock_guard lock(mutex_);
            retrying("read the stream", [&] { catch_up(); });
            const typename Catalog::StreamEntry* entry = catalog_.find(stream);
            if (entry == nullptr) return 0;
            id = entry->id;
            std::uint64_t covered = 0;
            for (const std::uint32_t index : entry->messages) {
                const auto& m = catalog_.messages[index];
                const stream_version_t last_version = m.first_version + m.count - 1;
                if (last_version < std::max<stream_version_t>(from_version, 1)) continue;
                if (sequences.empty()) {
                    from_position =
                        m.first_position + (std::max<stream_version_t>(from_version, 1) > m.first_version
                                                ? std::max<stream_version_t>(from_version, 1) - m.first_version
                                                : 0);
                }
                sequences.push_back(m.sequence);
                covered += m.count;
                if (covered >= max_count) break;
            }
        }
        std::uint64_t visited = 0;
        const std::string subject = subject_of(stream);
        // Not retried: the visitor has seen what was read before a failure (the caller retries the read).
        fetch(sequences, subject,
              [&](Fetched&& message) { visit_batch(message, id, from_position, max_count, visited, visitor); });
        return visited;
    }

    template <class Visitor>
    std::uint64_t visit_all_rows(position_t from_position, std::uint64_t max_count, Visitor& visitor) const {
        std::vector<std::uint64_t> sequences;
        std::vector<std::string> streams;
        {
            const std::lock_guard lock(mutex_);
            retrying("read the stream", [&] { catch_up(); });
            std::uint64_t covered = 0;
            for (std::size_t i = catalog_.message_at(from_position); i < catalog_.messages.size(); ++i) {
                const auto& m = catalog_.messages[i];
                sequences.push_back(m.sequence);
                streams.push_back(catalog_.streams[m.stream].id);
                covered += m.count;
                if (covered >= max_count) break;
            }
        }
        std::uint64_t visited = 0;
        if (sequences.empty()) return 0;
        std::size_t next = 0;
        fetch(sequences, wildcard(), [&](Fetched&& message) {
            while (next < sequences.size() && sequences[next] < message.sequence) ++next;
            visit_batch(message, streams[next], from_position, max_count, visited, visitor);
        });
        return visited;
    }

    // Hands the events after `after` that match `query` to `visit(position, stream, message, index)`, in
    // order, until it returns false (under the lock, the catalog caught up).
    template <class Visit>
    void scan_query(const Query& query, position_t after, Visit&& visit) const {
        std::vector<std::uint64_t> sequences;
        std::vector<std::uint32_t> stream_of_message;
        for (std::size_t i = catalog_.message_at(after + 1); i < catalog_.messages.size(); ++i) {
            sequences.push_back(catalog_.messages[i].sequence);
            stream_of_message.push_back(catalog_.messages[i].stream);
        }
        bool going = true;
        std::size_t next = 0;
        fetch(sequences, wildcard(), [&](Fetched&& message) {
            while (next < sequences.size() && sequences[next] < message.sequence) ++next;
            for (std::size_t i = 0; going && i < message.batch.events.size(); ++i) {
                const position_t position = message.batch.first_position + i;
                if (position <= after) continue;
                const jetstream::BatchEventView& e = message.batch.events[i];
                if (!query.matches(e.type, e.tags)) continue;
                going = visit(position, catalog_.streams[stream_of_message[next]].id, message, i);
            }
        });
    }

    template <class Visitor>
    durable::QueryRowsRead visit_query_rows(const Query& query, position_t after, std::uint64_t max_count,
                                            Visitor& visitor) const {
        durable::QueryRowsRead read;
        const std::lock_guard lock(mutex_);
        retrying("read by query", [&] {
            catch_up();
            read = durable::QueryRowsRead{0, catalog_.head, after};
            scan_query(query, after,
                       [&](position_t position, const std::string& stream, const Fetched& message, std::size_t index) {
                           std::uint64_t visited = 0;
                           (void)index;
                           visit_batch(message, stream, position, 1, visited, visitor);
                           ++read.count;
                           read.last = position;
                           return read.count < max_count;
                       });
        });
        return read;
    }

    AppendResult append_batch(std::string_view stream, std::span<const envelope_type> events, ExpectedVersion expected,
                              const AppendCondition* condition) {
        const durable::PreparedBatch batch = durable::prepare_append<Events>(codec_, stream, events, condition);
        std::vector<Uuid> event_ids;
        event_ids.reserve(events.size());
        for (const auto& e : events) event_ids.push_back(e.metadata.event_id);
        return write_batch(stream, std::span<const Uuid>(event_ids), batch, expected, condition,
                           [&](std::span<const std::optional<durable::StoredEventRow>> stored, stream_version_t current,
                               auto&& start_of_life) {
                               return durable::check_idempotent_retry<Events>(codec_, stream, events, batch.encoded,
                                                                              stored, expected, current, start_of_life);
                           });
    }

    // The stored rows of the batch's ids (`rows[i]` that of `event_ids[i]`, or nothing), under the lock.
    [[nodiscard]] std::vector<std::optional<durable::StoredEventRow>>
    stored_rows(std::span<const Uuid> event_ids) const {
        std::vector<std::optional<durable::StoredEventRow>> rows(event_ids.size());
        std::map<std::uint32_t, std::optional<Fetched>> messages;
        for (std::size_t i = 0; i < event_ids.size(); ++i) {
            const auto it = catalog_.ids.find(event_ids[i]);
            if (it == catalog_.ids.end()) continue;
            auto& message = messages[it->second.message];
            const auto& entry = catalog_.messages[it->second.message];
            if (!message) message = get(entry.sequence);
            if (!message) continue;
            const jetstream::BatchEventView& e = message->batch.events.at(it->second.offset);
            rows[i] = durable::StoredEventRow{catalog_.streams[entry.stream].id,
                                              entry.first_version + it->second.offset,
                                              entry.first_position + it->second.offset,
                                              std::string(e.type),
                                              e.schema_version,
                                              std::string(e.payload)};
        }
        return rows;
    }

    // Publishes a batch with the expected last sequence; the stored sequence, or nothing if another message
    // was stored first (or the message was a duplicate of a stored one).
    [[nodiscard]] std::optional<std::uint64_t> publish(const std::string& subject, const std::string& body,
                                                       const std::string& message_id, std::uint64_t expected_last,
                                                       position_t last_position) {
        natsMsg* raw = nullptr;
        natsStatus s = natsMsg_Create(&raw, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
        if (s != NATS_OK) detail::jetstream::fail(s, detail::jetstream::no_code, "create a message");
        const detail::jetstream::Message message(raw);
        const std::string last = std::to_string(expected_last);
        s = natsMsgHeader_Set(raw, "Nats-Msg-Id", message_id.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(raw, "Nats-Expected-Last-Sequence", last.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(raw, "Nats-Expected-Stream", options_.stream.c_str());
        if (s == NATS_OK) {
            s = natsMsgHeader_Set(raw, jetstream_last_position_header.data(), std::to_string(last_position).c_str());
        }
        if (s != NATS_OK) detail::jetstream::fail(s, detail::jetstream::no_code, "set a message's headers");
        jsPubAck* ack = nullptr;
        jsErrCode code = detail::jetstream::no_code;
        s = js_PublishMsg(&ack, connection_->js(), raw, nullptr, &code);
        if (s != NATS_OK) {
            if (code == JSStreamWrongLastSequenceErr) return std::nullopt;
            detail::jetstream::fail(s, code, "publish to '" + subject + "'");
        }
        const bool duplicate = ack->Duplicate;
        const std::uint64_t sequence = ack->Sequence;
        jsPubAck_Destroy(ack);
        if (duplicate) return std::nullopt;
        return sequence;
    }

    // The append that `append_batch` and `append_raw` share (see `DurableStoreBase`).
    template <class Retry>
    AppendResult write_batch(std::string_view stream, std::span<const Uuid> event_ids,
                             const durable::PreparedBatch& batch, ExpectedVersion expected,
                             const AppendCondition* condition, Retry&& retry) {
        if (event_ids.empty()) return AppendResult{stream_version(stream), 0, 0, false};
        const std::string subject = subject_of(stream);
        // A retry of the same batch has the same message id: JetStream answers it with the stored message.
        const std::string message_id = event_ids.front().to_string() + "/" + std::to_string(event_ids.size());
        const std::int64_t max_payload = connection_->max_payload();
        const std::lock_guard lock(mutex_);
        std::optional<AppendResult> result;
        retrying("append to '" + std::string(stream) + "'", [&] {
            // The checks run on the catalog as it is: an append is published with the catalog's last sequence
            // as the expected one, so JetStream stores it only if nothing was stored since, and then the checks
            // held on the server too (one round trip for a writer whose catalog is current). A refusal is
            // reported only after the catalog was caught up in this attempt (`fresh`), so that it reflects the
            // server's state.
            bool fresh = false;
            const auto refresh = [&] {
                if (fresh) return false;
                catch_up();
                fresh = true;
                return true;
            };
            for (;;) {
                const stream_version_t current = catalog_.version_of(stream);
                const auto stored = stored_rows(event_ids);
                if (std::any_of(stored.begin(), stored.end(), [](const auto& row) { return row.has_value(); })) {
                    if (refresh()) continue;
                    result = retry(std::span<const std::optional<durable::StoredEventRow>>(stored), current,
                                   [] { return stream_version_t{1}; });
                    if (!result) {
                        throw JetStreamError({}, 0,
                                             "JetStream: append to '" + std::string(stream) +
                                                 "': stored event ids that cannot be read");
                    }
                    return;
                }
                if (!expected.matches(current)) {
                    if (refresh()) continue;
                    throw ConcurrencyError(std::string(stream), expected, current);
                }
                if (condition != nullptr) {
                    if (const std::optional<position_t> match = first_match(*condition)) {
                        if (refresh()) continue;
                        throw AppendConditionError(std::string(stream), *match, condition->after);
                    }
                }
                detail::validate_growth(stream, current, catalog_.head, event_ids.size());
                const std::string body = jetstream::encode_batch(catalog_.head + 1, current + 1,
                                                                 durable::to_micros(std::chrono::system_clock::now()),
                                                                 event_ids, batch.encoded, batch.tags);
                if (max_payload > 0 && body.size() > static_cast<std::size_t>(max_payload)) {
                    throw InvalidArgumentError("events", "append to stream '" + std::string(stream) +
                                                             "': the batch is " + std::to_string(body.size()) +
                                                             " bytes in one message; the server takes at most " +
                                                             std::to_string(max_payload) + " (its max_payload)");
                }
                const std::optional<std::uint64_t> sequence =
                    publish(subject, body, message_id, catalog_.last_sequence, catalog_.head + event_ids.size());
                if (!sequence || *sequence != catalog_.last_sequence + 1) {
                    // Another writer came first, or this batch is stored already: look again.
                    catch_up();
                    fresh = true;
                    continue;
                }
                const jetstream::BatchView view = *jetstream::decode_batch(body);
                ingest(*sequence, std::string(stream), view, event_ids);
                result = AppendResult{current + event_ids.size(), view.first_position,
                                      view.first_position + event_ids.size() - 1, true};
                return;
            }
        });
        return *result;
    }

    // The position of the first event after `condition.after` that matches its query, if any (under the lock;
    // the append's expected last sequence makes a check that found none hold when it is stored).
    [[nodiscard]] std::optional<position_t> first_match(const AppendCondition& condition) const {
        std::optional<position_t> first;
        scan_query(condition.fail_if_events_match, condition.after.value_or(0),
                   [&](position_t position, const std::string&, const Fetched&, std::size_t) {
                       first = position;
                       return false;
                   });
        return first;
    }

    JetStreamOptions options_;
    Codec codec_;
    std::unique_ptr<detail::jetstream::Connection> connection_;
    mutable std::mutex mutex_;
    mutable Catalog catalog_;
};

} // namespace orchestrix
