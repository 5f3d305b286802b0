// Decisions across streams (DCB) on SQLite: the workload of dcb_workload.hpp (N = 10,000 or 100,000 events)
// in a database file, synchronous NORMAL (WAL: no fsync at commit, as the W4 NORMAL series).
//
// The file of each size is written once per process by the store itself (synchronous OFF, one event per
// append, in the workload's order) and copied for each run, so both sides start from the same bytes in a
// temporary directory on the build's disk ($ORCHESTRIX_BENCH_DIR, else the system temporary directory).
//
// decide:  one decision per iteration, each on its own course and student (1,000 per run), as in bench/dcb.cpp.
//          Library: DecisionRepository::execute on SqliteEventStore (its read by query, the fold, a conditional
//          append of one event with a fresh id). Baseline: raw sqlite3 on the same file, what an application
//          would write by hand for the same decision: one prepared SELECT of the matching events' type and
//          payload (the course's events of the three types by its tag, UNION the student's subscriptions by
//          theirs, through `event_tags` CROSS JOINed to `events` by position: SQLite's way of keeping the
//          tag's key as the outer loop, which EXPLAIN QUERY PLAN shows it would otherwise swap for a walk of
//          the (type, position) index over every event of the type) with the head position as a scalar
//          subquery in the same statement (one snapshot), payloads parsed with nlohmann::json and folded; then
//          BEGIN IMMEDIATE (the write lock the store's append takes), one prepared SELECT EXISTS(...) OR
//          EXISTS(...) of a matching event after the read's head, the stream's version, one INSERT into
//          `events` (payload and metadata encoded with nlohmann::json, the id from Uuid::generate()) and one
//          per tag into `event_tags`, COMMIT.
// read:    the decision's read alone, rotating over the courses. Library: store.read(query). Baseline: the
//          same prepared SELECT with every column, payload and metadata parsed with nlohmann::json into records.

#include "dcb_workload.hpp"
#include "workload_json.hpp"

#include <orchestrix/json/codec.hpp>
#include <orchestrix/sqlite/event_store.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

namespace {

using namespace bench::dcb;
using Store = orchestrix::SqliteEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;

constexpr std::int64_t decisions_per_run = 1'000;

// A fresh directory, removed afterwards.
class TempDir {
public:
    TempDir() {
        const char* env = std::getenv("ORCHESTRIX_BENCH_DIR");
        const std::filesystem::path base =
            env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::temp_directory_path();
        path_ = base / ("orchestrix-dcb-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        std::filesystem::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    static inline int counter_ = 0;
    std::filesystem::path path_;
};

// The filled file of each size, written once.
class Templates {
public:
    const std::string& of(std::int64_t events) {
        auto found = files_.find(events);
        if (found != files_.end()) return found->second;
        const std::string path = dir_.file("template-" + std::to_string(events) + ".db");
        {
            Store store(path, orchestrix::SqliteOptions{orchestrix::SqliteSynchronous::off, std::chrono::seconds(5)});
            for_each_prefill_event(events, [&](const std::string& stream, Event e) {
                (void)store.append(stream, {Envelope(std::move(e))}, orchestrix::ExpectedVersion::any());
            });
        } // closing the last connection checkpoints the WAL into the file
        return files_.emplace(events, path).first->second;
    }

private:
    TempDir dir_;
    std::map<std::int64_t, std::string> files_;
};

Templates& templates() {
    static Templates t;
    return t;
}

// A copy of the filled file of `events` events in `dir`.
std::string copy_of(const TempDir& dir, std::int64_t events) {
    const std::string path = dir.file("events.db");
    std::filesystem::copy_file(templates().of(events), path);
    return path;
}

const orchestrix::SqliteOptions options{orchestrix::SqliteSynchronous::normal, std::chrono::seconds(5)};

// --- library -------------------------------------------------------------------------------------------------

void library_decide(benchmark::State& state) {
    const TempDir dir;
    Store store(copy_of(dir, state.range(0)), options);
    orchestrix::DecisionRepository decisions(store);
    std::int64_t i = 0;
    for (auto _ : state) {
        const std::string course = decision_course(i);
        const std::string student = decision_student(i);
        ++i;
        const auto result = decisions.execute(
            course_stream(course),
            std::tuple{CourseCapacity{course}, CourseSubscriptions{course}, StudentSubscriptions{student}},
            [&](const CourseCapacity& c, const CourseSubscriptions& taken, const StudentSubscriptions& mine) {
                return decide(student, course, c.exists, c.capacity, taken.count, mine.count);
            });
        benchmark::DoNotOptimize(result);
    }
    state.SetItemsProcessed(state.iterations());
}

void library_read(benchmark::State& state) {
    const TempDir dir;
    const Store store(copy_of(dir, state.range(0)), options);
    const std::int64_t courses = courses_of(state.range(0));
    std::int64_t i = 0;
    for (auto _ : state) {
        const std::int64_t d = i++ % courses;
        const auto result = store.read(decision_query(decision_student(d), decision_course(d)));
        benchmark::DoNotOptimize(result.events.data());
    }
    state.SetItemsProcessed(state.iterations());
}

// --- baseline: raw sqlite3 -----------------------------------------------------------------------------------

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
    }
}

class RawStatement {
public:
    RawStatement(sqlite3* db, const char* sql) : db_(db) {
        check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr), db, sql);
    }
    RawStatement(const RawStatement&) = delete;
    RawStatement& operator=(const RawStatement&) = delete;
    ~RawStatement() { sqlite3_finalize(stmt_); }
    [[nodiscard]] sqlite3_stmt* get() const { return stmt_; }
    int step() const {
        const int rc = sqlite3_step(stmt_);
        check(rc, db_, "step");
        return rc;
    }
    void reset() const {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    void bind(int index, std::string_view text) const {
        sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    }
    void bind(int index, std::int64_t value) const { sqlite3_bind_int64(stmt_, index, value); }
    [[nodiscard]] std::string_view text(int column) const {
        return {reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column)),
                static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
    }
    [[nodiscard]] std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

