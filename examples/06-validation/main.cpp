// 06-validation: a command declares its rules once; an invalid command is refused with every violation
// (field path, rule, message) before its handler runs, and the aggregate is left untouched.

#include <orchestrix/orchestrix.hpp>
#include <orchestrix/validation/pattern.hpp>
#include <orchestrix/validation/rules.hpp>

#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

struct Item {
    std::string sku;
    int quantity = 0;

    // Built once (the regular expression compiles once), used for every item.
    orchestrix::ValidationResult validate() const {
        using namespace orchestrix::rules;
        static const auto rules =
            orchestrix::validator(field("sku", &Item::sku, matches("[A-Z]{3}-[0-9]{4}", "must look like ABC-1234")),
                                  field("quantity", &Item::quantity, in_range(1, 99)));
        return rules(*this);
    }
};

struct Register {
    std::string name;
    std::string email;
    int age = 0;
    std::string plan;
    std::vector<Item> items;
    std::optional<std::string> referral_code;

    orchestrix::ValidationResult validate() const {
        using namespace orchestrix::rules;
        return orchestrix::validate(*this, field("name", &Register::name, not_blank(), max_length(50)),
                                    field("email", &Register::email, required(), email_address()),
                                    field("age", &Register::age, in_range(18, 130)),
                                    field("plan", &Register::plan, one_of({"free", "pro", "team"})),
                                    field("items", &Register::items, max_length(10), each(nested())),
                                    field("referral_code", &Register::referral_code, if_present(length_between(6, 6))));
    }
};

struct Registered {
    static constexpr std::string_view type_name = "customer.registered";
    std::string name;
    std::string email;
    bool operator==(const Registered&) const = default;
};

class Customer : public orchestrix::AggregateRoot<Customer, std::variant<Registered>> {
public:
    void handle(const Register& c) { raise(Registered{c.name, c.email}); }
    void apply(const Registered& e) { name_ = e.name; }
    [[nodiscard]] const std::string& name() const { return name_; }

private:
    std::string name_;
};

int main() {
    Customer customer;

    // Five problems at once: all five are reported, each with its path.
    const Register bad{"   ", "zoe@", 16, "pro", {{"ABC-1234", 1}, {"XYZ-0001", 2}, {"ABC-0003", 1}, {"abc", 1}},
                       "ZOE"};
    try {
        customer.execute(bad);
        std::cout << "unexpected: the invalid command was accepted\n";
        return 1;
    } catch (const orchestrix::ValidationError& e) {
        std::cout << "refused:\n" << e.what() << "\n";
        std::cout << "as data:\n";
        for (const auto& v : e.violations()) {
            std::cout << "  path=" << v.path << "  rule=" << v.rule << "  message=\"" << v.message << "\"\n";
        }
        if (e.violations().size() != 5) return 1;
    }
    std::cout << "after the refusal: version " << customer.version() << ", " << customer.uncommitted_events().size()
              << " uncommitted events\n";
    if (customer.version() != 0) return 1;

    // Lengths count characters (Unicode code points), not bytes: "Zoë Øster" is 9 characters, 11 bytes.
    const Register good{"Zoë Øster", "zoe@example.com", 30, "team", {{"ABC-1234", 2}}, std::nullopt};
    std::cout << "checking a valid command first: " << (good.validate().ok() ? "no violations" : "violations") << "\n";
    customer.execute(good);
    std::cout << "registered '" << customer.name() << "', version " << customer.version() << "\n";
    return customer.version() == 1 ? 0 : 1;
}
