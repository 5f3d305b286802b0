// The /metrics endpoint of examples/13-metrics, scraped over HTTP after its known workload (built when
// cpp-httplib is found).

#include "bank.hpp"
#include "metrics_server.hpp"

#include "support/catch.hpp"

#include <httplib.h>

#include <string>
#include <string_view>

namespace {

std::string sample(const std::string& text, std::string_view series) {
    const std::string prefix = std::string(series) + " ";
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        const std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
        if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return "";
}

} // namespace

TEST_CASE("prometheus http: GET /metrics on 127.0.0.1 after the example's workload serves its figures") {
    orchestrix::prometheus::Registry registry;
    orchestrix::PrometheusObserver observer(registry);
    metrics_example::Bank bank(observer);
    metrics_example::MetricsServer server(registry, "127.0.0.1"); // a free port
    REQUIRE(server.port() > 0);

    metrics_example::run_workload(bank);
    CHECK(bank.balance("alice") == 90);
    CHECK(bank.balance("bob") == 5);
    CHECK(bank.audited() == 6);

    httplib::Client client("127.0.0.1", server.port());
    const auto response = client.Get("/metrics");
    REQUIRE(response);
    CHECK(response->status == 200);
    CHECK(response->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
    const std::string& text = response->body;
    CAPTURE(text);
    CHECK(sample(text, R"(orchestrix_appends_total{store="memory",outcome="written"})") == "6");
    CHECK(sample(text, R"(orchestrix_appended_events_total{store="memory"})") == "6");
    CHECK(sample(text, R"(orchestrix_commands_total{aggregate="account",outcome="succeeded"})") == "6");
    CHECK(sample(text, R"(orchestrix_commands_total{aggregate="account",outcome="rejected"})") == "2");
    CHECK(sample(text, R"(orchestrix_published_messages_total{bus="bus",type="account.opened"})") == "2");
    CHECK(sample(text, R"(orchestrix_published_messages_total{bus="bus",type="account.deposited"})") == "3");
    CHECK(sample(text, R"(orchestrix_published_messages_total{bus="bus",type="account.withdrawn"})") == "1");
    CHECK(sample(text, R"(orchestrix_handler_calls_total{bus="bus",type="account.deposited"})") == "3");
    CHECK(sample(text, R"(orchestrix_projection_events_total{projection="balances"})") == "6");
    CHECK(sample(text, R"(orchestrix_projection_checkpoint_position{projection="balances"})") == "6");
    CHECK(sample(text, R"(orchestrix_projection_lag_events{projection="balances"})") == "0");
    CHECK(text == registry.serialize()); // nothing changed between the scrape and now

    // Another scrape sees what was done since.
    bank.execute("bob", metrics_example::Deposit{1});
    const auto again = client.Get("/metrics");
    REQUIRE(again);
    CHECK(sample(again->body, R"(orchestrix_appends_total{store="memory",outcome="written"})") == "7");
    CHECK(client.Get("/nothing-here")->status == 404);
    server.stop();
}
