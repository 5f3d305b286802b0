#pragma once

// Umbrella header of the asio module: `Completion<T>` and the operations of every asynchronous event store
// as Asio asynchronous operations, completed through completion tokens (callbacks, `asio::use_awaitable`,
// `asio::use_future`, ...). Needs standalone Asio 1.22 or later (Debian/Ubuntu: libasio-dev; CMake target
// orchestrix::asio).

#include <orchestrix/asio/completion_token.hpp>
#include <orchestrix/asio/event_store.hpp>
