// What the in-process buses report to an attached Observer: publishes, handler failures and spans.

#include <orchestrix/core/observer.hpp>
#include <orchestrix/memory/application.hpp>
#include <orchestrix/memory/bus.hpp>
#include <orchestrix/memory/command_bus.hpp>

#include "support/bus_events.hpp"
#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace {

using namespace bus_test;
using orchestrix::TraceContext;
using orchestrix::TraceScope;
using Bus = orchestrix::InMemoryBus<UserEvent>;
using Recorded = orchestrix::RecordedEvent<UserEvent>;

// Records what it is told (copies: the observations' views live only during the call) and hands out
// spans numbered 1, 2, ... in the parent's trace (or a fresh one).
class RecordingObserver : public orchestrix::Observer {
public:
    struct Publish {
        std::string bus;
        std::string type;
        std::size_t handlers = 0;
        std::size_t failures = 0;
        std::int64_t nanoseconds = 0;
    };
    struct Failure {
        std::string bus;
        std::string type;
        std::string error;
    };
    struct Span {
        std::string name;
        orchestrix::SpanKind kind = orchestrix::SpanKind::internal;
        TraceContext parent{};
        TraceContext context{};
        std::vector<std::pair<std::string, std::string>> attributes{};
        bool ended = false;
        bool error = false;
        std::string message{};
    };

    bool traces = true; // false: start_span returns the empty context
    bool throws = false;

    void on_publish(const orchestrix::PublishObservation& o) override {
        std::lock_guard lock(mutex_);
        publishes_.push_back({std::string(o.bus), std::string(o.type), o.handlers, o.failures, o.duration.count()});
        if (throws) throw std::runtime_error("observer failed");
    }
    void on_handler_failure(const orchestrix::HandlerFailureObservation& o) override {
        std::lock_guard lock(mutex_);
        failures_.push_back({std::string(o.bus), std::string(o.type), std::string(o.error)});
        if (throws) throw std::runtime_error("observer failed");
    }
    void on_append(const orchestrix::AppendObservation&) override {
        std::lock_guard lock(mutex_);
        ++appends_;
    }
    void on_command(const orchestrix::CommandObservation&) override {
        std::lock_guard lock(mutex_);
        ++commands_;
    }
    TraceContext start_span(const orchestrix::SpanStart& s) override {
        std::lock_guard lock(mutex_);
        if (throws) throw std::runtime_error("observer failed");
        if (!traces) return {};
        Span span;
        span.name = std::string(s.name);
        span.kind = s.kind;
        span.parent = s.parent;
        span.context.trace_id = s.parent.valid() ? s.parent.trace_id : TraceContext::parse(fresh_trace)->trace_id;
        span.context.span_id[7] = static_cast<std::uint8_t>(spans_.size() + 1);
        span.context.flags = 1;
        for (const auto& a : s.attributes)
            span.attributes.emplace_back(std::string(a.key),
                                         a.is_number ? std::to_string(a.number) : std::string(a.text));
        spans_.push_back(span);
        return span.context;
    }
    void end_span(const TraceContext& context, const orchestrix::SpanEnd& end) override {
        std::lock_guard lock(mutex_);
        for (auto& span : spans_) {
            if (span.context != context) continue;
            span.ended = true;
            span.error = end.error;
            span.message = std::string(end.message);
        }
    }

    std::vector<Publish> publishes() const {
        std::lock_guard lock(mutex_);
        return publishes_;
    }
    std::vector<Failure> failures() const {
        std::lock_guard lock(mutex_);
        return failures_;
    }
    std::vector<Span> spans() const {
        std::lock_guard lock(mutex_);
        return spans_;
    }
    std::size_t appends() const {
        std::lock_guard lock(mutex_);
        return appends_;
    }
    std::size_t commands() const {
        std::lock_guard lock(mutex_);
        return commands_;
    }

