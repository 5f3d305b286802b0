#include <orchestrix/opentelemetry/tracer.hpp>

#include "support/catch.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace trace_api = ::opentelemetry::trace;
namespace common_api = ::opentelemetry::common;
namespace nostd = ::opentelemetry::nostd;

/// What the fake tracer saw of one span.
struct SpanRecord {
    std::string name{};
    trace_api::SpanKind kind = trace_api::SpanKind::kInternal;
    bool has_parent = false;
    trace_api::SpanContext parent = trace_api::SpanContext::GetInvalid();
    trace_api::SpanContext context = trace_api::SpanContext::GetInvalid();
    std::vector<std::pair<std::string, std::string>> attributes{}; // numbers written in decimal
    std::vector<std::pair<std::string, std::string>> events{};     // event name, its exception.message
    trace_api::StatusCode status = trace_api::StatusCode::kUnset;
    std::string status_description{};
    int ends = 0;

    [[nodiscard]] std::string attribute(const std::string& key) const {
        for (const auto& [k, v] : attributes) {
            if (k == key) return v;
        }
        return "(none)";
    }
};

struct Log {
    std::mutex mutex;
    std::vector<std::shared_ptr<SpanRecord>> spans;
    std::uint64_t next_id = 0;
};

std::string text_of(const common_api::AttributeValue& value) {
    if (nostd::holds_alternative<std::int64_t>(value)) return std::to_string(nostd::get<std::int64_t>(value));
    if (nostd::holds_alternative<nostd::string_view>(value)) {
        const auto v = nostd::get<nostd::string_view>(value);
        return std::string(v.data(), v.size());
    }
    if (nostd::holds_alternative<const char*>(value)) return nostd::get<const char*>(value);
    return "(other type)";
}

/// A span of the trace API that records what is done to it.
class FakeSpan final : public trace_api::Span {
public:
    FakeSpan(std::shared_ptr<SpanRecord> record, std::shared_ptr<Log> log)
        : record_(std::move(record)), log_(std::move(log)) {}

    void SetAttribute(nostd::string_view key, const common_api::AttributeValue& value) noexcept override {
        const std::lock_guard lock(log_->mutex);
        record_->attributes.emplace_back(std::string(key.data(), key.size()), text_of(value));
    }
    void AddEvent(nostd::string_view name) noexcept override { add_event(name, ""); }
    void AddEvent(nostd::string_view name, common_api::SystemTimestamp) noexcept override { add_event(name, ""); }
    void AddEvent(nostd::string_view name, common_api::SystemTimestamp,
                  const common_api::KeyValueIterable& attributes) noexcept override {
        std::string message;
        attributes.ForEachKeyValue([&](nostd::string_view key, common_api::AttributeValue value) noexcept {
            if (std::string(key.data(), key.size()) == "exception.message") message = text_of(value);
            return true;
        });
        add_event(name, message);
    }
#if OPENTELEMETRY_ABI_VERSION_NO >= 2
    void AddLink(const trace_api::SpanContext&, const common_api::KeyValueIterable&) noexcept override {}
    void AddLinks(const trace_api::SpanContextKeyValueIterable&) noexcept override {}
#endif
    void SetStatus(trace_api::StatusCode code, nostd::string_view description) noexcept override {
        const std::lock_guard lock(log_->mutex);
        record_->status = code;
        record_->status_description.assign(description.data(), description.size());
    }
    void UpdateName(nostd::string_view name) noexcept override {
        const std::lock_guard lock(log_->mutex);
        record_->name.assign(name.data(), name.size());
    }
    void End(const trace_api::EndSpanOptions&) noexcept override {
        const std::lock_guard lock(log_->mutex);
        ++record_->ends;
    }
    trace_api::SpanContext GetContext() const noexcept override { return record_->context; }
    bool IsRecording() const noexcept override { return true; }

private:
    void add_event(nostd::string_view name, std::string message) {
        const std::lock_guard lock(log_->mutex);
        record_->events.emplace_back(std::string(name.data(), name.size()), std::move(message));
    }

    std::shared_ptr<SpanRecord> record_;
    std::shared_ptr<Log> log_;
};

/// A tracer of the trace API that makes `FakeSpan`s with ids counted up from 1.
class FakeTracer final : public trace_api::Tracer {
public:
    explicit FakeTracer(std::shared_ptr<Log> log) : log_(std::move(log)) {}

