#pragma once

// Umbrella header of the testing module: the given/when/then `AggregateFixture` (needs fmt and
// nlohmann_json; CMake target orchestrix::testing).

#include <orchestrix/testing/aggregate_fixture.hpp>
