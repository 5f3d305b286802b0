# 08-bank keeps its events in SQLite, in PostgreSQL when libpq is there and --postgres URL is given, and in a
# JetStream stream when libnats is there and --jetstream URL is given.
set(ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::sqlite)
if(TARGET orchestrix::postgres)
  list(APPEND ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::postgres)
  target_compile_definitions(${target} PRIVATE ORCHESTRIX_BANK_WITH_POSTGRES)
endif()
# Under CTest: a database of its own, emptied at each run.
set(ORCHESTRIX_EXAMPLE_ARGS --db "${CMAKE_CURRENT_BINARY_DIR}/08-bank-test.db" --reset)
if(TARGET orchestrix::jetstream)
  list(APPEND ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::jetstream)
  target_compile_definitions(${target} PRIVATE ORCHESTRIX_BANK_WITH_JETSTREAM)
  # On the JetStream tests' server (their CTest fixture), a stream of its own at each run.
  if(TARGET orchestrix_nats_server)
    add_test(NAME "example: 08-bank on JetStream"
             COMMAND sh -c "exec \"$0\" --jetstream \"$(cat \"$1/url\")\" --jetstream-stream bank_example_$$"
                     "$<TARGET_FILE:${target}>" "${PROJECT_BINARY_DIR}/tests/nats-server")
    set_tests_properties("example: 08-bank on JetStream" PROPERTIES LABELS "example;jetstream"
                         FIXTURES_REQUIRED orchestrix_nats)
  endif()
endif()
