include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/orchestrix" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

set(ORCHESTRIX_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/orchestrix"
    CACHE STRING "Where orchestrixConfig.cmake is installed")

# One export set per module, so that the installed config loads a component only when its packages are found.
foreach(module IN LISTS ORCHESTRIX_AVAILABLE_MODULES)
  install(TARGETS orchestrix_${module} EXPORT orchestrix_${module}_targets)
  install(EXPORT orchestrix_${module}_targets
    NAMESPACE orchestrix::
    FILE orchestrix-${module}-targets.cmake
    DESTINATION "${ORCHESTRIX_INSTALL_CMAKEDIR}")
endforeach()

# The module table, as the installed config reads it.
set(ORCHESTRIX_CONFIG_MODULE_TABLE "set(orchestrix_modules ${ORCHESTRIX_AVAILABLE_MODULES})\n")
foreach(module IN LISTS ORCHESTRIX_MODULES)
  string(APPEND ORCHESTRIX_CONFIG_MODULE_TABLE
    "set(orchestrix_${module}_depends ${ORCHESTRIX_MODULE_${module}_DEPENDS})\n"
    "set(orchestrix_${module}_packages ${ORCHESTRIX_MODULE_${module}_PACKAGES})\n")
endforeach()
set(_orchestrix_packages "")
foreach(module IN LISTS ORCHESTRIX_MODULES)
  list(APPEND _orchestrix_packages ${ORCHESTRIX_MODULE_${module}_PACKAGES})
endforeach()
list(REMOVE_DUPLICATES _orchestrix_packages)
foreach(package IN LISTS _orchestrix_packages)
  string(APPEND ORCHESTRIX_CONFIG_MODULE_TABLE
    "set(orchestrix_package_${package}_version \"${ORCHESTRIX_PACKAGE_${package}_VERSION}\")\n"
    "set(orchestrix_package_${package}_target \"${ORCHESTRIX_PACKAGE_${package}_TARGET}\")\n"
    "set(orchestrix_package_${package}_provider \"${ORCHESTRIX_PACKAGE_${package}_PROVIDER}\")\n")
endforeach()

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
  "${PROJECT_SOURCE_DIR}/cmake/Findsodium.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/Findcnats.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/Findasio.cmake"
  DESTINATION "${ORCHESTRIX_INSTALL_CMAKEDIR}")
