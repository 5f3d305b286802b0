#include <orchestrix/async/completion.hpp>
#include <orchestrix/async/errors.hpp>
#include <orchestrix/core/message_bus.hpp>

#include "support/bus_events.hpp"
#include "support/catch.hpp"

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace bus_test;

namespace {

// Models message_bus<UserCreated>: subscribe and publish with the expected shapes.
struct MinimalBus {
    template <class E, class Handler>
    orchestrix::Subscription subscribe(Handler&&) {
        return {};
    }
    template <class E>
    void publish(const E&) {}
};

// Models async_message_bus<UserCreated>.
struct MinimalAsyncBus {
    template <class E, class Handler>
    orchestrix::Subscription subscribe(Handler&&) {
        return {};
    }
    template <class E>
    orchestrix::Completion<void> publish(const E&) {
        return orchestrix::Completion<void>::ready_with();
    }
    void shutdown() {}
};

// Subscriptions are not RAII handles: not a bus.
struct CallbackBus {
    template <class E, class Handler>
    int subscribe(Handler&&) {
        return 0;
    }
    template <class E>
    void publish(const E&) {}
};

// Counts unsubscriptions, as a bus would.
struct CountingOwner final : orchestrix::detail::subscription_owner {
    std::vector<std::uint64_t> removed;
    void unsubscribe(std::uint64_t key) noexcept override { removed.push_back(key); }
};

struct NamedCommand {
    static constexpr std::string_view type_name = "users.create";
};
struct UnnamedCommand {};

} // namespace

TEST_CASE("message bus concepts: buses with the right shapes model them, others do not") {
    static_assert(orchestrix::message_bus<MinimalBus, UserCreated>);
    static_assert(!orchestrix::message_bus<MinimalAsyncBus, UserCreated>);
    static_assert(orchestrix::async_message_bus<MinimalAsyncBus, UserCreated>);
    static_assert(!orchestrix::async_message_bus<MinimalBus, UserCreated>);
    static_assert(!orchestrix::message_bus<CallbackBus, UserCreated>);
    static_assert(!orchestrix::message_bus<int, UserCreated>);
}

TEST_CASE("subscription: unsubscribes exactly once, on unsubscribe() or destruction") {
    auto owner = std::make_shared<CountingOwner>();
    {
        orchestrix::Subscription s(owner, 11, 1);
        CHECK(s.active());
        CHECK(s.id() == 1);
        s.unsubscribe();
        s.unsubscribe();
        CHECK_FALSE(s.active());
        CHECK(s.id() == 1); // kept, to match failures reported later
    }
    CHECK(owner->removed == std::vector<std::uint64_t>{11});
    { orchestrix::Subscription s(owner, 12, 2); }
    CHECK(owner->removed == std::vector<std::uint64_t>{11, 12});
}

TEST_CASE("subscription: moving transfers the handler, and assigning releases the old one first") {
    auto owner = std::make_shared<CountingOwner>();
    orchestrix::Subscription a(owner, 21, 1);
    orchestrix::Subscription b(std::move(a));
    CHECK_FALSE(a.active()); // NOLINT(bugprone-use-after-move)
    CHECK(b.active());
    CHECK(owner->removed.empty());

    b = orchestrix::Subscription(owner, 22, 2);
    CHECK(owner->removed == std::vector<std::uint64_t>{21});
    orchestrix::Subscription& same = b;
    b = std::move(same); // self-assignment keeps it
    CHECK(b.active());
    b.release();
    CHECK_FALSE(b.active());
    CHECK(owner->removed == std::vector<std::uint64_t>{21});
}

TEST_CASE("subscription: a default one and one whose bus is gone are inactive and harmless") {
    orchestrix::Subscription empty;
    CHECK_FALSE(empty.active());
    CHECK(empty.id() == 0);
    empty.unsubscribe();

    auto owner = std::make_shared<CountingOwner>();
    orchestrix::Subscription orphan(owner, 31, 3);
    owner.reset();
    CHECK_FALSE(orphan.active());
    orphan.unsubscribe();
}

TEST_CASE("handler error: carries every failure and says what happened") {
    std::vector<orchestrix::HandlerFailure> failures;
    failures.push_back(orchestrix::detail::describe_failure("user.created", 4,
                                                            std::make_exception_ptr(std::runtime_error("disk full"))));
    failures.push_back(orchestrix::detail::describe_failure("user.renamed", 9, std::make_exception_ptr(7)));
    const orchestrix::HandlerError error(failures);
    const orchestrix::Error& as_base = error;
    const std::string what = as_base.what();
    CHECK(what.find("2 event handlers failed") != std::string::npos);
    CHECK(what.find("subscription 4 on 'user.created' threw: disk full") != std::string::npos);
    CHECK(what.find("subscription 9 on 'user.renamed'") != std::string::npos);
    REQUIRE(error.failures().size() == 2);
    CHECK(error.failures()[1].message.find("not a std::exception") != std::string::npos);
    REQUIRE_THROWS_AS(std::rethrow_exception(error.failures()[0].error), std::runtime_error);
}

TEST_CASE("bus errors: queue full and closed bus name the event") {
    const orchestrix::QueueFullError full("user.created", 8);
    CHECK(full.event_type() == "user.created");
    CHECK(full.capacity() == 8);
    CHECK(std::string(full.what()).find("'user.created' was not accepted") != std::string::npos);
    const orchestrix::BusClosedError closed("user.renamed");
    CHECK(closed.event_type() == "user.renamed");
    CHECK(std::string(closed.what()).find("shut down") != std::string::npos);
}

TEST_CASE("message names: a declared type_name wins, the compiler's spelling is the fallback") {
    CHECK(orchestrix::detail::message_name<UserCreated>() == "user.created");
    CHECK(orchestrix::detail::message_name<NamedCommand>() == "users.create");
    CAPTURE(orchestrix::detail::message_name<UnnamedCommand>());
    CHECK(orchestrix::detail::message_name<UnnamedCommand>().find("UnnamedCommand") != std::string_view::npos);
    CHECK(orchestrix::detail::compiler_type_name<int>() == "int");
}

TEST_CASE("variant index: alternatives are found at compile time") {
    static_assert(orchestrix::detail::variant_index_v<UserCreated, UserEvent> == 0);
    static_assert(orchestrix::detail::variant_index_v<Numbered, UserEvent> == 2);
    static_assert(orchestrix::detail::variant_index_v<Unrelated, UserEvent> == 3);
}
