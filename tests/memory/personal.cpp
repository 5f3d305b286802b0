// The field walk (detail/fields.hpp), erase_subject (core/personal_fields.hpp) and the in-memory store's
// erase_personal_data (memory/event_store.hpp), as docs/lifecycle.md describes them.

#include <orchestrix/core/personal_fields.hpp>
#include <orchestrix/detail/fields.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/personal_events.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

using namespace personal_domain;
using orchestrix::ExpectedVersion;
using orchestrix::unlimited;
using Store = orchestrix::InMemoryEventStore<CustomerEvent>;

// --- the field walk ---------------------------------------------------------------------------------------

struct Empty {};
struct Three {
    int a = 0;
    std::string b{};
    std::optional<double> c{};
};
struct Nested {
    Three three{};
    std::vector<Three> many{};
    std::array<int, 3> numbers{};
    std::variant<int, std::string> either{};
    std::map<int, int> table{};
};
struct WithConstructor {
    explicit WithConstructor(int v) : value(v) {}
    int value = 0;
};
struct Base {
    int base_field = 0;
};
struct Derived : Base {
    int derived_field = 0;
};

// 26 fields, every other one personal.
struct Wide {
    Personal<int> f01{}, f02{}, f03{}, f04{}, f05{}, f06{}, f07{}, f08{}, f09{}, f10{}, f11{}, f12{}, f13{};
    int g01 = 0, g02 = 0, g03 = 0, g04 = 0, g05 = 0, g06 = 0, g07 = 0, g08 = 0, g09 = 0, g10 = 0, g11 = 0, g12 = 0;
    Personal<int> last{};
};

static_assert(orchestrix::detail::field_count_v<Empty> == 0);
static_assert(orchestrix::detail::field_count_v<Three> == 3);
static_assert(orchestrix::detail::field_count_v<Nested> == 5);
static_assert(orchestrix::detail::field_count_v<Wide> == 26);
static_assert(orchestrix::detail::field_count_v<CustomerRegistered> == 4);
static_assert(orchestrix::detail::walkable_aggregate<Three>);
static_assert(!orchestrix::detail::walkable_aggregate<WithConstructor>);
static_assert(!orchestrix::detail::walkable_aggregate<Derived>); // a base class: not walked
static_assert(!orchestrix::detail::walkable_aggregate<int>);
static_assert(!orchestrix::detail::walkable_aggregate<std::string>);

// A class that is not an aggregate names its personal fields itself.
class Registered {
public:
    Registered(std::string id, Personal<std::string> name, Address address)
        : id_(std::move(id)), name_(std::move(name)), address_(std::move(address)) {}
    template <class F>
    void for_each_personal(F&& f) {
        f(name_);
        f(address_); // a struct: the walk goes on into it
    }
    [[nodiscard]] const Personal<std::string>& name() const { return name_; }
    [[nodiscard]] const Address& address() const { return address_; }

private:
    std::string id_;
    Personal<std::string> name_;
    Address address_;
};

struct HiddenInMap {
    std::map<std::string, Personal<std::string>> by_key{};
};

static_assert(orchestrix::declares_personal_fields<Registered>);
static_assert(!orchestrix::declares_personal_fields<Three>);
static_assert(orchestrix::contains_personal_v<Personal<int>>);
static_assert(orchestrix::contains_personal_v<CustomerRegistered>);
static_assert(orchestrix::contains_personal_v<ContactsShared>);
static_assert(orchestrix::contains_personal_v<std::optional<Address>>);
static_assert(orchestrix::contains_personal_v<std::variant<int, Address>>);
static_assert(orchestrix::contains_personal_v<Registered>);
static_assert(orchestrix::contains_personal_v<CustomerEvent>);
static_assert(!orchestrix::contains_personal_v<OrderPlaced>);
static_assert(!orchestrix::contains_personal_v<Nested>);
static_assert(!orchestrix::contains_personal_v<std::string>);
static_assert(orchestrix::personal_searchable_v<CustomerEvent>);
static_assert(orchestrix::personal_searchable_v<Registered>);
static_assert(!orchestrix::personal_searchable_v<WithConstructor>);
static_assert(!orchestrix::personal_searchable_v<Derived>);
static_assert(!orchestrix::personal_searchable_v<std::variant<OrderPlaced, WithConstructor>>);
static_assert(orchestrix::detail::hides_personal<std::map<std::string, Personal<std::string>>>());
static_assert(orchestrix::detail::hides_personal<std::unique_ptr<Address>>());
static_assert(!orchestrix::detail::hides_personal<std::map<int, int>>());

