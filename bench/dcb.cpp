// Decisions across streams (DCB), in memory: the workload of dcb_workload.hpp (N = 10,000 or 100,000 events
// of a course/student domain).
//
// decide:     one decision per iteration, each on its own course and student (decision i: course i, student
//             3i+1), so every iteration reads the same 13 events: a fixed number of decisions per run (one
//             per course, N/10; for the scan 1,000 at 10,000 events, 100 at 100,000), the store filled before
//             timing.
//             library:          DecisionRepository::execute with the three projections of examples/11-dcb
//                               (one read by query through `visit`, the fold, the decision, a conditional
//                               append of one event, whose envelope gets a fresh id).
//             library-store:    the same through the store's own calls, without DecisionRepository: the
//                               query built, `visit` folding into three plain counters, `append` with
//                               `AppendCondition{query, position}`.
//             baseline-scan:    what the issue calls the baseline: a std::vector of stored events (id from
//                               Uuid::generate(), stream, the event, its tags as strings), guarded by a
//                               std::shared_mutex (shared for the read, exclusive for the check and the
//                               append: the condition means nothing without concurrent writers). The read is
//                               a filtered scan of every event, the type checked on the variant, the tags by
//                               string comparison; the condition a filtered scan of the events after the
//                               read's position.
//             baseline-index:   the same with a hand-written tag index (unordered_map from tag to the
//                               ascending positions of its events): the read walks the course's and the
//                               student's position lists, the condition looks at their tails after the
//                               read's position. The best reasonable hand-written code; the ratio that counts.
// read:       the decision's read alone (the same 3-item query for a course and a student, rotating over
//             the courses), returning copies of the matching events: library `store.read(query)` (a
//             QueryResult of RecordedEvents), baselines a vector of records (position, stream, id, event)
//             from the scan or from the tag index.
// throughput: DecisionRepository::execute from 1, 4 and 8 threads on a store of 10,000 events, a fixed
//             number of decisions per run, split evenly between the threads.
//             disjoint (8,000 decisions): each thread decides on courses of its own (thread t on courses t,
//             t + threads, ...; each course gets at most 8 more events) and for fresh students, so no two
//             decisions conflict.
//             overlap (2,000 decisions): every thread on the same course (capacity unlimited), so a decision
//             conflicts with every append made between its read and its own. The course's events grow from
//             10 to 2,010 during a run (a decision folds 1,000 of them on average): compare overlap across
//             thread counts, not with disjoint.
//             RetryPolicy: up to 1,000 attempts, waits of full jitter below 1 us doubling up to 32 us, spent
//             yielding the CPU (std::this_thread::yield in a loop) rather than in nanosleep, whose timer slack
//             would make each ~60 us: the figures measure contention, not sleeping.
//             Counters: items_per_second (decisions/s), retries (conflicts, in all), retries_per_decision.

#include "dcb_workload.hpp"

#include <orchestrix/orchestrix.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace {

using namespace bench::dcb;
using Store = orchestrix::InMemoryEventStore<Event>;
using Envelope = orchestrix::EventEnvelope<Event>;

constexpr std::int64_t throughput_events = 10'000;
constexpr std::int64_t disjoint_decisions = 8'000; // in all, per run
constexpr std::int64_t overlap_decisions = 2'000;

std::unique_ptr<Store> filled_store(std::int64_t events) {
    auto store = std::make_unique<Store>();
    for_each_prefill_event(events, [&](const std::string& stream, Event e) {
        (void)store->append(stream, {Envelope(std::move(e))}, orchestrix::ExpectedVersion::any());
    });
    return store;
}

// --- library ---------------------------------------------------------------------------------------------------

