// Personal data inside a container the field walk does not enter (a std::map) must not compile when a
// subject is forgotten: the error names the event type and says what to write.
// expect-error: not std::map or std::set
// expect-first-error: in_event_with_personal_data<ContactsShared>::keep_personal_values_in_.*for_each_personal
#include <orchestrix/core/personal_fields.hpp>

#include <map>
#include <string>
#include <vector>

struct ContactsShared {
    std::string customer_id;
#ifdef ORCHESTRIX_EXPECT_ERROR
    std::map<std::string, orchestrix::Personal<std::string>> contacts;
#else
    std::vector<orchestrix::Personal<std::string>> contacts;
#endif
};

int main() {
    ContactsShared event{"c-1", {}};
    return static_cast<int>(orchestrix::erase_subject(event, "c-1"));
}
