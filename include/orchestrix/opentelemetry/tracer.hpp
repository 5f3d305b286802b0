#pragma once

// OpenTelemetryObserver: an `Observer` that records the spans orchestrix components start and end as
// OpenTelemetry spans through opentelemetry-cpp's trace API (docs/operations.md).

#include <orchestrix/core/observer.hpp>

#if !__has_include(<opentelemetry/trace/provider.h>)
#error                                                                                                                 \
    "<orchestrix/opentelemetry.hpp> needs opentelemetry-cpp's API headers: link orchestrix::opentelemetry, made when find_package(opentelemetry-cpp) finds it (docs/operations.md, \"Enabling the module\")"
#endif

#include <opentelemetry/common/attribute_value.h>
#include <opentelemetry/nostd/shared_ptr.h>
#include <opentelemetry/nostd/span.h>
#include <opentelemetry/nostd/string_view.h>
#include <opentelemetry/trace/provider.h>
#include <opentelemetry/trace/span.h>
#include <opentelemetry/trace/span_context.h>
#include <opentelemetry/trace/span_id.h>
#include <opentelemetry/trace/span_metadata.h>
#include <opentelemetry/trace/span_startoptions.h>
#include <opentelemetry/trace/trace_flags.h>
#include <opentelemetry/trace/trace_id.h>
#include <opentelemetry/trace/tracer.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

namespace detail::otel {

namespace trace_api = ::opentelemetry::trace;
namespace common_api = ::opentelemetry::common;
namespace nostd = ::opentelemetry::nostd;

[[nodiscard]] inline nostd::string_view view(std::string_view text) noexcept {
    return nostd::string_view(text.data(), text.size());
}

[[nodiscard]] inline trace_api::SpanKind span_kind(SpanKind kind) noexcept {
    switch (kind) {
    case SpanKind::server:
        return trace_api::SpanKind::kServer;
    case SpanKind::client:
        return trace_api::SpanKind::kClient;
    case SpanKind::producer:
        return trace_api::SpanKind::kProducer;
    case SpanKind::consumer:
        return trace_api::SpanKind::kConsumer;
    case SpanKind::internal:
        break;
    }
    return trace_api::SpanKind::kInternal;
}

[[nodiscard]] inline common_api::AttributeValue value(const SpanAttribute& attribute) noexcept {
    if (attribute.is_number) return common_api::AttributeValue(attribute.number);
    return common_api::AttributeValue(view(attribute.text));
}

[[nodiscard]] inline const SpanAttribute* find(std::span<const SpanAttribute> attributes,
                                               std::string_view key) noexcept {
    for (const auto& attribute : attributes) {
        if (attribute.key == key) return &attribute;
    }
    return nullptr;
}

/// The attributes of a span: orchestrix's own, then those of the OpenTelemetry semantic conventions that
/// follow from them: for a producer span (a publish) and a consumer span (a projection handling an event),
/// `messaging.system` "orchestrix", `messaging.operation.type` ("send", "process"),
/// `messaging.destination.name` (the message type) and `messaging.consumer.group.name` (the projection's
/// name, from the span's name "orchestrix.projection <name>"); for a span with `orchestrix.store` "sqlite" or
/// "postgres", `db.system.name` ("sqlite", "postgresql").
inline void semantic_attributes(std::vector<std::pair<nostd::string_view, common_api::AttributeValue>>& out,
                                std::string_view name, SpanKind kind, std::span<const SpanAttribute> attributes) {
    for (const auto& attribute : attributes) out.emplace_back(view(attribute.key), value(attribute));
    if (kind == SpanKind::producer || kind == SpanKind::consumer) {
        out.emplace_back("messaging.system", view("orchestrix"));
        out.emplace_back("messaging.operation.type", view(kind == SpanKind::producer ? "send" : "process"));
        if (const auto* type = find(attributes, "orchestrix.message_type"); type && !type->is_number) {
            out.emplace_back("messaging.destination.name", view(type->text));
        }
        constexpr std::string_view projection_prefix = "orchestrix.projection ";
        if (kind == SpanKind::consumer && name.size() > projection_prefix.size() &&
            name.substr(0, projection_prefix.size()) == projection_prefix) {
            out.emplace_back("messaging.consumer.group.name", view(name.substr(projection_prefix.size())));
        }
    }
    if (const auto* store = find(attributes, "orchestrix.store"); store && !store->is_number) {
        if (store->text == "sqlite") out.emplace_back("db.system.name", view("sqlite"));
        if (store->text == "postgres") out.emplace_back("db.system.name", view("postgresql"));
    }
}

} // namespace detail::otel

/// The OpenTelemetry span context of an orchestrix trace context, marked remote (it came from an event's
/// metadata or another thread's work): the parent to give spans of the application's own, e.g.
/// `options.parent = orchestrix::to_otel_span_context(orchestrix::current_trace());` in a handler. The
/// empty context gives an invalid span context.
[[nodiscard]] inline ::opentelemetry::trace::SpanContext to_otel_span_context(const TraceContext& context) noexcept {
    namespace trace_api = ::opentelemetry::trace;
    namespace nostd = ::opentelemetry::nostd;
    if (!context.valid()) return trace_api::SpanContext::GetInvalid();
    return trace_api::SpanContext(
        trace_api::TraceId(nostd::span<const std::uint8_t, 16>(context.trace_id.data(), context.trace_id.size())),
        trace_api::SpanId(nostd::span<const std::uint8_t, 8>(context.span_id.data(), context.span_id.size())),
        trace_api::TraceFlags(context.flags), true);
}

