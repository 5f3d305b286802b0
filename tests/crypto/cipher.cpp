#include <orchestrix/crypto/cipher.hpp>

#include "support/catch.hpp"

#include <array>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using orchestrix::PersonalNonce;
using orchestrix::SubjectKey;

std::span<const std::uint8_t> bytes(const std::string& text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}; // NOLINT
}

} // namespace

static_assert(std::is_base_of_v<orchestrix::Error, orchestrix::CryptoError>);

TEST_CASE("cipher: a sealed value opens with its key, subject, key version and nonce only") {
    const SubjectKey key = orchestrix::new_subject_key(1);
    const PersonalNonce nonce = orchestrix::random_personal_nonce();
    const std::string plaintext = R"("Ada Lovelace")";

    const std::string sealed = orchestrix::seal_personal(key, "cust-1", nonce, plaintext);

    CHECK(sealed.size() == plaintext.size() + orchestrix::personal_tag_size);
    CHECK(sealed.find("Ada") == std::string::npos);
    CHECK(orchestrix::open_personal(key, "cust-1", nonce, sealed) == plaintext);

    CHECK_FALSE(orchestrix::open_personal(orchestrix::new_subject_key(1), "cust-1", nonce, sealed));
    CHECK_FALSE(orchestrix::open_personal(key, "cust-2", nonce, sealed));
    SubjectKey other_version = key;
    other_version.version = 2;
    CHECK_FALSE(orchestrix::open_personal(other_version, "cust-1", nonce, sealed));
    CHECK_FALSE(orchestrix::open_personal(key, "cust-1", orchestrix::random_personal_nonce(), sealed));
    for (std::size_t i = 0; i < sealed.size(); ++i) {
        std::string altered = sealed;
        altered[i] = static_cast<char>(altered[i] ^ 0x01);
        CHECK_FALSE(orchestrix::open_personal(key, "cust-1", nonce, altered));
    }
    CHECK_FALSE(orchestrix::open_personal(key, "cust-1", nonce, sealed.substr(0, sealed.size() - 1)));
    CHECK_FALSE(orchestrix::open_personal(key, "cust-1", nonce, ""));
    CHECK(orchestrix::open_personal(key, "cust-1", nonce, orchestrix::seal_personal(key, "cust-1", nonce, "")) == "");
}

TEST_CASE("cipher: keys and random nonces are fresh each time") {
    const SubjectKey a = orchestrix::new_subject_key(3);
    const SubjectKey b = orchestrix::new_subject_key(3);
    CHECK(a.version == 3);
    CHECK(a.bytes != b.bytes);
    CHECK(a.bytes != std::array<std::uint8_t, orchestrix::subject_key_size>{});

    std::set<PersonalNonce> nonces;
    for (int i = 0; i < 100; ++i) nonces.insert(orchestrix::random_personal_nonce());
    CHECK(nonces.size() == 100);
}

TEST_CASE("cipher: a synthetic nonce depends on every input and on nothing else") {
    const SubjectKey key = orchestrix::new_subject_key(1);
    const std::string context = "event-1";
    const PersonalNonce nonce = orchestrix::synthetic_personal_nonce(key, bytes(context), "cust-1", "Ada");

    CHECK(orchestrix::synthetic_personal_nonce(key, bytes(context), "cust-1", "Ada") == nonce);
    CHECK(orchestrix::synthetic_personal_nonce(key, bytes("event-2"), "cust-1", "Ada") != nonce);
    CHECK(orchestrix::synthetic_personal_nonce(key, bytes(context), "cust-2", "Ada") != nonce);
    CHECK(orchestrix::synthetic_personal_nonce(key, bytes(context), "cust-1", "Ada!") != nonce);
    CHECK(orchestrix::synthetic_personal_nonce(orchestrix::new_subject_key(1), bytes(context), "cust-1", "Ada") !=
          nonce);
    SubjectKey rotated = key;
    rotated.version = 2;
    CHECK(orchestrix::synthetic_personal_nonce(rotated, bytes(context), "cust-1", "Ada") != nonce);
    // Lengths are part of the input: moving a byte between context and subject changes the nonce.
    CHECK(orchestrix::synthetic_personal_nonce(key, bytes("event-1c"), "ust-1", "Ada") != nonce);
}

TEST_CASE("cipher: base64 is standard, padded and read strictly") {
    CHECK(orchestrix::to_base64("") == "");
    CHECK(orchestrix::to_base64("f") == "Zg==");
    CHECK(orchestrix::to_base64("fo") == "Zm8=");
    CHECK(orchestrix::to_base64("foo") == "Zm9v");
    CHECK(orchestrix::to_base64(std::string("\xfb\xff", 2)) == "+/8=");
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    CHECK(orchestrix::from_base64(orchestrix::to_base64(all)) == all);

    CHECK(orchestrix::from_base64("Zm8=") == "fo");
    CHECK_FALSE(orchestrix::from_base64("Zm8"));  // no padding
    CHECK_FALSE(orchestrix::from_base64("Zm9=")); // stray bits: not the canonical form of "fo"
    CHECK_FALSE(orchestrix::from_base64("Zm8=\n"));
    CHECK_FALSE(orchestrix::from_base64("Z m8="));
    CHECK_FALSE(orchestrix::from_base64("-_8=")); // the URL-safe alphabet
    CHECK_FALSE(orchestrix::from_base64("not base64!"));
}

TEST_CASE("cipher: many threads seal and open at once") {
    const SubjectKey key = orchestrix::new_subject_key(1);
    std::vector<std::thread> threads;
    std::array<int, 4> failures{};
    for (std::size_t t = 0; t < failures.size(); ++t) {
        threads.emplace_back([&key, &failures, t] {
            for (int i = 0; i < 200; ++i) {
                const std::string text = "value " + std::to_string(t) + "/" + std::to_string(i);
                const PersonalNonce nonce = orchestrix::random_personal_nonce();
                const std::string sealed = orchestrix::seal_personal(key, "cust-1", nonce, text);
                if (orchestrix::open_personal(key, "cust-1", nonce, sealed) != text) ++failures[t];
            }
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(failures == std::array<int, 4>{});
}
