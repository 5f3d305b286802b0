cmake_minimum_required(VERSION 3.21)
# Fails if preprocessing <orchestrix/orchestrix.hpp> reaches a header it is meant to stay clear of: the
# costliest standard headers (<thread>, <regex>, <ranges>, <sstream>, <future>) and the libraries
# nlohmann_json and fmt. What users pay to include the core is part of the library's performance.
# Arguments: CXX (the compiler), INCLUDE_DIR, WORK_DIR.
file(WRITE "${WORK_DIR}/umbrella_light.cpp" "#include <orchestrix/orchestrix.hpp>\n")
execute_process(
  COMMAND "${CXX}" -std=c++20 -E -I "${INCLUDE_DIR}" "${WORK_DIR}/umbrella_light.cpp"
  OUTPUT_VARIABLE preprocessed
  ERROR_VARIABLE errors
  RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "preprocessing orchestrix.hpp failed:\n${errors}")
endif()
set(heavy "")
foreach(name thread regex ranges sstream future)
  if(preprocessed MATCHES "# [0-9]+ \"[^\"]*/${name}\"")
    list(APPEND heavy "<${name}>")
  endif()
endforeach()
if(preprocessed MATCHES "# [0-9]+ \"[^\"]*/nlohmann/")
  list(APPEND heavy "nlohmann_json")
endif()
if(preprocessed MATCHES "# [0-9]+ \"[^\"]*/fmt/")
  list(APPEND heavy "fmt")
endif()
if(heavy)
  message(FATAL_ERROR "orchestrix.hpp pulls in ${heavy}: move that code behind its own header "
                      "(see the list in orchestrix.hpp)")
endif()
message(STATUS "orchestrix.hpp reaches none of the heavy headers")
