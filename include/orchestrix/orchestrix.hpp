#pragma once

// Umbrella header: the core and the in-memory infrastructure. It pulls in neither nlohmann_json nor fmt;
// include <orchestrix/core/serialization.hpp> or <orchestrix/format.hpp> for those, and the SQLite and
// PostgreSQL stores from their own headers (they link a library).

#include <orchestrix/version.hpp>

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/completion.hpp>
#include <orchestrix/core/error.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/core/uuid.hpp>
#include <orchestrix/core/validation.hpp>

#include <orchestrix/infrastructure/async_inmemory_bus.hpp>
#include <orchestrix/infrastructure/async_inmemory_store.hpp>
#include <orchestrix/infrastructure/command_bus.hpp>
#include <orchestrix/infrastructure/inmemory_bus.hpp>
#include <orchestrix/infrastructure/inmemory_snapshot_store.hpp>
#include <orchestrix/infrastructure/inmemory_store.hpp>
#include <orchestrix/infrastructure/memory.hpp>

#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/process_manager.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/projection/subscription.hpp>

#include <orchestrix/serialization/rfc3339.hpp>
