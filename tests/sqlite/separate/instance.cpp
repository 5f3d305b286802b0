// The one file that compiles the store that ledger.hpp declares `extern`.

#include "sqlite/separate/ledger.hpp"

ORCHESTRIX_INSTANTIATE_JSON_CODEC(ledger::Event);
ORCHESTRIX_INSTANTIATE_SQLITE_EVENT_STORE(ledger::Event);
