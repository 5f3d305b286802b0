# 08-bank keeps its events in SQLite, and in PostgreSQL when libpq is there and --postgres URL is given.
set(ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::sqlite)
if(TARGET orchestrix::postgres)
  list(APPEND ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::postgres)
  target_compile_definitions(${target} PRIVATE ORCHESTRIX_BANK_WITH_POSTGRES)
endif()
# Under CTest: a database of its own, emptied at each run.
set(ORCHESTRIX_EXAMPLE_ARGS --db "${CMAKE_CURRENT_BINARY_DIR}/08-bank-test.db" --reset)
