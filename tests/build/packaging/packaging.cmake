# Packaging tests: a small consumer project is configured, built and run against orchestrix consumed with
# add_subdirectory, FetchContent (from an archive of the sources) and find_package (after cmake --install).

set(orchestrix_packaging_args
  -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
  -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/packaging
  -DCONSUMER_DIR=${CMAKE_CURRENT_LIST_DIR}/consumer
  -DCXX=${CMAKE_CXX_COMPILER}
  -DGENERATOR=${CMAKE_GENERATOR})
# Each way builds a core-only program with nlohmann_json and fmt hidden, and a program using json, sqlite and
# postgres; find_package also proves that asking for a component whose package is missing fails, naming it.
foreach(mode add_subdirectory fetchcontent find_package)
  set(profiles core full)
  if(mode STREQUAL "find_package")
    list(APPEND profiles missing)
  endif()
  foreach(profile IN LISTS profiles)
    set(name "packaging: consume with ${mode} (${profile})")
    add_test(NAME "${name}"
      COMMAND "${CMAKE_COMMAND}" ${orchestrix_packaging_args} -DMODE=${mode} -DPROFILE=${profile}
              -P "${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake")
    set_tests_properties("${name}" PROPERTIES LABELS "packaging" TIMEOUT 600)
  endforeach()
endforeach()
