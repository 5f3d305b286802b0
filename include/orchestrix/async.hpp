#pragma once

// Umbrella header for asynchronous work: `Completion<T>` (wait, get or co_await), the asynchronous bus, the
// asynchronous in-memory store and `Timer` / `orchestrix::sleep_for` for coroutines. Kept apart from
// <orchestrix/orchestrix.hpp> because it brings in <thread>, <condition_variable> and <coroutine>, which code
// that never runs work on other threads need not compile.

#include <orchestrix/async/bus.hpp>
#include <orchestrix/async/completion.hpp>
#include <orchestrix/async/errors.hpp>
#include <orchestrix/async/event_store.hpp>
#include <orchestrix/async/executor.hpp>
#include <orchestrix/async/timer.hpp>
