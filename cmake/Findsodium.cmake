# Finds libsodium (Debian/Ubuntu: libsodium-dev), which ships a pkg-config file but no CMake package, and makes
# the imported target sodium::sodium. Sets sodium_FOUND, sodium_VERSION, sodium_INCLUDE_DIR, sodium_LIBRARY.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_sodium QUIET libsodium)
endif()
find_path(sodium_INCLUDE_DIR sodium.h HINTS ${PC_sodium_INCLUDE_DIRS})
find_library(sodium_LIBRARY NAMES sodium libsodium HINTS ${PC_sodium_LIBRARY_DIRS})
set(sodium_VERSION "${PC_sodium_VERSION}")
if(NOT sodium_VERSION AND sodium_INCLUDE_DIR AND EXISTS "${sodium_INCLUDE_DIR}/sodium/version.h")
  file(STRINGS "${sodium_INCLUDE_DIR}/sodium/version.h" _sodium_version_line
       REGEX "#define SODIUM_VERSION_STRING \"[0-9.]+\"")
  if(_sodium_version_line MATCHES "\"([0-9.]+)\"")
    set(sodium_VERSION "${CMAKE_MATCH_1}")
  endif()
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(sodium REQUIRED_VARS sodium_LIBRARY sodium_INCLUDE_DIR VERSION_VAR sodium_VERSION)
if(sodium_FOUND AND NOT TARGET sodium::sodium)
  add_library(sodium::sodium UNKNOWN IMPORTED)
  set_target_properties(sodium::sodium PROPERTIES
    IMPORTED_LOCATION "${sodium_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${sodium_INCLUDE_DIR}")
endif()
mark_as_advanced(sodium_INCLUDE_DIR sodium_LIBRARY)