CustomerRegistered registered(const std::string& id) {
    return CustomerRegistered{id, Personal<std::string>{id, "Name of " + id},
                              Personal<std::string>{id, id + "@example.org"},
                              Address{Personal<std::string>{id, "1 Main Street"}, "Springfield"}};
}

} // namespace

TEST_CASE("fields: tie_fields and for_each_field see every field in order, with the types declared") {
    Three three{7, "seven", 7.5};
    auto fields = orchestrix::detail::tie_fields(three);
    static_assert(std::is_same_v<decltype(fields), std::tuple<int&, std::string&, std::optional<double>&>>);
    std::get<0>(fields) = 8;
    CHECK(three.a == 8);
    std::vector<std::string> seen;
    orchestrix::detail::for_each_field(three, [&](const auto& field) {
        using F = std::remove_cvref_t<decltype(field)>;
        if constexpr (std::is_same_v<F, int>) seen.push_back("int " + std::to_string(field));
        if constexpr (std::is_same_v<F, std::string>) seen.push_back("string " + field);
        if constexpr (std::is_same_v<F, std::optional<double>>) seen.push_back(field ? "optional set" : "optional");
    });
    CHECK(seen == std::vector<std::string>{"int 8", "string seven", "optional set"});
    const Three& constant = three;
    static_assert(std::is_same_v<decltype(orchestrix::detail::tie_fields(constant)),
                                 std::tuple<const int&, const std::string&, const std::optional<double>&>>);
}

TEST_CASE("fields: a struct of 26 fields is walked to its last field") {
    Wide wide;
    wide.f01 = Personal<int>{"s", 1};
    wide.f13 = Personal<int>{"s", 13};
    wide.last = Personal<int>{"s", 26};
    wide.f07 = Personal<int>{"other", 7};
    CHECK(orchestrix::erase_subject(wide, "s") == 3);
    CHECK(wide.f01.is_erased());
    CHECK(wide.f13.is_erased());
    CHECK(wide.last.is_erased());
    CHECK(wide.f07.value() == 7);
    CHECK_FALSE(wide.f02.is_erased()); // an empty subject is nobody's
}

