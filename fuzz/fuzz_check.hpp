#pragma once

// What the fuzz targets share: a check that aborts (libFuzzer then saves the input as a crash).

#include <cstdio>
#include <cstdlib>

namespace orchestrix_fuzz {

/// Aborts with `what` when `condition` is false: a property the target checks does not hold.
inline void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz property violated: %s\n", what);
        std::abort();
    }
}

} // namespace orchestrix_fuzz
