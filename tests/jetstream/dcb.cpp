// Dynamic consistency boundaries on the JetStream store: the contract (support/dcb_contract.hpp). A read by
// query reads the messages after its position; a conditional append checks its condition on the store's
// catalog and is published with the catalog's last sequence as the expected one, so the check holds against
// every writer (several store objects, as several processes, in `open_again`).

#include <orchestrix/jetstream.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"
#include "support/dcb_events_json.hpp"
#include "support/nats_server.hpp"

#include <memory>
#include <string>
#include <tuple>

namespace {

using Store = orchestrix::JetStreamEventStore<dcb_domain::CourseEvent>;

struct JetStreamDcbFactory {
    using store_type = Store;
    static constexpr int race_threads = 4;
    static constexpr int race_seats = 3;
    orchestrix::JetStreamOptions options;
    std::unique_ptr<store_type> make() {
        options.url = test_support::nats_test_url();
        options.stream = test_support::fresh_jetstream_stream_name();
        options.subject_prefix = options.stream;
        return std::make_unique<store_type>(options);
    }
    std::unique_ptr<store_type> open_again() { return std::make_unique<store_type>(options); }
};

} // namespace

#define ORCHESTRIX_DCB_STORES std::tuple<JetStreamDcbFactory>
#include "support/dcb_contract.hpp"
