#include <orchestrix/prometheus/metrics.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using orchestrix::InvalidArgumentError;
using orchestrix::prometheus::Registry;

TEST_CASE("prometheus registry: a small registry is written exactly in the text format 0.0.4") {
    Registry registry;
    auto& requests = registry.counter("app_requests_total", "Requests handled.", {"method", "code"});
    requests.labels({"get", "200"}).inc(3);
    requests.labels({"post", "500"}).inc();
    requests.labels({"get", "404"}).inc();
    registry.gauge("app_temperature_celsius", "Current temperature.").labels({}).set(-2.5);
    auto& latency = registry.histogram("app_latency_seconds", "Request latency.", {"route"}, {0.25, 0.5, 1});
    latency.labels({"/a"}).observe(0.125);
    latency.labels({"/a"}).observe(0.25); // a bound is inclusive: counted in le="0.25"
    latency.labels({"/a"}).observe(0.75);
    latency.labels({"/a"}).observe(3);

    CHECK(registry.serialize() == "# HELP app_requests_total Requests handled.\n"
                                  "# TYPE app_requests_total counter\n"
                                  "app_requests_total{method=\"get\",code=\"200\"} 3\n"
                                  "app_requests_total{method=\"get\",code=\"404\"} 1\n"
                                  "app_requests_total{method=\"post\",code=\"500\"} 1\n"
                                  "# HELP app_temperature_celsius Current temperature.\n"
                                  "# TYPE app_temperature_celsius gauge\n"
                                  "app_temperature_celsius -2.5\n"
                                  "# HELP app_latency_seconds Request latency.\n"
                                  "# TYPE app_latency_seconds histogram\n"
                                  "app_latency_seconds_bucket{route=\"/a\",le=\"0.25\"} 2\n"
                                  "app_latency_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
                                  "app_latency_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
                                  "app_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
                                  "app_latency_seconds_sum{route=\"/a\"} 4.125\n"
                                  "app_latency_seconds_count{route=\"/a\"} 4\n");
    CHECK(orchestrix::prometheus::text_content_type == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("prometheus registry: label values escape backslash, double quote and line feed, HELP escapes backslash "
          "and line feed") {
    Registry registry;
    registry.counter("escaped_total", "a \\ help\nwith \"quotes\"", {"value"})
        .labels({"back\\slash \"quoted\"\nnext"})
        .inc();
    CHECK(registry.serialize() == "# HELP escaped_total a \\\\ help\\nwith \"quotes\"\n"
                                  "# TYPE escaped_total counter\n"
                                  "escaped_total{value=\"back\\\\slash \\\"quoted\\\"\\nnext\"} 1\n");
}

TEST_CASE("prometheus histogram: buckets are cumulative and _count equals the +Inf bucket") {
    Registry registry;
    auto& family = registry.histogram("h_seconds", "h", {}, {1, 2, 4});
    auto& h = family.labels({});
    for (const double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 100.0}) h.observe(v);
    CHECK(h.cumulative_count(0) == 2); // 0.5, 1
    CHECK(h.cumulative_count(1) == 4); // + 1.5, 2
    CHECK(h.cumulative_count(2) == 6); // + 3, 4
    CHECK(h.cumulative_count(3) == 8); // + 5, 100 (+Inf)
    CHECK(h.count() == 8);
    CHECK(h.sum() == 117.0);
    CHECK(registry.serialize() == "# HELP h_seconds h\n"
                                  "# TYPE h_seconds histogram\n"
                                  "h_seconds_bucket{le=\"1\"} 2\n"
                                  "h_seconds_bucket{le=\"2\"} 4\n"
                                  "h_seconds_bucket{le=\"4\"} 6\n"
                                  "h_seconds_bucket{le=\"+Inf\"} 8\n"
                                  "h_seconds_sum 117\n"
                                  "h_seconds_count 8\n");
    CHECK_THROWS_AS(h.observe(std::numeric_limits<double>::quiet_NaN()), InvalidArgumentError);
}

TEST_CASE("prometheus values: floats are written as the Go client writes them, infinities as +Inf and -Inf") {
    Registry registry;
    auto& g = registry.gauge("g", "g", {"k"});
    g.labels({"a_small"}).set(0.00001);
    g.labels({"b_tenth_of_a_milli"}).set(0.0001);
    g.labels({"c_quarter"}).set(0.25);
    g.labels({"d_hundred_thousand"}).set(100000.0);
    g.labels({"e_million"}).set(1234567.0);
    g.labels({"f_negative"}).set(-0.005);
    g.labels({"g_inf"}).set(std::numeric_limits<double>::infinity());
    g.labels({"h_minus"}).set(-std::numeric_limits<double>::infinity());
    g.labels({"i_nan"}).set(std::numeric_limits<double>::quiet_NaN());
    g.labels({"j_third"}).set(1.0 / 3.0);
    CHECK(registry.serialize() == "# HELP g g\n# TYPE g gauge\n"
                                  "g{k=\"a_small\"} 1e-05\n"
                                  "g{k=\"b_tenth_of_a_milli\"} 0.0001\n"
                                  "g{k=\"c_quarter\"} 0.25\n"
                                  "g{k=\"d_hundred_thousand\"} 100000\n"
                                  "g{k=\"e_million\"} 1.234567e+06\n"
                                  "g{k=\"f_negative\"} -0.005\n"
                                  "g{k=\"g_inf\"} +Inf\n"
                                  "g{k=\"h_minus\"} -Inf\n"
                                  "g{k=\"i_nan\"} NaN\n"
                                  "g{k=\"j_third\"} 0.3333333333333333\n");
    // The default duration buckets read as the Go client writes them.
    Registry durations;
    durations.histogram("d_seconds", "d", {}, {0.00001, 0.0001, 0.0005, 0.005, 2.5}).labels({});
    const std::string text = durations.serialize();
    for (const std::string_view bound : {"1e-05", "0.0001", "0.0005", "0.005", "2.5", "+Inf"}) {
        CHECK(text.find("le=\"" + std::string(bound) + "\"} 0\n") != std::string::npos);
    }
}

TEST_CASE("prometheus registry: a family without series writes its HELP and TYPE lines only") {
    Registry registry;
    registry.counter("unused_total", "Nothing yet.", {"a"});
    CHECK(registry.serialize() == "# HELP unused_total Nothing yet.\n# TYPE unused_total counter\n");
}

TEST_CASE("prometheus registry: registering a name again returns its family, or throws when it differs") {
    Registry registry;
    auto& first = registry.counter("c_total", "c", {"a"});
    auto& again = registry.counter("c_total", "c", {"a"});
    CHECK(&first == &again);
    CHECK_THROWS_AS(registry.counter("c_total", "c", {"b"}), InvalidArgumentError);
    CHECK_THROWS_AS(registry.gauge("c_total", "c", {"a"}), InvalidArgumentError);
    auto& h = registry.histogram("h", "h", {}, {1, 2});
    CHECK(&registry.histogram("h", "h", {}, {1, 2}) == &h);
    CHECK_THROWS_AS(registry.histogram("h", "h", {}, {1, 3}), InvalidArgumentError);
}

TEST_CASE("prometheus registry: malformed names, labels, label values and buckets throw InvalidArgumentError") {
    Registry registry;
    const auto argument_of = [](auto&& call) {
        try {
            call();
        } catch (const InvalidArgumentError& e) {
            return e.argument();
        }
        return std::string("nothing thrown");
    };
    CHECK(argument_of([&] { registry.counter("", "x"); }) == "name");
    CHECK(argument_of([&] { registry.counter("9lives", "x"); }) == "name");
    CHECK(argument_of([&] { registry.counter("has-dash", "x"); }) == "name");
    CHECK(argument_of([&] { registry.counter("ok_total", "x", {"bad-label"}); }) == "labels");
    CHECK(argument_of([&] { registry.counter("ok_total", "x", {"__reserved"}); }) == "labels");
    CHECK(argument_of([&] { registry.counter("ok_total", "x", {"a", "a"}); }) == "labels");
    CHECK(argument_of([&] { registry.histogram("h", "x", {"le"}, {1}); }) == "labels");
    CHECK(argument_of([&] { registry.histogram("h", "x", {}, {2, 1}); }) == "buckets");
    CHECK(argument_of([&] { registry.histogram("h", "x", {}, {1, 1}); }) == "buckets");
    CHECK(argument_of([&] {
              registry.histogram("h", "x", {}, {1, std::numeric_limits<double>::infinity()});
          }) == "buckets");
    auto& family = registry.counter("two_total", "x", {"a", "b"});
    CHECK(argument_of([&] { family.labels({"only one"}); }) == "label_values");
    CHECK(argument_of([&] { family.labels({"1", "2", "3"}); }) == "label_values");
    registry.counter("colon:name_total", "x"); // colons are allowed in metric names
}

TEST_CASE("prometheus metrics: 8 threads updating the same and new series lose no update") {
    Registry registry;
    auto& counters = registry.counter("hits_total", "hits", {"thread", "shared"});
    auto& histograms = registry.histogram("work_seconds", "work", {}, {0.5, 1.5});
    auto& gauge = registry.gauge("level", "level").labels({});
    constexpr int threads = 8;
    constexpr int per_thread = 20000;
    std::vector<std::thread> workers;
    workers.reserve(threads);
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            const std::string own = std::to_string(t);
            for (int i = 0; i < per_thread; ++i) {
                counters.labels({"any", "yes"}).inc();
                counters.labels({own, "no"}).inc(2);
                histograms.labels({}).observe(i % 2 == 0 ? 1.0 : 2.0);
                gauge.inc();
                if (i % 1000 == 0) static_cast<void>(registry.serialize()); // scrapes while updating
            }
        });
    }
    for (auto& w : workers) w.join();
    CHECK(counters.labels({"any", "yes"}).value() == std::uint64_t{threads} * per_thread);
    for (int t = 0; t < threads; ++t) {
        CHECK(counters.labels({std::to_string(t), "no"}).value() == std::uint64_t{2} * per_thread);
    }
    auto& h = histograms.labels({});
    CHECK(h.count() == std::uint64_t{threads} * per_thread);
    CHECK(h.cumulative_count(0) == 0);
    CHECK(h.cumulative_count(1) == std::uint64_t{threads} * per_thread / 2);
    CHECK(h.sum() == 1.5 * threads * per_thread); // exact: every partial sum is an integer below 2^53
    CHECK(gauge.value() == double{threads} * per_thread);
}

