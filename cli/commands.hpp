#pragma once

// The inspector's commands, written once for every store: each takes an inspector (`SqliteInspector`,
// `PostgresInspector`), prints to stdout (human text, or one JSON document with --json) and returns the
// program's exit status.

#include "exit_status.hpp"
#include "render.hpp"

#include <orchestrix/core/event_store.hpp>
#include <orchestrix/durable/inspection.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace orchestrix_cli {

/// What the command line asked for.
struct Options {
    std::string store{};
    std::string checkpoints{};
    std::int64_t busy_timeout_ms = 5000;
    bool json = false;
    bool progress = false;
    // streams
    std::uint64_t limit = 100;
    std::string after{};
    // show
    std::string stream{};
    std::uint64_t from_version = 1;
    std::uint64_t to_version = std::numeric_limits<std::int64_t>::max();
    // tail
    std::uint64_t count = 10;
    bool follow = false;
    std::int64_t interval_ms = 500;
    // dead-letters
    std::string projection{};
    std::vector<std::uint64_t> positions{};
    // export, import
    std::string file{};
};

/// Progress of long work on stderr: when stderr is a terminal (one line rewritten in place) or when asked
/// (--progress; then a line per report).
class Progress {
public:
    Progress(std::string what, bool asked) : what_(std::move(what)), tty_(::isatty(2) == 1), on_(asked || tty_) {}
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;
    ~Progress() {
        if (on_ && shown_ && tty_) std::cerr << '\n';
    }

    void report(std::uint64_t done, std::uint64_t total) {
        if (!on_) return;
        const auto now = std::chrono::steady_clock::now();
        if (tty_ && shown_ && now - last_ < std::chrono::milliseconds(100) && done < total) return;
        last_ = now;
        shown_ = true;
        const std::string text =
            what_ + ": " + std::to_string(done) + (total != 0 ? "/" + std::to_string(total) : "") + " events";
        if (tty_) {
            std::cerr << '\r' << text << std::flush;
        } else {
            std::cerr << text << '\n';
        }
    }

private:
    std::string what_;
    bool tty_;
    bool on_;
    bool shown_ = false;
    std::chrono::steady_clock::time_point last_{};
};

inline volatile std::sig_atomic_t interrupted = 0;
extern "C" inline void on_interrupt(int) { interrupted = 1; }

template <class Inspector>
int streams(Inspector& store, const Options& o) {
    const auto page = store.streams(o.after, o.limit);
    if (o.json) {
        json list = json::array();
        for (const auto& s : page.streams) list.push_back(stream_json(s));
        std::cout
            << json{{"streams", list}, {"next_after", page.next_after ? json(*page.next_after) : json(nullptr)}}.dump(2)
            << '\n';
        return exit_status::ok;
    }
    Table table({"STREAM", "VERSION", "EVENTS", "POSITIONS"});
    for (const auto& s : page.streams) {
        table.add({s.stream_id, std::to_string(s.version), std::to_string(s.event_count),
                   std::to_string(s.first_position) + ".." + std::to_string(s.last_position)});
    }
    table.print(std::cout);
    if (page.next_after) std::cout << "more: --after '" << *page.next_after << "'\n";
    return exit_status::ok;
}

template <class Inspector>
int show(Inspector& store, const Options& o) {
    json events = json::array();
    const std::uint64_t count =
        store.visit_stream(o.stream, o.from_version, o.to_version, [&](const orchestrix::RawRecordedEventView& row) {
            if (o.json) {
                events.push_back(event_json(row));
            } else {
                std::cout << event_json(row).dump(2) << '\n';
            }
        });
    if (o.json) std::cout << json{{"stream_id", o.stream}, {"events", events}}.dump(2) << '\n';
    if (count == 0) {
        std::cerr << "orchestrix: stream '" << o.stream << "' has no events"
                  << (o.from_version > 1 || o.to_version < std::numeric_limits<std::int64_t>::max()
                          ? " in the versions asked for"
                          : "")
                  << '\n';
        return exit_status::not_found;
    }
    return exit_status::ok;
}