    static constexpr std::string_view fresh_trace = "00-11111111111111111111111111111111-2222222222222222-01";

private:
    mutable std::mutex mutex_;
    std::vector<Publish> publishes_;
    std::vector<Failure> failures_;
    std::vector<Span> spans_;
    std::size_t appends_ = 0;
    std::size_t commands_ = 0;
};

const TraceContext request_trace = *TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

struct CreateUser {
    static constexpr std::string_view type_name = "users.create";
    std::string name;
    [[nodiscard]] bool validate() const { return !name.empty(); }
};
struct DeleteUser { // no handler registered
    static constexpr std::string_view type_name = "users.delete";
    std::string id;
};
struct PlainCommand { // no type_name
    int value = 0;
};

} // namespace

TEST_CASE("bus observer: each publish reports its type, the handlers called and those that threw") {
    Bus bus;
    RecordingObserver observer;
    CHECK(bus.observer() == nullptr);
    bus.observe(&observer);
    CHECK(bus.observer() == &observer);

    int calls = 0;
    auto ok = bus.subscribe<UserCreated>([&](const UserCreated&) { ++calls; });
    auto failing =
        bus.subscribe<UserCreated>([&](const UserCreated&) { throw std::runtime_error("mail server down"); });
    auto every = bus.subscribe<UserEvent>([&](const UserEvent&) { ++calls; });

    bus.publish(UserRenamed{"1", "Jane"}); // only the handler of every event
    CHECK_THROWS_AS(bus.publish(UserCreated{"1", "John"}), orchestrix::HandlerError);
    CHECK(calls == 3);

    const auto publishes = observer.publishes();
    REQUIRE(publishes.size() == 2);
    CHECK(publishes[0].bus == "bus");
    CHECK(publishes[0].type == "user.renamed");
    CHECK(publishes[0].handlers == 1);
    CHECK(publishes[0].failures == 0);
    CHECK(publishes[0].nanoseconds >= 0);
    CHECK(publishes[1].type == "user.created");
    CHECK(publishes[1].handlers == 3);
    CHECK(publishes[1].failures == 1);

    const auto failures = observer.failures();
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].bus == "bus");
    CHECK(failures[0].type == "user.created");
    CHECK(failures[0].error == "mail server down");

    SECTION("the bus still throws every failure, as without an observer") {
        try {
            bus.publish(UserEvent{UserCreated{"2", "Ann"}});
            FAIL("no HandlerError");
        } catch (const orchestrix::HandlerError& e) {
            REQUIRE(e.failures().size() == 1);
            CHECK(e.failures()[0].message == "mail server down");
        }
        CHECK(observer.publishes().back().handlers == 3);
        CHECK(observer.failures().size() == 2);
    }
}

TEST_CASE("bus observer: a recorded event counts the handlers of its alternative, of every event and of records") {
    Bus bus;
    RecordingObserver observer;
    bus.observe(&observer);
    auto alternative = bus.subscribe<UserCreated>([](const UserCreated&) {});
    auto every = bus.subscribe<UserEvent>([](const UserEvent&) {});
    auto records = bus.subscribe<Recorded>([](const Recorded&) {});
    std::vector<Recorded> batch{Recorded{"user-1", 1, 1, UserCreated{"1", "John"}, {}},
                                Recorded{"user-1", 2, 2, UserRenamed{"1", "Johnny"}, {}}};
    bus.publish_all(batch);

    const auto publishes = observer.publishes();
    REQUIRE(publishes.size() == 2); // one per message of the batch
    CHECK(publishes[0].type == "user.created");
    CHECK(publishes[0].handlers == 3);
    CHECK(publishes[1].type == "user.renamed");
    CHECK(publishes[1].handlers == 2);
}

