#include "support/catch.hpp"
#include "support/test_events.hpp"

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/validation/pattern.hpp>
#include <orchestrix/validation/rules.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace orchestrix::rules;
using orchestrix::ValidationError;
using orchestrix::ValidationResult;

namespace {

// A rule checked against a bare value: its violation has an empty path.
template <class T, class Rule>
ValidationResult check_value(const T& value, const Rule& rule) {
    return orchestrix::validate(value, rule);
}

struct Case {
    std::string input;
    bool valid;
};

template <class Rule>
void check_table(const Rule& rule, const std::vector<Case>& cases, const std::string& rule_name) {
    for (const auto& c : cases) {
        CAPTURE(c.input, rule_name);
        const auto result = check_value(c.input, rule);
        CHECK(result.ok() == c.valid);
        if (!c.valid) {
            REQUIRE(result.size() == 1);
            CHECK(result[0].rule == rule_name);
            CHECK(result[0].path.empty());
            CHECK_FALSE(result[0].message.empty());
        }
    }
}

struct Item {
    std::string sku;
    int quantity = 0;

    ValidationResult validate() const {
        static const auto rules = orchestrix::validator(
            field("sku", &Item::sku, not_empty(), matches("[A-Z]{3}-[0-9]{4}", "must look like ABC-1234")),
            field("quantity", &Item::quantity, in_range(1, 99)));
        return rules(*this);
    }
};

struct Address {
    std::string city;
    std::string country;

    ValidationResult validate() const {
        return orchestrix::validate(*this, field("city", &Address::city, not_blank()),
                                    field("country", &Address::country, one_of({"DE", "FR", "NL"})));
    }
};

struct Register {
    std::string name;
    std::string email;
    int age = 0;
    std::vector<Item> items;
    std::optional<Address> address;

    ValidationResult validate() const {
        return orchestrix::validate(*this, field("name", &Register::name, not_blank(), max_length(50)),
                                    field("email", &Register::email, required(), email_address()),
                                    field("age", &Register::age, in_range(18, 130)),
                                    field("items", &Register::items, max_length(5), each(nested())),
                                    field("address", &Register::address, if_present(nested())));
    }
};

Register valid_registration() {
    return Register{"Zoë", "zoe@example.com", 30, {{"ABC-1234", 1}, {"XYZ-0001", 2}}, Address{"Berlin", "DE"}};
}

} // namespace

TEST_CASE("not_empty, not_blank and required refuse a missing value and accept a present one", "[validation]") {
    check_table(not_empty(), {{"", false}, {" ", true}, {"a", true}, {"日", true}}, "not_empty");
    check_table(not_blank(), {{"", false}, {" ", false}, {" \t\r\n", false}, {" a ", true}, {"ß", true}}, "not_blank");
    check_table(required(), {{"", false}, {"x", true}}, "required");

    CHECK_FALSE(check_value(std::optional<int>{}, required()).ok());
    CHECK(check_value(std::optional<int>{0}, required()).ok());
    CHECK_FALSE(check_value(std::unique_ptr<int>{}, required()).ok());
    CHECK(check_value(std::make_unique<int>(1), required()).ok());
    CHECK_FALSE(check_value(std::vector<int>{}, not_empty()).ok());
    CHECK(check_value(std::vector<int>{0}, not_empty()).ok());
    CHECK(check_value(std::string(), required())[0].message == "is required");
}

TEST_CASE("length rules count Unicode code points, not bytes, at every boundary", "[validation]") {
    // "é" is 2 bytes, "日" 3 bytes, "😀" 4 bytes: each one character.
    check_table(max_length(3),
                {{"", true},
                 {"abc", true},
                 {"abcd", false},
                 {"Zoë", true},                // 4 bytes, 3 characters
                 {"日本語", true},             // 9 bytes, 3 characters
                 {"日本語x", false},           // one over
                 {"😀😀😀", true},                // 12 bytes
                 {"e\xCC\x81\xCC\x81", true}}, // e + two combining accents: 3 code points
                "max_length");
    check_table(min_length(2), {{"", false}, {"a", false}, {"ab", true}, {"ä", false}, {"äö", true}}, "min_length");
    check_table(length_between(2, 4),
                {{"a", false}, {"ab", true}, {"abcd", true}, {"abcde", false}, {"ñññ", true}, {"ñññññ", false}},
                "length_between");
    check_table(max_bytes(4), {{"abcd", true}, {"abcde", false}, {"日", true}, {"日本", false}, {"😀", true}},
                "max_bytes");
}