template <class Inspector>
int tail(Inspector& store, const Options& o) {
    const auto last = store.last_events(o.count);
    position_t after = last.empty() ? 0 : last.back().position;
    if (!o.follow) {
        if (o.json) {
            json events = json::array();
            for (const auto& e : last) events.push_back(event_json(view_of(e)));
            std::cout << json{{"events", events}}.dump(2) << '\n';
        } else {
            for (const auto& e : last) std::cout << event_line(view_of(e)) << '\n';
        }
        return exit_status::ok;
    }
    // --follow: one line per event (with --json, one JSON document per line), until SIGINT.
    const auto print = [&](const orchestrix::RawRecordedEventView& row) {
        std::cout << (o.json ? event_json(row).dump() : event_line(row)) << '\n';
        after = row.position;
    };
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    for (const auto& e : last) print(view_of(e));
    std::cout.flush();
    if (after == 0) after = store.head();
    while (interrupted == 0) {
        if (store.visit_all(after + 1, 1000, print) > 0) {
            std::cout.flush();
            continue;
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.interval_ms);
        while (interrupted == 0 && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    return exit_status::ok;
}

template <class Inspector>
int projections(Inspector& store, const Options& o) {
    const auto list = store.checkpoints_status();
    const position_t head = store.head();
    if (o.json) {
        json items = json::array();
        for (const auto& c : list) items.push_back(checkpoint_json(c));
        std::cout << json{{"head", head}, {"projections", items}}.dump(2) << '\n';
        return exit_status::ok;
    }
    if (list.empty()) {
        std::cout << "no projection has a checkpoint or dead letters (head " << head << ")\n";
        return exit_status::ok;
    }
    Table table({"PROJECTION", "CHECKPOINT", "HEAD", "LAG", "DEAD LETTERS"});
    for (const auto& c : list) {
        table.add({c.name, c.has_checkpoint ? std::to_string(c.position) : "-", std::to_string(c.head),
                   std::to_string(c.lag), std::to_string(c.dead_letters)});
    }
    table.print(std::cout);
    return exit_status::ok;
}

template <class Inspector>
int dead_letters_list(Inspector& store, const Options& o) {
    const auto list = store.dead_letters(o.projection, o.positions);
    if (o.json) {
        json items = json::array();
        for (const auto& d : list) items.push_back(dead_letter_json(d));
        std::cout << json{{"dead_letters", items}}.dump(2) << '\n';
    } else if (list.empty()) {
        std::cout << "no dead letters\n";
    } else {
        for (const auto& d : list) {
            std::cout << d.projection << " #" << d.position << " " << d.stream_id << " v" << d.version << " "
                      << (d.type.empty() ? "(type unknown)" : d.type) << ", " << d.attempts << " attempt"
                      << (d.attempts == 1 ? "" : "s") << ", failed " << orchestrix::to_rfc3339(d.failed_at)
                      << (d.retry_requested ? ", retry requested" : "") << "\n    " << d.error << '\n';
        }
    }
    return exit_status::ok;
}

/// retry (`discard` false) or discard the dead letters asked for.
template <class Inspector>
int dead_letters_change(Inspector& store, const Options& o, bool discard) {
    std::vector<position_t> asked(o.positions.begin(), o.positions.end());
    const std::vector<position_t> changed =
        discard ? store.discard_dead_letters(o.projection, asked) : store.request_retry(o.projection, asked);
    std::vector<position_t> missing;
    for (const position_t p : asked) {
        if (std::find(changed.begin(), changed.end(), p) == changed.end()) missing.push_back(p);
    }
    const char* key = discard ? "discarded" : "retry_requested";
    if (o.json) {
        std::cout << json{{"projection", o.projection}, {key, changed}, {"not_found", missing}}.dump(2) << '\n';
    } else {
        std::cout << o.projection << ": " << (discard ? "discarded " : "retry requested for ") << changed.size()
                  << " dead letter" << (changed.size() == 1 ? "" : "s");
        for (std::size_t i = 0; i < changed.size(); ++i) {
            std::cout << (i > 0 ? ", " : changed.size() == 1 ? " (position " : " (positions ") << changed[i];
        }
        std::cout << (changed.empty() ? "" : ")") << '\n';
    }
    for (const position_t p : missing) {
        std::cerr << "orchestrix: projection '" << o.projection << "' has no dead letter at position " << p << '\n';
    }
    return missing.empty() ? exit_status::ok : exit_status::not_found;
}

/// An inspector as `verify` reads it, each payload as `payload_text` gives it: a compressed payload is checked
/// decompressed, and one whose frame does not decompress becomes an `invalid_payload` finding of its own (the
/// row is handed on as stored).
template <class Inspector>
class PayloadTextSource {
public:
    explicit PayloadTextSource(Inspector& store) : store_(&store) {}

    [[nodiscard]] position_t head() { return store_->head(); }

    template <class F>
    std::uint64_t visit_all(position_t from, std::uint64_t count, F&& on_row) {
        return store_->visit_all(from, count, [&](const orchestrix::RawRecordedEventView& row) {
            std::string text;
            try {
                text = payload_text(row.payload);
            } catch (const orchestrix::DecodeError& e) {
                findings_.push_back({orchestrix::inspection::FindingKind::invalid_payload, std::string(row.stream_id),
                                     row.position, row.version, std::string("payload: ") + e.what()});
                on_row(row);
                return;
            }
            orchestrix::RawRecordedEventView shown = row;
            shown.payload = text;
            on_row(shown);
        });
    }

    template <class F>
    std::uint64_t visit_snapshots(F&& on_snapshot) {
        return store_->visit_snapshots(std::forward<F>(on_snapshot));
    }

    // The store's lifecycle records, where its inspector hands them over (`verify` tells removals from lost
    // rows by them).
    template <class F>
    std::uint64_t visit_stream_records(F&& on_record) requires orchestrix::inspection::stream_record_source<Inspector> {
        return store_->visit_stream_records(std::forward<F>(on_record));
    }

    /// `report` with this source's findings among its own, in position order (a row's own findings first,
    /// snapshots' last).
    [[nodiscard]] orchestrix::inspection::VerifyReport merged(orchestrix::inspection::VerifyReport report) const {
        std::vector<orchestrix::inspection::Finding> all;
        all.reserve(report.findings.size() + findings_.size());
        std::size_t next = 0;
        for (auto& finding : report.findings) {
            while (next < findings_.size() && (finding.position == 0 || findings_[next].position < finding.position)) {
                all.push_back(findings_[next++]);
            }
            all.push_back(std::move(finding));
        }
        while (next < findings_.size()) all.push_back(findings_[next++]);
        report.findings = std::move(all);
        return report;
    }

private:
    Inspector* store_;
    std::vector<orchestrix::inspection::Finding> findings_;
};

template <class Inspector>
int verify(Inspector& store, const Options& o) {
    Progress progress("verify", o.progress);
    PayloadTextSource<Inspector> source(store);
    const auto report = source.merged(orchestrix::inspection::verify(
        source, [&](std::uint64_t done, position_t head) { progress.report(done, head); }));
    if (o.json) {
        std::cout << verify_json(report).dump(2) << '\n';
    } else {
        for (const auto& f : report.findings) std::cout << orchestrix::inspection::describe(f) << '\n';
        std::cout << "verified " << report.events << " event" << (report.events == 1 ? "" : "s") << " in "
                  << report.streams << " stream" << (report.streams == 1 ? "" : "s") << " and " << report.snapshots
                  << " snapshot" << (report.snapshots == 1 ? "" : "s") << ": ";
        if (report.ok()) {
            std::cout << "no findings\n";
        } else {
            std::cout << report.findings.size() << " finding" << (report.findings.size() == 1 ? "" : "s") << '\n';
        }
    }
    return report.ok() ? exit_status::ok : exit_status::findings;
}

} // namespace orchestrix_cli
