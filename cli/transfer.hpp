#pragma once

// export and import of the orchestrix inspector: a store's events as JSON Lines of CloudEvents
// (json/cloudevents.hpp), without compiled event types.

#include "commands.hpp"
#include "exit_status.hpp"

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/json/cloudevents.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace orchestrix_cli {

/// The one event type of the stores the inspector opens to import: `append_raw` writes events of any type
/// without decoding them, so none is needed, but a store needs a variant to be instantiated with.
struct UntypedEvent {
    static constexpr std::string_view type_name = "orchestrix.inspector.untyped";
    bool operator==(const UntypedEvent&) const = default;
};
inline void to_json(nlohmann::json& j, const UntypedEvent&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json&, UntypedEvent&) {}
using UntypedEvents = std::variant<UntypedEvent>;

/// An inspector as `export_cloudevents_raw` reads it (`read_all_raw`), reporting progress as it goes.
template <class Inspector>
class RawSource {
public:
    RawSource(Inspector& store, Progress& progress, position_t head)
        : store_(&store), progress_(&progress), head_(head) {}

    [[nodiscard]] std::vector<orchestrix::RawRecordedEvent> read_all_raw(position_t from, std::uint64_t count) const {
        std::vector<orchestrix::RawRecordedEvent> out;
        (void)store_->visit_all(from, count,
                                [&](const orchestrix::RawRecordedEventView& row) { out.push_back(row.to_owned()); });
        read_ += out.size();
        progress_->report(read_, head_);
        return out;
    }

private:
    Inspector* store_;
    Progress* progress_;
    position_t head_;
    mutable std::uint64_t read_ = 0;
};

template <class Inspector>
int export_events(Inspector& store, const Options& o) {
    Progress progress("export", o.progress);
    const RawSource<Inspector> source(store, progress, store.head());
    if (o.file.empty() || o.file == "-") {
        (void)orchestrix::export_cloudevents_raw(source, std::cout);
        return exit_status::ok;
    }
    std::ofstream out(o.file, std::ios::binary | std::ios::trunc);
    if (!out) {
        std::cerr << "orchestrix: cannot write '" << o.file << "'\n";
        return exit_status::bad_input;
    }
    const std::uint64_t count = orchestrix::export_cloudevents_raw(source, out);
    if (o.json) {
        std::cout << nlohmann::ordered_json{{"exported", count}, {"file", o.file}}.dump(2) << '\n';
    } else {
        std::cout << "exported " << count << " event" << (count == 1 ? "" : "s") << " to " << o.file << '\n';
    }
    return exit_status::ok;
}

/// Imports the JSON Lines of `o.file` (stdin if empty or "-") into `store` (a durable store with
/// `append_raw`).
template <class Store>
int import_events(Store& store, const Options& o) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (!o.file.empty() && o.file != "-") {
        file.open(o.file, std::ios::binary);
        if (!file) {
            std::cerr << "orchestrix: cannot read '" << o.file << "'\n";
            return exit_status::bad_input;
        }
        in = &file;
    }
    try {
        const auto result = orchestrix::import_cloudevents_raw(store, *in);
        if (o.json) {
            std::cout << nlohmann::ordered_json{{"imported", result.imported},
                                                {"already_present", result.already_present}}
                             .dump(2)
                      << '\n';
        } else {
            std::cout << "imported " << result.imported << " event" << (result.imported == 1 ? "" : "s") << " ("
                      << result.already_present << " already present)\n";
        }
        return exit_status::ok;
    } catch (const orchestrix::CloudEventImportError& e) {
        std::cerr << "orchestrix: " << e.what() << '\n';
        if (o.json) {
            std::cout << nlohmann::ordered_json{{"error",
                                                 {{"kind", "bad_input"},
                                                  {"message", e.what()},
                                                  {"line", e.line()},
                                                  {"imported", e.done().imported},
                                                  {"exit_status", exit_status::bad_input}}}}
                             .dump(2)
                      << '\n';
        }
        return exit_status::bad_input;
    }
}

} // namespace orchestrix_cli