TEST_CASE("length messages state the limit and the measured length, never the value", "[validation]") {
    const auto over = check_value(std::string("日本語x"), max_length(3));
    REQUIRE(over.size() == 1);
    CHECK(over[0].message == "must be at most 3 characters long (is 4)");
    CHECK(over[0].message.find("日本") == std::string::npos);
    CHECK(check_value(std::string("a"), min_length(2))[0].message == "must be at least 2 characters long (is 1)");
    CHECK(check_value(std::string("a"), length_between(2, 4))[0].message ==
          "must be between 2 and 4 characters long (is 1)");
    CHECK(check_value(std::string("a"), length_between(2, 2))[0].message == "must be exactly 2 characters long (is 1)");
    CHECK(check_value(std::string(), min_length(1))[0].message == "must be at least 1 character long (is 0)");
    CHECK(check_value(std::vector<int>{1, 2, 3, 4}, max_length(3))[0].message == "must have at most 3 items (has 4)");
    CHECK(check_value(std::string("日本"), max_bytes(4))[0].message == "must be at most 4 bytes long (is 6)");
}

TEST_CASE("a length rule refuses malformed UTF-8 instead of guessing its length", "[validation]") {
    for (const std::string& bad : {std::string("\xC3"), std::string("ab\xC3("), std::string("\xED\xA0\x80"),
                                   std::string("\xC0\xAF"), std::string("\xF4\x90\x80\x80"), std::string("\xFF")}) {
        CAPTURE(bad);
        const auto result = check_value(bad, max_length(100));
        REQUIRE(result.size() == 1);
        CHECK(result[0].rule == "max_length");
        CHECK(result[0].message == "is not valid UTF-8 text");
    }
    CHECK(check_value(std::string("\xC3\xA9"), max_length(1)).ok());
}

TEST_CASE("length_between refuses bounds the wrong way round", "[validation]") {
    REQUIRE_THROWS_AS(length_between(5, 2), orchestrix::InvalidArgumentError);
    REQUIRE_THROWS_AS(in_range(10, 1), orchestrix::InvalidArgumentError);
}

TEST_CASE("range rules are inclusive and compare integers of any signedness by value", "[validation]") {
    struct NumberCase {
        long long value;
        bool valid;
    };
    for (const auto& c : std::vector<NumberCase>{{17, false}, {18, true}, {130, true}, {131, false}, {-1, false}}) {
        CAPTURE(c.value);
        const auto result = check_value(c.value, in_range(18, 130));
        CHECK(result.ok() == c.valid);
        if (!c.valid) CHECK(result[0].message == "must be between 18 and 130");
    }
    CHECK(check_value(0, at_least(1))[0].message == "must be at least 1");
    CHECK(check_value(1, at_least(1)).ok());
    CHECK(check_value(10, at_most(10)).ok());
    CHECK(check_value(11, at_most(10))[0].rule == "at_most");
    // -1 is not above 0u, although -1 converted to unsigned would be.
    CHECK_FALSE(check_value(-1, at_least(0U)).ok());
    CHECK_FALSE(check_value(std::numeric_limits<unsigned long long>::max(), at_most(100)).ok());
    CHECK(check_value(2.5, in_range(0.0, 2.5)).ok());
    CHECK_FALSE(check_value(2.5000001, in_range(0.0, 2.5)).ok());
    CHECK(check_value(2.5, at_most(3)).ok());
}

TEST_CASE("a NaN is outside every range", "[validation]") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_FALSE(check_value(nan, at_least(0.0)).ok());
    CHECK_FALSE(check_value(nan, at_most(0.0)).ok());
    CHECK_FALSE(check_value(nan, in_range(-1e300, 1e300)).ok());
    CHECK_FALSE(check_value(std::numeric_limits<double>::infinity(), at_most(1e300)).ok());
}

TEST_CASE("matches requires the whole string to match its pattern", "[validation]") {
    const auto sku = matches("[A-Z]{3}-[0-9]{4}", "must look like ABC-1234");
    check_table(sku, {{"ABC-1234", true}, {"", false}, {"abc-1234", false}, {"ABC-12345", false}, {"xABC-1234", false}},
                "matches");
    CHECK(check_value(std::string("x"), sku)[0].message == "must look like ABC-1234");
    CHECK(check_value(std::string("x"), matches("[0-9]+"))[0].message == "must match the pattern [0-9]+");
}

