// orchestrix: the inspector of orchestrix event stores (SQLite files, PostgreSQL databases). It reads
// events as they are stored, so it needs no event types compiled in. See docs/operations.md.

#include "commands.hpp"
#include "exit_status.hpp"
#include "transfer.hpp"

#include <orchestrix/durable/inspection.hpp>
#include <orchestrix/sqlite/event_store.hpp>
#include <orchestrix/sqlite/inspector.hpp>
#ifdef ORCHESTRIX_CLI_POSTGRES
#include <orchestrix/postgres/event_store.hpp>
#include <orchestrix/postgres/inspector.hpp>
#endif

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace orchestrix_cli;

enum class Command {
    streams,
    show,
    tail,
    projections,
    dead_letters_list,
    retry,
    discard,
    verify,
    export_events,
    import_events
};

// Whether `store` names a PostgreSQL database rather than a file (an existing file is always a file).
bool is_postgres(const std::string& store) {
    std::error_code ec;
    return !std::filesystem::exists(store, ec) && orchestrix::inspection::is_postgres_address(store);
}

template <class Inspector>
int dispatch(Inspector& store, Command command, const Options& o) {
    switch (command) {
    case Command::streams:
        return streams(store, o);
    case Command::show:
        return show(store, o);
    case Command::tail:
        return tail(store, o);
    case Command::projections:
        return projections(store, o);
    case Command::dead_letters_list:
        return dead_letters_list(store, o);
    case Command::retry:
        return dead_letters_change(store, o, false);
    case Command::discard:
        return dead_letters_change(store, o, true);
    case Command::verify:
        return verify(store, o);
    case Command::export_events:
        return export_events(store, o);
    case Command::import_events:
        break; // run_import
    }
    return exit_status::usage;
}

// import writes through a store (`append_raw`), which creates a new SQLite file, or the schema in a database
// that has none; a file that exists must hold an orchestrix store already.
int run_import(const Options& o, std::chrono::milliseconds timeout) {
    if (is_postgres(o.store)) {
#ifdef ORCHESTRIX_CLI_POSTGRES
        (void)orchestrix::PostgresInspector::connect(o.store); // a bad address or an unreachable server
        std::optional<orchestrix::PostgresEventStore<UntypedEvents>> store;
        try {
            store.emplace(o.store);
        } catch (const orchestrix::PostgresError& e) {
            if (!e.sqlstate().empty()) throw;
            throw orchestrix::InspectionError(orchestrix::InspectionError::Kind::unreachable, o.store, e.what());
        }
        return import_events(*store, o);
#else
        std::cerr << "orchestrix: '" << o.store << "' is a PostgreSQL address, and this orchestrix was built without "
                  << "PostgreSQL (libpq)\n";
        return exit_status::usage;
#endif
    }
    std::error_code ec;
    if (std::filesystem::exists(o.store, ec)) {
        const orchestrix::SqliteInspector check(o.store, orchestrix::SqliteInspectorOptions{{}, timeout});
    }
    orchestrix::SqliteOptions options;
    options.busy_timeout = timeout;
    orchestrix::SqliteEventStore<UntypedEvents> store(o.store, options);
    return import_events(store, o);
}

int run(Command command, const Options& o) {
    const std::chrono::milliseconds timeout(o.busy_timeout_ms);
    if (command == Command::import_events) return run_import(o, timeout);
    if (is_postgres(o.store)) {
        if (!o.checkpoints.empty()) {
            std::cerr << "orchestrix: --checkpoints names an SQLite file; a PostgreSQL store keeps its checkpoints in "
                         "its own database\n";
            return exit_status::usage;
        }
#ifdef ORCHESTRIX_CLI_POSTGRES
        orchestrix::PostgresInspector store(o.store, orchestrix::PostgresInspectorOptions{timeout});
        return dispatch(store, command, o);
#else
        std::cerr << "orchestrix: '" << o.store << "' is a PostgreSQL address, and this orchestrix was built without "
                  << "PostgreSQL (libpq)\n";
        return exit_status::usage;
#endif
    }
    orchestrix::SqliteInspector store(o.store, orchestrix::SqliteInspectorOptions{o.checkpoints, timeout});
    return dispatch(store, command, o);
}

int inspection_status(orchestrix::InspectionError::Kind kind) {
    using Kind = orchestrix::InspectionError::Kind;
    switch (kind) {
    case Kind::store_not_found:
        return exit_status::store_not_found;
    case Kind::not_a_database:
        return exit_status::not_a_database;
    case Kind::foreign_schema:
        return exit_status::foreign_schema;
    case Kind::locked:
        return exit_status::locked;
    case Kind::bad_address:
        return exit_status::bad_address;
    case Kind::unreachable:
        return exit_status::unreachable;
    }
    return exit_status::store_error;
}

const char* inspection_kind(orchestrix::InspectionError::Kind kind) {
    using Kind = orchestrix::InspectionError::Kind;
    switch (kind) {
    case Kind::store_not_found:
        return "store_not_found";
    case Kind::not_a_database:
        return "not_a_database";
    case Kind::foreign_schema:
        return "foreign_schema";
    case Kind::locked:
        return "locked";
    case Kind::bad_address:
        return "bad_address";
    case Kind::unreachable:
        return "unreachable";
    }
    return "store_error";
}

