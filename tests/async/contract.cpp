// The event-store contract, unchanged, over the asynchronous in-memory store's completions.

#include <orchestrix/async/event_store.hpp>

#include "support/blocking_store.hpp"
#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <memory>
#include <tuple>

namespace {

using AsyncStore = orchestrix::AsyncInMemoryEventStore<test_domain::AccountEvent>;
static_assert(orchestrix::async_event_store<AsyncStore>);
static_assert(orchestrix::event_store<test_support::BlockingStore<AsyncStore>>);

struct AsyncInMemoryStoreFactory {
    using store_type = test_support::BlockingStore<AsyncStore>;
    static constexpr int concurrency_threads = 8;
    static constexpr int concurrency_rounds = 500;
    std::unique_ptr<store_type> make() {
        return std::make_unique<store_type>(std::make_unique<AsyncStore>(orchestrix::AsyncStoreOptions{.threads = 2}));
    }
};

} // namespace

#define ORCHESTRIX_CONTRACT_STORES std::tuple<AsyncInMemoryStoreFactory>
#include "support/event_store_contract.hpp"