class RawDatabase {
public:
    explicit RawDatabase(const std::string& path) {
        check(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr), db_, "open");
        exec("PRAGMA busy_timeout = 5000");
        exec("PRAGMA journal_mode = WAL");
        exec("PRAGMA synchronous = NORMAL");
    }
    RawDatabase(const RawDatabase&) = delete;
    RawDatabase& operator=(const RawDatabase&) = delete;
    ~RawDatabase() { sqlite3_close_v2(db_); }
    void exec(const char* sql) const { check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), db_, sql); }
    [[nodiscard]] sqlite3* get() const { return db_; }

private:
    sqlite3* db_ = nullptr;
};

// The decision's query by hand: ?1 the course's tag, ?2 the student's. `columns` over `e` (events), followed
// by the head position.
std::string matching_sql(const std::string& columns) {
    const std::string head = ", (SELECT coalesce(max(position), 0) FROM events) AS head ";
    return "SELECT " + columns + head +
           "FROM event_tags t CROSS JOIN events e ON e.position = t.position WHERE t.tag = ?1 "
           "AND e.type IN ('course.defined', 'course.capacity_changed', 'course.student_subscribed') "
           "UNION SELECT " +
           columns + head +
           "FROM event_tags t CROSS JOIN events e ON e.position = t.position WHERE t.tag = ?2 "
           "AND e.type = 'course.student_subscribed' ORDER BY 1";
}

constexpr const char* head_sql = "SELECT coalesce(max(position), 0) FROM events";

// Is an event matching the decision's query stored after ?3?
constexpr const char* condition_sql =
    "SELECT EXISTS (SELECT 1 FROM event_tags t CROSS JOIN events e ON e.position = t.position WHERE t.tag = ?1 "
    "AND t.position > ?3 AND e.type IN ('course.defined', 'course.capacity_changed', 'course.student_subscribed')) "
    "OR EXISTS (SELECT 1 FROM event_tags t CROSS JOIN events e ON e.position = t.position WHERE t.tag = ?2 "
    "AND t.position > ?3 AND e.type = 'course.student_subscribed')";

Event decode(std::string_view type, const nlohmann::json& payload) {
    if (type == CourseDefined::type_name) return payload.get<CourseDefined>();
    if (type == CourseCapacityChanged::type_name) return payload.get<CourseCapacityChanged>();
    if (type == StudentSubscribed::type_name) return payload.get<StudentSubscribed>();
    throw std::runtime_error("unknown event type");
}

struct PlainState {
    bool exists = false;
    std::int64_t seats = 0;
    std::int64_t taken = 0;
    std::int64_t mine = 0;
};