// Reports an error: on stderr, and with --json as a JSON document on stdout too. Returns `status`.
int fail(const Options& o, int status, const char* kind, const std::string& message) {
    std::cerr << "orchestrix: " << message << '\n';
    if (o.json) {
        std::cout << nlohmann::ordered_json{{"error", {{"kind", kind}, {"message", message}, {"exit_status", status}}}}
                         .dump(2)
                  << '\n';
    }
    return status;
}

} // namespace

int main(int argc, char** argv) {
    Options o;
    Command command = Command::verify;

    CLI::App app{"orchestrix " ORCHESTRIX_CLI_VERSION
                 ": inspect an orchestrix event store (an SQLite file, or a PostgreSQL URL or connection string)",
                 "orchestrix"};
    app.require_subcommand(1);
    app.fallthrough();
    app.add_flag("--json", o.json, "Print one JSON document (stable keys) instead of text");
    app.add_flag("--progress", o.progress, "Report progress of long work on stderr (on by default on a terminal)");
    app.add_option("--checkpoints", o.checkpoints,
                   "The SQLite file of the checkpoints and dead letters, if not the events' file");
    app.add_option("--busy-timeout", o.busy_timeout_ms, "Milliseconds to wait for a lock held by another connection")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.set_version_flag("--version", std::string(ORCHESTRIX_CLI_VERSION));

    const auto store_argument = [&](CLI::App* sub) {
        sub->add_option("store", o.store, "An SQLite file, or a PostgreSQL URL (postgresql://...) or conninfo")
            ->required();
    };

    auto* streams_cmd = app.add_subcommand("streams", "List streams with their versions and event counts, a page "
                                                      "at a time");
    store_argument(streams_cmd);
    streams_cmd->add_option("--limit", o.limit, "Streams per page")->capture_default_str()->check(CLI::PositiveNumber);
    streams_cmd->add_option("--after", o.after, "List the streams after this stream id (the previous page's last)");
    streams_cmd->callback([&] { command = Command::streams; });

    auto* show_cmd = app.add_subcommand("show", "Print a stream's events as JSON");
    store_argument(show_cmd);
    show_cmd->add_option("stream", o.stream, "The stream id")->required();
    show_cmd->add_option("--from", o.from_version, "The first version shown")->check(CLI::PositiveNumber);
    show_cmd->add_option("--to", o.to_version, "The last version shown")->check(CLI::PositiveNumber);
    show_cmd->callback([&] { command = Command::show; });

    auto* tail_cmd = app.add_subcommand("tail", "Print the store's last events; --follow keeps printing new ones");
    store_argument(tail_cmd);
    tail_cmd->add_option("-n,--count", o.count, "How many of the last events")->capture_default_str();
    tail_cmd->add_flag("-f,--follow", o.follow, "Keep printing events as they are appended, until interrupted");
    tail_cmd->add_option("--interval", o.interval_ms, "Milliseconds between polls with --follow")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    tail_cmd->callback([&] { command = Command::tail; });

    auto* projections_cmd =
        app.add_subcommand("projections", "List projection checkpoints, the head, the lag and dead letters");
    store_argument(projections_cmd);
    projections_cmd->callback([&] { command = Command::projections; });

    auto* dead_cmd = app.add_subcommand("dead-letters", "List, retry or discard events projections skipped");
    dead_cmd->require_subcommand(1);
    auto* list_cmd = dead_cmd->add_subcommand("list", "List the dead letters");
    auto* retry_cmd =
        dead_cmd->add_subcommand("retry", "Ask the running projection to retry dead letters through its handler");
    auto* discard_cmd = dead_cmd->add_subcommand("discard", "Delete dead letters");
    for (auto* sub : {list_cmd, retry_cmd, discard_cmd}) {
        store_argument(sub);
        auto* projection = sub->add_option("--projection", o.projection, "The projection's name");
        if (sub != list_cmd) projection->required();
        sub->add_option("positions", o.positions, "Only the dead letters at these positions (all if none)");
    }
    list_cmd->callback([&] { command = Command::dead_letters_list; });
    retry_cmd->callback([&] { command = Command::retry; });
    discard_cmd->callback([&] { command = Command::discard; });

    auto* verify_cmd = app.add_subcommand(
        "verify", "Check versions, positions, JSON, event ids and snapshots; exit 1 if anything is wrong");
    store_argument(verify_cmd);
    verify_cmd->callback([&] { command = Command::verify; });

    auto* export_cmd = app.add_subcommand("export", "Write every event as a CloudEvent, one JSON document a line");
    store_argument(export_cmd);
    export_cmd->add_option("file", o.file, "The file to write (stdout if absent or -)");
    export_cmd->callback([&] { command = Command::export_events; });

    auto* import_cmd = app.add_subcommand(
        "import", "Append the CloudEvents of a JSON Lines file (as export writes them); creates a new SQLite file");
    store_argument(import_cmd);
    import_cmd->add_option("file", o.file, "The file to read (stdin if absent or -)");
    import_cmd->callback([&] { command = Command::import_events; });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int status = app.exit(e);
        return status == 0 ? 0 : exit_status::usage;
    }

    try {
        return run(command, o);
    } catch (const orchestrix::InspectionError& e) {
        return fail(o, inspection_status(e.kind()), inspection_kind(e.kind()), e.what());
    } catch (const orchestrix::InvalidArgumentError& e) {
        return fail(o, exit_status::usage, "invalid_argument", e.what());
    } catch (const std::exception& e) {
        return fail(o, exit_status::store_error, "store_error", e.what());
    }
}
