// Dead letters in memory: what a projection skipped, kept by the in-memory checkpoint store, retried through
// the handler or discarded (the durable stores: tests/sqlite/dead_letters.cpp, tests/postgres/dead_letters.cpp).

#include <orchestrix/core/observer.hpp>
#include <orchestrix/memory/event_store.hpp>
#include <orchestrix/projection/checkpoint.hpp>
#include <orchestrix/projection/options.hpp>
#include <orchestrix/projection/projection.hpp>
#include <orchestrix/projection/subscription.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using orchestrix::DeadLetter;
using orchestrix::DeadLetterOutcome;
using orchestrix::ExpectedVersion;
using orchestrix::FailureAction;
using orchestrix::FailurePolicy;
using orchestrix::position_t;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Recorded = orchestrix::RecordedEvent<AccountEvent>;
using Checkpoints = orchestrix::InMemoryCheckpointStore;
using Runner = orchestrix::Projection<Store, Checkpoints>;
using namespace std::chrono_literals;

// Opens acc-1 and deposits 1..`deposits` (positions 2..deposits+1).
void open_and_deposit(Store& store, int deposits) {
    store.append("acc-1", {AccountOpened{"acc-1", "Ada"}}, ExpectedVersion::no_stream());
    for (int i = 1; i <= deposits; ++i) store.append("acc-1", {MoneyDeposited{"acc-1", i}}, ExpectedVersion::any());
}

// A handler that fails for the positions in `poison`, and a read model of the positions it handled.
struct Model {
    std::set<position_t> poison;
    std::vector<position_t> seen;

    void operator()(const Recorded& e) {
        if (poison.count(e.position) != 0) throw std::runtime_error("poison at " + std::to_string(e.position));
        seen.push_back(e.position);
    }
    [[nodiscard]] std::size_t times(position_t position) const {
        std::size_t n = 0;
        for (auto p : seen) n += p == position ? 1 : 0;
        return n;
    }
};

// A checkpoint store that keeps no dead letters: checkpoints only.
class CheckpointsOnly {
public:
    using transaction_type = Checkpoints::transaction_type;
    [[nodiscard]] position_t load(std::string_view name) const { return inner_.load(name); }
    void save(std::string_view name, position_t position) { inner_.save(name, position); }
    template <class Body>
    void transact(Body&& body) {
        inner_.transact(std::forward<Body>(body));
    }
    void advance(transaction_type& tx, std::string_view name, position_t from, position_t to) {
        inner_.advance(tx, name, from, to);
    }
    void reset(transaction_type& tx, std::string_view name) { inner_.reset(tx, name); }

private:
    Checkpoints inner_;
};

struct DeadLetterLog : orchestrix::Observer {
    std::mutex mutex;
    std::vector<std::pair<position_t, DeadLetterOutcome>> seen;
    void on_dead_letter(const orchestrix::DeadLetterObservation& o) override {
        std::lock_guard lock(mutex);
        seen.emplace_back(o.position, o.outcome);
    }
};

// Whether a projection offers dead letters (only over a checkpoint store that keeps them).
template <class P>
concept offers_dead_letters = requires(P& p) {
    p.dead_letters();
};

} // namespace

static_assert(orchestrix::dead_letter_store<Checkpoints>);
static_assert(orchestrix::checkpoint_store<CheckpointsOnly>);
static_assert(!orchestrix::dead_letter_store<CheckpointsOnly>);
static_assert(!orchestrix::dead_letter_store<Store>);
static_assert(offers_dead_letters<Runner>);
static_assert(!offers_dead_letters<orchestrix::Projection<Store, CheckpointsOnly>>);

