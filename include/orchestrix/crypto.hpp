#pragma once

// Umbrella header of the crypto module: crypto-shredding of personal data (needs libsodium and nlohmann_json;
// CMake target orchestrix::crypto).
//
// Mark a field personal with `orchestrix::Personal<T>` (core/personal.hpp) and give the durable store a
// `ShreddingCodec`: each personal value is written encrypted with its subject's key (XChaCha20-Poly1305), and
// `codec.forget(subject)` destroys that key, after which every read gives the value erased
// (docs/lifecycle.md).
//
//     orchestrix::InMemoryKeyStore keys; // or SqliteKeyStore, PostgresKeyStore, an adapter to a KMS
//     using Codec = orchestrix::ShreddingCodec<AccountEvent, orchestrix::InMemoryKeyStore>;
//     orchestrix::SqliteEventStore<AccountEvent, Codec> store("events.db", {}, Codec(keys));
//     store.codec().forget("customer-42");

#include <orchestrix/json.hpp>

#include <orchestrix/crypto/cipher.hpp>
#include <orchestrix/crypto/codec.hpp>
#include <orchestrix/crypto/errors.hpp>
