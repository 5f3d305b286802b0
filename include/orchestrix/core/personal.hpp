#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/detail/utf8.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

/// The longest subject id (in bytes) `Personal<T>` and the key stores accept.
inline constexpr std::size_t max_subject_length = 256;

/// Personal data of one data subject (a person): a field, or a whole payload (`Personal<Details>` of a struct
/// of every personal field), marked at compile time. A store whose codec seals personal data (the `crypto`
/// module's `ShreddingCodec`) writes it encrypted with the subject's key; once the subject is forgotten
/// (`forget`), every read gives the field back erased: `is_erased()` is true, `subject()` is kept and
/// `value()` throws `ErasedDataError`. Never the ciphertext, never a crash.
///
/// The subject id is stored in clear next to the ciphertext (it names the key): use a pseudonymous id (a
/// customer number or UUID), never personal data itself.
///
///     struct AccountOpened {
///         std::string account_id;
///         orchestrix::Personal<std::string> holder_name; // Personal{customer_id, "Ada Lovelace"}
///     };
template <class T>
class Personal {
    static_assert(!std::is_reference_v<T> && !std::is_const_v<T>,
                  "orchestrix::Personal<T>: T is the stored value type: write Personal<std::string>, not a reference "
                  "or const type");

public:
    using value_type = T;

    /// An empty subject and a value-initialised `T` (what a decoder fills in). Cannot be written.
    Personal() = default;
    /// `value`, the personal data of `subject`.
    Personal(std::string subject, T value) : subject_(std::move(subject)), value_(std::move(value)) {}

    /// The field as read after `subject` was forgotten.
    [[nodiscard]] static Personal erased(std::string subject) {
        Personal p(std::move(subject), T{});
        p.value_.reset();
        return p;
    }

    /// The data subject (a pseudonymous id): whose key encrypts the value.
    [[nodiscard]] const std::string& subject() const noexcept { return subject_; }
    /// Whether the value was erased (its subject forgotten).
    [[nodiscard]] bool is_erased() const noexcept { return !value_.has_value(); }
    /// The value; throws `ErasedDataError` naming the subject if it was erased.
    [[nodiscard]] const T& value() const {
        if (!value_) throw ErasedDataError(subject_);
        return *value_;
    }
    /// The value, or `fallback` if it was erased (what a read model shows, e.g. "[erased]").
    template <class U>
    [[nodiscard]] T value_or(U&& fallback) const {
        return value_ ? *value_ : static_cast<T>(std::forward<U>(fallback));
    }
    /// The value if present (nullptr if erased).
    [[nodiscard]] const T* get() const noexcept { return value_ ? &*value_ : nullptr; }

    /// Erases the value in place, keeping the subject (what an in-memory store's `forget` does).
    void erase() noexcept { value_.reset(); }

    friend bool operator==(const Personal&, const Personal&) = default;

private:
    std::string subject_{};
    std::optional<T> value_{T{}};
};

template <class T>
Personal(std::string, T) -> Personal<T>;

/// Whether `T` is a `Personal<...>`.
template <class T>
inline constexpr bool is_personal_v = false;
template <class T>
inline constexpr bool is_personal_v<Personal<T>> = true;

/// The size of a subject key in bytes (XChaCha20-Poly1305 takes 32).
inline constexpr std::size_t subject_key_size = 32;

/// One version of a subject's key. Version 1 is the first; rotation adds the next one, older versions stay
/// readable until the subject is forgotten.
struct SubjectKey {
    std::uint32_t version = 0;
    std::array<std::uint8_t, subject_key_size> bytes{};

    friend bool operator==(const SubjectKey&, const SubjectKey&) = default;
};

/// Where subject keys live (docs/lifecycle.md): `InMemoryKeyStore`, `SqliteKeyStore`, `PostgresKeyStore`, or a
/// user's adapter to a KMS. Thread-safe. A store keeps key bytes only; the `crypto` module makes them.
///
/// - `current_key(subject)`: the subject's latest key version, or nothing (never keyed, or forgotten).
/// - `find_key(subject, version)`: that version, or nothing (unknown, or forgotten).
/// - `add_key(subject, key)`: stores `key` as version `key.version` unless that version is stored already, and
///   returns the stored one (the first writer wins a race, so every writer encrypts with the same key).
///   Throws `SubjectForgottenError` for a forgotten subject and `InvalidArgumentError` for a malformed subject
///   or a version 0.
/// - `forget(subject)`: destroys every version of the subject's key and remembers that it was forgotten;
///   returns whether a key was destroyed. Idempotent.
/// - `is_forgotten(subject)`.
template <class K>
concept key_store = requires(K& keys, std::string_view subject, std::uint32_t version, const SubjectKey& key) {
    { keys.current_key(subject) } -> std::same_as<std::optional<SubjectKey>>;
    { keys.find_key(subject, version) } -> std::same_as<std::optional<SubjectKey>>;
    { keys.add_key(subject, key) } -> std::same_as<SubjectKey>;
    { keys.forget(subject) } -> std::same_as<bool>;
    { keys.is_forgotten(subject) } -> std::same_as<bool>;
};

