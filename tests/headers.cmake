# Every public header compiles on its own: one generated translation unit per header, all linked into one
# program together with two translation units that include every header, so a definition that breaks the
# one-definition rule fails the link.

file(GLOB_RECURSE orchestrix_public_headers RELATIVE "${PROJECT_SOURCE_DIR}/include"
  CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/orchestrix/*.hpp")

# Headers that need a library beyond the core's are checked only when that library's target exists.
set(orchestrix_checked_headers "")
foreach(header IN LISTS orchestrix_public_headers)
  if(header MATCHES "sqlite" AND NOT TARGET orchestrix::sqlite)
    continue()
  endif()
  if(header MATCHES "postgres" AND NOT TARGET orchestrix::postgres)
    continue()
  endif()
  list(APPEND orchestrix_checked_headers "${header}")
endforeach()

set(orchestrix_header_sources "")
set(orchestrix_all_includes "")
foreach(header IN LISTS orchestrix_checked_headers)
  string(MAKE_C_IDENTIFIER "${header}" header_id)
  set(source "${CMAKE_CURRENT_BINARY_DIR}/headers/${header_id}.cpp")
  file(CONFIGURE OUTPUT "${source}" CONTENT "#include <${header}>\n#include <${header}> // include guard\n")
  list(APPEND orchestrix_header_sources "${source}")
  string(APPEND orchestrix_all_includes "#include <${header}>\n")
endforeach()
foreach(unit a b)
  set(source "${CMAKE_CURRENT_BINARY_DIR}/headers/odr_${unit}.cpp")
  set(body "${orchestrix_all_includes}")
  if(unit STREQUAL "a")
    string(APPEND body "int main() { return 0; }\n")
  endif()
  file(CONFIGURE OUTPUT "${source}" CONTENT "${body}")
  list(APPEND orchestrix_header_sources "${source}")
endforeach()

add_executable(orchestrix_header_check ${orchestrix_header_sources})
target_link_libraries(orchestrix_header_check PRIVATE orchestrix::orchestrix)
foreach(optional_target orchestrix::sqlite orchestrix::postgres)
  if(TARGET ${optional_target})
    target_link_libraries(orchestrix_header_check PRIVATE ${optional_target})
  endif()
endforeach()
orchestrix_target_defaults(orchestrix_header_check)
add_test(NAME "headers: each compiles alone and all link together" COMMAND orchestrix_header_check)

# The umbrella headers include every header that needs no library beyond the standard one.
add_test(NAME "headers: the umbrella headers include every dependency-free header"
  COMMAND "${CMAKE_COMMAND}" -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
          -P "${CMAKE_CURRENT_SOURCE_DIR}/support/check_umbrella.cmake")
# orchestrix.hpp stays clear of <thread>, <regex>, <ranges>, <sstream>, nlohmann_json and fmt.
add_test(NAME "headers: orchestrix.hpp stays clear of the heavy headers"
  COMMAND "${CMAKE_COMMAND}" -DCXX=${CMAKE_CXX_COMPILER} -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
          -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}
          -P "${CMAKE_CURRENT_SOURCE_DIR}/support/check_umbrella_light.cmake")
