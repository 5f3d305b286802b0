// The in-memory store keeps per event a compact record (id, position, recording time) and the correlation id,
// causation id and trace apart, only for the events that carry any: every read gives the metadata back whole.
#include <orchestrix/core/dcb.hpp>
#include <orchestrix/memory/event_store.hpp>

#include "support/catch.hpp"
#include "support/dcb_events.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace dcb_domain;
using orchestrix::ExpectedVersion;
using orchestrix::Metadata;
using Store = orchestrix::InMemoryEventStore<CourseEvent>;
using Envelope = orchestrix::EventEnvelope<CourseEvent>;

orchestrix::TraceContext trace_of(std::uint8_t seed) {
    orchestrix::TraceContext trace;
    for (std::size_t i = 0; i < trace.trace_id.size(); ++i) trace.trace_id[i] = static_cast<std::uint8_t>(seed + i);
    for (std::size_t i = 0; i < trace.span_id.size(); ++i) trace.span_id[i] = static_cast<std::uint8_t>(seed * 3 + i);
    trace.flags = 1;
    return trace;
}

// Event n of a stream: every third carries nothing but its id; the others a correlation id, a causation id,
// a trace, or all three.
Envelope envelope(const std::string& course, int n) {
    Metadata m;
    m.event_id = orchestrix::Uuid::generate();
    switch (n % 6) {
    case 1:
        m.correlation_id = "corr-" + course + "-" + std::to_string(n);
        break;
    case 2:
        m.causation_id = "cause-" + std::to_string(n) + "-with-a-name-too-long-for-a-short-string";
        break;
    case 4:
        m.trace = trace_of(static_cast<std::uint8_t>(n));
        break;
    case 5:
        m.correlation_id = "c" + std::to_string(n);
        m.causation_id = "k" + std::to_string(n);
        m.trace = trace_of(static_cast<std::uint8_t>(n + 100));
        break;
    default:
        break; // 0, 3: none
    }
    return Envelope{StudentSubscribed{"s" + std::to_string(n), course}, m};
}

// What the store must give back for an envelope it recorded at a time in [before, after].
void check_same(const Metadata& got, const Metadata& sent, std::chrono::system_clock::time_point before,
                std::chrono::system_clock::time_point after) {
    CHECK(got.event_id == sent.event_id);
    CHECK(got.correlation_id == sent.correlation_id);
    CHECK(got.causation_id == sent.causation_id);
    CHECK(got.trace == sent.trace);
    CHECK(got.recorded_at >= before);
    CHECK(got.recorded_at <= after);
}

struct Filled {
    std::vector<Envelope> sent_a; // course-a's envelopes, in order
    std::vector<Envelope> sent_b;
    std::chrono::system_clock::time_point before{};
    std::chrono::system_clock::time_point after{};
};

// 24 events each in course-a and course-b, interleaved, in batches of 1 and 3.
Filled fill(Store& store) {
    Filled out;
    out.before = std::chrono::system_clock::now();
    for (int n = 0; n < 24;) {
        const int batch = n % 2 == 0 ? 1 : 3;
        std::vector<Envelope> a;
        std::vector<Envelope> b;
        for (int k = 0; k < batch && n < 24; ++k, ++n) {
            a.push_back(envelope("a", n));
            b.push_back(envelope("b", n + 1));
        }
        store.append("course-a", std::span<const Envelope>(a), ExpectedVersion::any());
        store.append("course-b", std::span<const Envelope>(b), ExpectedVersion::any());
        out.sent_a.insert(out.sent_a.end(), a.begin(), a.end());
        out.sent_b.insert(out.sent_b.end(), b.begin(), b.end());
    }
    out.after = std::chrono::system_clock::now();
    return out;
}

} // namespace

TEST_CASE("in-memory store: metadata round trips with and without correlation, causation and trace") {
    Store store;
    const Filled f = fill(store);
    const auto a = store.read_stream("course-a");
    REQUIRE(a.size() == f.sent_a.size());
    for (std::size_t i = 0; i < a.size(); ++i) check_same(a[i].metadata, f.sent_a[i].metadata, f.before, f.after);
    // Views: metadata() by value, and the accessors that build none.
    std::size_t i = 0;
    store.visit_stream("course-b", 1, [&](const Store::view_type& e) {
        const auto& m = e.metadata();
        check_same(m, f.sent_b[i].metadata, f.before, f.after);
        CHECK(e.event_id() == f.sent_b[i].metadata.event_id);
        CHECK(e.recorded_at() == m.recorded_at);
        CHECK(e.to_owned().metadata == m);
        ++i;
    });
    CHECK(i == f.sent_b.size());
    // The global order sees the same metadata as the streams.
    const auto all = store.read_all();
    REQUIRE(all.size() == 48);
    for (const auto& e : all) {
        const auto& stream = e.stream_id == "course-a" ? a : store.read_stream("course-b");
        CHECK(stream[static_cast<std::size_t>(e.version - 1)].metadata == e.metadata);
    }
    // One batch shares one recording time; a later batch is not recorded earlier.
    CHECK(a[1].metadata.recorded_at == a[3].metadata.recorded_at);
    CHECK(a[0].metadata.recorded_at <= a[1].metadata.recorded_at);
}

