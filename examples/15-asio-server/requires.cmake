# 15-asio-server needs the asio module (standalone Asio) and the sqlite module.
if(NOT TARGET orchestrix::asio)
  set(ORCHESTRIX_EXAMPLE_SKIP "the asio module (Debian/Ubuntu: libasio-dev)")
elseif(NOT TARGET orchestrix::sqlite)
  set(ORCHESTRIX_EXAMPLE_SKIP "the sqlite module (Debian/Ubuntu: libsqlite3-dev)")
endif()
