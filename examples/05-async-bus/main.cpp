// 05-async-bus: the asynchronous bus with C++20 coroutine handlers.
// publish() returns at once with a Completion; handlers run on a pool of worker threads; a handler may
// itself be a coroutine (and co_await orchestrix::sleep_for); co_await on the completion resumes once every
// handler has run.

#include <orchestrix/async.hpp>
#include <orchestrix/orchestrix.hpp>

#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

struct UserCreated {
    static constexpr std::string_view type_name = "user.created";
    std::string user_id;
    std::string name;
    bool operator==(const UserCreated&) const = default;
};
using UserEvent = std::variant<UserCreated>;
using Store = orchestrix::AsyncInMemoryEventStore<UserEvent>;

std::mutex output;
void say(const std::string& line) {
    std::lock_guard lock(output);
    std::cout << line << "\n";
}

// A coroutine handler: it awaits the asynchronous store, then prints. The bus delivers this subscriber's
// next event only once this one has finished.
orchestrix::Completion<void> handle_user_created(Store& store, UserCreated event) {
    std::vector<orchestrix::EventEnvelope<UserEvent>> batch{event};
    const auto stored = co_await store.append_async("user-" + event.user_id, std::move(batch),
                                                    orchestrix::ExpectedVersion::no_stream());
    say("Handled: " + event.user_id + " (stored at position " + std::to_string(stored.last_position) + ")");
}

// A handler that waits: co_await orchestrix::sleep_for(...) suspends it on a timer thread instead of
// blocking a worker (the workers go on with other handlers meanwhile); it resumes on the timer's thread.
orchestrix::Completion<void> send_welcome(UserCreated event) {
    co_await orchestrix::sleep_for(std::chrono::milliseconds(50)); // a grace period before the e-mail
    say("welcome e-mail to " + event.name);
}

// A coroutine that publishes, then awaits every handler.
orchestrix::Completion<void> run(orchestrix::AsyncInMemoryBus<UserEvent>& bus) {
    UserCreated event{"123", "John"};
    co_await bus.publish(std::move(event));
    say("every handler of user 123 has run");

    // Failures of handlers come back through the completion: user 123 exists, so the handler's
    // append with ExpectedVersion::no_stream() fails.
    UserCreated again{"123", "John again"};
    try {
        co_await bus.publish(std::move(again));
    } catch (const orchestrix::HandlerError& e) {
        say(std::string("publish reported: ") + e.what());
    }
}

int main() {
    Store store;
    orchestrix::AsyncInMemoryBus<UserEvent> bus(orchestrix::AsyncBusOptions{.workers = 2, .capacity = 64});

    auto store_it =
        bus.subscribe<UserCreated>([&store](const UserCreated& e) { return handle_user_created(store, e); });
    auto welcome = bus.subscribe<UserCreated>([](const UserCreated& e) { return send_welcome(e); });
    auto audit = bus.subscribe<UserEvent>(
        [](const UserEvent& e) { say(std::string("audit: ") + std::string(orchestrix::event_name_of(e))); });

    run(bus).get(); // main is no coroutine: wait for the one that is

    // Outside coroutines a completion is a future: wait(), ready(), get().
    auto pending = bus.publish(UserCreated{"456", "Jane"});
    pending.get();

    bus.shutdown(); // delivers everything accepted, then stops the workers
    say("events stored by handlers: " + std::to_string(store.read_all_async().get().size()));
    return store.sync().stream_count() == 2 ? 0 : 1;
}