TEST_CASE("in-memory store: metadata survives truncate and delete of other events") {
    Store store;
    const Filled f = fill(store);
    // Remove the first 7 events of course-a (some with extras, some without), all of course-b.
    CHECK(store.truncate_stream("course-a", 8).events_removed == 7);
    CHECK(store.delete_stream("course-b", ExpectedVersion::any(), {}).events_removed == 24);
    const auto a = store.read_stream("course-a");
    REQUIRE(a.size() == 17);
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].version == i + 8);
        check_same(a[i].metadata, f.sent_a[i + 7].metadata, f.before, f.after);
    }
    // Appends after a truncation keep their extras apart from the kept ones.
    Envelope more = envelope("a", 5);
    store.append("course-a", {more}, ExpectedVersion::exact(24));
    const auto last = store.read_stream("course-a", 25);
    REQUIRE(last.size() == 1);
    CHECK(last[0].metadata.correlation_id == more.metadata.correlation_id);
    CHECK(last[0].metadata.trace == more.metadata.trace);
    check_same(store.read_stream("course-a", 24)[0].metadata, f.sent_a[23].metadata, f.before, f.after);
    // A retry of a kept event is recognised by its id; one of a removed event is a new event.
    const auto retry = store.append("course-a", {f.sent_a[10]}, ExpectedVersion::any());
    CHECK_FALSE(retry.written);
    CHECK(retry.first_position == a[3].position);
}

TEST_CASE("in-memory store: reads by query give each event's metadata") {
    Store store;
    const Filled f = fill(store);
    const auto query = orchestrix::Query::of({orchestrix::QueryItem{{}, {orchestrix::tag("course", "b")}}});
    const auto read = store.read(query, 0);
    REQUIRE(read.events.size() == f.sent_b.size());
    for (std::size_t i = 0; i < read.events.size(); ++i) {
        check_same(read.events[i].metadata, f.sent_b[i].metadata, f.before, f.after);
    }
    // After a truncation, the query sees only what is kept, with its metadata.
    store.truncate_stream("course-b", 20);
    std::size_t seen = 0;
    store.visit(query, 0, [&](const Store::view_type& e) {
        check_same(e.metadata(), f.sent_b[static_cast<std::size_t>(e.version() - 1)].metadata, f.before, f.after);
        ++seen;
    });
    CHECK(seen == 5);
}

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ORCHESTRIX_TEST_NO_MALLINFO
#endif
#endif
#if !__GLIBC_PREREQ(2, 33) // mallinfo2
#define ORCHESTRIX_TEST_NO_MALLINFO
#endif
#ifndef ORCHESTRIX_TEST_NO_MALLINFO
#include <malloc.h>

namespace {
// glibc's arena in use and the blocks it maps on their own (allocations above the mmap threshold).
std::size_t heap_in_use() {
    const auto info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
} // namespace

TEST_CASE("in-memory store: only the events that carry extras pay for them") {
    // The heap a store of 4,080 events grows by (the capacity of blocks of 16 to 2,048 records: no slack), with
    // no extras and with a trace on every event (a trace needs no string of its own: the difference is the
    // extras' blocks).
    const auto grown = [](bool traced) {
        std::vector<Envelope> batch;
        for (int n = 0; n < 4080; ++n) {
            Metadata m;
            m.event_id = orchestrix::Uuid::generate();
            if (traced) m.trace = trace_of(static_cast<std::uint8_t>(n));
            batch.emplace_back(StudentSubscribed{"s", "c"}, m);
        }
        const std::size_t before = heap_in_use();
        auto store = std::make_unique<Store>();
        store->append("course-c", std::span<const Envelope>(batch), ExpectedVersion::any());
        const std::size_t after = heap_in_use();
        return static_cast<double>(after - before) / 4080.0;
    };
    const double plain = grown(false);
    const double traced = grown(true);
    // The extras of a traced event: two empty strings and a trace (96 bytes with libstdc++, 80 with libc++);
    // an untraced event pays none of it (else the two would differ by next to nothing).
    const double extras = static_cast<double>(sizeof(Store::view_type::Extras));
    CHECK(traced - plain > extras * 0.9);
    CHECK(traced - plain < extras * 1.5);
}
#endif
#endif

TEST_CASE("in-memory store: a stored event stays where it is while its stream grows") {
    Store store;
    // Long strings (beyond the short-string buffer): a copy would put them elsewhere in the heap.
    const std::string long_id(64, 'c');
    (void)store.append(long_id, std::vector<CourseEvent>{CourseDefined{long_id, 10}}, ExpectedVersion::no_stream());
    std::vector<const CourseEvent*> before;
    std::vector<const char*> strings_before;
    const auto collect = [&](std::vector<const CourseEvent*>& events, std::vector<const char*>& strings) {
        store.visit_stream(long_id, 1, [&](const orchestrix::RecordedEventView<CourseEvent>& e) {
            events.push_back(&e.event());
            if (const auto* defined = std::get_if<CourseDefined>(&e.event()))
                strings.push_back(defined->course_id.data());
        });
    };
    collect(before, strings_before);
    for (int i = 0; i < 2000; ++i) {
        (void)store.append(long_id, std::vector<CourseEvent>{CourseCapacityChanged{long_id, i}},
                           ExpectedVersion::any());
    }
    std::vector<const CourseEvent*> after;
    std::vector<const char*> strings_after;
    collect(after, strings_after);
    REQUIRE(after.size() == 2001);
    CHECK(after.front() == before.front()); // the event did not move
    CHECK(strings_after == strings_before); // nor did its string's heap buffer
    CHECK(std::get<CourseDefined>(*after.front()).course_id == long_id);
    CHECK(std::get<CourseCapacityChanged>(*after.back()).capacity == 1999);
}
