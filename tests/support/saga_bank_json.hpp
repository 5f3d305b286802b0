#pragma once

// JSON conversions of the saga test bank's events, for the durable stores.

#include "support/saga_bank.hpp"

#include <orchestrix/json.hpp>

#include <nlohmann/json.hpp>

namespace saga_bank {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, account, balance, frozen)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Withdrawn, account, amount, command_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, account, amount, command_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransferRequested, transfer, from, to, amount, needs_approval)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransferApproved, transfer)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransferStarted, from, to, amount)

inline void to_json(nlohmann::json& j, const TransferCredited&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json&, TransferCredited&) {}

} // namespace saga_bank
