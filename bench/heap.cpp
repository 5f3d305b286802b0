// Both sides of every benchmark run in this process with the same heap settings: freed memory stays in the
// process instead of going back to the operating system between iterations, so that page faults from
// re-touching fresh pages (very costly on virtual machines) do not swamp the work being measured.
#include <malloc.h>

namespace {
const bool heap_configured = [] {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    return true;
}();
} // namespace
