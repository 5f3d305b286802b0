# Finds the packages of orchestrix's modules (the table is in OrchestrixModules.cmake): installed packages
# first (find_package), targets a parent project already made, and FetchContent for nlohmann_json and fmt
# only when ORCHESTRIX_FETCH_DEPENDENCIES is ON (the default for a top-level build). A module whose package
# is missing is not made; a STATUS line names the package that provides it, and FATAL_ERROR when the module
# is listed in ORCHESTRIX_REQUIRED_MODULES.

include(FetchContent)

find_package(Threads REQUIRED)

# orchestrix_find_package(<name>): sets ORCHESTRIX_PACKAGE_<name>_FOUND.
function(orchestrix_find_package name)
  set(target ${ORCHESTRIX_PACKAGE_${name}_TARGET})
  if(NOT TARGET ${target})
    find_package(${name} ${ORCHESTRIX_PACKAGE_${name}_VERSION} QUIET)
  endif()
  if(NOT TARGET ${target} AND ORCHESTRIX_FETCH_DEPENDENCIES AND name STREQUAL "nlohmann_json")
    message(STATUS "orchestrix: nlohmann_json not installed; fetching it")
    set(JSON_Install ON CACHE BOOL "" FORCE)
    FetchContent_Declare(nlohmann_json
      GIT_REPOSITORY https://github.com/nlohmann/json.git
      GIT_TAG v3.11.3
      GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(nlohmann_json)
  elseif(NOT TARGET ${target} AND ORCHESTRIX_FETCH_DEPENDENCIES AND name STREQUAL "fmt")
    message(STATUS "orchestrix: fmt not installed; fetching it")
    set(FMT_INSTALL ON CACHE BOOL "" FORCE)
    FetchContent_Declare(fmt
      GIT_REPOSITORY https://github.com/fmtlib/fmt.git
      GIT_TAG 10.2.1
      GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(fmt)
  endif()
  if(TARGET ${target})
    set(ORCHESTRIX_PACKAGE_${name}_FOUND TRUE PARENT_SCOPE)
  else()
    set(ORCHESTRIX_PACKAGE_${name}_FOUND FALSE PARENT_SCOPE)
  endif()
endfunction()

set(_orchestrix_packages "")
foreach(module IN LISTS ORCHESTRIX_MODULES)
  list(APPEND _orchestrix_packages ${ORCHESTRIX_MODULE_${module}_PACKAGES})
endforeach()
list(REMOVE_DUPLICATES _orchestrix_packages)
foreach(package IN LISTS _orchestrix_packages)
  orchestrix_find_package(${package})
endforeach()

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
