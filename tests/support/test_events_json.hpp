#pragma once

// JSON conversions of the test domain's events, for the durable stores (which keep events as JSON).

#include "support/test_events.hpp"

#include <orchestrix/json.hpp>

#include <nlohmann/json.hpp>

namespace test_domain {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, account_id, owner)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, account_id, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyWithdrawn, account_id, amount)

} // namespace test_domain
