file(STRINGS "${SOURCE}" expect_line REGEX "^// expect-error: ")
if(NOT expect_line)
  message(FATAL_ERROR "${SOURCE} has no '// expect-error: <regex>' line")
endif()
string(REGEX REPLACE "^// expect-error: " "" expected "${expect_line}")

set(flags -std=c++20 -fsyntax-only "-I${INCLUDE_DIR}" -x c++ "${SOURCE}")

execute_process(COMMAND "${CXX}" ${flags} RESULT_VARIABLE control_result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT control_result EQUAL 0)
  message(FATAL_ERROR "control build of ${SOURCE} (without ORCHESTRIX_EXPECT_ERROR) failed:\n${out}${err}")
endif()

execute_process(COMMAND "${CXX}" -DORCHESTRIX_EXPECT_ERROR ${flags}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
if(NOT "${out}${err}" MATCHES "${expected}")
  message(FATAL_ERROR "${SOURCE} failed to compile, but the diagnostics do not match '${expected}':\n${out}${err}")
endif()
message(STATUS "${SOURCE}: refused as expected")
