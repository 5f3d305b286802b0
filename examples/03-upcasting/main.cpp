// 03-upcasting: an event that gained a field, loaded from JSON stored before it had it.
// Version 1 of "account.deposited" had only an amount; version 2 added a currency. An upcaster turns
// stored version-1 JSON into version 2, so old events load without keeping the old C++ type around.
// Bad stored JSON is refused with a typed error that names the event type and the field.

#include <orchestrix/format.hpp>
#include <orchestrix/json.hpp>
#include <orchestrix/orchestrix.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

struct MoneyDeposited {
    static constexpr std::string_view type_name = "account.deposited";
    static constexpr std::uint32_t schema_version = 2; // v2 added `currency`
    std::int64_t amount = 0;
    std::string currency;
    bool operator==(const MoneyDeposited&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, amount, currency)

struct AccountClosed {
    static constexpr std::string_view type_name = "account.closed";
    std::string reason;
    bool operator==(const AccountClosed&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountClosed, reason)

using AccountEvent = std::variant<MoneyDeposited, AccountClosed>;

int main() {
    orchestrix::JsonCodec<AccountEvent> codec;
    // v1 -> v2: deposits before the currency field were all in euros.
    codec.add_upcaster("account.deposited", 1, [](nlohmann::json payload) {
        payload["currency"] = "EUR";
        return payload;
    });

    // Rows as a durable store holds them: type, schema version, payload, metadata.
    const std::string metadata = R"({"event_id":"01890a5d-ac96-774b-bcce-b302099a8057"})";
    const orchestrix::SerializedEventView old_row{"account.deposited", 1, R"({"amount":250})", metadata};
    const auto old_event = codec.deserialize(old_row, "account-7", 1, 1, std::chrono::system_clock::now());
    const auto& upcast = std::get<MoneyDeposited>(old_event.event);
    fmt::print("v1 row {} -> {} {}\n", old_row.payload, upcast.amount, upcast.currency);
    fmt::print("  recorded as: {}\n", old_event);

    // New events are written at the current schema version.
    const auto new_row = codec.serialize(AccountEvent{MoneyDeposited{100, "USD"}},
                                         orchestrix::Metadata{orchestrix::Uuid::generate(), "", "", {}, {}});
    fmt::print("v{} row {}\n", new_row.schema_version, new_row.payload);
    const auto round_trip = codec.deserialize_event(new_row.type, new_row.schema_version, new_row.payload);

    // Strict decoding: each problem is a typed error with the event type and the JSON path.
    int refused = 0;
    for (const char* payload : {R"({"amount":2.5,"currency":"EUR"})", R"({"amount":1,"currency":"EUR","amount":2})",
                                R"({"currency":"EUR"})", R"({"amount":"ten","currency":"EUR"})"}) {
        try {
            (void)codec.deserialize_event("account.deposited", 2, payload);
        } catch (const orchestrix::DecodeError& e) {
            ++refused;
            fmt::print("refused {}: {}\n", payload, e);
        }
    }
    try {
        (void)codec.deserialize_event("account.deposited", 3, R"({"amount":1,"currency":"EUR"})");
    } catch (const orchestrix::DecodeError& e) {
        ++refused;
        fmt::print("refused a row from the future: {}\n", e.detail());
    }

    const bool ok =
        upcast == MoneyDeposited{250, "EUR"} && round_trip == AccountEvent{MoneyDeposited{100, "USD"}} && refused == 5;
    return ok ? 0 : 1;
}
