# Warnings and sanitizers for orchestrix's own targets (tests, examples, benchmarks) only: never for the
# INTERFACE library, so a consumer's build is never affected.

function(orchestrix_target_defaults target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(ORCHESTRIX_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
                                             -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
                                             -Wdouble-promotion -Wimplicit-fallthrough)
    if(ORCHESTRIX_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
  if(ORCHESTRIX_COVERAGE)
    target_compile_options(${target} PRIVATE --coverage -O0 -fno-inline)
    target_link_options(${target} PRIVATE --coverage)
  endif()
  if(ORCHESTRIX_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${ORCHESTRIX_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${ORCHESTRIX_SANITIZE})
  endif()
endfunction()
