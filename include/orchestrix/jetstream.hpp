#pragma once

// orchestrix::jetstream: an event store on a NATS JetStream stream (libnats; CMake target
// orchestrix::jetstream, made when libnats is found).

#include <orchestrix/jetstream/batch.hpp>
#include <orchestrix/jetstream/connection.hpp>
#include <orchestrix/jetstream/errors.hpp>
#include <orchestrix/jetstream/event_store.hpp>
#include <orchestrix/jetstream/subject.hpp>
