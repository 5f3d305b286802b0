#include <orchestrix/orchestrix.hpp>

#include <iostream>
#include <string_view>
#include <variant>

struct Pinged {
    static constexpr std::string_view type_name = "consumer.pinged";
    int n = 0;
    bool operator==(const Pinged&) const = default;
};
struct Ping {
    int n = 0;
};

class Pinger : public orchestrix::AggregateRoot<Pinger, std::variant<Pinged>> {
public:
    void handle(const Ping& p) { raise(Pinged{p.n}); }
    void apply(const Pinged& e) { total += e.n; }
    int total = 0;
};

int main() {
    orchestrix::InMemoryEventStore<std::variant<Pinged>> store;
    orchestrix::Repository<Pinger, decltype(store)> pingers(store);
    (void)pingers.execute("p", Ping{2});
    (void)pingers.execute("p", Ping{3});
    const int total = pingers.load("p").total;
    std::cout << "orchestrix " << ORCHESTRIX_VERSION_MAJOR << "." << ORCHESTRIX_VERSION_MINOR << " consumer: total "
              << total << "\n";
    return total == 5 ? 0 : 1;
}