void library_decide(benchmark::State& state) {
    const std::unique_ptr<Store> store = filled_store(state.range(0));
    orchestrix::DecisionRepository decisions(*store);
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

void library_store_decide(benchmark::State& state) {
    const std::unique_ptr<Store> store = filled_store(state.range(0));
    std::int64_t i = 0;
    for (auto _ : state) {
        const std::string course = decision_course(i);
        const std::string student = decision_student(i);
        ++i;
        const orchestrix::Query query = decision_query(student, course);
        bool exists = false;
        std::int64_t seats = 0, taken = 0, mine = 0;
        const orchestrix::position_t position =
            store->visit(query, 0, [&](const orchestrix::RecordedEventView<Event>& e) {
                if (const auto* d = std::get_if<CourseDefined>(&e.event())) {
                    exists = true;
                    seats = d->capacity;
                } else if (const auto* c = std::get_if<CourseCapacityChanged>(&e.event())) {
                    seats = c->capacity;
                } else if (const auto* s = std::get_if<StudentSubscribed>(&e.event())) {
                    // The query's items: this course's subscriptions, and this student's.
                    if (s->course_id == course) ++taken;
                    if (s->student_id == student) ++mine;
                }
            });
        const auto result =
            store->append(course_stream(course), {Envelope(decide(student, course, exists, seats, taken, mine))},
                          orchestrix::ExpectedVersion::any(), orchestrix::AppendCondition{query, position});
        benchmark::DoNotOptimize(result);
    }
    state.SetItemsProcessed(state.iterations());
}

void library_read(benchmark::State& state) {
    const std::unique_ptr<Store> store = filled_store(state.range(0));
    const std::int64_t courses = courses_of(state.range(0));
    std::int64_t i = 0;
    for (auto _ : state) {
        const std::int64_t d = i++ % courses;
        const auto result = store->read(decision_query(decision_student(d), decision_course(d)));
        benchmark::DoNotOptimize(result.events.data());
    }
    state.SetItemsProcessed(state.iterations());
}

// --- baselines: hand-written -----------------------------------------------------------------------------------

struct StoredEvent {
    orchestrix::Uuid id;
    std::string stream;
    Event event;
    std::vector<std::string> tags;
};

// What a read returns: a copy of the stored event and where it is.
struct Record {
    std::uint64_t position = 0;
    std::string stream;
    orchestrix::Uuid id;
    Event event;
};

std::vector<std::string> tags_of_event(const Event& e) {
    return std::visit(
        [](const auto& v) {
            std::vector<std::string> out;
            for (const auto& t : v.tags()) out.push_back(t);
            return out;
        },
        e);
}

bool has_tag(const StoredEvent& e, std::string_view t) {
    return std::find(e.tags.begin(), e.tags.end(), t) != e.tags.end();
}

// The decision's query, hand-written: the course's definition and capacity changes, the course's
// subscriptions, the student's subscriptions.
struct SubscribeQuery {
    std::string course_tag;
    std::string student_tag;

    SubscribeQuery(const std::string& student, const std::string& course)
        : course_tag(tag("course", course)), student_tag(tag("student", student)) {}

    [[nodiscard]] bool matches(const StoredEvent& e) const {
        if (std::holds_alternative<StudentSubscribed>(e.event))
            return has_tag(e, course_tag) || has_tag(e, student_tag);
        return has_tag(e, course_tag); // CourseDefined, CourseCapacityChanged
    }
};

// The decision's state, folded by hand.
struct PlainState {
    bool exists = false;
    std::int64_t seats = 0;
    std::int64_t taken = 0;
    std::int64_t mine = 0;
};

struct ConditionFailed : std::runtime_error {
    ConditionFailed() : std::runtime_error("append condition failed") {}
};

// The baseline: a vector of stored events, read and checked by filtered scans.
class ScanLog {
public:
    void append(std::string stream, Event e) {
        std::vector<std::string> tags = tags_of_event(e);
        const std::unique_lock lock(mutex_);
        events_.push_back(StoredEvent{orchestrix::Uuid::generate(), std::move(stream), std::move(e), std::move(tags)});
    }

    // Folds the decision's state; returns the position it covers.
    std::uint64_t fold(const SubscribeQuery& q, PlainState& s) const {
        const std::shared_lock lock(mutex_);
        for (const StoredEvent& e : events_) {
            if (const auto* d = std::get_if<CourseDefined>(&e.event)) {
                if (has_tag(e, q.course_tag)) {
                    s.exists = true;
                    s.seats = d->capacity;
                }
            } else if (const auto* c = std::get_if<CourseCapacityChanged>(&e.event)) {
                if (has_tag(e, q.course_tag)) s.seats = c->capacity;
            } else {
                if (has_tag(e, q.course_tag)) ++s.taken;
                if (has_tag(e, q.student_tag)) ++s.mine;
            }
        }
        return events_.size();
    }

    // Appends `e` unless an event matching `q` was stored after `after`.
    void append_if(const SubscribeQuery& q, std::uint64_t after, std::string stream, Event e) {
        std::vector<std::string> tags = tags_of_event(e);
        const std::unique_lock lock(mutex_);
        for (std::size_t p = after; p < events_.size(); ++p) {
            if (q.matches(events_[p])) throw ConditionFailed();
        }
        events_.push_back(StoredEvent{orchestrix::Uuid::generate(), std::move(stream), std::move(e), std::move(tags)});
    }

    [[nodiscard]] std::vector<Record> read(const SubscribeQuery& q) const {
        std::vector<Record> out;
        const std::shared_lock lock(mutex_);
        for (std::size_t p = 0; p < events_.size(); ++p) {
            const StoredEvent& e = events_[p];
            if (q.matches(e)) out.push_back(Record{p + 1, e.stream, e.id, e.event});
        }
        return out;
    }

private:
    mutable std::shared_mutex mutex_;
    std::vector<StoredEvent> events_; // position = index + 1
};

// The same with a tag index: per tag, the ascending positions of the events that carry it.
class IndexedLog {
public:
    void append(std::string stream, Event e) {
        std::vector<std::string> tags = tags_of_event(e);
        const std::unique_lock lock(mutex_);
        store(std::move(stream), std::move(e), std::move(tags));
    }

    std::uint64_t fold(const SubscribeQuery& q, PlainState& s) const {
        const std::shared_lock lock(mutex_);
        for (const std::uint64_t p : positions(q.course_tag)) {
            const Event& e = events_[p - 1].event;
            if (const auto* d = std::get_if<CourseDefined>(&e)) {
                s.exists = true;
                s.seats = d->capacity;
            } else if (const auto* c = std::get_if<CourseCapacityChanged>(&e)) {
                s.seats = c->capacity;
            } else {
                ++s.taken;
            }
        }
        for (const std::uint64_t p : positions(q.student_tag)) {
            if (std::holds_alternative<StudentSubscribed>(events_[p - 1].event)) ++s.mine;
        }
        return events_.size();
    }

    void append_if(const SubscribeQuery& q, std::uint64_t after, std::string stream, Event e) {
        std::vector<std::string> tags = tags_of_event(e);
        const std::unique_lock lock(mutex_);
        // Every event of the course matches (all three types are read); of the student, the subscriptions.
        const std::vector<std::uint64_t>& course = positions(q.course_tag);
        if (!course.empty() && course.back() > after) throw ConditionFailed();
        const std::vector<std::uint64_t>& student = positions(q.student_tag);
        for (auto it = std::upper_bound(student.begin(), student.end(), after); it != student.end(); ++it) {
            if (std::holds_alternative<StudentSubscribed>(events_[*it - 1].event)) throw ConditionFailed();
        }
        store(std::move(stream), std::move(e), std::move(tags));
    }

    [[nodiscard]] std::vector<Record> read(const SubscribeQuery& q) const {
        std::vector<Record> out;
        const std::shared_lock lock(mutex_);
        const std::vector<std::uint64_t>& course = positions(q.course_tag);
        const std::vector<std::uint64_t>& student = positions(q.student_tag);
        out.reserve(course.size() + student.size());
        const auto add = [&](std::uint64_t p) {
            const StoredEvent& e = events_[p - 1];
            out.push_back(Record{p, e.stream, e.id, e.event});
        };
        // Merge the two ascending lists (an event of both once); of the student's, only subscriptions.
        auto c = course.begin();
        auto s = student.begin();
        while (c != course.end() || s != student.end()) {
            if (s == student.end() || (c != course.end() && *c <= *s)) {
                if (s != student.end() && *s == *c) ++s;
                add(*c++);
            } else {
                if (std::holds_alternative<StudentSubscribed>(events_[*s - 1].event)) add(*s);
                ++s;
            }
        }
        return out;
    }

private:
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    const std::vector<std::uint64_t>& positions(const std::string& t) const {
        static const std::vector<std::uint64_t> none;
        const auto found = by_tag_.find(t);
        return found == by_tag_.end() ? none : found->second;
    }

    void store(std::string stream, Event e, std::vector<std::string> tags) {
        const std::uint64_t position = events_.size() + 1;
        for (const std::string& t : tags) {
            auto found = by_tag_.find(t);
            if (found == by_tag_.end()) found = by_tag_.try_emplace(t).first;
            found->second.push_back(position);
        }
        events_.push_back(StoredEvent{orchestrix::Uuid::generate(), std::move(stream), std::move(e), std::move(tags)});
    }

    mutable std::shared_mutex mutex_;
    std::vector<StoredEvent> events_; // position = index + 1
    std::unordered_map<std::string, std::vector<std::uint64_t>, string_hash, std::equal_to<>> by_tag_;
};

template <class Log>
std::unique_ptr<Log> filled_log(std::int64_t events) {
    auto log = std::make_unique<Log>();
    for_each_prefill_event(events, [&](const std::string& stream, Event e) { log->append(stream, std::move(e)); });
    return log;
}

template <class Log>
void baseline_decide(benchmark::State& state) {
    const std::unique_ptr<Log> log = filled_log<Log>(state.range(0));
    std::int64_t i = 0;
    for (auto _ : state) {
        const std::string course = decision_course(i);
        const std::string student = decision_student(i);
        ++i;
        const SubscribeQuery query(student, course);
        PlainState s;
        const std::uint64_t position = log->fold(query, s);
        log->append_if(query, position, course_stream(course),
                       decide(student, course, s.exists, s.seats, s.taken, s.mine));
    }
    state.SetItemsProcessed(state.iterations());
}

template <class Log>
void baseline_read(benchmark::State& state) {
    const std::unique_ptr<Log> log = filled_log<Log>(state.range(0));
    const std::int64_t courses = courses_of(state.range(0));
    std::int64_t i = 0;
    for (auto _ : state) {
        const std::int64_t d = i++ % courses;
        const auto records = log->read(SubscribeQuery(decision_student(d), decision_course(d)));
        benchmark::DoNotOptimize(records.data());
    }
    state.SetItemsProcessed(state.iterations());
}

// --- throughput ------------------------------------------------------------------------------------------------

// Waits by yielding the CPU until `d` has passed: a short wait lasts about as long as it says.
void yield_for(std::chrono::microseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
}

orchestrix::RetryPolicy contention_retry() {
    orchestrix::RetryPolicy retry;
    retry.max_attempts = 1000;
    retry.initial_delay = std::chrono::microseconds(1);
    retry.max_delay = std::chrono::microseconds(32);
    retry.sleep = yield_for;
    return retry;
}

std::unique_ptr<Store> shared_store; // made by thread 0 before the timed loop, which all threads start together
std::atomic<std::int64_t> failed_decisions{0};

void throughput(benchmark::State& state, bool overlap) {
    const int threads = state.threads();
    const int me = state.thread_index();
    if (me == 0) {
        shared_store = filled_store(throughput_events);
        failed_decisions = 0;
    }
    const orchestrix::RetryPolicy retry = contention_retry();
    const std::int64_t courses = courses_of(throughput_events);
    std::int64_t retries = 0;
    std::int64_t k = 0;
    for (auto _ : state) {
        orchestrix::DecisionRepository decisions(*shared_store); // the store exists once the loop runs
        const std::string course = course_id(overlap ? 0 : (me + threads * k) % courses);
        const std::string student = student_id(1'000'000 * (me + 1) + k); // a fresh student, of this thread
        ++k;
        try {
            const auto result = decisions.execute(
                course_stream(course),
                std::tuple{CourseCapacity{course}, CourseSubscriptions{course}, StudentSubscriptions{student}},
                [&](const CourseCapacity& c, const CourseSubscriptions& taken, const StudentSubscriptions& mine) {
                    return decide(student, course, c.exists, c.capacity, taken.count, mine.count);
                },
                retry);
            retries += result.attempts - 1;
        } catch (const orchestrix::AppendConditionError&) {
            retries += retry.max_attempts - 1;
            ++failed_decisions;
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["retries"] = benchmark::Counter(static_cast<double>(retries));
    state.counters["retries_per_decision"] =
        benchmark::Counter(static_cast<double>(retries), benchmark::Counter::kAvgIterations);
    if (me == 0) {
        if (failed_decisions != 0) state.SkipWithError("a decision gave up after 1,000 conflicts");
        shared_store.reset();
    }
}

void throughput_disjoint(benchmark::State& state) { throughput(state, false); }
void throughput_overlap(benchmark::State& state) { throughput(state, true); }

// --- registration ----------------------------------------------------------------------------------------------

// Decisions per run: one per course (each costs the same), fewer for the scan, whose every decision reads the
// whole store: 1,000 at 10,000 events, 100 at 100,000.
std::int64_t decisions_for(std::int64_t events, bool scan) {
    return scan ? std::min<std::int64_t>(courses_of(events), 10'000'000 / events) : courses_of(events);
}

const bool registered = [] {
    for (const std::int64_t n : {std::int64_t{10'000}, std::int64_t{100'000}}) {
        const auto decide_benchmark = [&](const char* name, void (*f)(benchmark::State&), bool scan) {
            benchmark::RegisterBenchmark(name, f)
                ->Arg(n)
                ->Iterations(decisions_for(n, scan))
                ->Unit(benchmark::kMicrosecond);
        };
        decide_benchmark("DCB/decide/library", library_decide, false);
        decide_benchmark("DCB/decide/library-store", library_store_decide, false);
        decide_benchmark("DCB/decide/baseline-scan", baseline_decide<ScanLog>, true);
        decide_benchmark("DCB/decide/baseline-index", baseline_decide<IndexedLog>, false);
        benchmark::RegisterBenchmark("DCB/read/library", library_read)->Arg(n)->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark("DCB/read/baseline-scan", baseline_read<ScanLog>)
            ->Arg(n)
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark("DCB/read/baseline-index", baseline_read<IndexedLog>)
            ->Arg(n)
            ->Unit(benchmark::kMicrosecond);
    }
    using Benchmark = void (*)(benchmark::State&);
    struct Kind {
        const char* name;
        Benchmark f;
        std::int64_t decisions;
    };
    const Kind kinds[] = {{"DCB/throughput/disjoint", throughput_disjoint, disjoint_decisions},
                          {"DCB/throughput/overlap", throughput_overlap, overlap_decisions}};
    for (const int threads : {1, 4, 8}) {
        for (const Kind& kind : kinds) {
            benchmark::RegisterBenchmark(kind.name, kind.f)
                ->Iterations(kind.decisions / threads)
                ->Threads(threads)
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond);
        }
    }
    return true;
}();

} // namespace
