# 09-projection keeps its events and its read model in one SQLite file.
set(ORCHESTRIX_EXAMPLE_LIBRARIES orchestrix::sqlite)
