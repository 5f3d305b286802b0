# Finds standalone Asio, the header-only library (Debian/Ubuntu: libasio-dev), which ships no CMake package, and
# makes the INTERFACE imported target asio::asio: its include directory and Threads (Asio runs its reactor and
# its thread pools on threads). Sets asio_FOUND, asio_VERSION, asio_INCLUDE_DIR.
find_path(asio_INCLUDE_DIR asio.hpp PATH_SUFFIXES asio/include)
set(asio_VERSION "")
if(asio_INCLUDE_DIR AND EXISTS "${asio_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line REGEX "#define ASIO_VERSION [0-9]+")
  if(_asio_version_line MATCHES "#define ASIO_VERSION ([0-9]+)")
    math(EXPR _asio_major "${CMAKE_MATCH_1} / 100000")
    math(EXPR _asio_minor "${CMAKE_MATCH_1} / 100 % 1000")
    math(EXPR _asio_patch "${CMAKE_MATCH_1} % 100")
    set(asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
  endif()
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(asio REQUIRED_VARS asio_INCLUDE_DIR VERSION_VAR asio_VERSION)
if(asio_FOUND AND NOT TARGET asio::asio)
  if(NOT TARGET Threads::Threads)
    find_package(Threads QUIET)
  endif()
  add_library(asio::asio INTERFACE IMPORTED)
  # Asio 1.22 looks for clang's coroutines where only the Coroutines TS had them (<experimental/coroutine>,
  # __cpp_coroutines), so with clang++ in C++20 it leaves out asio::awaitable and asio::use_awaitable: they are
  # asked for here, for every file that uses the target alike.
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${asio_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "$<$<CXX_COMPILER_ID:Clang,AppleClang>:ASIO_HAS_CO_AWAIT=1>"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
mark_as_advanced(asio_INCLUDE_DIR)
