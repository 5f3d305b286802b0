// Serialization and snapshots: the JSON codec against hand-written nlohmann calls on a small event, and a
// 1,000,000-event replay with a snapshot every 1,000 events against none.

#include <orchestrix/json.hpp>
#include <orchestrix/memory/snapshot_store.hpp>
#include <orchestrix/orchestrix.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace serialization_bench {

struct Deposited {
    static constexpr std::string_view type_name = "account.deposited";
    std::string account_id;
    std::int64_t amount = 0;
    bool operator==(const Deposited&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, account_id, amount)

struct Closed {
    static constexpr std::string_view type_name = "account.closed";
    std::string reason;
    bool operator==(const Closed&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Closed, reason)

using Event = std::variant<Deposited, Closed>;

class Account : public orchestrix::AggregateRoot<Account, Event> {
public:
    static constexpr std::string_view aggregate_type_name = "account";
    void apply(const Deposited& e) { balance_ += e.amount; }
    void apply(const Closed&) { closed_ = true; }
    [[nodiscard]] std::int64_t balance() const { return balance_; }
    NLOHMANN_DEFINE_TYPE_INTRUSIVE(Account, balance_, closed_)

private:
    std::int64_t balance_ = 0;
    bool closed_ = false;
};

const Event small_event = Deposited{"acc-000001", 12345};

void codec_encode(benchmark::State& state) {
    const orchestrix::JsonCodec<Event> codec;
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), "", "", {}, {}};
    for (auto _ : state) {
        auto row = codec.serialize(small_event, metadata);
        benchmark::DoNotOptimize(row.payload.data());
    }
}

void baseline_encode(benchmark::State& state) {
    const orchestrix::Metadata metadata{orchestrix::Uuid::generate(), "", "", {}, {}};
    for (auto _ : state) {
        const auto& e = std::get<Deposited>(small_event);
        std::string payload = nlohmann::json{{"account_id", e.account_id}, {"amount", e.amount}}.dump();
        std::string meta = nlohmann::json{{"event_id", metadata.event_id.to_string()},
                                          {"correlation_id", metadata.correlation_id},
                                          {"causation_id", metadata.causation_id}}
                               .dump();
        benchmark::DoNotOptimize(payload.data());
        benchmark::DoNotOptimize(meta.data());
    }
}

void codec_decode(benchmark::State& state) {
    orchestrix::DecodeOptions options;
    options.verify_round_trip = state.range(0) != 0;
    const orchestrix::JsonCodec<Event> codec(options);
    const auto payload = codec.encode_payload(small_event).dump();
    for (auto _ : state) {
        Event e = codec.deserialize_event("account.deposited", 1, payload);
        benchmark::DoNotOptimize(&e);
    }
}

void baseline_decode(benchmark::State& state) {
    const std::string payload = R"({"account_id":"acc-000001","amount":12345})";
    for (auto _ : state) {
        const auto j = nlohmann::json::parse(payload);
        Event e = Deposited{j.at("account_id").get<std::string>(), j.at("amount").get<std::int64_t>()};
        benchmark::DoNotOptimize(&e);
    }
}

using Store = orchestrix::InMemoryEventStore<Event>;

Store& long_stream() {
    static Store* store = [] {
        auto* s = new Store;
        std::vector<orchestrix::EventEnvelope<Event>> chunk;
        for (int i = 0; i < 1'000'000;) {
            chunk.clear();
            for (int k = 0; k < 1000; ++k, ++i) chunk.emplace_back(Deposited{"acc-000001", 1});
            (void)s->append("acc-000001", chunk, orchestrix::ExpectedVersion::any());
        }
        return s;
    }();
    return *store;
}

void replay_without_snapshot(benchmark::State& state) {
    orchestrix::Repository<Account, Store> accounts(long_stream());
    for (auto _ : state) benchmark::DoNotOptimize(accounts.load("acc-000001").balance());
}

void replay_with_snapshot_every_1000(benchmark::State& state) {
    // The latest snapshot of a stream snapshotted every 1,000 events is at most 999 events behind: here
    // it is taken at 999,001, so a load replays 999 events.
    orchestrix::InMemorySnapshotStore snapshots;
    orchestrix::SnapshotSettings<Account> settings;
    settings.state = orchestrix::json_state_codec<Account>();
    orchestrix::Repository accounts(long_stream(), snapshots, settings);
    orchestrix::Snapshot snapshot{"acc-000001", "account", 999'001, 1, R"({"balance_":999001,"closed_":false})", {}};
    snapshots.save(snapshot);
    for (auto _ : state) benchmark::DoNotOptimize(accounts.load("acc-000001").balance());
}

} // namespace serialization_bench

BENCHMARK(serialization_bench::codec_encode);
BENCHMARK(serialization_bench::baseline_encode);
BENCHMARK(serialization_bench::codec_decode)->Arg(1)->Arg(0)->ArgName("round_trip_check");
BENCHMARK(serialization_bench::baseline_decode);
BENCHMARK(serialization_bench::replay_without_snapshot)->Unit(benchmark::kMillisecond);
BENCHMARK(serialization_bench::replay_with_snapshot_every_1000)->Unit(benchmark::kMicrosecond);
