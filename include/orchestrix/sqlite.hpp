#pragma once

// Umbrella header of the sqlite module: the SQLite event store (and its asynchronous face), snapshot store,
// checkpoint store and key store (needs SQLite 3 and nlohmann_json; CMake target orchestrix::sqlite).

#include <orchestrix/json.hpp>
#include <orchestrix/projection.hpp>

#include <orchestrix/sqlite/async_event_store.hpp>
#include <orchestrix/sqlite/checkpoint_store.hpp>
#include <orchestrix/sqlite/connection.hpp>
#include <orchestrix/sqlite/deadline_store.hpp>
#include <orchestrix/sqlite/errors.hpp>
#include <orchestrix/sqlite/event_store.hpp>
#include <orchestrix/sqlite/inspector.hpp>
#include <orchestrix/sqlite/key_store.hpp>
