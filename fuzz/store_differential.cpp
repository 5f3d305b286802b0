// Fuzz target: the in-memory store and the SQLite store must behave identically. The input is a program
// of store operations (appends with every kind of expected version, reused and nil event ids, odd stream
// ids; read_stream, read_all, stream_version, retries of earlier batches); each runs on both stores and
// must give the same result or throw the same exception (same type, same facts, same message). After
// every operation both stores must hold the same events.
//
// The one intended difference: the SQLite store keeps JSON, so an event JSON cannot carry (a string that
// is not UTF-8) is refused with EncodeError before anything is written, where the typed in-memory store
// keeps it. Such an append runs on SQLite alone, which must throw EncodeError and stay unchanged.

#include "fuzz_check.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace {

using namespace test_domain;
using orchestrix::AppendResult;
using orchestrix::ExpectedVersion;
using orchestrix::Uuid;
using orchestrix_fuzz::require;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    [[nodiscard]] bool done() const noexcept { return at_ >= size_; }
    std::uint8_t byte() noexcept { return at_ < size_ ? data_[at_++] : 0; }
    std::uint64_t number() noexcept {
        switch (byte() % 6) {
        case 0:
            return 0;
        case 1:
            return byte() % 8;
        case 2:
            return byte();
        case 3:
            return orchestrix::max_version;
        case 4:
            return std::numeric_limits<std::uint64_t>::max();
        default:
            return orchestrix::max_version - (byte() % 4);
        }
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

std::string stream_id(Input& in) {
    switch (in.byte() % 12) {
    case 0:
        return "account-1";
    case 1:
        return "account-2";
    case 2:
        return "a";
    case 3:
        return "";
    case 4:
        return std::string(orchestrix::max_stream_id_length, 's');
    case 5:
        return std::string(orchestrix::max_stream_id_length + 1, 's');
    case 6:
        return std::string("nul\0inside", 10);
    case 7:
        return "\xff\xfe not UTF-8";
    case 8:
        return "quotes ' \" % * _ ? [x] \\";
    case 9:
        return "caf\xc3\xa9";
    case 10:
        return "ACCOUNT-1";
    default:
        return "account-1 ";
    }
}

Uuid event_id(Input& in) {
    const std::uint8_t b = in.byte();
    Uuid::bytes_type bytes{};
    if (b % 16 == 15) return Uuid(bytes); // the nil id
    bytes[0] = 0x01;
    bytes[15] = static_cast<std::uint8_t>(b % 10); // a small pool, so ids are reused often
    if (b >= 160) bytes[15] = b;                   // or one seldom seen
    return Uuid(bytes);
}

std::string text(Input& in) {
    switch (in.byte() % 6) {
    case 0:
        return "";
    case 1:
        return "acc-1";
    case 2:
        return "Ünïcødé ✓";
    case 3:
        return "bad \xc3 UTF-8"; // JSON cannot carry it
    case 4:
        return "\"quoted\" \\ {\"json\": 1}";
    default:
        return std::string(1, static_cast<char>('a' + in.byte() % 26));
    }
}

std::int64_t amount(Input& in) {
    switch (in.byte() % 5) {
    case 0:
        return 0;
    case 1:
        return std::numeric_limits<std::int64_t>::min();
    case 2:
        return std::numeric_limits<std::int64_t>::max();
    case 3:
        return -static_cast<std::int64_t>(in.byte());
    default:
        return in.byte();
    }
}

Envelope envelope(Input& in) {
    AccountEvent event;
    switch (in.byte() % 3) {
    case 0:
        event = AccountOpened{text(in), text(in)};
        break;
    case 1:
        event = MoneyDeposited{text(in), amount(in)};
        break;
    default:
        event = MoneyWithdrawn{text(in), amount(in)};
        break;
    }
    orchestrix::Metadata metadata{event_id(in), {}, {}, {}, {}};
    if (in.byte() % 4 == 0) {
        metadata.correlation_id = text(in);
        metadata.causation_id = text(in);
    }
    return Envelope{std::move(event), std::move(metadata)};
}

std::optional<ExpectedVersion> expected_version(Input& in) {
    switch (in.byte() % 5) {
    case 0:
        return ExpectedVersion::any();
    case 1:
        return ExpectedVersion::no_stream();
    case 2:
        return ExpectedVersion::stream_exists();
    default: {
        const std::uint64_t n = in.number();
        if (n > orchestrix::max_version) return std::nullopt; // exact() refuses it before any store is asked
        return ExpectedVersion::exact(n);
    }
    }
}

// The outcome of one call, as text: the result, or the exception's type and facts.
template <class F>
std::string outcome(F&& call) {
    try {
        return "ok " + call();
    } catch (const orchestrix::ConcurrencyError& e) {
        return std::string("ConcurrencyError ") + e.stream() + " " + orchestrix::to_string(e.expected()) + " " +
               std::to_string(e.actual()) + ": " + e.what();
    } catch (const orchestrix::IdempotencyError& e) {
        return "IdempotencyError " + std::to_string(static_cast<int>(e.reason())) + " " + e.stream() + " " +
               e.event_id().to_string() + ": " + e.what();
    } catch (const orchestrix::InvalidArgumentError& e) {
        return "InvalidArgumentError " + e.argument() + ": " + e.what();
    } catch (const orchestrix::Error& e) {
        return std::string("Error ") + typeid(e).name() + ": " + e.what();
    }
}

std::string describe(const AppendResult& r) {
    return std::to_string(r.stream_version) + " " + std::to_string(r.first_position) + " " +
           std::to_string(r.last_position) + (r.written ? " written" : " not written");
}

// The events as text, without the recording time (each store sets its own).
std::string describe(const std::vector<Recorded>& events) {
    const orchestrix::JsonCodec<AccountEvent> codec;
    std::string out = std::to_string(events.size()) + " events";
    for (const auto& e : events) {
        out += "\n" + e.stream_id + " v" + std::to_string(e.version) + " @" + std::to_string(e.position) + " " +
               e.metadata.event_id.to_string() + " " + e.metadata.correlation_id + " " + e.metadata.causation_id + " " +
               codec.dump(e.event);
    }
    return out;
}

bool encodable(const std::vector<Envelope>& batch) {
    const orchestrix::JsonCodec<AccountEvent> codec;
    try {
        for (const auto& e : batch) (void)codec.serialize(e.event, e.metadata);
        return true;
    } catch (const orchestrix::EncodeError&) {
        return false;
    }
}

struct Stores {
    orchestrix::InMemoryEventStore<AccountEvent> memory;
    orchestrix::SqliteEventStore<AccountEvent> sqlite{
        ":memory:", orchestrix::SqliteOptions{orchestrix::SqliteSynchronous::off, std::chrono::milliseconds(0)}};
};

void same_events(Stores& s) {
    require(describe(s.memory.read_all()) == describe(s.sqlite.read_all()), "the stores hold different events");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Input in(data, size);
    Stores s;
    std::vector<Envelope> last_batch;
    std::string last_stream = "account-1";
    for (int step = 0; step < 64 && !in.done(); ++step) {
        switch (in.byte() % 6) {
        case 0:
        case 1: { // append a new batch (or, if in.byte() says so, the previous one again)
            const bool retry = in.byte() % 3 == 0 && !last_batch.empty();
            std::string stream = retry ? last_stream : stream_id(in);
            std::vector<Envelope> batch = last_batch;
            if (!retry) {
                batch.clear();
                const std::size_t count = in.byte() % 4;
                for (std::size_t i = 0; i < count; ++i) batch.push_back(envelope(in));
            }
            const auto expected = expected_version(in);
            if (!expected) break;
            const std::span<const Envelope> events(batch);
            if (!encodable(batch)) {
                const std::string sqlite =
                    outcome([&] { return describe(s.sqlite.append(stream, events, *expected)); });
                require(sqlite.rfind("Error ", 0) == 0 || sqlite.rfind("InvalidArgumentError ", 0) == 0 ||
                            sqlite.rfind("IdempotencyError ", 0) == 0,
                        "SQLite accepted an event JSON cannot carry");
            } else {
                const std::string memory =
                    outcome([&] { return describe(s.memory.append(stream, events, *expected)); });
                const std::string sqlite =
                    outcome([&] { return describe(s.sqlite.append(stream, events, *expected)); });
                if (memory != sqlite) {
                    std::fprintf(stderr, "append to '%s'\n  in memory: %s\n  SQLite:    %s\n", stream.c_str(),
                                 memory.c_str(), sqlite.c_str());
                }
                require(memory == sqlite, "append: the stores disagree");
            }
            last_batch = std::move(batch);
            last_stream = std::move(stream);
            break;
        }
        case 2: {
            const std::string stream = stream_id(in);
            const std::uint64_t from = in.number();
            const std::uint64_t max = in.number();
            const std::string memory = outcome([&] { return describe(s.memory.read_stream(stream, from, max)); });
            const std::string sqlite = outcome([&] { return describe(s.sqlite.read_stream(stream, from, max)); });
            require(memory == sqlite, "read_stream: the stores disagree");
            break;
        }
        case 3: {
            const std::uint64_t from = in.number();
            const std::uint64_t max = in.number();
            const std::string memory = outcome([&] { return describe(s.memory.read_all(from, max)); });
            const std::string sqlite = outcome([&] { return describe(s.sqlite.read_all(from, max)); });
            require(memory == sqlite, "read_all: the stores disagree");
            break;
        }
        case 4: {
            const std::string stream = stream_id(in);
            const std::string memory = outcome([&] { return std::to_string(s.memory.stream_version(stream)); });
            const std::string sqlite = outcome([&] { return std::to_string(s.sqlite.stream_version(stream)); });
            require(memory == sqlite, "stream_version: the stores disagree");
            break;
        }
        default: {
            const std::string memory = outcome([&] { return std::to_string(s.memory.head_position()); });
            const std::string sqlite = outcome([&] { return std::to_string(s.sqlite.head_position()); });
            require(memory == sqlite, "head_position: the stores disagree");
            break;
        }
        }
        same_events(s);
    }
    return 0;
}