TEST_CASE("matches refuses a malformed pattern when the rule is made", "[validation]") {
    try {
        (void)matches("([a-z");
        FAIL("a malformed pattern was accepted");
    } catch (const orchestrix::InvalidArgumentError& e) {
        CHECK(e.argument() == "pattern");
        CHECK(std::string(e.what()).find("'([a-z' is not a valid regular expression") != std::string::npos);
    }
}

TEST_CASE("matches refuses over-long input instead of exhausting the stack", "[validation]") {
    const std::string huge(200000, 'a');
    const auto result = check_value(huge, matches("[a-z]+"));
    REQUIRE(result.size() == 1);
    CHECK(result[0].message.find("too long to check against its pattern (200000 bytes; at most 1024)") !=
          std::string::npos);
    CHECK(check_value(std::string(1024, 'a'), matches("[a-z]+")).ok());
    CHECK(check_value(std::string(5000, 'a'), matches("[a-z]+", "", 5000)).ok());
}

TEST_CASE("email accepts ordinary addresses and refuses the rest", "[validation]") {
    check_table(email_address(),
                {{"john@example.com", true},
                 {"john.smith+tag@mail.example.co.uk", true},
                 {"o'brien@example.ie", true},
                 {"x@ex-ample.io", true},
                 {"zoë@exämple.de", true},
                 {std::string(64, 'a') + "@example.com", true},
                 {std::string(65, 'a') + "@example.com", false},
                 {"", false},
                 {"john", false},
                 {"john@", false},
                 {"@example.com", false},
                 {"john@example", false},
                 {"john@@example.com", false},
                 {"jo@hn@example.com", false},
                 {"john smith@example.com", false},
                 {".john@example.com", false},
                 {"john.@example.com", false},
                 {"jo..hn@example.com", false},
                 {"john@-example.com", false},
                 {"john@example-.com", false},
                 {"john@example..com", false},
                 {"john@example.c", false},
                 {"john@192.168.0.1", false},
                 {"john@[192.168.0.1]", false},
                 {"\"john\"@example.com", false},
                 {"john@exa_mple.com", false},
                 {"john@example.com\xC3", false}},
                "email_address");
    const std::string label(63, 'd');
    CHECK(check_value("a@" + label + ".com", email_address()).ok());
    CHECK_FALSE(check_value("a@" + label + "d.com", email_address()).ok());
    std::string long_domain = "a@";
    while (long_domain.size() < 250) long_domain += "abcdefghi.";
    long_domain += "com";
    CHECK_FALSE(check_value(long_domain, email_address()).ok()); // over 254 bytes
}

TEST_CASE("one_of accepts only the listed values and names them", "[validation]") {
    check_table(one_of({"admin", "editor"}), {{"admin", true}, {"editor", true}, {"Admin", false}, {"", false}},
                "one_of");
    CHECK(check_value(std::string("x"), one_of({"admin", "editor"}))[0].message == "must be one of 'admin', 'editor'");
    CHECK(check_value(3, one_of({1, 2, 5}))[0].message == "must be one of 1, 2, 5");
    CHECK(check_value(5, one_of({1, 2, 5})).ok());
    enum class Plan { free, pro, team };
    CHECK(check_value(Plan::team, one_of({Plan::free, Plan::pro}))[0].message == "must be one of the allowed values");
    CHECK(check_value(Plan::pro, one_of({Plan::free, Plan::pro})).ok());
}

TEST_CASE("satisfies runs a custom predicate under its own rule name", "[validation]") {
    const auto starts_upper = satisfies(
        "capitalised", [](const std::string& s) { return !s.empty() && s.front() >= 'A' && s.front() <= 'Z'; },
        "must start with a capital letter");
    check_table(starts_upper, {{"Anna", true}, {"anna", false}, {"", false}}, "capitalised");
    CHECK(check_value(std::string("anna"), starts_upper)[0].message == "must start with a capital letter");
    CHECK(check_value(7, satisfies(
                             "even", [](int n) { return n % 2 == 0; }, "must be even"))[0]
              .rule == "even");
}

