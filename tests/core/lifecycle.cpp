// Repository over a store whose streams are deleted, recreated and truncated (core/lifecycle.hpp).

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <orchestrix/core/lifecycle.hpp>
#include <orchestrix/core/repository.hpp>
#include <orchestrix/memory/event_store.hpp>

#include <string>
#include <vector>

namespace {

using test_domain::Account;
using test_domain::AccountEvent;
using test_domain::Deposit;
using test_domain::OpenAccount;
using Store = orchestrix::InMemoryEventStore<AccountEvent>;
using Accounts = orchestrix::Repository<Account, Store>;
using orchestrix::ExpectedVersion;

static_assert(orchestrix::lifecycle_event_store<Store>);

void open_with_deposits(Accounts& accounts, const std::string& id, int deposits) {
    accounts.execute(id, OpenAccount{id, "Ada"});
    for (int i = 0; i < deposits; ++i) accounts.execute(id, Deposit{10});
}

} // namespace

TEST_CASE("repository: a truncated stream without a snapshot fails to load, naming the versions") {
    Store store;
    Accounts accounts(store);
    open_with_deposits(accounts, "acc-1", 4); // versions 1-5
    store.truncate_stream("acc-1", 3);
    try {
        (void)accounts.load("acc-1");
        FAIL("load did not throw");
    } catch (const orchestrix::StreamTruncatedError& e) {
        CHECK(e.stream() == "acc-1");
        CHECK(e.first_version() == 3);
        CHECK(e.needed_version() == 1);
        CHECK(std::string(e.what()).find("snapshot at version 2") != std::string::npos);
    }
    CHECK_THROWS_AS(accounts.execute("acc-1", Deposit{1}), orchestrix::StreamTruncatedError);
    CHECK(store.stream_version("acc-1") == 5); // nothing written
}

TEST_CASE("repository: a stream truncated away entirely refuses commands clearly, not with endless conflicts") {
    Store store;
    Accounts accounts(store);
    open_with_deposits(accounts, "acc-1", 1);
    store.truncate_stream("acc-1", 3);
    CHECK_FALSE(accounts.find("acc-1").has_value());
    CHECK_THROWS_AS(accounts.execute("acc-1", OpenAccount{"acc-1", "Ada"}), orchestrix::StreamTruncatedError);
    CHECK(store.read_all(1, orchestrix::unlimited).empty());
}

TEST_CASE("repository: a soft-deleted aggregate is gone, and a command recreates it from scratch") {
    Store store;
    Accounts accounts(store);
    open_with_deposits(accounts, "acc-1", 2); // versions 1-3, balance 20
    store.delete_stream("acc-1", ExpectedVersion::any(), orchestrix::DeleteOptions{});
    CHECK_FALSE(accounts.find("acc-1").has_value());
    CHECK_THROWS_AS(accounts.load("acc-1"), orchestrix::StreamNotFoundError);

    // A new life: the aggregate starts empty, its versions go on from 3.
    accounts.execute("acc-1", OpenAccount{"acc-1", "Grace"});
    const orchestrix::CommandResult deposit = accounts.execute("acc-1", Deposit{5});
    CHECK(deposit.append.stream_version == 5);
    const Account account = accounts.load("acc-1");
    CHECK(account.owner() == "Grace");
    CHECK(account.balance() == 5);
    CHECK(account.version() == 5);
    CHECK(store.stream_info("acc-1").start_version == 4);
}

TEST_CASE("repository: saving an aggregate that recreates a stream leaves it at the stored version") {
    Store store;
    Accounts accounts(store);
    open_with_deposits(accounts, "acc-1", 1); // versions 1-2
    store.delete_stream("acc-1", ExpectedVersion::any(), orchestrix::DeleteOptions{});
    Account fresh;
    fresh.execute(OpenAccount{"acc-1", "Grace"});
    const orchestrix::AppendResult saved = accounts.save("acc-1", fresh);
    CHECK(saved.stream_version == 3);
    CHECK(fresh.version() == 3);
    fresh.execute(Deposit{1});
    CHECK(accounts.save("acc-1", fresh).stream_version == 4); // expects exact(3): no conflict
}

TEST_CASE("repository: a hard-deleted aggregate refuses every command") {
    Store store;
    Accounts accounts(store);
    open_with_deposits(accounts, "acc-1", 1);
    store.delete_stream("acc-1", ExpectedVersion::any(), orchestrix::DeleteOptions{orchestrix::DeleteMode::hard});
    CHECK_THROWS_AS(accounts.execute("acc-1", OpenAccount{"acc-1", "Grace"}), orchestrix::StreamDeletedError);
}
