// 15-asio-server: a TCP command endpoint on one Asio thread, appending through the asynchronous SQLite store
// with completion tokens: each connection is a coroutine that co_awaits the store with asio::use_awaitable, so
// the one thread serves every client while the store's writer thread commits.
//
// The protocol is a line per command, a line per reply:
//   deposit <account> <amount>    ->  ok <version of the account's stream>
//   withdraw <account> <amount>   ->  ok <version>, or error <message> (insufficient funds, a conflict)
//   balance <account>             ->  balance <amount>
//   anything else                 ->  error <message>
//
// Usage: example-15-asio-server [--db PATH] [--port N] [--self-test N] [--postgres URL]
//   --db PATH         the SQLite file (./orchestrix-asio-server.db)
//   --port N          the port to listen on, on 127.0.0.1 (0, the default, picks a free one and prints it)
//   --self-test N     opens N client connections at once (from a second thread), each depositing to an account
//                     of its own, checks every reply and the store's final state, prints the time, and exits
//   --postgres URL    the events go to PostgreSQL (AsyncPostgresEventStore) instead, where it is built in
// Without --self-test it serves until SIGINT or SIGTERM.

#include <orchestrix/asio.hpp>
#include <orchestrix/sqlite/async_event_store.hpp>
#if defined(ORCHESTRIX_ASIO_SERVER_WITH_POSTGRES)
#include <orchestrix/postgres/async_event_store.hpp>
#endif

#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace server {

using asio::ip::tcp;

struct MoneyDeposited {
    static constexpr std::string_view type_name = "bank.money_deposited";
    std::int64_t amount = 0;
    bool operator==(const MoneyDeposited&) const = default;
};
struct MoneyWithdrawn {
    static constexpr std::string_view type_name = "bank.money_withdrawn";
    std::int64_t amount = 0;
    bool operator==(const MoneyWithdrawn&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyWithdrawn, amount)
using AccountEvent = std::variant<MoneyDeposited, MoneyWithdrawn>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;

std::int64_t balance_of(const std::vector<orchestrix::RecordedEvent<AccountEvent>>& events) {
    std::int64_t balance = 0;
    for (const auto& e : events) {
        if (const auto* d = std::get_if<MoneyDeposited>(&e.event)) balance += d->amount;
        if (const auto* w = std::get_if<MoneyWithdrawn>(&e.event)) balance -= w->amount;
    }
    return balance;
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    while (!line.empty()) {
        const auto start = line.find_first_not_of(' ');
        if (start == std::string_view::npos) break;
        line.remove_prefix(start);
        const auto end = line.find(' ');
        out.push_back(line.substr(0, end));
        line.remove_prefix(end == std::string_view::npos ? line.size() : end);
    }
    return out;
}

bool parse_amount(std::string_view text, std::int64_t& amount) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), amount);
    return error == std::errc() && end == text.data() + text.size() && amount > 0;
}

// A batch of one event (built outside the co_await expression: g++ 12 cannot put a braced list in a coroutine).
template <class Event>
std::vector<Envelope> one(Event event) {
    std::vector<Envelope> batch;
    batch.emplace_back(std::move(event));
    return batch;
}

