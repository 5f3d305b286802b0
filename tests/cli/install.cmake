# `cmake --install --component orchestrix_cli` puts the inspector in bin/ of the prefix, and it runs there.
# Run with -DBINARY_DIR=<build tree> -DPREFIX=<scratch directory> -DVERSION=<project version>.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BINARY_DIR}" --prefix "${PREFIX}" --component orchestrix_cli
                RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "cmake --install failed:\n${output}")
endif()
set(program "${PREFIX}/bin/orchestrix")
if(NOT EXISTS "${program}")
  message(FATAL_ERROR "cmake --install did not install ${program}:\n${output}")
endif()
execute_process(COMMAND "${program}" --version RESULT_VARIABLE status OUTPUT_VARIABLE version
                OUTPUT_STRIP_TRAILING_WHITESPACE)
file(REMOVE_RECURSE "${PREFIX}")
if(NOT status EQUAL 0 OR NOT version STREQUAL "${VERSION}")
  message(FATAL_ERROR "the installed orchestrix --version gave '${version}' (status ${status}), not '${VERSION}'")
endif()
