include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/orchestrix" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS orchestrix EXPORT orchestrixTargets)
# The optional store targets, and whether the installed config must find their libraries.
set(ORCHESTRIX_WITH_SQLITE OFF)
set(ORCHESTRIX_WITH_POSTGRES OFF)
if(TARGET orchestrix_sqlite)
  install(TARGETS orchestrix_sqlite EXPORT orchestrixTargets)
  set(ORCHESTRIX_WITH_SQLITE ON)
endif()
if(TARGET orchestrix_postgres)
  install(TARGETS orchestrix_postgres EXPORT orchestrixTargets)
  set(ORCHESTRIX_WITH_POSTGRES ON)
endif()

set(ORCHESTRIX_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/orchestrix"
    CACHE STRING "Where orchestrixConfig.cmake is installed")

install(EXPORT orchestrixTargets
  NAMESPACE orchestrix::
  DESTINATION "${ORCHESTRIX_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/orchestrixConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/orchestrixConfig.cmake"
  INSTALL_DESTINATION "${ORCHESTRIX_INSTALL_CMAKEDIR}")

write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/orchestrixConfigVersion.cmake"
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)

install(FILES
  "${PROJECT_BINARY_DIR}/orchestrixConfig.cmake"
  "${PROJECT_BINARY_DIR}/orchestrixConfigVersion.cmake"
  DESTINATION "${ORCHESTRIX_INSTALL_CMAKEDIR}")
