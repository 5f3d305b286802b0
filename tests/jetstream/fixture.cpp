// The NATS test fixture itself (tests/support/nats_server.hpp), checked with plain libnats: the shared
// server and cluster answer JetStream requests, and the faults the JetStream fault tests inject do what they
// rely on. A replicated stream's leader killed (SIGKILL): a new leader is elected, publishing works again, and
// the killed node restarted on its store catches up. A node paused (SIGSTOP): the others go on without it,
// and once resumed (SIGCONT) it catches up.

#include "support/catch.hpp"
#include "support/nats_server.hpp"

#include <nats/nats.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A libnats connection to a server or cluster (comma-separated URLs; it reconnects to another node when
// one goes away) and its JetStream context.
class JetStreamClient {
public:
    explicit JetStreamClient(const std::string& urls) {
        natsOptions* options = nullptr;
        REQUIRE(natsOptions_Create(&options) == NATS_OK);
        const auto list = test_support::nats_detail::split_urls(urls);
        std::vector<const char*> servers;
        for (const auto& url : list) servers.push_back(url.c_str());
        REQUIRE(natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size())) == NATS_OK);
        REQUIRE(natsOptions_SetTimeout(options, 1000) == NATS_OK);
        REQUIRE(natsOptions_SetMaxReconnect(options, -1) == NATS_OK);
        REQUIRE(natsOptions_SetReconnectWait(options, 100) == NATS_OK);
        const natsStatus s = natsConnection_Connect(&connection_, options);
        natsOptions_Destroy(options);
        INFO("connecting to " << urls << ": " << natsStatus_GetText(s));
        REQUIRE(s == NATS_OK);
        REQUIRE(natsConnection_JetStream(&js_, connection_, nullptr) == NATS_OK);
    }
    JetStreamClient(const JetStreamClient&) = delete;
    JetStreamClient& operator=(const JetStreamClient&) = delete;
    ~JetStreamClient() {
        jsCtx_Destroy(js_);
        natsConnection_Destroy(connection_);
    }

    // Creates a file-backed stream over the subjects "<name>.>" with `replicas` copies.
    void add_stream(const std::string& name, int replicas) {
        jsStreamConfig config;
        REQUIRE(jsStreamConfig_Init(&config) == NATS_OK);
        const std::string subject = name + ".>";
        const char* subjects[] = {subject.c_str()};
        config.Name = name.c_str();
        config.Subjects = subjects;
        config.SubjectsLen = 1;
        config.Replicas = replicas;
        config.Storage = js_FileStorage;
        jsStreamInfo* info = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        const natsStatus s = js_AddStream(&info, js_, &config, nullptr, &code);
        INFO("adding stream " << name << ": " << natsStatus_GetText(s) << " (JetStream error " << code << ", "
                              << nats_GetLastError(nullptr) << ")");
        REQUIRE(s == NATS_OK);
        jsStreamInfo_Destroy(info);
    }

    // Publishes `data` to `subject` once, waiting `wait` for the ack: its stream sequence, or nothing.
    std::optional<std::uint64_t> publish_once(const std::string& subject, const std::string& data,
                                              std::chrono::milliseconds wait, const std::string& id = "") {
        jsPubOptions options;
        jsPubOptions_Init(&options);
        options.MaxWait = wait.count();
        if (!id.empty()) options.MsgId = id.c_str();
        jsPubAck* ack = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        const natsStatus s =
            js_Publish(&ack, js_, subject.c_str(), data.data(), static_cast<int>(data.size()), &options, &code);
        if (s != NATS_OK) return std::nullopt;
        const std::uint64_t sequence = ack->Sequence;
        jsPubAck_Destroy(ack);
        return sequence;
    }

    // Publishes until acked (the same message id each time, so a lost ack does not store it twice); fails the
    // test after `timeout`.
    std::uint64_t publish(const std::string& subject, const std::string& data, std::chrono::milliseconds timeout,
                          const std::string& id) {
        const auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            if (const auto sequence = publish_once(subject, data, 1000ms, id)) return *sequence;
            std::this_thread::sleep_for(50ms);
        }
        FAIL("no ack for a publish to " << subject << " within " << timeout.count() << " ms");
        return 0;
    }

    // The number of messages the stream holds, as its leader reports it.
    std::uint64_t messages(const std::string& stream) {
        jsStreamInfo* info = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        REQUIRE(js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code) == NATS_OK);
        const std::uint64_t count = info->State.Msgs;
        jsStreamInfo_Destroy(info);
        return count;
    }

private:
    natsConnection* connection_ = nullptr;
    jsCtx* js_ = nullptr;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Whether `node` holds every message of the stream as its leader sees it: it is the leader, or a replica
