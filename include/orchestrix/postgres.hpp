#pragma once

// Umbrella header of the postgres module: the PostgreSQL event store (blocking and asynchronous), snapshot store,
// listener, key store and checkpoint store (needs libpq and nlohmann_json; CMake target orchestrix::postgres).

#include <orchestrix/json.hpp>
#include <orchestrix/projection.hpp>

#include <orchestrix/postgres/async_event_store.hpp>
#include <orchestrix/postgres/checkpoint_store.hpp>
#include <orchestrix/postgres/connection.hpp>
#include <orchestrix/postgres/deadline_store.hpp>
#include <orchestrix/postgres/errors.hpp>
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/postgres/inspector.hpp>
#include <orchestrix/postgres/key_store.hpp>
