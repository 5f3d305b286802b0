# Compile-fail tests: each source under compile_fail/ must NOT compile with ORCHESTRIX_EXPECT_ERROR defined,
# and the compiler's output must match the regular expression on its "// expect-error:" line. The same
# source must compile without the macro (the control), so a test cannot pass because of an unrelated error.

file(GLOB orchestrix_compile_fail_sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/*.cpp")
foreach(source IN LISTS orchestrix_compile_fail_sources)
  get_filename_component(name "${source}" NAME_WE)
  add_test(NAME "compile-fail: ${name}"
    COMMAND "${CMAKE_COMMAND}"
            -DCXX=${CMAKE_CXX_COMPILER}
            -DSOURCE=${source}
            -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
            -P "${CMAKE_CURRENT_LIST_DIR}/run_compile_fail.cmake")
  set_tests_properties("compile-fail: ${name}" PROPERTIES LABELS "compile-fail")
endforeach()