TEST_CASE("if_present checks an optional value only when there is one", "[validation]") {
    const auto rule = if_present(max_length(3));
    CHECK(check_value(std::optional<std::string>{}, rule).ok());
    CHECK(check_value(std::optional<std::string>{"abc"}, rule).ok());
    CHECK_FALSE(check_value(std::optional<std::string>{"abcd"}, rule).ok());
    // On a string, an empty one counts as absent.
    CHECK(check_value(std::string(), if_present(email_address())).ok());
    CHECK_FALSE(check_value(std::string("nope"), if_present(email_address())).ok());
    const std::unique_ptr<int> none;
    CHECK(check_value(none, if_present(at_least(1))).ok());
    CHECK_FALSE(check_value(std::make_unique<int>(0), if_present(at_least(1))).ok());
}

TEST_CASE("a failed presence rule is reported once, without the rules after it", "[validation]") {
    const auto result = orchestrix::validate(std::string(), required(), email_address(), min_length(3));
    REQUIRE(result.size() == 1);
    CHECK(result[0].rule == "required");
    // A failure of any other rule does not stop the next one.
    const auto both = orchestrix::validate(std::string("ab"), min_length(3), email_address());
    CHECK(both.size() == 2);
}

TEST_CASE("a valid command has no violations", "[validation]") {
    const auto result = valid_registration().validate();
    INFO(result.to_string());
    CHECK(result.ok());
}

TEST_CASE("a command with three violations reports all three with their paths", "[validation]") {
    Register r = valid_registration();
    r.name = "   ";
    r.email = "john@";
    r.age = 12;
    const auto result = r.validate();
    INFO(result.to_string());
    REQUIRE(result.size() == 3);
    CHECK(result[0] == orchestrix::Violation{"name", "not_blank", "must not be blank"});
    CHECK(result[1] ==
          orchestrix::Violation{"email", "email_address", "must be an email address like name@example.com"});
    CHECK(result[2] == orchestrix::Violation{"age", "in_range", "must be between 18 and 130"});
    CHECK(result.has("age"));
    CHECK(result.has("age", "in_range"));
    CHECK_FALSE(result.has("age", "at_least"));
    CHECK_FALSE(result.has("items"));
}

TEST_CASE("violations inside containers and nested structs carry their full path", "[validation]") {
    Register r = valid_registration();
    r.items = {{"ABC-0001", 1}, {"ABC-0002", 1}, {"ABC-0003", 1}, {"bad", 0}};
    r.address = Address{"", "US"};
    const auto result = r.validate();
    INFO(result.to_string());
    REQUIRE(result.size() == 4);
    CHECK(result[0] == orchestrix::Violation{"items[3].sku", "matches", "must look like ABC-1234"});
    CHECK(result[1] == orchestrix::Violation{"items[3].quantity", "in_range", "must be between 1 and 99"});
    CHECK(result[2] == orchestrix::Violation{"address.city", "not_blank", "must not be blank"});
    CHECK(result[3] == orchestrix::Violation{"address.country", "one_of", "must be one of 'DE', 'FR', 'NL'"});

    r.items.assign(6, Item{"ABC-1234", 1});
    r.address.reset();
    const auto too_many = r.validate();
    REQUIRE(too_many.size() == 1);
    CHECK(too_many[0] == orchestrix::Violation{"items", "max_length", "must have at most 5 items (has 6)"});
}

TEST_CASE("each validates every element, maps by key, and a validator can be a nested rule", "[validation]") {
    struct Order {
        std::vector<std::string> tags;
        std::map<std::string, int> prices;
        std::vector<Item> lines;
    };
    const auto line_rules = orchestrix::validator(field("sku", &Item::sku, not_empty()));
    const Order order{{"ok", "", "fine", "waytoolong"}, {{"EUR", 5}, {"USD", -1}}, {{"X", 1}, {"", 1}}};
    const auto result = orchestrix::validate(order, field("tags", &Order::tags, each(not_empty(), max_length(5))),
                                             field("prices", &Order::prices, each(at_least(0))),
                                             field("lines", &Order::lines, each(line_rules)));
    INFO(result.to_string());
    REQUIRE(result.size() == 4);
    CHECK(result[0].path == "tags[1]");
    CHECK(result[0].rule == "not_empty");
    CHECK(result[1].path == "tags[3]");
    CHECK(result[1].rule == "max_length");
    CHECK(result[2].path == "prices[USD]");
    CHECK(result[3].path == "lines[1].sku");
}

