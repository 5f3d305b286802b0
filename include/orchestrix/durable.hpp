#pragma once

// Umbrella header of the durable module: what the SQLite and PostgreSQL stores share and a store for
// another database reuses: `DurableStoreBase`, the `event_codec` concept, the building blocks in
// `orchestrix::durable` (the SQL of a DCB query among them) and `StoredEventDecodeError` (needs nlohmann_json;
// CMake target orchestrix::durable).

#include <orchestrix/durable/errors.hpp>
#include <orchestrix/durable/inspection.hpp>
#include <orchestrix/durable/query_sql.hpp>
#include <orchestrix/durable/store_base.hpp>
