#include <orchestrix/core/message.hpp>

#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <string>
#include <string_view>
#include <variant>

using namespace test_domain;

namespace {
struct Versioned {
    static constexpr std::string_view type_name = "thing.versioned";
    static constexpr std::uint32_t schema_version = 3;
    bool operator==(const Versioned&) const = default;
};
struct Unnamed {
    bool operator==(const Unnamed&) const = default;
};
struct NotComparable {
    static constexpr std::string_view type_name = "thing.not_comparable";
};
struct SameName {
    static constexpr std::string_view type_name = "account.opened";
    bool operator==(const SameName&) const = default;
};
namespace legacy {
struct Created {
    int id = 0;
    bool operator==(const Created&) const = default;
};
} // namespace legacy
struct PlaceOrder {
    std::string sku;
};
} // namespace

template <>
struct orchestrix::event_traits<legacy::Created> {
    static constexpr std::string_view name = "legacy.created";
    static constexpr std::uint32_t schema_version = 2;
};

// The event concept, both ways.
static_assert(orchestrix::event<AccountOpened>);
static_assert(orchestrix::event<Versioned>);
static_assert(orchestrix::event<legacy::Created>);
static_assert(!orchestrix::event<Unnamed>);
static_assert(!orchestrix::event<NotComparable>);
static_assert(NotComparable::type_name == "thing.not_comparable");
static_assert(!orchestrix::event<int>);
static_assert(!orchestrix::event<const AccountOpened>);

// Event variants: every alternative an event, names unique.
static_assert(orchestrix::event_variant<AccountEvent>);
static_assert(!orchestrix::event_variant<std::variant<AccountOpened, Unnamed>>);
static_assert(!orchestrix::event_variant<std::variant<AccountOpened, SameName>>);
static_assert(!orchestrix::event_variant<AccountOpened>);

// Commands: plain structs that are not events.
static_assert(orchestrix::command<PlaceOrder>);
static_assert(orchestrix::command<Deposit>);
static_assert(!orchestrix::command<AccountOpened>);
static_assert(!orchestrix::command<int>);

static_assert(orchestrix::alternative_of<MoneyDeposited, AccountEvent>);
static_assert(orchestrix::alternative_of<const MoneyDeposited&, AccountEvent>);
static_assert(!orchestrix::alternative_of<Versioned, AccountEvent>);

TEST_CASE("message: event names and schema versions come from the type or its traits") {
    CHECK(orchestrix::event_name<AccountOpened> == "account.opened");
    CHECK(orchestrix::event_schema_version<AccountOpened> == 1);
    CHECK(orchestrix::event_schema_version<Versioned> == 3);
    CHECK(orchestrix::event_name<legacy::Created> == "legacy.created");
    CHECK(orchestrix::event_schema_version<legacy::Created> == 2);
    const AccountEvent e = MoneyWithdrawn{"a", 1};
    CHECK(orchestrix::event_name_of(e) == "account.withdrawn");
}

TEST_CASE("message: an event converts to an envelope with a fresh id") {
    const orchestrix::EventEnvelope<AccountEvent> a = MoneyDeposited{"acc", 5};
    const orchestrix::EventEnvelope<AccountEvent> b = MoneyDeposited{"acc", 5};
    CHECK(std::get<MoneyDeposited>(a.event).amount == 5);
    CHECK_FALSE(a.metadata.event_id.is_nil());
    CHECK(a.metadata.event_id != b.metadata.event_id);
    CHECK(a.metadata.correlation_id.empty());

    orchestrix::Metadata metadata;
    metadata.event_id = orchestrix::Uuid::generate();
    metadata.correlation_id = "req-1";
    const orchestrix::EventEnvelope<AccountEvent> c{AccountEvent{MoneyDeposited{"acc", 5}}, metadata};
    CHECK(c.metadata == metadata);
}

TEST_CASE("message: a recorded event names its type") {
    orchestrix::RecordedEvent<AccountEvent> recorded{"acc", 1, 9, AccountOpened{"acc", "ann"}, {}};
    CHECK(recorded.type() == "account.opened");
    CHECK(recorded.version == 1);
    CHECK(recorded.position == 9);
}