// the leader reports current, online and with no lag.
bool replica_caught_up(const test_support::NatsCluster& cluster, const std::string& stream, std::size_t node) {
    const auto info = cluster.stream_info(stream);
    if (!info || !info->contains("cluster")) return false;
    const auto& c = (*info)["cluster"];
    if (c.value("leader", "") == cluster.node(node).name()) return true;
    if (!c.contains("replicas")) return false;
    for (const auto& replica : c["replicas"]) {
        if (replica.value("name", "") == cluster.node(node).name()) {
            return replica.value("current", false) && !replica.value("offline", false) &&
                   replica.value("lag", std::uint64_t{0}) == 0;
        }
    }
    return false;
}

} // namespace

TEST_CASE("jetstream fixture: the shared single server stores and acknowledges a published message") {
    const std::string stream = test_support::fresh_jetstream_stream_name();
    JetStreamClient client(test_support::nats_test_url());
    client.add_stream(stream, 1);
    CHECK(client.publish(stream + ".a", "one", 10s, "m1") == 1);
    CHECK(client.publish(stream + ".a", "two", 10s, "m2") == 2);
    CHECK(client.publish(stream + ".a", "two", 10s, "m2") == 2); // the same message id is not stored twice
    CHECK(client.messages(stream) == 2);
}

TEST_CASE("jetstream fixture: the shared cluster has three nodes and an R3 stream there gets a leader") {
    const std::string urls = test_support::nats_test_cluster_urls();
    CHECK(std::count(urls.begin(), urls.end(), ',') == 2);
    const std::string stream = test_support::fresh_jetstream_stream_name();
    JetStreamClient client(urls);
    client.add_stream(stream, 3);
    CHECK(client.publish(stream + ".a", "one", 10s, "m1") == 1);
    // Every node answers the stream's info, naming the same leader and the two others as replicas.
    std::set<std::string> leaders;
    std::stringstream list(urls);
    for (std::string url; std::getline(list, url, ',');) {
        const auto info = test_support::nats_detail::js_api(url, "$JS.API.STREAM.INFO." + stream, 5000ms);
        REQUIRE(info.has_value());
        REQUIRE((*info)["cluster"]["replicas"].size() == 2);
        leaders.insert((*info)["cluster"]["leader"].get<std::string>());
    }
    CHECK(leaders.size() == 1);
}

