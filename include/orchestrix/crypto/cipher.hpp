#pragma once

// The cipher of personal data: XChaCha20-Poly1305 (IETF) through libsodium, subject keys from its random
// generator, nonces, additional data binding a ciphertext to its subject and key version, and base64.

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/personal.hpp>
#include <orchestrix/crypto/errors.hpp>

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace orchestrix {

/// The size of an XChaCha20-Poly1305 nonce in bytes.
inline constexpr std::size_t personal_nonce_size = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
/// The bytes the authentication tag adds to each ciphertext.
inline constexpr std::size_t personal_tag_size = crypto_aead_xchacha20poly1305_ietf_ABYTES;

static_assert(subject_key_size == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
              "orchestrix: SubjectKey must hold an XChaCha20-Poly1305 key");

/// One nonce: never used twice with the same key for different plaintexts.
using PersonalNonce = std::array<std::uint8_t, personal_nonce_size>;

namespace detail {

/// Initialises libsodium once (thread-safe: `sodium_init` is, and a function-local static runs once).
inline void sodium_ready() {
    static const int status = ::sodium_init();
    if (status < 0) throw CryptoError("libsodium could not be initialised (sodium_init failed)");
}

/// Overwrites the key bytes (`sodium_memzero`, which the compiler does not drop).
inline void wipe(SubjectKey& key) noexcept { ::sodium_memzero(key.bytes.data(), key.bytes.size()); }

/// Wipes a key held on the stack when it goes out of scope.
class KeyWiper {
public:
    explicit KeyWiper(SubjectKey& key) noexcept : key_(&key) {}
    KeyWiper(const KeyWiper&) = delete;
    KeyWiper& operator=(const KeyWiper&) = delete;
    ~KeyWiper() { wipe(*key_); }

private:
    SubjectKey* key_;
};

/// The additional data of a sealed value: a domain tag, the key version (big-endian) and the subject, so a
/// ciphertext moved to another subject or key version does not decrypt.
[[nodiscard]] inline std::string personal_additional_data(std::string_view subject, std::uint32_t version) {
    std::string ad = "orchestrix.personal.v1";
    ad.push_back('\0');
    for (int shift = 24; shift >= 0; shift -= 8) ad.push_back(static_cast<char>((version >> shift) & 0xFFU));
    ad.append(subject);
    return ad;
}

[[nodiscard]] inline const unsigned char* bytes_of(std::string_view text) noexcept {
    return reinterpret_cast<const unsigned char*>(text.data()); // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

} // namespace detail

/// A new random key (`randombytes_buf`) as version `version` of a subject's key.
[[nodiscard]] inline SubjectKey new_subject_key(std::uint32_t version) {
    detail::sodium_ready();
    SubjectKey key;
    key.version = version;
    ::crypto_aead_xchacha20poly1305_ietf_keygen(key.bytes.data());
    return key;
}

/// A fresh random nonce.
[[nodiscard]] inline PersonalNonce random_personal_nonce() {
    detail::sodium_ready();
    PersonalNonce nonce{};
    ::randombytes_buf(nonce.data(), nonce.size());
    return nonce;
}

/// A synthetic nonce: a keyed BLAKE2b hash (under a subkey derived from `key`) of `context` (e.g. the event
/// id), the subject, the key version and the plaintext. The same inputs give the same nonce, so sealing the
/// same event again gives the same bytes (what makes a retried append recognisable); different plaintexts
/// get different nonces, so a nonce is never reused for another message. What it reveals is only that two
/// values sealed with the same context, subject and key are equal.
[[nodiscard]] inline PersonalNonce synthetic_personal_nonce(const SubjectKey& key,
                                                            std::span<const std::uint8_t> context,
                                                            std::string_view subject, std::string_view plaintext) {
    detail::sodium_ready();
    static constexpr std::string_view label = "orchestrix.personal.nonce.v1";
    std::array<std::uint8_t, crypto_generichash_KEYBYTES> subkey{};
    ::crypto_generichash(subkey.data(), subkey.size(), detail::bytes_of(label), label.size(), key.bytes.data(),
                         key.bytes.size());
    crypto_generichash_state state;
    ::crypto_generichash_init(&state, subkey.data(), subkey.size(), personal_nonce_size);
    const auto add_length = [&](std::size_t length) {
        std::array<std::uint8_t, 8> encoded{};
        for (std::size_t i = 0; i < encoded.size(); ++i) {
            encoded[i] = static_cast<std::uint8_t>((static_cast<std::uint64_t>(length) >> (8U * (7U - i))) & 0xFFU);
        }
        ::crypto_generichash_update(&state, encoded.data(), encoded.size());
    };
    add_length(context.size());
    ::crypto_generichash_update(&state, context.data(), context.size());
    const std::string ad = detail::personal_additional_data(subject, key.version);
    add_length(ad.size());
    ::crypto_generichash_update(&state, detail::bytes_of(ad), ad.size());
    ::crypto_generichash_update(&state, detail::bytes_of(plaintext), plaintext.size());
    PersonalNonce nonce{};
    ::crypto_generichash_final(&state, nonce.data(), nonce.size());
    ::sodium_memzero(subkey.data(), subkey.size());
    ::sodium_memzero(&state, sizeof state);
    return nonce;
}

/// `plaintext` encrypted and authenticated with `key` under `nonce`, bound to `subject` and the key's version
/// (additional data): the ciphertext followed by the 16-byte tag.
[[nodiscard]] inline std::string seal_personal(const SubjectKey& key, std::string_view subject,
                                               const PersonalNonce& nonce, std::string_view plaintext) {
    detail::sodium_ready();
    if (plaintext.size() > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX - personal_tag_size) {
        throw CryptoError("a personal value of " + std::to_string(plaintext.size()) + " bytes is too long to encrypt");
    }
    const std::string ad = detail::personal_additional_data(subject, key.version);
    std::string out(plaintext.size() + personal_tag_size, '\0');
    unsigned long long written = 0; // NOLINT(google-runtime-int): libsodium's type
    ::crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data()), // NOLINT
                                                 &written, detail::bytes_of(plaintext), plaintext.size(),
                                                 detail::bytes_of(ad), ad.size(), nullptr, nonce.data(),
                                                 key.bytes.data());
    out.resize(static_cast<std::size_t>(written));
    return out;
}

