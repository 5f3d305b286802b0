#pragma once

// Umbrella header of the format module: fmt formatters for orchestrix's types (needs fmt; CMake target
// orchestrix::format).

#include <orchestrix/format/formatters.hpp>