// What an application writes by hand for the decision; see the file comment.
class RawDecider {
public:
    explicit RawDecider(const std::string& path)
        : db_(path), read_(db_.get(), matching_sql("e.position, e.type, e.payload").c_str()),
          head_(db_.get(), head_sql), begin_(db_.get(), "BEGIN IMMEDIATE"), commit_(db_.get(), "COMMIT"),
          condition_(db_.get(), condition_sql),
          version_(db_.get(), "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1"),
          insert_(db_.get(), "INSERT INTO events (stream_id, version, event_id, type, schema_version, payload, "
                             "metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
          insert_tag_(db_.get(), "INSERT INTO event_tags (tag, position) VALUES (?1, ?2)") {}

    void decide_and_append(const std::string& student, const std::string& course) {
        const std::string course_tag = tag("course", course);
        const std::string student_tag = tag("student", student);
        // The read: the state and the position it covers, in one statement.
        PlainState s;
        std::int64_t head = -1;
        read_.bind(1, course_tag);
        read_.bind(2, student_tag);
        while (read_.step() == SQLITE_ROW) {
            head = read_.int64(3);
            const Event e = decode(read_.text(1), nlohmann::json::parse(read_.text(2)));
            if (const auto* d = std::get_if<CourseDefined>(&e)) {
                s.exists = true;
                s.seats = d->capacity;
            } else if (const auto* c = std::get_if<CourseCapacityChanged>(&e)) {
                s.seats = c->capacity;
            } else if (const auto* sub = std::get_if<StudentSubscribed>(&e)) {
                if (sub->course_id == course) ++s.taken;
                if (sub->student_id == student) ++s.mine;
            }
        }
        read_.reset();
        if (head < 0) { // nothing matched: the head alone
            head_.step();
            head = head_.int64(0);
            head_.reset();
        }
        const Event decided = decide(student, course, s.exists, s.seats, s.taken, s.mine);

        // The conditional append.
        const std::string stream = course_stream(course);
        const std::string type(orchestrix::event_name_of(decided));
        const std::string payload = std::visit([](const auto& v) { return nlohmann::json(v).dump(); }, decided);
        const std::string id = orchestrix::Uuid::generate().to_string();
        const std::string metadata =
            nlohmann::json{{"event_id", id}, {"correlation_id", ""}, {"causation_id", ""}}.dump();
        std::vector<std::string> tags;
        std::visit(
            [&](const auto& v) {
                for (const auto& t : v.tags()) tags.push_back(t);
            },
            decided);
        const auto now =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        begin_.step();
        begin_.reset();
        condition_.bind(1, course_tag);
        condition_.bind(2, student_tag);
        condition_.bind(3, head);
        condition_.step();
        const bool conflict = condition_.int64(0) != 0;
        condition_.reset();
        if (conflict) {
            db_.exec("ROLLBACK");
            throw std::runtime_error("append condition failed");
        }
        version_.bind(1, stream);
        version_.step();
        const std::int64_t version = version_.int64(0) + 1;
        version_.reset();
        insert_.bind(1, stream);
        insert_.bind(2, version);
        insert_.bind(3, id);
        insert_.bind(4, type);
        insert_.bind(5, std::int64_t{1});
        insert_.bind(6, payload);
        insert_.bind(7, metadata);
        insert_.bind(8, static_cast<std::int64_t>(now));
        insert_.step();
        insert_.reset();
        const std::int64_t position = sqlite3_last_insert_rowid(db_.get());
        for (const std::string& t : tags) {
            insert_tag_.bind(1, t);
            insert_tag_.bind(2, position);
            insert_tag_.step();
            insert_tag_.reset();
        }
        commit_.step();
        commit_.reset();
    }

private:
    RawDatabase db_;
    RawStatement read_;
    RawStatement head_;
    RawStatement begin_;
    RawStatement commit_;
    RawStatement condition_;
    RawStatement version_;
    RawStatement insert_;
    RawStatement insert_tag_;
};

void baseline_decide(benchmark::State& state) {
    const TempDir dir;
    RawDecider raw(copy_of(dir, state.range(0)));
    std::int64_t i = 0;
    for (auto _ : state) {
        raw.decide_and_append(decision_student(i), decision_course(i));
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}

// What the baseline reads an event into: the same fields as a RecordedEvent.
struct RawRecord {
    std::uint64_t position = 0;
    std::string stream_id;
    std::uint64_t version = 0;
    Event event;
    std::string event_id;
    std::string correlation_id;
    std::string causation_id;
    std::int64_t recorded_at = 0;
};

void baseline_read(benchmark::State& state) {
    const TempDir dir;
    const RawDatabase db(copy_of(dir, state.range(0)));
    const RawStatement read(db.get(), matching_sql("e.position, e.stream_id, e.version, e.event_id, e.type, "
                                                   "e.schema_version, e.payload, e.metadata, e.recorded_at")
                                          .c_str());
    const std::int64_t courses = courses_of(state.range(0));
    std::int64_t i = 0;
    for (auto _ : state) {
        const std::int64_t d = i++ % courses;
        const std::string course_tag = tag("course", decision_course(d));
        const std::string student_tag = tag("student", decision_student(d));
        std::vector<RawRecord> out;
        std::int64_t head = 0;
        read.bind(1, course_tag);
        read.bind(2, student_tag);
        while (read.step() == SQLITE_ROW) {
            RawRecord r;
            r.position = static_cast<std::uint64_t>(read.int64(0));
            r.stream_id = read.text(1);
            r.version = static_cast<std::uint64_t>(read.int64(2));
            r.event = decode(read.text(4), nlohmann::json::parse(read.text(6)));
            const auto metadata = nlohmann::json::parse(read.text(7));
            r.event_id = metadata.at("event_id").get<std::string>();
            r.correlation_id = metadata.at("correlation_id").get<std::string>();
            r.causation_id = metadata.at("causation_id").get<std::string>();
            r.recorded_at = read.int64(8);
            head = read.int64(9);
            out.push_back(std::move(r));
        }
        read.reset();
        benchmark::DoNotOptimize(out.data());
        benchmark::DoNotOptimize(head);
    }
    state.SetItemsProcessed(state.iterations());
}

} // namespace

BENCHMARK(library_decide)
    ->Name("DCB/sqlite-decide/library")
    ->Arg(10'000)
    ->Arg(100'000)
    ->Iterations(decisions_per_run)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(baseline_decide)
    ->Name("DCB/sqlite-decide/baseline")
    ->Arg(10'000)
    ->Arg(100'000)
    ->Iterations(decisions_per_run)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(library_read)
    ->Name("DCB/sqlite-read/library")
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(baseline_read)
    ->Name("DCB/sqlite-read/baseline")
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
