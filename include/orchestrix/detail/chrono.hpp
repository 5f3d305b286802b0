#pragma once

// Clocks, durations and time points. With libstdc++ this includes only the part of <chrono> that defines
// them: the whole of <chrono> also parses the calendar, time zones and stream output (with <sstream>),
// which would add about a sixth of a second to every translation unit that includes orchestrix.hpp.
// Code that needs more of <chrono> includes it itself.
#if defined(__GLIBCXX__) && __has_include(<bits/chrono.h>)
#include <bits/chrono.h>
#else
#include <chrono>
#endif
