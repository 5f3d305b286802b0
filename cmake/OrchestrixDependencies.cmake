# Finds orchestrix's dependencies: installed packages first (find_package), FetchContent only as a fallback
# for machines that have neither the package nor a parent project that provides the target.

include(FetchContent)
include(CMakeFindDependencyMacro)

find_package(Threads REQUIRED)

if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json 3.10 QUIET)
  if(NOT nlohmann_json_FOUND)
    message(STATUS "orchestrix: nlohmann_json not installed; fetching it")
    set(JSON_Install ON CACHE BOOL "" FORCE)
    FetchContent_Declare(nlohmann_json
      GIT_REPOSITORY https://github.com/nlohmann/json.git
      GIT_TAG v3.11.3
      GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(nlohmann_json)
  endif()
endif()

if(NOT TARGET fmt::fmt)
  find_package(fmt 9 QUIET)
  if(NOT fmt_FOUND)
    message(STATUS "orchestrix: fmt not installed; fetching it")
    set(FMT_INSTALL ON CACHE BOOL "" FORCE)
    FetchContent_Declare(fmt
      GIT_REPOSITORY https://github.com/fmtlib/fmt.git
      GIT_TAG 10.2.1
      GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(fmt)
  endif()
endif()

# Catch2 for the tests: v2 (Debian bookworm ships 2.13) or v3, whichever is installed; v3 is fetched.
macro(orchestrix_find_catch2)
  if(NOT TARGET Catch2::Catch2)
    find_package(Catch2 QUIET)
    if(NOT Catch2_FOUND)
      message(STATUS "orchestrix: Catch2 not installed; fetching v3")
      FetchContent_Declare(Catch2
        GIT_REPOSITORY https://github.com/catchorg/Catch2.git
        GIT_TAG v3.5.4
        GIT_SHALLOW TRUE)
      FetchContent_MakeAvailable(Catch2)
      list(APPEND CMAKE_MODULE_PATH "${catch2_SOURCE_DIR}/extras")
    elseif(Catch2_DIR)
      list(APPEND CMAKE_MODULE_PATH "${Catch2_DIR}")
    endif()
  endif()
  if(TARGET Catch2::Catch2WithMain)
    set(ORCHESTRIX_CATCH2_MAJOR 3)
  else()
    set(ORCHESTRIX_CATCH2_MAJOR 2)
  endif()
endmacro()
