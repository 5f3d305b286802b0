#pragma once

// Umbrella header for the OpenTelemetry adapter: `OpenTelemetryObserver`, which records orchestrix's spans
// through opentelemetry-cpp's trace API. Made only where opentelemetry-cpp is installed (link
// `orchestrix::opentelemetry`; docs/operations.md says how).

#include <orchestrix/opentelemetry/tracer.hpp>
