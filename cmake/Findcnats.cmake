# Finds the NATS C client, libnats (Debian/Ubuntu: libnats-dev), and makes the imported target cnats::nats, the
# name its own CMake package gives it. The package's config file is not used: Debian's references a static
# library the package does not ship, which stops any configure that loads it. Sets cnats_FOUND, cnats_VERSION,
# cnats_INCLUDE_DIR, cnats_LIBRARY.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_cnats QUIET libnats)
endif()
find_path(cnats_INCLUDE_DIR nats/nats.h HINTS ${PC_cnats_INCLUDE_DIRS})
find_library(cnats_LIBRARY NAMES nats libnats HINTS ${PC_cnats_LIBRARY_DIRS})
set(cnats_VERSION "${PC_cnats_VERSION}")
if(NOT cnats_VERSION AND cnats_INCLUDE_DIR AND EXISTS "${cnats_INCLUDE_DIR}/nats/version.h")
  file(STRINGS "${cnats_INCLUDE_DIR}/nats/version.h" _cnats_version_line REGEX "#define NATS_VERSION_STRING")
  if(_cnats_version_line MATCHES "\"([0-9.]+)")
    set(cnats_VERSION "${CMAKE_MATCH_1}")
  endif()
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(cnats REQUIRED_VARS cnats_LIBRARY cnats_INCLUDE_DIR VERSION_VAR cnats_VERSION)
if(cnats_FOUND AND NOT TARGET cnats::nats)
  add_library(cnats::nats UNKNOWN IMPORTED)
  set_target_properties(cnats::nats PROPERTIES
    IMPORTED_LOCATION "${cnats_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${cnats_INCLUDE_DIR}")
endif()
mark_as_advanced(cnats_INCLUDE_DIR cnats_LIBRARY)
