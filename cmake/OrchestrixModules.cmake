# The module table: the one place that says which modules orchestrix has, which modules each may use and
# which packages each needs. A module is a folder include/orchestrix/<name>/ (with its umbrella header
# include/orchestrix/<name>.hpp where it has one), a CMake target orchestrix::<name>, and a test program
# tests/<name>/. The root CMakeLists.txt makes the targets from it, OrchestrixInstall.cmake the installed
# components, and cmake/OrchestrixLayering.cmake checks every #include line against it.
#
#   module       may use (its own folder, detail/ and these modules, with what they may use)   packages
set(ORCHESTRIX_MODULES core validation memory async projection json format testing durable sqlite postgres
    prometheus opentelemetry crypto compression jetstream asio)

set(ORCHESTRIX_MODULE_core_DEPENDS "")
set(ORCHESTRIX_MODULE_validation_DEPENDS core)
set(ORCHESTRIX_MODULE_memory_DEPENDS core)
set(ORCHESTRIX_MODULE_async_DEPENDS core memory)
set(ORCHESTRIX_MODULE_projection_DEPENDS core memory)
set(ORCHESTRIX_MODULE_json_DEPENDS core)
set(ORCHESTRIX_MODULE_format_DEPENDS core)
set(ORCHESTRIX_MODULE_testing_DEPENDS core)
set(ORCHESTRIX_MODULE_durable_DEPENDS core json)
set(ORCHESTRIX_MODULE_sqlite_DEPENDS durable projection async)
set(ORCHESTRIX_MODULE_postgres_DEPENDS durable projection async)
set(ORCHESTRIX_MODULE_prometheus_DEPENDS core)
set(ORCHESTRIX_MODULE_opentelemetry_DEPENDS core)
set(ORCHESTRIX_MODULE_crypto_DEPENDS core json)
set(ORCHESTRIX_MODULE_compression_DEPENDS core json)
set(ORCHESTRIX_MODULE_jetstream_DEPENDS durable projection)
set(ORCHESTRIX_MODULE_asio_DEPENDS core async)

# Modules that ORCHESTRIX_REQUIRED_MODULES=all leaves out: their package is in no Debian or Ubuntu release (it is
# built from source), so `all` would fail on every machine that has not built it. Name them to require them.
set(ORCHESTRIX_OPT_IN_MODULES opentelemetry)

# The packages a module needs directly: find_package names, the targets they provide, and where to get them.
set(ORCHESTRIX_MODULE_core_PACKAGES Threads)
set(ORCHESTRIX_MODULE_json_PACKAGES nlohmann_json)
set(ORCHESTRIX_MODULE_format_PACKAGES fmt)
set(ORCHESTRIX_MODULE_testing_PACKAGES fmt nlohmann_json)
set(ORCHESTRIX_MODULE_sqlite_PACKAGES SQLite3)
set(ORCHESTRIX_MODULE_postgres_PACKAGES PostgreSQL)
set(ORCHESTRIX_MODULE_opentelemetry_PACKAGES opentelemetry-cpp)
set(ORCHESTRIX_MODULE_crypto_PACKAGES sodium)
set(ORCHESTRIX_MODULE_compression_PACKAGES zstd)
set(ORCHESTRIX_MODULE_jetstream_PACKAGES cnats)
set(ORCHESTRIX_MODULE_asio_PACKAGES asio)

set(ORCHESTRIX_PACKAGE_Threads_TARGET Threads::Threads)
set(ORCHESTRIX_PACKAGE_nlohmann_json_TARGET nlohmann_json::nlohmann_json)
set(ORCHESTRIX_PACKAGE_nlohmann_json_VERSION 3.10)
set(ORCHESTRIX_PACKAGE_nlohmann_json_PROVIDER "Debian/Ubuntu: nlohmann-json3-dev; vcpkg: nlohmann-json")
set(ORCHESTRIX_PACKAGE_fmt_TARGET fmt::fmt)
set(ORCHESTRIX_PACKAGE_fmt_VERSION 9)
set(ORCHESTRIX_PACKAGE_fmt_PROVIDER "Debian/Ubuntu: libfmt-dev; vcpkg: fmt")
set(ORCHESTRIX_PACKAGE_SQLite3_TARGET SQLite::SQLite3)
set(ORCHESTRIX_PACKAGE_SQLite3_PROVIDER "Debian/Ubuntu: libsqlite3-dev; vcpkg: sqlite3")
set(ORCHESTRIX_PACKAGE_PostgreSQL_TARGET PostgreSQL::PostgreSQL)
set(ORCHESTRIX_PACKAGE_PostgreSQL_PROVIDER "Debian/Ubuntu: libpq-dev; vcpkg: libpq")
set(ORCHESTRIX_PACKAGE_sodium_TARGET sodium::sodium)
set(ORCHESTRIX_PACKAGE_sodium_PROVIDER "Debian/Ubuntu: libsodium-dev; vcpkg: libsodium")
set(ORCHESTRIX_PACKAGE_zstd_TARGET zstd::libzstd_shared)
set(ORCHESTRIX_PACKAGE_zstd_PROVIDER "Debian/Ubuntu: libzstd-dev; vcpkg: zstd")
set(ORCHESTRIX_PACKAGE_cnats_TARGET cnats::nats)
set(ORCHESTRIX_PACKAGE_cnats_PROVIDER "Debian/Ubuntu: libnats-dev; vcpkg: cnats")
set(ORCHESTRIX_PACKAGE_asio_TARGET asio::asio)
set(ORCHESTRIX_PACKAGE_asio_VERSION 1.22)
set(ORCHESTRIX_PACKAGE_asio_PROVIDER "Debian/Ubuntu: libasio-dev; vcpkg: asio")
set(ORCHESTRIX_PACKAGE_opentelemetry-cpp_TARGET opentelemetry-cpp::api)
set(ORCHESTRIX_PACKAGE_opentelemetry-cpp_PROVIDER
    "not in Debian/Ubuntu: build it from source as docs/operations.md shows, or vcpkg: opentelemetry-cpp")

# orchestrix_module_closure(<module> <out-var>): the module and every module it may use, directly or not.
function(orchestrix_module_closure module out)
  set(result ${module})
  set(queue ${ORCHESTRIX_MODULE_${module}_DEPENDS})
  while(queue)
    list(POP_FRONT queue next)
    if(NOT next IN_LIST result)
      list(APPEND result ${next})
      list(APPEND queue ${ORCHESTRIX_MODULE_${next}_DEPENDS})
    endif()
  endwhile()
  set(${out} ${result} PARENT_SCOPE)
endfunction()