TEST_CASE("erase_subject: nested structs, optionals, vectors and arrays, and only the subject's values") {
    SECTION("a nested struct inside an optional") {
        CustomerRegistered e = registered("c-1");
        CHECK(orchestrix::erase_subject(e, "c-1") == 3);
        CHECK(e.name.is_erased());
        CHECK(e.email.is_erased());
        REQUIRE(e.address.has_value());
        CHECK(e.address->street.is_erased());
        CHECK(e.address->street.subject() == "c-1"); // the subject stays, the value goes
        CHECK(e.address->city == "Springfield");
        CHECK(e.customer_id == "c-1");
        CHECK_THROWS_AS(e.name.value(), orchestrix::ErasedDataError);
        // Erased already: nothing more to erase.
        CHECK(orchestrix::erase_subject(e, "c-1") == 0);
    }
    SECTION("an empty optional is skipped") {
        CustomerRegistered e = registered("c-1");
        e.address.reset();
        CHECK(orchestrix::erase_subject(e, "c-1") == 2);
    }
    SECTION("several subjects in one event: vector and array elements") {
        ContactsShared e{"c-1",
                         {Personal<std::string>{"p-1", "Ann"}, Personal<std::string>{"p-2", "Bob"},
                          Personal<std::string>{"p-1", "Ann B."}},
                         {Personal<std::int64_t>{"p-2", 555}, Personal<std::int64_t>{"p-1", 777}}};
        CHECK(orchestrix::erase_subject(e, "p-1") == 3);
        CHECK(e.contact_names[0].is_erased());
        CHECK(e.contact_names[1].value() == "Bob");
        CHECK(e.contact_names[2].is_erased());
        CHECK(e.emergency_phones[0].value() == 555);
        CHECK(e.emergency_phones[1].is_erased());
        CHECK(orchestrix::erase_subject(e, "p-3") == 0);
        CHECK(orchestrix::erase_subject(e, "p-2") == 2);
    }
    SECTION("a variant: the alternative it holds") {
        CustomerEvent e = registered("c-9");
        CHECK(orchestrix::erase_subject(e, "c-9") == 3);
        CHECK(std::get<CustomerRegistered>(e).email.is_erased());
        CustomerEvent order = OrderPlaced{"c-9", 10};
        CHECK(orchestrix::erase_subject(order, "c-9") == 0);
    }
    SECTION("a class that names its personal fields") {
        Registered r("c-2", Personal<std::string>{"c-2", "Cy"}, Address{Personal<std::string>{"c-2", "2 Elm"}, "Oslo"});
        CHECK(orchestrix::erase_subject(r, "c-2") == 2);
        CHECK(r.name().is_erased());
        CHECK(r.address().street.is_erased());
        CHECK(r.address().city == "Oslo");
    }
}

TEST_CASE("erase_subject: a malformed subject id is refused and nothing is erased") {
    CustomerRegistered e = registered("c-1");
    const std::string nul("c\0-1", 4);
    for (const std::string& bad : {std::string(), nul, std::string("\xff"), std::string(300, 's')}) {
        try {
            (void)orchestrix::erase_subject(e, bad);
            FAIL("no exception");
        } catch (const orchestrix::InvalidArgumentError& error) {
            CHECK(error.argument() == "subject");
        }
    }
    CHECK(e.name.value() == "Name of c-1");
}

TEST_CASE("in-memory store: erase_personal_data erases one subject's values in every stored event") {
    Store store;
    store.append("customer-1", {registered("c-1")}, ExpectedVersion::no_stream());
    store.append("customer-2", {registered("c-2")}, ExpectedVersion::no_stream());
    store.append("customer-1",
                 {CustomerMoved{"c-1", Address{Personal<std::string>{"c-1", "9 New Road"}, "Leeds"}},
                  ContactsShared{"c-1", {Personal<std::string>{"c-2", "Customer Two"}}, {}}, OrderPlaced{"c-1", 40}},
                 ExpectedVersion::exact(1));

    CHECK(store.erase_personal_data("c-1") == 4);
    const auto one = store.read_stream("customer-1", 1, unlimited);
    REQUIRE(one.size() == 4);
    const auto& first = std::get<CustomerRegistered>(one[0].event);
    CHECK(first.name.is_erased());
    CHECK(first.name.value_or("[erased]") == "[erased]");
    CHECK(first.email.is_erased());
    CHECK(first.address->street.is_erased());
    CHECK(std::get<CustomerMoved>(one[1].event).address.street.is_erased());
    CHECK(std::get<CustomerMoved>(one[1].event).address.city == "Leeds");
    // Another subject's data in c-1's stream is kept, and so is everything of c-2.
    CHECK(std::get<ContactsShared>(one[2].event).contact_names[0].value() == "Customer Two");
    CHECK(std::get<CustomerRegistered>(store.read_stream("customer-2", 1, unlimited)[0].event).name.value() ==
          "Name of c-2");
    // Positions, versions and metadata are unchanged.
    CHECK(one[3].version == 4);
    CHECK(one[3].position == 5);
    CHECK(store.head_position() == 5);

    // Forgetting again erases nothing more; the other subject is found in both streams.
    CHECK(store.erase_personal_data("c-1") == 0);
    CHECK(store.erase_personal_data("c-2") == 4);
    CHECK(store.erase_personal_data("nobody") == 0);

    // Bad input: refused, nothing changed.
    CHECK_THROWS_AS(store.erase_personal_data(""), orchestrix::InvalidArgumentError);
    CHECK_THROWS_AS(store.erase_personal_data(std::string(orchestrix::max_subject_length + 1, 'x')),
                    orchestrix::InvalidArgumentError);
}

