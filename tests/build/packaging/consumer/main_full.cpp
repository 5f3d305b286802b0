#include <orchestrix/orchestrix.hpp>
#include <orchestrix/postgres.hpp>
#include <orchestrix/sqlite.hpp>

#include <iostream>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

struct Pinged {
    static constexpr std::string_view type_name = "consumer.pinged";
    int n = 0;
    bool operator==(const Pinged&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Pinged, n)

int main() {
    using Events = std::variant<Pinged>;
    orchestrix::SqliteEventStore<Events> store(":memory:");
    (void)store.append("p",
                       {orchestrix::EventEnvelope<Events>{Pinged{2}}, orchestrix::EventEnvelope<Events>{Pinged{3}}},
                       orchestrix::ExpectedVersion::no_stream());
    int total = 0;
    for (const auto& e : store.read_stream("p")) total += std::get<Pinged>(e.event).n;
    // The PostgreSQL store is only compiled and linked here: this program starts no server.
    [[maybe_unused]] auto* make = +[](const char* url) { return orchestrix::PostgresEventStore<Events>(url); };
    std::cout << "orchestrix " << ORCHESTRIX_VERSION_MAJOR << "." << ORCHESTRIX_VERSION_MINOR
              << " consumer (json, sqlite, postgres): total " << total << "\n";
    return total == 5 ? 0 : 1;
}