TEST_CASE("bus observer: handlers run in a producer span under the publisher's trace") {
    Bus bus;
    RecordingObserver observer;
    bus.observe(&observer);
    std::vector<TraceContext> seen;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        seen.push_back(orchestrix::current_trace());
        if (e.name.empty()) throw std::invalid_argument("no name");
    });
    {
        TraceScope request(request_trace);
        bus.publish(UserCreated{"1", "John"});
        CHECK(orchestrix::current_trace() == request_trace); // restored after the publish
        CHECK_THROWS_AS(bus.publish(UserCreated{"2", ""}), orchestrix::HandlerError);
    }
    CHECK_FALSE(orchestrix::current_trace().valid());

    const auto spans = observer.spans();
    REQUIRE(spans.size() == 2);
    CHECK(spans[0].name == "orchestrix.publish user.created");
    CHECK(spans[0].kind == orchestrix::SpanKind::producer);
    CHECK(spans[0].parent == request_trace);
    CHECK(spans[0].attributes == std::vector<std::pair<std::string, std::string>>{
                                     {"orchestrix.bus", "bus"}, {"orchestrix.message_type", "user.created"}});
    CHECK(spans[0].ended);
    CHECK_FALSE(spans[0].error);
    CHECK(spans[1].ended);
    CHECK(spans[1].error);
    CHECK(spans[1].message == "no name");
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == spans[0].context);
    CHECK(seen[1] == spans[1].context);
    CHECK(seen[0].trace_id == request_trace.trace_id);

    SECTION("an observer that traces nothing leaves the publisher's trace current") {
        observer.traces = false;
        seen.clear();
        TraceScope request(request_trace);
        bus.publish(UserCreated{"3", "Ann"});
        REQUIRE(seen.size() == 1);
        CHECK(seen[0] == request_trace);
        CHECK(observer.spans().size() == 2);
    }
}

TEST_CASE("bus observer: nothing is reported without an observer, and a throwing observer changes nothing") {
    Bus bus;
    RecordingObserver observer;
    int calls = 0;
    auto s = bus.subscribe<UserCreated>([&](const UserCreated& e) {
        ++calls;
        if (e.user_id == "bad") throw std::runtime_error("bad user");
        CHECK_FALSE(orchestrix::current_trace().valid());
    });

    SECTION("detached") {
        bus.observe(&observer);
        bus.observe(nullptr);
        bus.publish(UserCreated{"1", "John"});
        CHECK_THROWS_AS(bus.publish(UserCreated{"bad", "x"}), orchestrix::HandlerError);
        CHECK(calls == 2);
        CHECK(observer.publishes().empty());
        CHECK(observer.failures().empty());
        CHECK(observer.spans().empty());
    }
    SECTION("an observer whose hooks throw") {
        observer.throws = true;
        bus.observe(&observer);
        bus.publish(UserCreated{"1", "John"});
        try {
            bus.publish(UserCreated{"bad", "x"});
            FAIL("no HandlerError");
        } catch (const orchestrix::HandlerError& e) {
            REQUIRE(e.failures().size() == 1);
            CHECK(e.failures()[0].message == "bad user");
        }
        CHECK(calls == 2);
        CHECK(observer.publishes().size() == 2);
        CHECK(observer.failures().size() == 1);
    }
}

