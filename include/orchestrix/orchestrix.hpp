#pragma once

// Umbrella header: the core (aggregates, messages, stores' concepts, repository, snapshots, validation)
// and the synchronous in-memory infrastructure (event store, snapshot store, message and command buses).
// It pulls in neither nlohmann_json nor fmt nor <thread>: the rest comes from its own headers.
//   <orchestrix/async.hpp>                  Completion, the asynchronous bus and store
//   <orchestrix/projection.hpp>             projections, subscriptions, process managers
//   <orchestrix/core/serialization.hpp>     the JSON codec (nlohmann_json)
//   <orchestrix/format.hpp>                 fmt formatters
//   <orchestrix/core/validation_pattern.hpp> the regular-expression rule (<regex>)
//   <orchestrix/infrastructure/sqlite_store.hpp>, <orchestrix/infrastructure/postgres_store.hpp>
//                                           the durable stores (they link a library)

#include <orchestrix/version.hpp>

#include <orchestrix/core/aggregate.hpp>
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

#include <orchestrix/infrastructure/command_bus.hpp>
#include <orchestrix/infrastructure/inmemory_bus.hpp>
#include <orchestrix/infrastructure/inmemory_snapshot_store.hpp>
#include <orchestrix/infrastructure/inmemory_store.hpp>
#include <orchestrix/infrastructure/memory.hpp>
