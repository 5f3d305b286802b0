# 13-metrics needs cpp-httplib (httplib.cmake finds it) and the prometheus module.
include("${CMAKE_CURRENT_LIST_DIR}/httplib.cmake")
if(NOT TARGET orchestrix_httplib)
  set(ORCHESTRIX_EXAMPLE_SKIP "cpp-httplib (Debian/Ubuntu: libcpp-httplib-dev and pkgconf; vcpkg: cpp-httplib)")
elseif(NOT TARGET orchestrix::prometheus)
  set(ORCHESTRIX_EXAMPLE_SKIP "the prometheus module")
endif()