/// The orchestrix trace context of an OpenTelemetry span context (its trace id, span id and flags): to run
/// orchestrix work under a span of the application's own, `orchestrix::TraceScope scope(
/// orchestrix::from_otel_span_context(span->GetContext()));`. An invalid span context gives the empty one.
[[nodiscard]] inline TraceContext from_otel_span_context(const ::opentelemetry::trace::SpanContext& context) noexcept {
    namespace nostd = ::opentelemetry::nostd;
    TraceContext out;
    if (!context.IsValid()) return out;
    context.trace_id().CopyBytesTo(nostd::span<std::uint8_t, 16>(out.trace_id.data(), out.trace_id.size()));
    context.span_id().CopyBytesTo(nostd::span<std::uint8_t, 8>(out.span_id.data(), out.span_id.size()));
    out.flags = context.trace_flags().flags();
    return out;
}

/// Records orchestrix's spans (a command, a publish, a projection handling an event) through an OpenTelemetry
/// tracer, so that they reach whatever exporter the application set up (OTLP, Jaeger, Zipkin, ...).
/// `start_span` starts an OpenTelemetry span, the child of the given trace context (a remote parent: it
/// came from an event's metadata or a request's `traceparent`) or, without one, of the span active in
/// OpenTelemetry's own context; it keeps the span by its trace and span ids until `end_span` ends it, with
/// the status `Error` and an "exception" event when the work failed. Attributes are passed through, with
/// those of the OpenTelemetry semantic conventions that follow from them (`messaging.*` for producer and
/// consumer spans, `db.system.name` for SQLite and PostgreSQL). A span whose context is not valid (a no-op
/// tracer provider) is ended at once and reported as not traced. Safe to call from several threads at once; spans still
/// open when the observer is destroyed are ended then.
class OpenTelemetryObserver : public Observer {
public:
    using tracer_ptr = ::opentelemetry::nostd::shared_ptr<::opentelemetry::trace::Tracer>;

    /// Uses the tracer "orchestrix" of the global tracer provider (`trace::Provider::GetTracerProvider()`),
    /// which the application sets before attaching the observer.
    OpenTelemetryObserver()
        : OpenTelemetryObserver(::opentelemetry::trace::Provider::GetTracerProvider()->GetTracer("orchestrix")) {}

    /// Uses `tracer`.
    explicit OpenTelemetryObserver(tracer_ptr tracer) : tracer_(std::move(tracer)) {}

    OpenTelemetryObserver(const OpenTelemetryObserver&) = delete;
    OpenTelemetryObserver& operator=(const OpenTelemetryObserver&) = delete;

    ~OpenTelemetryObserver() override {
        std::lock_guard lock(mutex_);
        for (auto& [key, span] : spans_) span->End();
    }

    TraceContext start_span(const SpanStart& start) override {
        namespace trace_api = ::opentelemetry::trace;
        std::vector<std::pair<detail::otel::nostd::string_view, detail::otel::common_api::AttributeValue>> attributes;
        attributes.reserve(start.attributes.size() + 4);
        detail::otel::semantic_attributes(attributes, start.name, start.kind, start.attributes);
        trace_api::StartSpanOptions options;
        options.kind = detail::otel::span_kind(start.kind);
        if (start.parent.valid()) options.parent = to_otel_span_context(start.parent);
        auto span = tracer_->StartSpan(detail::otel::view(start.name), attributes, options);
        if (!span) return {};
        const trace_api::SpanContext context = span->GetContext();
        if (!context.IsValid()) {
            span->End();
            return {};
        }
        TraceContext result = from_otel_span_context(context);
        std::lock_guard lock(mutex_);
        if (!spans_.try_emplace(key(result), span).second) span->End();
        return result;
    }

    void end_span(const TraceContext& context, const SpanEnd& end) override {
        namespace trace_api = ::opentelemetry::trace;
        ::opentelemetry::nostd::shared_ptr<trace_api::Span> span;
        {
            std::lock_guard lock(mutex_);
            const auto found = spans_.find(key(context));
            if (found == spans_.end()) return;
            span = std::move(found->second);
            spans_.erase(found);
        }
        for (const auto& attribute : end.attributes) {
            span->SetAttribute(detail::otel::view(attribute.key), detail::otel::value(attribute));
        }
        if (end.error) {
            span->AddEvent("exception", {{"exception.message", detail::otel::view(end.message)}});
            span->SetStatus(trace_api::StatusCode::kError, detail::otel::view(end.message));
        }
        span->End();
    }

    /// Spans started and not ended yet.
    [[nodiscard]] std::size_t open_spans() const {
        std::lock_guard lock(mutex_);
        return spans_.size();
    }

private:
    using span_key = std::pair<std::array<std::uint8_t, 16>, std::array<std::uint8_t, 8>>;
    static span_key key(const TraceContext& context) noexcept { return {context.trace_id, context.span_id}; }

    tracer_ptr tracer_;
    mutable std::mutex mutex_;
    std::map<span_key, ::opentelemetry::nostd::shared_ptr<::opentelemetry::trace::Span>> spans_;
};

} // namespace orchestrix
