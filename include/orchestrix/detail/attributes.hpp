#pragma once

// Marks a function as rarely called and out of line (an error path of a hot function), so that the hot
// function stays small enough to inline.
#if defined(__GNUC__) || defined(__clang__)
#define ORCHESTRIX_COLD [[gnu::cold, gnu::noinline]]
#elif defined(_MSC_VER)
#define ORCHESTRIX_COLD __declspec(noinline)
#else
#define ORCHESTRIX_COLD
#endif
