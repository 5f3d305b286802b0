# Configures, builds and runs tests/build/packaging/consumer against orchestrix consumed in MODE, with PROFILE
# (core, full, or missing: configuring must fail and name the package that provides the missing component).
set(work "${WORK_DIR}/${MODE}-${PROFILE}")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "command failed (${result}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(configure_args -S "${CONSUMER_DIR}" -B "${work}/build" -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX}"
                   -DCONSUME=${MODE} -DPROFILE=${PROFILE})

if(MODE STREQUAL "add_subdirectory")
  list(APPEND configure_args "-DORCHESTRIX_SOURCE_DIR=${SOURCE_DIR}")
elseif(MODE STREQUAL "fetchcontent")
  # An archive of the library as a release would ship it.
  set(archive "${work}/orchestrix.tar.gz")
  run("${CMAKE_COMMAND}" -E chdir "${SOURCE_DIR}" "${CMAKE_COMMAND}" -E tar czf "${archive}"
      CMakeLists.txt cmake include LICENSE)
  list(APPEND configure_args "-DORCHESTRIX_ARCHIVE=${archive}")
elseif(MODE STREQUAL "find_package")
  run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${work}/orchestrix-build" -G "${GENERATOR}"
      "-DCMAKE_CXX_COMPILER=${CXX}" -DORCHESTRIX_BUILD_TESTS=OFF -DORCHESTRIX_BUILD_EXAMPLES=OFF
      -DORCHESTRIX_INSTALL=ON "-DCMAKE_INSTALL_PREFIX=${work}/prefix")
  run("${CMAKE_COMMAND}" --install "${work}/orchestrix-build")
  foreach(installed include/orchestrix/orchestrix.hpp share/cmake/orchestrix/orchestrixConfig.cmake
                    share/cmake/orchestrix/orchestrixConfigVersion.cmake)
    if(NOT EXISTS "${work}/prefix/${installed}")
      message(FATAL_ERROR "cmake --install did not install ${installed}")
    endif()
  endforeach()
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${work}/prefix")
endif()

if(PROFILE STREQUAL "missing")
  execute_process(COMMAND "${CMAKE_COMMAND}" ${configure_args} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(result EQUAL 0)
    message(FATAL_ERROR "find_package(orchestrix COMPONENTS json) succeeded without nlohmann_json:\n${out}\n${err}")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " said "${out}${err}")
  if(NOT said MATCHES "component json needs nlohmann_json \\(Debian/Ubuntu: nlohmann-json3-dev")
    message(FATAL_ERROR "the error does not name the package that provides the json component:\n${said}")
  endif()
  message(STATUS "${MODE}: configuring failed as it must: the json component names nlohmann-json3-dev")
  return()
endif()
run("${CMAKE_COMMAND}" ${configure_args})
run("${CMAKE_COMMAND}" --build "${work}/build")
if(EXISTS "${work}/build/consumer")
  run("${work}/build/consumer")
else()
  message(FATAL_ERROR "the consumer program was not built")
endif()
message(STATUS "${MODE}: ${last_output}")
