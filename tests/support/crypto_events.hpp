#pragma once

// Events with personal data for the crypto-shredding tests: a personal field, a whole struct of personal
// fields, two subjects in one event, an event whose whole payload is personal, and one with no personal data.

#include <orchestrix/core/personal.hpp>
#include <orchestrix/json.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace crypto_domain {

using orchestrix::Personal;

// One personal field next to plain ones.
struct AccountOpened {
    static constexpr std::string_view type_name = "account.opened";
    std::string account_id;
    Personal<std::string> holder_name;
    bool operator==(const AccountOpened&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, account_id, holder_name)

// Every personal field of a customer in one struct, sealed as one value.
struct CustomerDetails {
    std::string name;
    std::string email;
    std::int32_t birth_year = 0;
    std::vector<std::string> phones;
    bool operator==(const CustomerDetails&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CustomerDetails, name, email, birth_year, phones)

struct CustomerRegistered {
    static constexpr std::string_view type_name = "customer.registered";
    std::string customer_id;
    Personal<CustomerDetails> details;
    bool operator==(const CustomerRegistered&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CustomerRegistered, customer_id, details)

// Two data subjects in one event, one of them optional.
struct TransferAgreed {
    static constexpr std::string_view type_name = "transfer.agreed";
    std::string transfer_id;
    std::int64_t amount = 0;
    Personal<std::string> payer_name;
    Personal<std::string> payee_name;
    std::optional<Personal<std::string>> note;
    bool operator==(const TransferAgreed&) const = default;
};

inline void to_json(nlohmann::json& j, const TransferAgreed& e) {
    j = nlohmann::json{{"transfer_id", e.transfer_id},
                       {"amount", e.amount},
                       {"payer_name", e.payer_name},
                       {"payee_name", e.payee_name}};
    j["note"] = e.note ? nlohmann::json(*e.note) : nlohmann::json(nullptr);
}

inline void from_json(const nlohmann::json& j, TransferAgreed& e) {
    e.transfer_id = orchestrix::json_field<std::string>(j, "transfer_id");
    e.amount = orchestrix::json_field<std::int64_t>(j, "amount");
    e.payer_name = j.at("payer_name").get<Personal<std::string>>();
    e.payee_name = j.at("payee_name").get<Personal<std::string>>();
    if (j.contains("note") && !j.at("note").is_null()) {
        e.note = j.at("note").get<Personal<std::string>>();
    } else {
        e.note.reset();
    }
}

// The whole payload is one personal value.
struct ContactCard {
    std::string name;
    std::string city;
    bool operator==(const ContactCard&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ContactCard, name, city)

struct ContactShared {
    static constexpr std::string_view type_name = "contact.shared";
    Personal<ContactCard> card;
    bool operator==(const ContactShared&) const = default;
};

inline void to_json(nlohmann::json& j, const ContactShared& e) { j = e.card; }
inline void from_json(const nlohmann::json& j, ContactShared& e) { e.card = j.get<Personal<ContactCard>>(); }

// No personal data.
struct MoneyDeposited {
    static constexpr std::string_view type_name = "account.deposited";
    std::string account_id;
    std::int64_t amount = 0;
    bool operator==(const MoneyDeposited&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, account_id, amount)

using CryptoEvent = std::variant<AccountOpened, CustomerRegistered, TransferAgreed, ContactShared, MoneyDeposited>;

} // namespace crypto_domain