TEST_CASE("jetstream fixture: a killed stream leader is replaced and the restarted node catches up") {
    test_support::NatsCluster cluster(3);
    const std::string stream = "fixture_kill";
    JetStreamClient client(cluster.urls());
    client.add_stream(stream, 3);
    REQUIRE(client.publish(stream + ".a", "before", 10s, "m1") == 1);
    cluster.wait_for_replicas_current(stream, 20s);

    const std::size_t old_leader = cluster.wait_for_leader(stream, 10s);
    const auto killed_at = Clock::now();
    cluster.node(old_leader).kill();
    CHECK_FALSE(cluster.node(old_leader).running());
    const std::size_t new_leader = cluster.wait_for_leader(stream, 30s, old_leader);
    const double election = seconds_since(killed_at);
    CHECK(new_leader != old_leader);
    CHECK(election < 30.0);

    // With two of three nodes the stream takes writes again; the publish with the first message's id is
    // recognised as a duplicate on the new leader.
    CHECK(client.publish(stream + ".a", "after", 30s, "m2") == 2);
    CHECK(client.publish(stream + ".a", "before", 30s, "m1") == 1);
    const double writable = seconds_since(killed_at);
    for (int i = 3; i <= 20; ++i) {
        REQUIRE(client.publish(stream + ".a", "more", 10s, "m" + std::to_string(i)) == static_cast<std::uint64_t>(i));
    }

    // The killed node comes back on its own store and catches up with what was written while it was down.
    cluster.node(old_leader).restart();
    CHECK(cluster.node(old_leader).running());
    const auto restarted_at = Clock::now();
    cluster.wait_for_replicas_current(stream, 30s);
    const auto deadline = Clock::now() + 30s;
    while (!replica_caught_up(cluster, stream, old_leader) && Clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    CHECK(replica_caught_up(cluster, stream, old_leader));
    const double caught_up = seconds_since(restarted_at);
    CHECK(client.messages(stream) == 20);

    // It can lead again: kill the current leader, and the restarted node's copy holds every message.
    const std::size_t second = cluster.wait_for_leader(stream, 10s);
    cluster.node(second).kill();
    const std::size_t third = cluster.wait_for_leader(stream, 30s, second);
    CHECK(client.publish(stream + ".a", "last", 30s, "m21") == 21);
    CHECK(client.messages(stream) == 21);
    cluster.node(second).restart();
    cluster.wait_for_replicas_current(stream, 30s);
    std::cout << "jetstream fixture: leader " << cluster.node(old_leader).name() << " killed; "
              << cluster.node(new_leader).name() << " led after " << election << " s, writes acked after " << writable
              << " s; the restarted node caught up in " << caught_up << " s; then " << cluster.node(third).name()
              << " took over\n";
}

TEST_CASE("jetstream fixture: a paused node is left behind, and catches up once resumed") {
    test_support::NatsCluster cluster(3);
    const std::string stream = "fixture_pause";
    JetStreamClient client(cluster.urls());
    client.add_stream(stream, 3);
    REQUIRE(client.publish(stream + ".a", "before", 10s, "m1") == 1);
    cluster.wait_for_replicas_current(stream, 20s);

    // Pause the leader: it stops answering, the two others elect a new leader and take writes.
    const std::size_t paused = cluster.wait_for_leader(stream, 10s);
    const auto paused_at = Clock::now();
    cluster.node(paused).pause();
    CHECK(cluster.node(paused).paused());
    CHECK(cluster.node(paused).running());
    {
        // The paused node accepts a TCP connection (the kernel does) but answers no request.
        test_support::nats_detail::Connection direct(cluster.node(paused).url(), 500ms);
        CHECK_FALSE(direct.connected());
    }
    const std::size_t leader = cluster.wait_for_leader(stream, 30s, paused);
    const double election = seconds_since(paused_at);
    CHECK(leader != paused);
    // A client of the two others publishes (one connected to the paused node would get no answer either).
    std::string others;
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        if (i != paused) others += (others.empty() ? "" : ",") + cluster.node(i).url();
    }
    JetStreamClient other_client(others);
    for (int i = 2; i <= 10; ++i) {
        REQUIRE(other_client.publish(stream + ".a", "during", 30s, "m" + std::to_string(i)) ==
                static_cast<std::uint64_t>(i));
    }
    CHECK(other_client.messages(stream) == 10);
    CHECK_FALSE(replica_caught_up(cluster, stream, paused));

    // Resumed, it steps down (it was leader in an older term) and catches up.
    cluster.node(paused).resume();
    CHECK_FALSE(cluster.node(paused).paused());
    const auto resumed_at = Clock::now();
    const auto deadline = Clock::now() + 30s;
    while (!replica_caught_up(cluster, stream, paused) && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
    CHECK(replica_caught_up(cluster, stream, paused));
    const double caught_up = seconds_since(resumed_at);
    CHECK(client.messages(stream) == 10);
    CHECK(client.publish(stream + ".a", "after", 10s, "m11") == 11);
    std::cout << "jetstream fixture: leader paused; a new leader after " << election
              << " s; the resumed node caught up in " << caught_up << " s\n";
}

TEST_CASE("jetstream fixture: a server is killed, restarted on its store, and removed with its directory") {
    std::filesystem::path directory;
    {
        test_support::NatsServer server;
        directory = server.directory();
        REQUIRE(std::filesystem::exists(directory / "nats.conf"));
        const std::string stream = test_support::fresh_jetstream_stream_name();
        {
            JetStreamClient client(server.url());
            client.add_stream(stream, 1);
            REQUIRE(client.publish(stream + ".a", "one", 10s, "m1") == 1);
        }
        const pid_t first = server.pid();
        server.kill();
        CHECK_FALSE(server.running());
        CHECK(::kill(first, 0) != 0); // reaped: no such process
        CHECK_THROWS_AS(server.kill(), std::logic_error);
        server.restart();
        CHECK(server.running());
        CHECK(server.pid() != first);
        CHECK_THROWS_AS(server.restart(), std::logic_error);
        // The same port and store: the stream and its message are still there.
        JetStreamClient client(server.url());
        CHECK(client.messages(stream) == 1);
        CHECK(client.publish(stream + ".a", "two", 10s, "m2") == 2);
        CHECK(server.log().find("Server is ready") != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(directory));
}

TEST_CASE("jetstream fixture: ORCHESTRIX_NATS_SERVER naming no executable is an error that names it") {
    const char* before = std::getenv("ORCHESTRIX_NATS_SERVER");
    const std::string saved = before != nullptr ? before : "";
    ::setenv("ORCHESTRIX_NATS_SERVER", "/nonexistent/nats-server", 1);
    CHECK_THROWS_WITH(test_support::nats_server_binary(), Catch::Matchers::Contains("ORCHESTRIX_NATS_SERVER"));
    CHECK_THROWS_AS(test_support::NatsServer(), std::runtime_error);
    if (before != nullptr) {
        ::setenv("ORCHESTRIX_NATS_SERVER", saved.c_str(), 1);
    } else {
        ::unsetenv("ORCHESTRIX_NATS_SERVER");
    }
    CHECK(std::filesystem::exists(test_support::nats_server_binary()));
}
