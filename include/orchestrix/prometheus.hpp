#pragma once

// Umbrella header for the Prometheus adapter: counters, gauges and histograms in a registry that writes the
// text exposition format, and `PrometheusObserver`, which turns what orchestrix components report into them.
// It needs nothing beyond the standard library; serving `/metrics` over HTTP is the application's part
// (examples/13-metrics).

#include <orchestrix/prometheus/metrics.hpp>
#include <orchestrix/prometheus/observer.hpp>
