#pragma once

// The shared workload definitions (keep them fixed so figures compare across versions).
//
// W1 append: 1,000 streams x 100 events of three event types {account_id: "acc-000123", amount},
//            appended round-robin with an expected-version check, 1 or 10 events per append; the events
//            are plain (no ids) until appended.
// W2 replay: fold a 1,000,000-event stream into an aggregate; replay all W1 streams.

#include <orchestrix/orchestrix.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace bench {

// Before each repetition of an append workload, on both sides: the default heap gives its free memory back to
// the system (bench/heap.cpp), so every repetition starts from the same heap; the tuned heap is left alone.
void settle_heap();

struct Opened {
    static constexpr std::string_view type_name = "bench.opened";
    std::string account_id;
    std::int64_t amount = 0;
    bool operator==(const Opened&) const = default;
};
struct Deposited {
    static constexpr std::string_view type_name = "bench.deposited";
    std::string account_id;
    std::int64_t amount = 0;
    bool operator==(const Deposited&) const = default;
};
struct Withdrawn {
    static constexpr std::string_view type_name = "bench.withdrawn";
    std::string account_id;
    std::int64_t amount = 0;
    bool operator==(const Withdrawn&) const = default;
};
using Event = std::variant<Opened, Deposited, Withdrawn>;

inline constexpr int w1_streams = 1000;
inline constexpr int w1_events_per_stream = 100;

inline std::string account_id(int i) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "acc-%06d", i);
    return buffer;
}

// The n-th event of a stream: opened first, then deposits and withdrawals.
inline Event make_event(const std::string& account, int n) {
    if (n == 0) return Opened{account, 0};
    if (n % 3 == 0) return Withdrawn{account, n % 7 + 1};
    return Deposited{account, n % 11 + 5};
}

// The aggregate every replay folds into.
class Account : public orchestrix::AggregateRoot<Account, Event> {
public:
    void apply(const Opened& e) { opened_ = e.amount >= 0; }
    void apply(const Deposited& e) { balance_ += e.amount; }
    void apply(const Withdrawn& e) { balance_ -= e.amount; }
    [[nodiscard]] std::int64_t balance() const { return balance_; }

private:
    bool opened_ = false;
    std::int64_t balance_ = 0;
};

// The baseline's fold: a plain struct and a std::visit per event.
struct PlainAccount {
    bool opened = false;
    std::int64_t balance = 0;
    void operator()(const Opened& e) { opened = e.amount >= 0; }
    void operator()(const Deposited& e) { balance += e.amount; }
    void operator()(const Withdrawn& e) { balance -= e.amount; }
};

// W1's input as a user holds it: per round, one batch of `per_append` plain events per stream, with no ids
// yet (a store's append of plain events gives each its id, as `store.append(stream, {Deposited{...}}, ...)`
// does). Every side of W1 appends these same batches.
struct PlainBatches {
    std::vector<std::string> streams{};
    std::vector<std::vector<std::vector<Event>>> rounds{}; // [round][stream] -> batch
};

inline PlainBatches make_plain_batches(int streams, int per_append, int events_per_stream) {
    PlainBatches input;
    for (int s = 0; s < streams; ++s) input.streams.push_back(account_id(s));
    const int rounds = events_per_stream / per_append;
    input.rounds.resize(static_cast<std::size_t>(rounds));
    for (int r = 0; r < rounds; ++r) {
        auto& round = input.rounds[static_cast<std::size_t>(r)];
        round.resize(static_cast<std::size_t>(streams));
        for (int s = 0; s < streams; ++s) {
            auto& batch = round[static_cast<std::size_t>(s)];
            batch.reserve(static_cast<std::size_t>(per_append));
            for (int k = 0; k < per_append; ++k)
                batch.push_back(make_event(input.streams[static_cast<std::size_t>(s)], r * per_append + k));
        }
    }
    return input;
}

// The durable-store append workloads' input: per round, one batch of `per_append` plain events per stream,
// raised into envelopes (which gives each its id, as a user's command does).
struct Batches {
    std::vector<std::string> streams;
    std::vector<std::vector<std::vector<orchestrix::EventEnvelope<Event>>>> rounds; // [round][stream] -> batch
};

inline Batches make_batches(int streams, int per_append, int events_per_stream) {
    PlainBatches plain = make_plain_batches(streams, per_append, events_per_stream);
    Batches input;
    input.streams = std::move(plain.streams);
    input.rounds.resize(plain.rounds.size());
    for (std::size_t r = 0; r < plain.rounds.size(); ++r) {
        for (const auto& batch : plain.rounds[r]) input.rounds[r].emplace_back(batch.begin(), batch.end());
    }
    return input;
}

} // namespace bench
