// A rule given a value it cannot check (a length rule on a number) must not compile, and the error says
// which rules fit which types.
// expect-error: a rule cannot check this value's type
// expect-first-error: in_field<int Register::\*>::replace_rule_by_one_for_this_type<orchestrix::rules::Length>
#include <orchestrix/validation/rules.hpp>

#include <string>

struct Register {
    std::string name;
    int age = 0;
};

int main() {
    using namespace orchestrix::rules;
    const Register r{"Ann", 30};
    const auto ok = orchestrix::validate(r, field("name", &Register::name, max_length(50)),
                                         field("age", &Register::age, in_range(18, 130)));
#ifdef ORCHESTRIX_EXPECT_ERROR
    const auto wrong = orchestrix::validate(r, field("age", &Register::age, max_length(3)));
    (void)wrong;
#endif
    return ok.ok() ? 0 : 1;
}
