# Compile-fail tests: each source under compile_fail/ must NOT compile with ORCHESTRIX_EXPECT_ERROR defined,
# and the compiler's output must match the regular expression on its "// expect-error:" line, its first line
# containing "error:" the one on its "// expect-first-error:" line (the user's type and what to write), and it
# must be at most 25 lines long (run_compile_fail.cmake). The same
# source must compile without the macro (the control), so a test cannot pass because of an unrelated error.
# Each runs with the build's compiler and, in a g++ build where clang++ is installed, with clang++ too (so
# that one build checks the diagnostics of both compilers).

set(orchestrix_compile_fail_compilers "${CMAKE_CXX_COMPILER}")
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  find_program(ORCHESTRIX_COMPILE_FAIL_CLANG NAMES clang++ clang++-14 clang++-15 clang++-16)
  if(ORCHESTRIX_COMPILE_FAIL_CLANG)
    list(APPEND orchestrix_compile_fail_compilers "${ORCHESTRIX_COMPILE_FAIL_CLANG}")
  endif()
endif()

file(GLOB orchestrix_compile_fail_sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/*.cpp")
foreach(source IN LISTS orchestrix_compile_fail_sources)
  get_filename_component(name "${source}" NAME_WE)
  foreach(compiler IN LISTS orchestrix_compile_fail_compilers)
    set(test_name "compile-fail: ${name}")
    if(NOT compiler STREQUAL CMAKE_CXX_COMPILER)
      get_filename_component(compiler_name "${compiler}" NAME)
      set(test_name "compile-fail (${compiler_name}): ${name}")
    endif()
    add_test(NAME "${test_name}"
      COMMAND "${CMAKE_COMMAND}"
              -DCXX=${compiler}
              -DSOURCE=${source}
              -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
              -P "${CMAKE_CURRENT_LIST_DIR}/run_compile_fail.cmake")
    set_tests_properties("${test_name}" PROPERTIES LABELS "compile-fail")
  endforeach()
endforeach()
