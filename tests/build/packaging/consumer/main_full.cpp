#include <orchestrix/compression.hpp>
#include <orchestrix/crypto.hpp>
#include <orchestrix/jetstream.hpp>
#include <orchestrix/orchestrix.hpp>
#include <orchestrix/postgres.hpp>
#include <orchestrix/sqlite.hpp>

#include <iostream>
#include <memory>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

struct Pinged {
    static constexpr std::string_view type_name = "consumer.pinged";
    int n = 0;
    bool operator==(const Pinged&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Pinged, n)

struct Signed {
    static constexpr std::string_view type_name = "consumer.signed";
    orchestrix::Personal<std::string> name;
    bool operator==(const Signed&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Signed, name)

int main() {
    using Events = std::variant<Pinged>;
    orchestrix::SqliteEventStore<Events> store(":memory:");
    (void)store.append("p",
                       {orchestrix::EventEnvelope<Events>{Pinged{2}}, orchestrix::EventEnvelope<Events>{Pinged{3}}},
                       orchestrix::ExpectedVersion::no_stream());
    int total = 0;
    for (const auto& e : store.read_stream("p")) total += std::get<Pinged>(e.event).n;
    // Personal data through libsodium, then compressed with zstd (threshold 0: every payload), then forgotten.
    using Personal = std::variant<Signed>;
    using Shredding = orchestrix::ShreddingCodec<Personal, orchestrix::InMemoryKeyStore>;
    using Codec = orchestrix::CompressingCodec<Personal, Shredding>;
    orchestrix::InMemoryKeyStore keys;
    orchestrix::SqliteEventStore<Personal, Codec> signatures(":memory:", {},
                                                             Codec(Shredding(keys), orchestrix::CompressionOptions{0}));
    (void)signatures.append("s", {orchestrix::EventEnvelope<Personal>{Signed{{"subject-1", "Ada"}}}},
                            orchestrix::ExpectedVersion::no_stream());
    const bool clear = std::get<Signed>(signatures.read_stream("s").front().event).name.value() == "Ada";
    signatures.codec().inner().forget("subject-1");
    const bool erased = std::get<Signed>(signatures.read_stream("s").front().event).name.is_erased();
    if (!clear || !erased) return 2;
    // The PostgreSQL store is only compiled and linked here: this program starts no server.
    [[maybe_unused]] auto* make = +[](const char* url) { return orchestrix::PostgresEventStore<Events>(url); };
    // Nor the JetStream store a server: its subject encoding runs, the store is compiled and linked.
    [[maybe_unused]] auto* make_jetstream = +[](const orchestrix::JetStreamOptions& options) {
        return std::make_unique<orchestrix::JetStreamEventStore<Events>>(options);
    };
    if (orchestrix::jetstream::encode_subject_token("a.b") != "a=2Eb") return 3;
    std::cout << "orchestrix " << ORCHESTRIX_VERSION_MAJOR << "." << ORCHESTRIX_VERSION_MINOR
              << " consumer (json, sqlite, postgres, crypto, compression, jetstream): total " << total << "\n";
    return total == 5 ? 0 : 1;
}