    nostd::shared_ptr<trace_api::Span> StartSpan(nostd::string_view name,
                                                 const common_api::KeyValueIterable& attributes,
                                                 const trace_api::SpanContextKeyValueIterable&,
                                                 const trace_api::StartSpanOptions& options) noexcept override {
        auto record = std::make_shared<SpanRecord>();
        record->name.assign(name.data(), name.size());
        record->kind = options.kind;
        if (nostd::holds_alternative<trace_api::SpanContext>(options.parent)) {
            record->parent = nostd::get<trace_api::SpanContext>(options.parent);
            record->has_parent = record->parent.IsValid();
        }
        attributes.ForEachKeyValue([&](nostd::string_view key, common_api::AttributeValue value) noexcept {
            record->attributes.emplace_back(std::string(key.data(), key.size()), text_of(value));
            return true;
        });
        const std::lock_guard lock(log_->mutex);
        const std::uint64_t id = ++log_->next_id;
        std::array<std::uint8_t, 16> trace{};
        std::array<std::uint8_t, 8> span{};
        if (record->has_parent) {
            record->parent.trace_id().CopyBytesTo(nostd::span<std::uint8_t, 16>(trace.data(), trace.size()));
        } else {
            trace[15] = static_cast<std::uint8_t>(id);
            trace[14] = static_cast<std::uint8_t>(id >> 8U);
        }
        span[7] = static_cast<std::uint8_t>(id);
        span[6] = static_cast<std::uint8_t>(id >> 8U);
        record->context =
            trace_api::SpanContext(trace_api::TraceId(nostd::span<const std::uint8_t, 16>(trace.data(), trace.size())),
                                   trace_api::SpanId(nostd::span<const std::uint8_t, 8>(span.data(), span.size())),
                                   trace_api::TraceFlags(trace_api::TraceFlags::kIsSampled), false);
        log_->spans.push_back(record);
        return nostd::shared_ptr<trace_api::Span>(new FakeSpan(record, log_));
    }
#if OPENTELEMETRY_ABI_VERSION_NO == 1
    void ForceFlushWithMicroseconds(std::uint64_t) noexcept override {}
    void CloseWithMicroseconds(std::uint64_t) noexcept override {}
#endif

private:
    std::shared_ptr<Log> log_;
};

struct Fixture {
    std::shared_ptr<Log> log = std::make_shared<Log>();
    orchestrix::OpenTelemetryObserver observer{nostd::shared_ptr<trace_api::Tracer>(new FakeTracer(log))};
};

} // namespace

TEST_CASE("opentelemetry observer: a span is started with its kind and attributes, and ended once") {
    Fixture f;
    const orchestrix::SpanAttribute attributes[] = {{"orchestrix.bus", "bus", 0, false},
                                                    {"orchestrix.message_type", "user.created", 0, false},
                                                    {"orchestrix.handlers", "", 2, true}};
    const auto context =
        f.observer.start_span({"orchestrix.publish user.created", orchestrix::SpanKind::producer, {}, attributes});
    REQUIRE(context.valid());
    CHECK(context.sampled());
    CHECK(f.observer.open_spans() == 1);
    REQUIRE(f.log->spans.size() == 1);
    const auto& span = *f.log->spans[0];
    CHECK(span.name == "orchestrix.publish user.created");
    CHECK(span.kind == trace_api::SpanKind::kProducer);
    CHECK_FALSE(span.has_parent); // a root span: OpenTelemetry's own active span, if any, is its parent
    // The returned context is the span's.
    orchestrix::TraceContext expected;
    span.context.trace_id().CopyBytesTo(nostd::span<std::uint8_t, 16>(expected.trace_id.data(), 16));
    span.context.span_id().CopyBytesTo(nostd::span<std::uint8_t, 8>(expected.span_id.data(), 8));
    expected.flags = 1;
    CHECK(context == expected);
    CHECK(span.attribute("orchestrix.bus") == "bus");
    CHECK(span.attribute("orchestrix.handlers") == "2");
    CHECK(span.attribute("messaging.system") == "orchestrix");
    CHECK(span.attribute("messaging.operation.type") == "send");
    CHECK(span.attribute("messaging.destination.name") == "user.created");

    const orchestrix::SpanAttribute end_attributes[] = {{"orchestrix.failures", "", 0, true}};
    f.observer.end_span(context, {false, "", end_attributes});
    CHECK(span.ends == 1);
    CHECK(span.status == trace_api::StatusCode::kUnset);
    CHECK(span.events.empty());
    CHECK(span.attribute("orchestrix.failures") == "0");
    CHECK(f.observer.open_spans() == 0);
    f.observer.end_span(context, {}); // ending it again does nothing
    CHECK(span.ends == 1);
}

