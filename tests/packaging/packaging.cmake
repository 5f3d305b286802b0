# Packaging tests: a small consumer project is configured, built and run against orchestrix consumed with
# add_subdirectory, FetchContent (from an archive of the sources) and find_package (after cmake --install).

set(orchestrix_packaging_args
  -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
  -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/packaging
  -DCONSUMER_DIR=${CMAKE_CURRENT_LIST_DIR}/consumer
  -DCXX=${CMAKE_CXX_COMPILER}
  -DGENERATOR=${CMAKE_GENERATOR})
foreach(mode add_subdirectory fetchcontent find_package)
  add_test(NAME "packaging: consume with ${mode}"
    COMMAND "${CMAKE_COMMAND}" ${orchestrix_packaging_args} -DMODE=${mode}
            -P "${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake")
  set_tests_properties("packaging: consume with ${mode}" PROPERTIES LABELS "packaging" TIMEOUT 600)
endforeach()
