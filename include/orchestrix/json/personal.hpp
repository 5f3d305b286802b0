#pragma once

// The JSON conversion of `Personal<T>`: it never writes plaintext, it hands the value to the sealer a codec
// (the crypto module's `ShreddingCodec`) installs for the duration of one serialize or deserialize call.

#include <orchestrix/core/personal.hpp>
#include <orchestrix/json/errors.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace orchestrix {

/// The one key of the JSON object a personal value is stored as. The stored shape (written by the crypto
/// module's `ShreddingCodec`, docs/lifecycle.md):
///
///     {"$personal": {"subject": "customer-42", "key": 1, "nonce": "<base64, 24 bytes>",
///                    "data": "<base64 ciphertext and tag>"}}
///
/// `subject` is the data subject (in clear: it names the key), `key` the version of the subject's key,
/// `nonce` the XChaCha20-Poly1305 nonce and `data` the encrypted JSON text of the value.
inline constexpr std::string_view personal_json_key = "$personal";

namespace detail {

/// A personal value as the sealer hands it back: the subject and the value's JSON (nothing: erased).
struct OpenedPersonal {
    std::string subject{};
    std::optional<nlohmann::json> value{};
};

/// What `Personal<T>`'s JSON conversion calls to seal and open values: a codec implements it and installs
/// it (`PersonalSealerScope`) around the conversion of one event. The conversion itself knows no keys.
class PersonalSealer {
public:
    PersonalSealer() = default;
    PersonalSealer(const PersonalSealer&) = delete;
    PersonalSealer& operator=(const PersonalSealer&) = delete;
    virtual ~PersonalSealer() = default;

    /// The JSON to write for the value of `subject` (non-empty), whose JSON is `value` (nullptr: the value
    /// was erased).
    virtual nlohmann::json seal(std::string_view subject, const nlohmann::json* value) = 0;

    /// The subject and value of `stored` (the JSON `seal` wrote); the value is empty when it was erased (the
    /// subject's key is gone). Throws `DecodeError` for JSON that is not a sealed value, or one that does not
    /// decrypt.
    virtual OpenedPersonal open(const nlohmann::json& stored) = 0;
};

/// The sealer installed on this thread (nullptr: none).
[[nodiscard]] inline PersonalSealer*& current_personal_sealer() noexcept {
    thread_local PersonalSealer* sealer = nullptr;
    return sealer;
}

/// Installs a sealer on this thread for its lifetime, restoring the one installed before.
class PersonalSealerScope {
public:
    explicit PersonalSealerScope(PersonalSealer& sealer) noexcept : previous_(current_personal_sealer()) {
        current_personal_sealer() = &sealer;
    }
    PersonalSealerScope(const PersonalSealerScope&) = delete;
    PersonalSealerScope& operator=(const PersonalSealerScope&) = delete;
    ~PersonalSealerScope() { current_personal_sealer() = previous_; }

private:
    PersonalSealer* previous_;
};

} // namespace detail

} // namespace orchestrix

/// @cond
/// `Personal<T>` converts only inside a codec that seals personal data (`ShreddingCodec`): anywhere else,
/// writing one throws `EncodeError` and reading one throws `DecodeError`, so personal data is never
/// written as plaintext by accident. A value with an empty subject is refused (`EncodeError`).
template <class T>
struct nlohmann::adl_serializer<orchestrix::Personal<T>> {
    static void to_json(nlohmann::json& j, const orchestrix::Personal<T>& personal) {
        orchestrix::detail::PersonalSealer* sealer = orchestrix::detail::current_personal_sealer();
        if (sealer == nullptr) {
            throw orchestrix::EncodeError("Personal", {},
                                          "the personal data of subject '" + personal.subject() +
                                              "' can only be written through a ShreddingCodec (the crypto "
                                              "module), which encrypts it; it is never written as plaintext");
        }
        if (personal.subject().empty()) {
            throw orchestrix::EncodeError("Personal", {},
                                          "a Personal value has an empty subject: give it the pseudonymous id of "
                                          "the person whose key encrypts it, Personal{subject, value}");
        }
        if (personal.is_erased()) {
            j = sealer->seal(personal.subject(), nullptr);
        } else {
            const nlohmann::json value = personal.value();
            j = sealer->seal(personal.subject(), &value);
        }
    }

    static void from_json(const nlohmann::json& j, orchestrix::Personal<T>& personal) {
        orchestrix::detail::PersonalSealer* sealer = orchestrix::detail::current_personal_sealer();
        if (sealer == nullptr) {
            throw orchestrix::DecodeError(orchestrix::DecodeError::Kind::invalid_value, {}, {},
                                          "personal data can only be read through a ShreddingCodec (the crypto "
                                          "module), which decrypts it");
        }
        orchestrix::detail::OpenedPersonal opened = sealer->open(j);
        if (!opened.value) {
            personal = orchestrix::Personal<T>::erased(std::move(opened.subject));
            return;
        }
        personal = orchestrix::Personal<T>(std::move(opened.subject), opened.value->template get<T>());
    }
};
/// @endcond