TEST_CASE("dead letters in memory: a skipped event is kept with its error, attempts and time, without a stored "
          "form") {
    Store store;
    open_and_deposit(store, 4);
    Checkpoints checkpoints;
    Model model{{3}, {}};
    Runner runner("balances", store, checkpoints, std::ref(model), {.on_failure = FailurePolicy::skip()});
    const auto before = std::chrono::system_clock::now();
    runner.run_until_caught_up();
    const auto after = std::chrono::system_clock::now();
    CHECK(model.seen == std::vector<position_t>{1, 2, 4, 5});
    CHECK(runner.checkpoint() == 5);
    REQUIRE(runner.skipped().size() == 1); // skipped() goes on as before
    CHECK(runner.skipped()[0].position == 3);

    const auto letters = runner.dead_letters();
    REQUIRE(letters.size() == 1);
    const DeadLetter& letter = letters[0];
    CHECK(letter.position == 3);
    CHECK(letter.stream_id == "acc-1");
    CHECK(letter.version == 3);
    CHECK(letter.type == "account.deposited");
    CHECK(letter.event_id == store.read_all(3, 1).at(0).metadata.event_id.to_string());
    CHECK(letter.error == "poison at 3");
    CHECK(letter.attempts == 1);
    CHECK(letter.failed_at >= std::chrono::time_point_cast<std::chrono::microseconds>(before));
    CHECK(letter.failed_at <= after);
    CHECK_FALSE(letter.schema_version.has_value()); // the in-memory store has no stored form
    CHECK_FALSE(letter.payload.has_value());
    CHECK_FALSE(letter.metadata.has_value());
    CHECK_FALSE(letter.retry_requested);
    CHECK(checkpoints.dead_letters("balances") == letters);
    CHECK(checkpoints.dead_letters("other").empty());

    SECTION("retries used up, then skipped: the attempts are counted") {
        store.append("acc-1", {MoneyDeposited{"acc-1", 9}}, ExpectedVersion::any());
        Model failing{{6}, {}};
        Runner retrying("retrying", store, checkpoints, std::ref(failing),
                        {.on_failure = FailurePolicy::retry(3, 1ms, FailureAction::skip)});
        retrying.run_until_caught_up();
        REQUIRE(retrying.dead_letters().size() == 1);
        CHECK(retrying.dead_letters()[0].position == 6);
        CHECK(retrying.dead_letters()[0].attempts == 3);
    }
}

TEST_CASE("dead letters in memory: a retry that succeeds removes the dead letter, and the event is handled once") {
    Store store;
    open_and_deposit(store, 5);
    Checkpoints checkpoints;
    Model model{{2, 4}, {}};
    Runner runner("balances", store, checkpoints, std::ref(model), {.on_failure = FailurePolicy::skip()});
    runner.run_until_caught_up();
    REQUIRE(runner.dead_letters().size() == 2);

    SECTION("a failing retry keeps it, with the new error and one more attempt") {
        model.poison = {2, 4};
        const auto before = runner.dead_letters();
        const auto result = runner.retry_dead_letters();
        CHECK(result.succeeded == 0);
        CHECK(result.failed == 2);
        const auto after = runner.dead_letters();
        REQUIRE(after.size() == 2);
        CHECK(after[0].attempts == 2);
        CHECK(after[1].attempts == 2);
        CHECK(after[0].failed_at >= before[0].failed_at);
        CHECK(model.times(2) == 0);
    }
    SECTION("once the cause is fixed, every dead letter is handled exactly once") {
        model.poison = {4};
        auto result = runner.retry_dead_letters();
        CHECK(result.succeeded == 1);
        CHECK(result.failed == 1);
        CHECK(model.times(2) == 1);
        REQUIRE(runner.dead_letters().size() == 1);
        CHECK(runner.dead_letters()[0].position == 4);
        CHECK(runner.dead_letters()[0].attempts == 2);
        model.poison.clear();
        result = runner.retry_dead_letters();
        CHECK(result.succeeded == 1);
        CHECK(runner.dead_letters().empty());
        CHECK(model.times(4) == 1);
        CHECK(runner.retry_dead_letters().succeeded == 0); // nothing left: nothing handled again
        CHECK(model.times(2) == 1);
        CHECK(model.times(4) == 1);
        CHECK(runner.checkpoint() == 6); // a retry does not move the checkpoint
    }
}