/// The plaintext of `ciphertext` (as `seal_personal` made it), or nothing if it does not authenticate: a
/// wrong key, subject, key version or nonce, or an altered ciphertext.
[[nodiscard]] inline std::optional<std::string> open_personal(const SubjectKey& key, std::string_view subject,
                                                              const PersonalNonce& nonce, std::string_view ciphertext) {
    detail::sodium_ready();
    if (ciphertext.size() < personal_tag_size) return std::nullopt;
    const std::string ad = detail::personal_additional_data(subject, key.version);
    std::string out(ciphertext.size() - personal_tag_size, '\0');
    unsigned long long written = 0; // NOLINT(google-runtime-int): libsodium's type
    const int status = ::crypto_aead_xchacha20poly1305_ietf_decrypt(
        reinterpret_cast<unsigned char*>(out.data()), // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
        &written, nullptr, detail::bytes_of(ciphertext), ciphertext.size(), detail::bytes_of(ad), ad.size(),
        nonce.data(), key.bytes.data());
    if (status != 0) return std::nullopt;
    out.resize(static_cast<std::size_t>(written));
    return out;
}

/// `bytes` in standard base64 (RFC 4648, with padding).
[[nodiscard]] inline std::string to_base64(std::string_view bytes) {
    detail::sodium_ready();
    constexpr int variant = sodium_base64_VARIANT_ORIGINAL;
    std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
    ::sodium_bin2base64(out.data(), out.size(), detail::bytes_of(bytes), bytes.size(), variant);
    out.resize(out.size() - 1); // the terminating NUL
    return out;
}

/// The bytes of standard base64 `text` (canonical, with padding, no whitespace), or nothing if it is not that.
[[nodiscard]] inline std::optional<std::string> from_base64(std::string_view text) {
    detail::sodium_ready();
    std::string out(text.size() / 4 * 3 + 3, '\0');
    std::size_t written = 0;
    const char* end = nullptr;
    if (::sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), // NOLINT
                            out.size(), text.data(), text.size(), nullptr, &written, &end,
                            sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != text.data() + text.size()) {
        return std::nullopt;
    }
    out.resize(written);
    if (to_base64(out) != text) return std::nullopt; // not the canonical encoding (stray bits, missing padding)
    return out;
}

} // namespace orchestrix
