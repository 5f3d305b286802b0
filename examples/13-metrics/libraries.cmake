# 13-metrics serves /metrics with cpp-httplib (found by httplib.cmake; without it the example is not built).
set(ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::prometheus orchestrix::projection orchestrix_httplib)
