// The heap every benchmark program runs with: glibc's defaults, unless the environment asks for the tuned heap.
//
// ORCHESTRIX_BENCH_HEAP=tuned keeps freed memory in the process instead of giving it back to the operating
// system (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 1 GiB), so that page faults from re-touching fresh pages
// (very costly on virtual machines) weigh less in the figures. Unset, empty or "default": glibc's defaults,
// the heap a user's program gets. Any other value stops the program before it runs a benchmark. tools/bench.py
// runs the in-memory benchmarks both ways and says which figure came from which heap; the JSON output's
// context names the heap of its run ("heap": "default" or "tuned").
//
// bench::settle_heap() puts the default heap in the same state before each repetition of an append workload,
// on both sides of a pair: glibc gives back to the system whatever memory is free (malloc_trim), as in a
// process that has not allocated yet. Without it a side's figure depends on what ran before it in the process
// (glibc raises its trim threshold after freeing a large block, so one side's earlier run could spare the
// other its page faults). With the tuned heap it does nothing: that heap keeps its memory.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include "workload.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {
const bool heap_configured = [] {
    const char* value = std::getenv("ORCHESTRIX_BENCH_HEAP");
    const std::string_view heap = value != nullptr ? value : "";
    if (heap.empty() || heap == "default") {
        benchmark::AddCustomContext("heap", "default");
        return false;
    }
    if (heap != "tuned") {
        std::fprintf(stderr, "ORCHESTRIX_BENCH_HEAP must be \"tuned\", \"default\" or unset, not \"%s\"\n", value);
        std::exit(2);
    }
    if (mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) != 1 || mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024) != 1) {
        std::fprintf(stderr, "ORCHESTRIX_BENCH_HEAP=tuned: mallopt refused the settings\n");
        std::exit(2);
    }
    benchmark::AddCustomContext("heap", "tuned");
    return true;
}();
} // namespace

void bench::settle_heap() {
    if (!heap_configured) (void)malloc_trim(0);
}