TEST_CASE("command bus observer: each dispatch reports one handler, its failure, and runs in a span") {
    orchestrix::CommandBus commands;
    RecordingObserver observer;
    CHECK(commands.observer() == nullptr);
    commands.observe(&observer);
    CHECK(commands.observer() == &observer);
    std::vector<TraceContext> seen;
    auto registration = commands.register_handler<CreateUser>([&](const CreateUser& c) {
        seen.push_back(orchestrix::current_trace());
        if (c.name == "taken") throw std::runtime_error("name taken");
    });

    TraceScope request(request_trace);
    commands.dispatch(CreateUser{"John"});
    CHECK_THROWS_WITH(commands.dispatch(CreateUser{"taken"}), "name taken"); // unchanged
    CHECK_THROWS_AS(commands.dispatch(CreateUser{""}), orchestrix::CommandRejectedError);
    CHECK_THROWS_AS(commands.dispatch(DeleteUser{"7"}), orchestrix::NoHandlerError);

    const auto publishes = observer.publishes();
    REQUIRE(publishes.size() == 4);
    CHECK(publishes[0].bus == "command_bus");
    CHECK(publishes[0].type == "users.create");
    CHECK(publishes[0].handlers == 1);
    CHECK(publishes[0].failures == 0);
    CHECK(publishes[1].handlers == 1);
    CHECK(publishes[1].failures == 1);
    CHECK(publishes[2].handlers == 0); // refused by validate(): the handler did not run
    CHECK(publishes[2].failures == 0);
    CHECK(publishes[3].type == "users.delete");
    CHECK(publishes[3].handlers == 0);

    const auto failures = observer.failures();
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].bus == "command_bus");
    CHECK(failures[0].type == "users.create");
    CHECK(failures[0].error == "name taken");

    const auto spans = observer.spans();
    REQUIRE(spans.size() == 4);
    CHECK(spans[0].name == "orchestrix.publish users.create");
    CHECK(spans[0].kind == orchestrix::SpanKind::producer);
    CHECK(spans[0].attributes == std::vector<std::pair<std::string, std::string>>{
                                     {"orchestrix.bus", "command_bus"}, {"orchestrix.message_type", "users.create"}});
    CHECK(spans[0].parent == request_trace);
    CHECK_FALSE(spans[0].error);
    CHECK(spans[1].error);
    CHECK(spans[1].message == "name taken");
    CHECK(spans[2].error);
    CHECK(spans[3].error);
    for (const auto& span : spans) CHECK(span.ended);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == spans[0].context);
    CHECK(seen[1] == spans[1].context);

    SECTION("a variant reports the alternative it holds, a command without a name its type's spelling") {
        auto plain = commands.register_handler<PlainCommand>([](const PlainCommand&) {});
        commands.dispatch(std::variant<CreateUser, PlainCommand>{CreateUser{"Bob"}});
        commands.dispatch(std::variant<CreateUser, PlainCommand>{PlainCommand{1}});
        const auto more = observer.publishes();
        REQUIRE(more.size() == 6);
        CHECK(more[4].type == "users.create");
        CHECK(more[5].type.find("PlainCommand") != std::string::npos);
        CHECK(more[5].handlers == 1);
    }
    SECTION("detached, nothing more is reported") {
        commands.observe(nullptr);
        commands.dispatch(CreateUser{"Ann"});
        CHECK(observer.publishes().size() == 4);
        CHECK(seen.back() == request_trace);
    }
}

TEST_CASE("application observer: one observer reaches the store, the bus and the repositories") {
    using test_domain::Account;
    using test_domain::AccountEvent;
    orchestrix::InMemoryApplication<AccountEvent> app;
    RecordingObserver observer;
    CHECK(app.observer() == nullptr);
    app.observe(&observer);
    CHECK(app.observer() == &observer);
    CHECK(app.event_store().observer() == &observer);
    CHECK(app.bus().observer() == &observer);
    auto deposited = app.bus().subscribe<test_domain::MoneyDeposited>([](const test_domain::MoneyDeposited&) {});
    auto accounts = app.repository<Account>("account-");
    CHECK(accounts.observer() == &observer);
    CHECK(accounts.repository().observer() == &observer);

    accounts.execute("1", test_domain::OpenAccount{"1", "Ann"});
    accounts.execute("1", test_domain::Deposit{25});
    CHECK(observer.commands() == 2);
    CHECK(observer.appends() == 2);
    const auto publishes = observer.publishes();
    REQUIRE(publishes.size() == 2); // the two events, after the store committed them
    CHECK(publishes[0].type == "account.opened");
    CHECK(publishes[0].handlers == 0);
    CHECK(publishes[1].type == "account.deposited");
    CHECK(publishes[1].handlers == 1);

    SECTION("detached, the application and the repositories it makes report nothing") {
        app.observe(nullptr);
        CHECK(app.event_store().observer() == nullptr);
        CHECK(app.bus().observer() == nullptr);
        auto more = app.repository<Account>("account-");
        CHECK(more.observer() == nullptr);
        more.execute("2", test_domain::OpenAccount{"2", "Bob"});
        CHECK(observer.appends() == 2);
        CHECK(observer.publishes().size() == 2);
    }
}
