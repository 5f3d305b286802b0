#pragma once

// Umbrella header: the modules that need nothing but the standard library: core (aggregates, messages,
// the stores' concepts, repository, snapshots), memory (the in-memory event store, snapshot store, message
// and command buses) and validation. It pulls in neither nlohmann_json nor fmt nor <thread>: every other
// module has an umbrella of its own.
//   <orchestrix/async.hpp>                Completion, the asynchronous bus and store
//   <orchestrix/projection.hpp>           projections, subscriptions, process managers
//   <orchestrix/json.hpp>                 the JSON codec and snapshot state codec (nlohmann_json)
//   <orchestrix/format.hpp>               fmt formatters
//   <orchestrix/validation/pattern.hpp>   the regular-expression rule (<regex>)
//   <orchestrix/sqlite.hpp>, <orchestrix/postgres.hpp>
//                                         the durable stores (they link a library)

#include <orchestrix/version.hpp>

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/aggregate_cache.hpp>
#include <orchestrix/core/dcb.hpp>
#include <orchestrix/core/decision.hpp>
#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/event_fields.hpp>
#include <orchestrix/core/event_store.hpp>
#include <orchestrix/core/expected_version.hpp>
#include <orchestrix/core/lifecycle.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/message_bus.hpp>
#include <orchestrix/core/observer.hpp>
#include <orchestrix/core/personal.hpp>
#include <orchestrix/core/personal_fields.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/core/saga_events.hpp>
#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/core/uuid.hpp>

#include <orchestrix/validation/errors.hpp>
#include <orchestrix/validation/rules.hpp>

#include <orchestrix/memory/application.hpp>
#include <orchestrix/memory/bus.hpp>
#include <orchestrix/memory/bus_routing.hpp>
#include <orchestrix/memory/command_bus.hpp>
#include <orchestrix/memory/errors.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/memory/snapshot_store.hpp>
#include <orchestrix/memory/stable_array.hpp>
#include <orchestrix/memory/uuid_index.hpp>