TEST_CASE("opentelemetry observer: a failed span gets the Error status and an exception event") {
    Fixture f;
    const auto context = f.observer.start_span({"orchestrix.command deposit", orchestrix::SpanKind::internal, {}, {}});
    f.observer.end_span(context, {true, "insufficient funds", {}});
    const auto& span = *f.log->spans[0];
    CHECK(span.ends == 1);
    CHECK(span.status == trace_api::StatusCode::kError);
    CHECK(span.status_description == "insufficient funds");
    REQUIRE(span.events.size() == 1);
    CHECK(span.events[0] == std::pair<std::string, std::string>("exception", "insufficient funds"));
    CHECK(span.attribute("messaging.system") == "(none)"); // not a messaging span
}

TEST_CASE("opentelemetry observer: the parent from a traceparent is a remote span context with its ids and flags") {
    Fixture f;
    const auto parent = orchestrix::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    REQUIRE(parent);
    const orchestrix::SpanAttribute attributes[] = {{"orchestrix.stream", "account-1", 0, false},
                                                    {"orchestrix.store", "postgres", 0, false}};
    const auto context =
        f.observer.start_span({"orchestrix.projection balances", orchestrix::SpanKind::consumer, *parent, attributes});
    const auto& span = *f.log->spans[0];
    REQUIRE(span.has_parent);
    CHECK(span.parent.IsRemote());
    CHECK(span.parent.IsSampled());
    char trace_hex[32];
    char span_hex[16];
    span.parent.trace_id().ToLowerBase16(nostd::span<char, 32>(trace_hex, 32));
    span.parent.span_id().ToLowerBase16(nostd::span<char, 16>(span_hex, 16));
    CHECK(std::string(trace_hex, 32) == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(std::string(span_hex, 16) == "00f067aa0ba902b7");
    CHECK(context.trace_id == parent->trace_id); // the child continues the trace
    CHECK(context.span_id != parent->span_id);
    CHECK(span.attribute("messaging.operation.type") == "process");
    CHECK(span.attribute("messaging.consumer.group.name") == "balances");
    CHECK(span.attribute("orchestrix.stream") == "account-1");
    CHECK(span.attribute("db.system.name") == "postgresql");
    f.observer.end_span(context, {});
}

TEST_CASE("opentelemetry observer: without a tracer provider nothing is traced, and open spans end with it") {
    {
        orchestrix::OpenTelemetryObserver observer; // the global provider: a no-op one unless the program set one
        const auto context = observer.start_span({"x", orchestrix::SpanKind::internal, {}, {}});
        CHECK_FALSE(context.valid());
        CHECK(observer.open_spans() == 0);
    }
    auto log = std::make_shared<Log>();
    {
        orchestrix::OpenTelemetryObserver observer{nostd::shared_ptr<trace_api::Tracer>(new FakeTracer(log))};
        static_cast<void>(observer.start_span({"a", orchestrix::SpanKind::internal, {}, {}}));
        static_cast<void>(observer.start_span({"b", orchestrix::SpanKind::internal, {}, {}}));
        observer.end_span(orchestrix::TraceContext{}, {}); // unknown: ignored
        CHECK(observer.open_spans() == 2);
    }
    REQUIRE(log->spans.size() == 2);
    CHECK(log->spans[0]->ends == 1);
    CHECK(log->spans[1]->ends == 1);
}

TEST_CASE("opentelemetry observer: spans started and ended on 4 threads are each ended once") {
    Fixture f;
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                const auto context = f.observer.start_span({"work", orchestrix::SpanKind::internal, {}, {}});
                f.observer.end_span(context, {});
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(f.observer.open_spans() == 0);
    REQUIRE(f.log->spans.size() == 800);
    for (const auto& span : f.log->spans) CHECK(span->ends == 1);
}

TEST_CASE("opentelemetry context conversions: an orchestrix trace context and a span context carry the same ids") {
    const auto context = orchestrix::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    REQUIRE(context);
    const trace_api::SpanContext span_context = orchestrix::to_otel_span_context(*context);
    CHECK(span_context.IsValid());
    CHECK(span_context.IsRemote());
    CHECK(span_context.IsSampled());
    CHECK(orchestrix::from_otel_span_context(span_context) == *context);
    CHECK_FALSE(orchestrix::to_otel_span_context(orchestrix::TraceContext{}).IsValid());
    CHECK_FALSE(orchestrix::from_otel_span_context(trace_api::SpanContext::GetInvalid()).valid());
    const auto unsampled = orchestrix::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    REQUIRE(unsampled);
    CHECK_FALSE(orchestrix::to_otel_span_context(*unsampled).IsSampled());
    CHECK(orchestrix::from_otel_span_context(orchestrix::to_otel_span_context(*unsampled)) == *unsampled);
}