namespace detail {

/// Throws `InvalidArgumentError("subject")` unless `subject` is 1 to `max_subject_length` bytes of valid UTF-8
/// without NUL characters.
inline void validate_subject(std::string_view subject) {
    if (subject.empty()) throw InvalidArgumentError("subject", "subject id must not be empty");
    if (subject.size() > max_subject_length) {
        throw InvalidArgumentError("subject", "subject id is " + std::to_string(subject.size()) +
                                                  " bytes long; the limit is " + std::to_string(max_subject_length));
    }
    if (subject.find('\0') != std::string_view::npos) {
        throw InvalidArgumentError("subject", "subject id must not contain a NUL character");
    }
    if (!is_valid_utf8(subject)) throw InvalidArgumentError("subject", "subject id is not valid UTF-8");
}

/// Throws `InvalidArgumentError("key")` for key version 0.
inline void validate_key_version(const SubjectKey& key) {
    if (key.version == 0) throw InvalidArgumentError("key", "subject key versions start at 1");
}

} // namespace detail

/// Subject keys in memory: for tests, and for a process that forgets everything when it ends anyway.
/// Thread-safe (a mutex). `forget` overwrites the key bytes before releasing them.
class InMemoryKeyStore {
public:
    InMemoryKeyStore() = default;
    InMemoryKeyStore(const InMemoryKeyStore&) = delete;
    InMemoryKeyStore& operator=(const InMemoryKeyStore&) = delete;
    ~InMemoryKeyStore() {
        for (auto& [subject, versions] : keys_) wipe(versions);
    }

    [[nodiscard]] std::optional<SubjectKey> current_key(std::string_view subject) const {
        const std::lock_guard lock(mutex_);
        const auto found = keys_.find(subject);
        if (found == keys_.end() || found->second.empty()) return std::nullopt;
        return found->second.back();
    }

    [[nodiscard]] std::optional<SubjectKey> find_key(std::string_view subject, std::uint32_t version) const {
        const std::lock_guard lock(mutex_);
        const auto found = keys_.find(subject);
        if (found == keys_.end()) return std::nullopt;
        for (const SubjectKey& key : found->second)
            if (key.version == version) return key;
        return std::nullopt;
    }

    SubjectKey add_key(std::string_view subject, const SubjectKey& key) {
        detail::validate_subject(subject);
        detail::validate_key_version(key);
        const std::lock_guard lock(mutex_);
        if (forgotten_.contains(subject)) throw SubjectForgottenError(std::string(subject));
        auto found = keys_.find(subject);
        if (found == keys_.end()) found = keys_.emplace(std::string(subject), std::vector<SubjectKey>{}).first;
        std::vector<SubjectKey>& versions = found->second;
        for (const SubjectKey& stored : versions)
            if (stored.version == key.version) return stored;
        auto at = versions.begin();
        while (at != versions.end() && at->version < key.version) ++at;
        versions.insert(at, key);
        return key;
    }

    bool forget(std::string_view subject) {
        const std::lock_guard lock(mutex_);
        forgotten_.emplace(subject);
        const auto found = keys_.find(subject);
        if (found == keys_.end()) return false;
        const bool had = !found->second.empty();
        wipe(found->second);
        keys_.erase(found);
        return had;
    }

    [[nodiscard]] bool is_forgotten(std::string_view subject) const {
        const std::lock_guard lock(mutex_);
        return forgotten_.contains(subject);
    }

private:
    static void wipe(std::vector<SubjectKey>& versions) noexcept {
        for (SubjectKey& key : versions) {
            volatile std::uint8_t* bytes = key.bytes.data();
            for (std::size_t i = 0; i < key.bytes.size(); ++i) bytes[i] = 0;
        }
        versions.clear();
    }

    mutable std::mutex mutex_;
    std::map<std::string, std::vector<SubjectKey>, std::less<>> keys_;
    std::set<std::string, std::less<>> forgotten_;
};

static_assert(key_store<InMemoryKeyStore>);

} // namespace orchestrix
