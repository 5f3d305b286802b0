# 15-asio-server serves on one Asio thread and keeps its events in SQLite, or in PostgreSQL when libpq is there
# and --postgres URL is given.
set(ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::asio orchestrix::sqlite)
# Under CTest: 1,000 clients at once, each appending to its own stream, in a file of its own.
set(ORCHESTRIX_EXAMPLE_ARGS --self-test 1000 --db "${CMAKE_CURRENT_BINARY_DIR}/15-asio-server-test.db")
if(TARGET orchestrix::postgres)
  list(APPEND ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::postgres)
  target_compile_definitions(${target} PRIVATE ORCHESTRIX_ASIO_SERVER_WITH_POSTGRES)
  # The same on the PostgreSQL tests' cluster (their CTest fixture), on accounts named after the process.
  if(TARGET orchestrix_postgres_cluster)
    add_test(NAME "example: 15-asio-server on PostgreSQL"
             COMMAND sh -c "exec \"$0\" --self-test 1000 --postgres \"$(cat \"$1/url\")\""
                     "$<TARGET_FILE:${target}>" "${PROJECT_BINARY_DIR}/tests/postgres-cluster")
    set_tests_properties("example: 15-asio-server on PostgreSQL" PROPERTIES LABELS "example;postgres"
                         FIXTURES_REQUIRED orchestrix_postgres)
  endif()
endif()