TEST_CASE("dead letters in memory: a requested retry is made at the next poll, before new events") {
    Store store;
    open_and_deposit(store, 3);
    Checkpoints checkpoints;
    Model model{{2}, {}};
    Runner runner("balances", store, checkpoints, std::ref(model), {.on_failure = FailurePolicy::skip()});
    runner.run_until_caught_up();
    CHECK_FALSE(checkpoints.request_dead_letter_retry("balances", 3)); // no dead letter there
    CHECK(checkpoints.dead_letter_retries_requested("balances").empty());

    REQUIRE(checkpoints.request_dead_letter_retry("balances", 2));
    CHECK(checkpoints.dead_letter_retries_requested("balances") == std::vector<position_t>{2});
    CHECK(runner.dead_letters().at(0).retry_requested);
    CHECK(runner.poll_once() == 0); // still failing: it stays, and the request is answered
    REQUIRE(runner.dead_letters().size() == 1);
    CHECK(runner.dead_letters()[0].attempts == 2);
    CHECK_FALSE(runner.dead_letters()[0].retry_requested);
    CHECK(runner.poll_once() == 0); // not retried again without a request
    CHECK(runner.dead_letters()[0].attempts == 2);

    model.poison.clear();
    REQUIRE(checkpoints.request_dead_letter_retry("balances", 2));
    store.append("acc-1", {MoneyDeposited{"acc-1", 7}}, ExpectedVersion::any());
    CHECK(runner.poll_once() == 1);
    CHECK(runner.dead_letters().empty());
    CHECK(model.seen == std::vector<position_t>{1, 3, 4, 2, 5}); // the retry came before the new event
}

TEST_CASE("dead letters in memory: discard removes without handling, and rebuild forgets them") {
    Store store;
    open_and_deposit(store, 4);
    Checkpoints checkpoints;
    DeadLetterLog log;
    Model model{{2, 3, 4}, {}};
    Runner runner("balances", store, checkpoints, std::ref(model),
                  {.on_failure = FailurePolicy::skip(), .observer = &log});
    runner.run_until_caught_up();
    REQUIRE(runner.dead_letters().size() == 3);
    CHECK(runner.discard_dead_letter(3));
    CHECK_FALSE(runner.discard_dead_letter(3));
    CHECK(runner.dead_letters().size() == 2);
    model.poison = {4};
    CHECK(runner.retry_dead_letters().succeeded == 1); // 2 handled, 4 failed again
    CHECK(model.times(3) == 0);

    SECTION("discard all") {
        CHECK(runner.discard_dead_letters() == 1);
        CHECK(runner.dead_letters().empty());
        CHECK(runner.discard_dead_letters() == 0);
        const std::vector<std::pair<position_t, DeadLetterOutcome>> expected{
            {2, DeadLetterOutcome::added},     {3, DeadLetterOutcome::added},   {4, DeadLetterOutcome::added},
            {3, DeadLetterOutcome::discarded}, {2, DeadLetterOutcome::retried}, {4, DeadLetterOutcome::failed},
            {4, DeadLetterOutcome::discarded}};
        CHECK(log.seen == expected);
    }
    SECTION("a rebuild replays every event, so the dead letters go with the checkpoint") {
        model.poison.clear();
        model.seen.clear();
        runner.rebuild([] {});
        CHECK(runner.dead_letters().empty());
        runner.run_until_caught_up();
        CHECK(model.seen == std::vector<position_t>{1, 2, 3, 4, 5});
    }
}

TEST_CASE("dead letters in memory: subscriptions offer them too") {
    Store store;
    open_and_deposit(store, 2);
    std::vector<position_t> seen;
    bool fail = true;
    orchestrix::CatchUpSubscription<Store> feed(store, 0,
                                                [&](const Recorded& e) {
                                                    if (e.position == 2 && fail) throw std::runtime_error("not now");
                                                    seen.push_back(e.position);
                                                },
                                                {.on_failure = FailurePolicy::skip()});
    feed.run_until_caught_up();
    REQUIRE(feed.dead_letters().size() == 1);
    fail = false;
    CHECK(feed.retry_dead_letters().succeeded == 1);
    CHECK(seen == std::vector<position_t>{1, 3, 2});
    CHECK(feed.dead_letters().empty());
    CHECK_FALSE(feed.discard_dead_letter(2));
    CHECK(feed.discard_dead_letters() == 0);
}
