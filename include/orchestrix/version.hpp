#pragma once

// The one place that states the library version; CMakeLists.txt reads it from here.
#define ORCHESTRIX_VERSION_MAJOR 0
#define ORCHESTRIX_VERSION_MINOR 1
#define ORCHESTRIX_VERSION_PATCH 0

#define ORCHESTRIX_VERSION                                                                                             \
    (ORCHESTRIX_VERSION_MAJOR * 10000 + ORCHESTRIX_VERSION_MINOR * 100 + ORCHESTRIX_VERSION_PATCH)

namespace orchestrix {

struct version_info {
    int major;
    int minor;
    int patch;
};

inline constexpr version_info library_version{ORCHESTRIX_VERSION_MAJOR, ORCHESTRIX_VERSION_MINOR,
                                              ORCHESTRIX_VERSION_PATCH};

} // namespace orchestrix