TEST_CASE("object rules compare fields, and getters may compute a value", "[validation]") {
    struct ChangePassword {
        std::string password;
        std::string confirmation;
        [[nodiscard]] std::size_t strength() const { return password.size(); }
    };
    const auto rules = orchestrix::validator(field("password", &ChangePassword::password, min_length(8)),
                                             field("strength", &ChangePassword::strength, at_least(std::size_t{10})),
                                             check(
                                                 "confirmation", "matches_password",
                                                 [](const ChangePassword& c) { return c.password == c.confirmation; },
                                                 "must equal the password"));
    const auto result = rules(ChangePassword{"secret", "secrets"});
    REQUIRE(result.size() == 3);
    CHECK(result[0].path == "password");
    CHECK(result[1].path == "strength");
    CHECK(result[2] == orchestrix::Violation{"confirmation", "matches_password", "must equal the password"});
    CHECK(rules(ChangePassword{"correct horse", "correct horse"}).ok());
}

TEST_CASE("a ValidationError lists every violation in its message", "[validation]") {
    Register r = valid_registration();
    r.name = "";
    r.items = {{"ABC-0001", 1}, {"ABC-0002", 1}, {"ABC-0003", 1}, {"nope", 1}};
    try {
        r.validate().throw_if_invalid();
        FAIL("an invalid command passed");
    } catch (const ValidationError& e) {
        REQUIRE(e.violations().size() == 2);
        const std::string what = e.what();
        CHECK(what == "validation failed with 2 violations:\n"
                      "  - name: must not be blank (not_blank)\n"
                      "  - items[3].sku: must look like ABC-1234 (matches)");
    }
    REQUIRE_NOTHROW(valid_registration().validate().throw_if_invalid());
    const ValidationError single(std::vector<orchestrix::Violation>{{"", "custom", "is wrong"}});
    CHECK(std::string(single.what()) == "validation failed with 1 violation:\n  - (value): is wrong (custom)");
    const orchestrix::Error& as_base = single; // catchable as the root error
    CHECK(std::string(as_base.what()).find("is wrong") != std::string::npos);
}

// --- Integration with AggregateRoot::execute --------------------------------------------------------------

namespace {

struct OpenValidatedAccount {
    std::string account_id;
    std::string owner;
    std::int64_t initial_deposit = 0;

    ValidationResult validate() const {
        return orchestrix::validate(*this, field("account_id", &OpenValidatedAccount::account_id, not_empty()),
                                    field("owner", &OpenValidatedAccount::owner, not_blank(), max_length(20)),
                                    field("initial_deposit", &OpenValidatedAccount::initial_deposit, at_least(0)));
    }
};

class ValidatedAccount : public orchestrix::AggregateRoot<ValidatedAccount, test_domain::AccountEvent> {
public:
    void handle(const OpenValidatedAccount& c) {
        ++handled;
        raise(test_domain::AccountOpened{c.account_id, c.owner});
        if (c.initial_deposit > 0) raise(test_domain::MoneyDeposited{c.account_id, c.initial_deposit});
    }
    void handle(const test_domain::Deposit& c) { raise(test_domain::MoneyDeposited{id, c.amount}); }
    void apply(const test_domain::AccountOpened& e) { id = e.account_id; }
    void apply(const test_domain::MoneyDeposited& e) { balance += e.amount; }
    void apply(const test_domain::MoneyWithdrawn& e) { balance -= e.amount; }

    std::string id;
    std::int64_t balance = 0;
    int handled = 0;
};

} // namespace

TEST_CASE("an aggregate refuses an invalid command with every violation and changes nothing", "[validation]") {
    ValidatedAccount account;
    account.execute(test_domain::Deposit{5}); // something uncommitted that must survive
    REQUIRE(account.version() == 1);

    try {
        account.execute(OpenValidatedAccount{"", "  ", -10});
        FAIL("the invalid command was executed");
    } catch (const ValidationError& e) {
        REQUIRE(e.violations().size() == 3);
        CHECK(e.violations()[0].path == "account_id");
        CHECK(e.violations()[1].path == "owner");
        CHECK(e.violations()[2].path == "initial_deposit");
    }
    CHECK(account.handled == 0); // the handler never ran
    CHECK(account.version() == 1);
    CHECK(account.uncommitted_events().size() == 1);
    CHECK(account.balance == 5);
    CHECK(account.id.empty());

    account.execute(OpenValidatedAccount{"acc-1", "Zoë", 10});
    CHECK(account.handled == 1);
    CHECK(account.version() == 3);
    CHECK(account.balance == 15);
}