TEST_CASE("prometheus registry: the application's own metrics sit beside orchestrix's, as docs/operations.md "
          "shows") {
    Registry registry;
    auto& logins = registry.counter("app_logins_total", "Logins, by method.", {"method"});
    logins.labels({"password"}).inc();
    registry.gauge("app_sessions", "Open sessions.").labels({}).set(12);
    registry.histogram("app_render_seconds", "Page rendering.", {"page"}, {0.01, 0.1, 1})
        .labels({"home"})
        .observe(0.04);
    const std::string text = registry.serialize();
    CHECK(text.find("app_logins_total{method=\"password\"} 1\n") != std::string::npos);
    CHECK(text.find("app_sessions 12\n") != std::string::npos);
    CHECK(text.find("app_render_seconds_bucket{page=\"home\",le=\"0.01\"} 0\n") != std::string::npos);
    CHECK(text.find("app_render_seconds_bucket{page=\"home\",le=\"0.1\"} 1\n") != std::string::npos);
    CHECK(text.find("app_render_seconds_count{page=\"home\"} 1\n") != std::string::npos);
    // A series reference stays valid while others are added.
    auto& password = logins.labels({"password"});
    for (int i = 0; i < 1000; ++i) logins.labels({"method-" + std::to_string(i)});
    password.inc();
    CHECK(logins.labels({"password"}).value() == 2);
}
