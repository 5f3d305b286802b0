#pragma once

// Umbrella header of the compression module (needs zstd and nlohmann_json; CMake target orchestrix::compression).
//
// `CompressingCodec<Events>` is a durable store's codec that stores payloads of at least a threshold (1 KiB by
// default) as one zstd frame, `{"$zstd":"<base64>"}`, and reads compressed and plain payloads alike:
//
//     orchestrix::SqliteEventStore<AccountEvent, orchestrix::CompressingCodec<AccountEvent>> store(
//         "events.db", {}, orchestrix::CompressingCodec<AccountEvent>({.threshold = 512, .level = 3}));
//
// `compress_payload` / `decompress_payload` / `is_compressed_payload` work on the stored texts without event
// types (what the inspector uses). See docs/lifecycle.md, "Compression".

#include <orchestrix/json.hpp>

#include <orchestrix/compression/codec.hpp>
#include <orchestrix/compression/payload.hpp>
