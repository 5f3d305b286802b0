// The one file that compiles the store that user_file.cpp declares `extern` when
// ORCHESTRIX_COMPILE_TIME_SEPARATE is defined (docs/stores.md, "Compiling a store once"): user_file.cpp without
// its main(), with the explicit instantiations.

#define ORCHESTRIX_COMPILE_TIME_INSTANCE
#include "user_file.cpp"
