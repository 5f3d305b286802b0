#pragma once

// Umbrella header for read models: projections with checkpoints, partitioned projections with leases,
// catch-up subscriptions and process managers, with the in-memory checkpoint store. The SQLite and
// PostgreSQL checkpoint stores come from <orchestrix/sqlite.hpp> and <orchestrix/postgres.hpp> (they link a
// library).

#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/errors.hpp>
#include <orchestrix/projection/lease.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/partitioned.hpp>
#include <orchestrix/projection/process_manager.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/projection/saga.hpp>
#include <orchestrix/projection/subscription.hpp>
