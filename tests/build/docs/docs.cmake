# Checks of the documentation itself: the complete program README.md opens with is compiled and run as printed
# (CTest label docs), so that it cannot rot.
add_test(NAME "docs: the README program compiles and prints what it says"
  COMMAND "${CMAKE_COMMAND}" -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/docs
          -DCXX=${CMAKE_CXX_COMPILER} -P "${CMAKE_CURRENT_LIST_DIR}/readme_program.cmake")
set_tests_properties("docs: the README program compiles and prints what it says" PROPERTIES LABELS "docs" TIMEOUT 300)

# The API reference builds from the headers' `///` comments without a single Doxygen warning (a malformed
# comment, a broken link). It needs Doxygen (Debian/Ubuntu: doxygen); without it the test fails, naming it.
add_test(NAME "docs: the API reference builds without a warning"
  COMMAND "${CMAKE_COMMAND}" -DDOXYGEN=${DOXYGEN_EXECUTABLE} -DDOXYFILE=${PROJECT_BINARY_DIR}/docs/Doxyfile
          -DOUTPUT=${ORCHESTRIX_API_DOCS_DIR} -P "${CMAKE_CURRENT_LIST_DIR}/api_reference.cmake")
set_tests_properties("docs: the API reference builds without a warning" PROPERTIES LABELS "docs" TIMEOUT 600)

# Every ```cpp block in README.md and docs/*.md is either checked or marked: the comment above it says
# `<!-- from: <path> -->` (each of its lines appears, in order, in that compiled file), `<!-- fragment: <why> -->`
# or `<!-- readme-program: ... -->` (the test above). A block taken from code fails when that code changes.
add_test(NAME "docs: every C++ block in README.md and docs/ is checked or marked as a fragment"
  COMMAND "${CMAKE_COMMAND}" -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -P "${CMAKE_CURRENT_LIST_DIR}/code_blocks.cmake")
set_tests_properties("docs: every C++ block in README.md and docs/ is checked or marked as a fragment"
  PROPERTIES LABELS "docs" TIMEOUT 60)
