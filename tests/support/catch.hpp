#pragma once

// The tests build with Catch2 v2 (single header, Debian bookworm) and v3 (split headers).
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