// One command line to its reply. Every store call is co_awaited: the thread serves other connections meanwhile.
template <class Store>
asio::awaitable<std::string> execute(Store& store, std::string_view line) {
    const auto w = words(line);
    std::int64_t amount = 0;
    try {
        if (w.size() == 3 && w[0] == "deposit" && parse_amount(w[2], amount)) {
            const auto result =
                co_await orchestrix::async_append(store, "account-" + std::string(w[1]), one(MoneyDeposited{amount}),
                                                  orchestrix::ExpectedVersion::any(), asio::use_awaitable);
            co_return "ok " + std::to_string(result.stream_version);
        }
        if (w.size() == 3 && w[0] == "withdraw" && parse_amount(w[2], amount)) {
            const std::string stream = "account-" + std::string(w[1]);
            const auto events = co_await orchestrix::async_read_stream(store, stream, asio::use_awaitable);
            if (balance_of(events) < amount) co_return "error insufficient funds";
            // Appended only if nothing was appended since the read: a concurrent withdrawal gets a conflict.
            const auto result = co_await orchestrix::async_append(
                store, stream, one(MoneyWithdrawn{amount}),
                orchestrix::ExpectedVersion::exact(events.empty() ? 0 : events.back().version), asio::use_awaitable);
            co_return "ok " + std::to_string(result.stream_version);
        }
        if (w.size() == 2 && w[0] == "balance") {
            const auto events =
                co_await orchestrix::async_read_stream(store, "account-" + std::string(w[1]), asio::use_awaitable);
            co_return "balance " + std::to_string(balance_of(events));
        }
    } catch (const orchestrix::Error& e) { // ConcurrencyError, InvalidArgumentError (a bad account id), ...
        co_return std::string("error ") + e.what();
    }
    co_return "error unknown command '" + std::string(line) + "' (deposit A N, withdraw A N, balance A)";
}

template <class Store>
asio::awaitable<void> session(Store& store, tcp::socket socket) {
    std::string buffer;
    while (true) {
        const auto [error, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n',
                                                                asio::experimental::as_tuple(asio::use_awaitable));
        if (error) co_return; // the client closed the connection
        std::string line = buffer.substr(0, n - 1);
        buffer.erase(0, n);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::string reply = co_await execute(store, line) + "\n";
        const auto [write_error, written] =
            co_await asio::async_write(socket, asio::buffer(reply), asio::experimental::as_tuple(asio::use_awaitable));
        if (write_error) co_return;
        (void)written;
    }
}

template <class Store>
asio::awaitable<void> listen(Store& store, tcp::acceptor& acceptor) {
    while (true) {
        auto [error, socket] = co_await acceptor.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
        if (error) co_return; // the acceptor was closed
        asio::co_spawn(acceptor.get_executor(), session(store, std::move(socket)), asio::detached);
    }
}

// --- the self-test: N clients at once, on a second thread with an io_context of its own ------------------------

struct SelfTest {
    asio::io_context io;
    tcp::endpoint server;
    std::string prefix;
    int clients = 0;
    int connected = 0;
    int passed = 0;
    std::vector<std::string> failures;
    asio::steady_timer all_connected{io, asio::steady_timer::time_point::max()};
};

std::string account_of(const SelfTest& test, int i) { return test.prefix + std::to_string(i); }

asio::awaitable<std::string> ask(tcp::socket& socket, std::string& buffer, const std::string& command) {
    const std::string line = command + "\n";
    co_await asio::async_write(socket, asio::buffer(line), asio::use_awaitable);
    const std::size_t n =
        co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', asio::use_awaitable);
    std::string reply = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    co_return reply;
}

asio::awaitable<void> client(SelfTest& test, int i) {
    const std::string account = account_of(test, i);
    const std::int64_t amount = 10 + i;
    try {
        tcp::socket socket(test.io);
        co_await socket.async_connect(test.server, asio::use_awaitable);
        // Every client holds its connection open until all of them are connected: N connections at once.
        if (++test.connected == test.clients) {
            test.all_connected.cancel(); // the last one wakes the others
        } else {
            const auto [woken] =
                co_await test.all_connected.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
            (void)woken;
        }
        std::string buffer;
        const std::string deposited = co_await ask(socket, buffer, "deposit " + account + " " + std::to_string(amount));
        const std::string refused =
            co_await ask(socket, buffer, "withdraw " + account + " " + std::to_string(amount + 1));
        const std::string balance = co_await ask(socket, buffer, "balance " + account);
        if (deposited != "ok 1" || refused != "error insufficient funds" ||
            balance != "balance " + std::to_string(amount)) {
            test.failures.push_back(account + ": '" + deposited + "', '" + refused + "', '" + balance + "'");
        } else {
            ++test.passed;
        }
    } catch (const std::exception& e) {
        test.failures.push_back(account + ": " + e.what());
    }
}

