# Extracts the ```cpp block between <!-- readme-program: ... --> and <!-- end readme-program --> in README.md,
# compiles it with CXX (C++20, orchestrix's warnings as errors, include/ on the path, nothing but threads
# linked), runs it and compares what it prints with the `// prints "..."` comment in the block.
file(READ "${SOURCE_DIR}/README.md" readme)
string(FIND "${readme}" "<!-- readme-program:" begin)
string(FIND "${readme}" "<!-- end readme-program -->" end)
if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
  message(FATAL_ERROR "README.md has no <!-- readme-program: ... --> ... <!-- end readme-program --> block")
endif()
math(EXPR length "${end} - ${begin}")
string(SUBSTRING "${readme}" ${begin} ${length} block)
string(FIND "${block}" "```cpp\n" fence)
string(FIND "${block}" "\n```\n" fence_end REVERSE)
if(fence EQUAL -1 OR fence_end EQUAL -1 OR fence_end LESS fence)
  message(FATAL_ERROR "the README program is not one ```cpp block:\n${block}")
endif()
math(EXPR fence "${fence} + 7")
math(EXPR length "${fence_end} - ${fence} + 1")
string(SUBSTRING "${block}" ${fence} ${length} program)

string(REGEX MATCHALL "\n" newlines "${program}")
list(LENGTH newlines lines)
if(lines GREATER_EQUAL 30)
  message(FATAL_ERROR "the README program has ${lines} lines; it is meant to stay under 30")
endif()
if(NOT program MATCHES "// prints \"([^\"]*)\"")
  message(FATAL_ERROR "the README program has no // prints \"...\" comment saying what it prints")
endif()
set(expected "${CMAKE_MATCH_1}")

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
file(WRITE "${WORK_DIR}/readme_program.cpp" "${program}")
execute_process(
  COMMAND "${CXX}" -std=c++20 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wold-style-cast
          -Werror -I "${SOURCE_DIR}/include" "${WORK_DIR}/readme_program.cpp" -pthread -o "${WORK_DIR}/readme_program"
  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the README program does not compile:\n${program}\n${out}${err}")
endif()
execute_process(COMMAND "${WORK_DIR}/readme_program" RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 60)
string(STRIP "${out}" out)
if(NOT result EQUAL 0 OR NOT out STREQUAL expected)
  message(FATAL_ERROR "the README program exited with ${result} and printed\n${out}${err}\ninstead of\n${expected}")
endif()
message(STATUS "the README program (${lines} lines) printed \"${out}\"")