TEST_CASE("in-memory store: a projection or subscriber reading after forgetting sees the erased values") {
    Store store;
    store.append("customer-1", {registered("c-1")}, ExpectedVersion::no_stream());
    store.append("customer-2", {registered("c-2")}, ExpectedVersion::no_stream());

    // A read model of customer names, folded from the global log.
    const auto project = [&] {
        std::map<std::string, std::string> names;
        store.visit_all(1, [&](const orchestrix::RecordedEventView<CustomerEvent>& e) {
            if (const auto* r = std::get_if<CustomerRegistered>(&e.event())) {
                names[r->customer_id] = r->name.value_or("[erased]");
            }
        });
        return names;
    };
    CHECK(project() == std::map<std::string, std::string>{{"c-1", "Name of c-1"}, {"c-2", "Name of c-2"}});

    // A live subscriber catching up from its checkpoint, waiting for new positions.
    std::atomic<bool> stop{false};
    std::atomic<int> erased_seen{0};
    std::atomic<orchestrix::position_t> checkpoint{0};
    std::thread subscriber([&] {
        while (!stop) {
            for (const auto& e : store.read_all(checkpoint + 1, unlimited)) {
                if (const auto* r = std::get_if<CustomerRegistered>(&e.event); r != nullptr && r->name.is_erased()) {
                    ++erased_seen;
                }
                checkpoint = e.position;
            }
            (void)store.wait_for_position(checkpoint + 1, std::chrono::milliseconds(5));
        }
    });
    while (checkpoint < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(erased_seen == 0);

    CHECK(store.erase_personal_data("c-1") == 3);
    store.append("customer-3", {registered("c-3")}, ExpectedVersion::no_stream());
    while (checkpoint < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop = true;
    subscriber.join();
    CHECK(erased_seen == 0); // the subscriber had read c-1 before; c-3 is not forgotten

    // Rebuilt from the store (what a projection replays), c-1 reads as erased.
    CHECK(project() ==
          std::map<std::string, std::string>{{"c-1", "[erased]"}, {"c-2", "Name of c-2"}, {"c-3", "Name of c-3"}});
    std::size_t erased_in_replay = 0;
    for (const auto& e : store.read_all(1, unlimited)) {
        if (const auto* r = std::get_if<CustomerRegistered>(&e.event); r != nullptr && r->name.is_erased()) {
            ++erased_in_replay;
            CHECK(r->name.subject() == "c-1");
        }
    }
    CHECK(erased_in_replay == 1);
}

TEST_CASE("in-memory store: erase_personal_data and removals together") {
    Store store;
    store.append("customer-1", {registered("c-1"), OrderPlaced{"c-1", 5}}, ExpectedVersion::no_stream());
    store.append("customer-1b", {registered("c-1")}, ExpectedVersion::no_stream());
    store.truncate_stream("customer-1", 2);
    // Only the stored events are searched: the truncated event is gone already.
    CHECK(store.erase_personal_data("c-1") == 3);
}

TEST_CASE("in-memory store: a store without personal data forgets nothing, still checking the subject") {
    orchestrix::InMemoryEventStore<std::variant<OrderPlaced>> store;
    store.append("o", {OrderPlaced{"c-1", 1}}, ExpectedVersion::no_stream());
    CHECK(store.erase_personal_data("c-1") == 0);
    CHECK_THROWS_AS(store.erase_personal_data(""), orchestrix::InvalidArgumentError);
}

namespace doc_example { // docs/lifecycle.md, "Forgetting in memory", as printed there

struct Address {
    orchestrix::Personal<std::string> street;
    std::string city; // not personal: kept
    bool operator==(const Address&) const = default;
};
struct CustomerRegistered { // a plain aggregate: walked
    static constexpr std::string_view type_name = "customer.registered";
    std::string customer_id;
    orchestrix::Personal<std::string> name;
    std::optional<Address> address;
    bool operator==(const CustomerRegistered&) const = default;
};
class CustomerRenamed { // a class: names its personal fields
public:
    static constexpr std::string_view type_name = "customer.renamed";
    CustomerRenamed() = default;
    explicit CustomerRenamed(orchestrix::Personal<std::string> name) : name_(std::move(name)) {}
    template <class F>
    void for_each_personal(F&& f) {
        f(name_);
    }
    bool operator==(const CustomerRenamed&) const = default;
    [[nodiscard]] const orchestrix::Personal<std::string>& name() const { return name_; }

private:
    orchestrix::Personal<std::string> name_;
};

} // namespace doc_example

namespace doc_example {

std::uint64_t run() {
    orchestrix::InMemoryEventStore<std::variant<CustomerRegistered, CustomerRenamed>> store;
    store.append("customer-7", {CustomerRegistered{"7", {"c-7", "Ada"}, Address{{"c-7", "1 Main St"}, "Leeds"}}},
                 orchestrix::ExpectedVersion::no_stream());
    store.append("customer-7", {CustomerRenamed{{"c-7", "Ada L."}}}, orchestrix::ExpectedVersion::exact(1));
    const std::uint64_t erased = store.erase_personal_data("c-7"); // 3: name, street, new name

    const auto events = store.read_stream("customer-7", 1, orchestrix::unlimited);
    REQUIRE(events.size() == 2);
    const auto& registered_event = std::get<CustomerRegistered>(events[0].event);
    CHECK(registered_event.name.is_erased());
    CHECK(registered_event.address->street.is_erased());
    CHECK(registered_event.address->city == "Leeds");
    CHECK(std::get<CustomerRenamed>(events[1].event).name().is_erased());
    CHECK(std::get<CustomerRenamed>(events[1].event).name().subject() == "c-7");
    return erased;
}

} // namespace doc_example

TEST_CASE("docs: the in-memory forgetting example erases what it says") { CHECK(doc_example::run() == 3); }

namespace {

struct Fields32 {
    int f01 = 0, f02 = 0, f03 = 0, f04 = 0, f05 = 0, f06 = 0, f07 = 0, f08 = 0, f09 = 0, f10 = 0, f11 = 0;
    int f12 = 0, f13 = 0, f14 = 0, f15 = 0, f16 = 0, f17 = 0, f18 = 0, f19 = 0, f20 = 0, f21 = 0, f22 = 0;
    int f23 = 0, f24 = 0, f25 = 0, f26 = 0, f27 = 0, f28 = 0, f29 = 0, f30 = 0, f31 = 0;
    Personal<int> f32{};
};
struct Fields33 {
    Fields32 inner{};
    int f01 = 0, f02 = 0, f03 = 0, f04 = 0, f05 = 0, f06 = 0, f07 = 0, f08 = 0, f09 = 0, f10 = 0, f11 = 0;
    int f12 = 0, f13 = 0, f14 = 0, f15 = 0, f16 = 0, f17 = 0, f18 = 0, f19 = 0, f20 = 0, f21 = 0, f22 = 0;
    int f23 = 0, f24 = 0, f25 = 0, f26 = 0, f27 = 0, f28 = 0, f29 = 0, f30 = 0, f31 = 0, f32 = 0;
};
static_assert(orchestrix::detail::field_count_v<Fields32> == 32);
static_assert(orchestrix::detail::walkable_aggregate<Fields32>);
static_assert(!orchestrix::detail::walkable_aggregate<Fields33>); // more than 32 fields: not walked
static_assert(!orchestrix::personal_searchable_v<Fields33>);

} // namespace

TEST_CASE("fields: a struct of 32 fields is walked, one of 33 is refused") {
    Fields32 wide;
    wide.f32 = Personal<int>{"s", 32};
    CHECK(orchestrix::erase_subject(wide, "s") == 1);
    CHECK(wide.f32.is_erased());
}
