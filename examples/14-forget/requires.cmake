# 14-forget needs the crypto module (libsodium) and the sqlite module.
if(NOT TARGET orchestrix::crypto)
  set(ORCHESTRIX_EXAMPLE_SKIP "the crypto module (Debian/Ubuntu: libsodium-dev)")
elseif(NOT TARGET orchestrix::sqlite)
  set(ORCHESTRIX_EXAMPLE_SKIP "the sqlite module (Debian/Ubuntu: libsqlite3-dev)")
endif()