// Lets this process open `connections` sockets at both ends (the soft limit of open files is often 1024).
void allow_connections(int connections) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    const rlim_t wanted = static_cast<rlim_t>(connections) * 2 + 64;
    if (limit.rlim_cur < wanted) {
        limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// Serves on this thread while the clients run on another; then checks every account in the store.
template <class Store>
int serve_self_test(Store& store, asio::io_context& io, tcp::acceptor& acceptor, int clients) {
    SelfTest test;
    test.server = acceptor.local_endpoint();
    test.clients = clients;
    test.prefix = "c" + std::to_string(::getpid()) + "-" +
                  std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000) + "-";
    for (int i = 0; i < clients; ++i) asio::co_spawn(test.io, client(test, i), asio::detached);

    const auto started = std::chrono::steady_clock::now();
    std::thread client_thread([&] {
        test.io.run();
        asio::post(io, [&] { acceptor.close(); }); // the sessions end as their clients close
    });
    io.run(); // the server: this thread alone
    client_thread.join();
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

    // The store's final state: one deposit in each account's stream.
    int wrong = 0;
    for (int i = 0; i < clients; ++i) {
        const auto events = store.read_stream_async("account-" + account_of(test, i)).get();
        if (events.size() != 1 || balance_of(events) != 10 + i) ++wrong;
    }
    std::cout << clients << " concurrent clients on one server thread: " << test.passed << " passed, "
              << test.failures.size() << " failed, " << wrong << " accounts wrong in the store; " << elapsed.count()
              << " ms (" << (elapsed.count() > 0 ? clients * 1000 / elapsed.count() : clients)
              << " deposits/s with a read and a refused withdrawal each)\n";
    for (std::size_t i = 0; i < test.failures.size() && i < 10; ++i) std::cout << "  " << test.failures[i] << "\n";
    return test.passed == clients && test.failures.empty() && wrong == 0 ? 0 : 1;
}

template <class Store>
int run(Store& store, unsigned short port, int self_test) {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    acceptor.listen(asio::socket_base::max_listen_connections);
    asio::co_spawn(io, listen(store, acceptor), asio::detached);
    if (self_test > 0) return serve_self_test(store, io, acceptor, self_test);

    std::cout << "listening on 127.0.0.1:" << acceptor.local_endpoint().port()
              << " (deposit A N | withdraw A N | balance A); Ctrl-C stops" << std::endl;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code&, int) { io.stop(); });
    io.run();
    return 0;
}

} // namespace server

int main(int argc, char** argv) {
    std::string db = "orchestrix-asio-server.db";
    std::string postgres;
    unsigned short port = 0;
    int self_test = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--db" && i + 1 < argc) {
            db = argv[++i];
        } else if (arg == "--port" && i + 1 < argc) {
            port = static_cast<unsigned short>(std::stoi(argv[++i]));
        } else if (arg == "--self-test" && i + 1 < argc) {
            self_test = std::stoi(argv[++i]);
        } else if (arg == "--postgres" && i + 1 < argc) {
            postgres = argv[++i];
        } else {
            std::cerr << "usage: " << argv[0] << " [--db PATH] [--port N] [--self-test N] [--postgres URL]\n";
            return 2;
        }
    }
    try {
        if (self_test > 0) server::allow_connections(self_test);
        if (!postgres.empty()) {
#if defined(ORCHESTRIX_ASIO_SERVER_WITH_POSTGRES)
            orchestrix::AsyncPostgresEventStore<server::AccountEvent> store(postgres);
            return server::run(store, port, self_test);
#else
            std::cerr << "this build has no PostgreSQL support (the postgres module was not built)\n";
            return 2;
#endif
        }
        if (self_test > 0) { // a fresh file for each self-test
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
        }
        orchestrix::AsyncSqliteEventStore<server::AccountEvent> store(db);
        return server::run(store, port, self_test);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
