# Every public header compiles on its own: one generated translation unit per header, all linked into one
# program together with two translation units that include every header, so a definition that breaks the
# one-definition rule fails the link. A header is checked when its module was made (its packages found).

include("${PROJECT_SOURCE_DIR}/cmake/OrchestrixLayering.cmake")

file(GLOB_RECURSE orchestrix_public_headers RELATIVE "${PROJECT_SOURCE_DIR}/include"
  CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/orchestrix/*.hpp")

set(orchestrix_checked_headers "")
foreach(header IN LISTS orchestrix_public_headers)
  orchestrix_header_module("${header}" module)
  orchestrix_module_closure_of("${module}" closure)
  set(made TRUE)
  foreach(m IN LISTS closure)
    if(NOT m STREQUAL "detail" AND NOT TARGET orchestrix::${m})
      set(made FALSE)
    endif()
  endforeach()
  if(made)
    list(APPEND orchestrix_checked_headers "${header}")
  endif()
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
orchestrix_target_defaults(orchestrix_header_check)
add_test(NAME "headers: each compiles alone and all link together" COMMAND orchestrix_header_check)

# Layering: every #include of every header stays inside what its module may use (cmake/OrchestrixModules.cmake),
# and each umbrella header includes every header of its module.
add_test(NAME "headers: each module includes only the modules and packages it may use"
  COMMAND "${CMAKE_COMMAND}" -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
          -P "${PROJECT_SOURCE_DIR}/cmake/OrchestrixLayering.cmake")
# The check itself is checked: a planted include of json/ in core/ must make it fail, naming both.
add_test(NAME "headers: the layering check fails on a planted violation"
  COMMAND "${CMAKE_COMMAND}" -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include -DPLANT_DIR=${CMAKE_CURRENT_BINARY_DIR}/planted
          -P "${PROJECT_SOURCE_DIR}/cmake/OrchestrixLayering.cmake")
set_tests_properties("headers: each module includes only the modules and packages it may use"
                     "headers: the layering check fails on a planted violation" PROPERTIES LABELS "layering")

# orchestrix.hpp stays clear of <thread>, <regex>, <ranges>, <sstream>, nlohmann_json and fmt.
add_test(NAME "headers: orchestrix.hpp stays clear of the heavy headers"
  COMMAND "${CMAKE_COMMAND}" -DCXX=${CMAKE_CXX_COMPILER} -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
          -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}
          -P "${PROJECT_SOURCE_DIR}/tests/support/check_umbrella_light.cmake")
