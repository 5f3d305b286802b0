#pragma once

// `ShreddingCodec`: a durable store's codec that encrypts every `Personal<T>` of an event with its subject's
// key, and reads it back erased once the subject is forgotten (crypto-shredding, docs/lifecycle.md).

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/message.hpp>
#include <orchestrix/core/personal.hpp>
#include <orchestrix/crypto/cipher.hpp>
#include <orchestrix/json/checked_conversion.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/errors.hpp>
#include <orchestrix/json/field.hpp>
#include <orchestrix/json/personal.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix {

/// How a `ShreddingCodec` caches subject keys.
struct ShreddingOptions {
    /// How long a key looked up in the key store is used without asking the store again (0: every value
    /// asks the store). A subject forgotten through this codec (or a copy of it) is forgotten at once; one
    /// forgotten by another process (or straight through the key store) stays readable here for up to this
    /// long, and writes here may use its destroyed key for as long (what they write reads back erased).
    std::chrono::milliseconds key_cache_ttl{std::chrono::seconds(30)};
    /// The most subjects whose keys are cached; when it is full, the cache is emptied.
    std::size_t key_cache_capacity = 10000;
};

namespace detail {

/// The subject keys a `ShreddingCodec` (and its copies) looked up: thread-safe, key bytes wiped on removal.
/// A subject marked forgotten stays so: no key of it is cached again.
class SubjectKeyCache {
public:
    using clock = std::chrono::steady_clock;

    explicit SubjectKeyCache(ShreddingOptions options) : options_(options) {}
    SubjectKeyCache(const SubjectKeyCache&) = delete;
    SubjectKeyCache& operator=(const SubjectKeyCache&) = delete;
    ~SubjectKeyCache() {
        for (auto& [subject, entry] : entries_) wipe(entry);
    }

    /// What the cache knows of a subject: a key (wiped with the lookup), that the subject is forgotten, or
    /// nothing.
    struct Lookup {
        std::optional<SubjectKey> key{};
        bool forgotten = false;

        ~Lookup() {
            if (key) detail::wipe(*key);
        }
    };

    /// The subject's current key (`version` 0) or key `version`.
    [[nodiscard]] Lookup find(std::string_view subject, std::uint32_t version) {
        const std::lock_guard lock(mutex_);
        const auto found = entries_.find(subject);
        if (found == entries_.end()) return {};
        Entry& entry = found->second;
        if (entry.forgotten) return {std::nullopt, true};
        if (clock::now() - entry.loaded > options_.key_cache_ttl) {
            wipe(entry);
            entries_.erase(found);
            return {};
        }
        const std::uint32_t wanted = version == 0 ? entry.current : version;
        if (wanted == 0) return {};
        for (const SubjectKey& key : entry.keys)
            if (key.version == wanted) return {key, false};
        return {};
    }

    /// Remembers `key` of `subject` (as its current key if `current`), unless the subject is forgotten.
    void remember(std::string_view subject, const SubjectKey& key, bool current) {
        if (options_.key_cache_ttl.count() <= 0 || options_.key_cache_capacity == 0) return;
        const std::lock_guard lock(mutex_);
        auto found = entries_.find(subject);
        if (found == entries_.end()) {
            if (entries_.size() >= options_.key_cache_capacity) clear_keys();
            found = entries_.emplace(std::string(subject), Entry{}).first;
            found->second.loaded = clock::now();
        }
        Entry& entry = found->second;
        if (entry.forgotten) return;
        if (current && key.version > entry.current) entry.current = key.version;
        for (const SubjectKey& held : entry.keys)
            if (held.version == key.version) return;
        entry.keys.push_back(key);
    }

    /// Marks `subject` forgotten and wipes its keys.
    void forget(std::string_view subject) {
        const std::lock_guard lock(mutex_);
        auto found = entries_.find(subject);
        if (found == entries_.end()) found = entries_.emplace(std::string(subject), Entry{}).first;
        wipe(found->second);
        found->second.forgotten = true;
    }

private:
    struct Entry {
        std::vector<SubjectKey> keys{};
        std::uint32_t current = 0;
        bool forgotten = false;
        clock::time_point loaded{};
    };

    static void wipe(Entry& entry) noexcept {
        for (SubjectKey& key : entry.keys) detail::wipe(key);
        entry.keys.clear();
        entry.current = 0;
    }

    // Empties the cache of keys; forgotten marks stay (they are small and permanent).
    void clear_keys() {
        for (auto it = entries_.begin(); it != entries_.end();) {
            if (it->second.forgotten) {
                ++it;
            } else {
                wipe(it->second);
                it = entries_.erase(it);
            }
        }
    }

    ShreddingOptions options_;
    std::mutex mutex_;
    std::map<std::string, Entry, std::less<>> entries_;
};

/// A sealed personal value's fields, checked (`{"$personal": {"subject", "key", "nonce", "data"}}`).
struct SealedPersonal {
    std::string subject{};
    std::uint32_t key_version = 0;
    PersonalNonce nonce{};
    std::string ciphertext{};
};

[[nodiscard]] inline nlohmann::json sealed_personal_json(std::string_view subject, std::uint32_t key_version,
                                                         const PersonalNonce& nonce, std::string_view ciphertext) {
    const std::string_view nonce_bytes(reinterpret_cast<const char*>(nonce.data()), // NOLINT
                                       nonce.size());
    nlohmann::json inner{
        {"subject", subject}, {"key", key_version}, {"nonce", to_base64(nonce_bytes)}, {"data", to_base64(ciphertext)}};
    nlohmann::json sealed = nlohmann::json::object();
    sealed[std::string(personal_json_key)] = std::move(inner);
    return sealed;
}

/// Reads `{"$personal": {...}}` strictly: exactly the four fields, of the right types. Throws `DecodeError`
/// with a path relative to `stored`.
[[nodiscard]] inline SealedPersonal read_sealed_personal(const nlohmann::json& stored) {
    const std::string key(personal_json_key);
    const std::string at = pointer(key);
    if (!stored.is_object() || stored.size() != 1 || !stored.contains(key)) {
        throw DecodeError(DecodeError::Kind::wrong_type, {}, {},
                          "expected a sealed personal value {\"$personal\": {\"subject\", \"key\", \"nonce\", "
                          "\"data\"}}, found " +
                              std::string(stored.is_object() ? "an object with other keys" : json_type_name(stored)));
    }
    const nlohmann::json& fields = stored.at(key);
    if (!fields.is_object()) {
        throw DecodeError(DecodeError::Kind::wrong_type, {}, at,
                          "expected an object, found " + std::string(json_type_name(fields)));
    }
    for (const auto& [name, value] : fields.items()) {
        if (name != "subject" && name != "key" && name != "nonce" && name != "data") {
            throw DecodeError(DecodeError::Kind::unknown_field, {}, at + pointer(name),
                              "a sealed personal value has no field \"" + name + "\"");
        }
    }
    SealedPersonal sealed;
    try {
        sealed.subject = json_field<std::string>(fields, "subject");
        sealed.key_version = json_field<std::uint32_t>(fields, "key");
        const auto nonce_text = json_field<std::string>(fields, "nonce");
        const auto data_text = json_field<std::string>(fields, "data");
        try {
            validate_subject(sealed.subject);
        } catch (const InvalidArgumentError& e) {
            throw DecodeError(DecodeError::Kind::invalid_value, {}, "/subject", e.what());
        }
        if (sealed.key_version == 0) {
            throw DecodeError(DecodeError::Kind::out_of_range, {}, "/key", "subject key versions start at 1");
        }
        const auto nonce = from_base64(nonce_text);
        if (!nonce || nonce->size() != personal_nonce_size) {
            throw DecodeError(DecodeError::Kind::invalid_value, {}, "/nonce",
                              "expected the base64 of " + std::to_string(personal_nonce_size) + " bytes");
        }
        for (std::size_t i = 0; i < personal_nonce_size; ++i) sealed.nonce[i] = static_cast<std::uint8_t>((*nonce)[i]);
        auto data = from_base64(data_text);
        if (!data || data->size() < personal_tag_size) {
            throw DecodeError(DecodeError::Kind::invalid_value, {}, "/data",
                              "expected the base64 of a ciphertext of at least " + std::to_string(personal_tag_size) +
                                  " bytes");
        }
        sealed.ciphertext = std::move(*data);
    } catch (DecodeError& e) {
        e.add_context(at);
        throw;
    }
    return sealed;
}

/// The form a sealed value takes between `ShreddingCodec` and `Personal<T>`'s conversion while an event is
/// read (never stored): `{"$personal": {"subject": "...", "value": <the value>}}`, or `"erased": true` in
/// place of the value.
[[nodiscard]] inline nlohmann::json opened_personal_json(std::string_view subject, const nlohmann::json* value) {
    nlohmann::json inner{{"subject", subject}};
    if (value != nullptr) {
        inner["value"] = *value;
    } else {
        inner["erased"] = true;
    }
    nlohmann::json opened = nlohmann::json::object();
    opened[std::string(personal_json_key)] = std::move(inner);
    return opened;
}

/// The sealer of a read: the payload was opened already (`opened_personal_json`); it hands the values to
/// `Personal<T>` and gives the same form back to the decoder's round-trip check.
class OpenedPersonalReader final : public PersonalSealer {
public:
    nlohmann::json seal(std::string_view subject, const nlohmann::json* value) override {
        return opened_personal_json(subject, value);
    }

    OpenedPersonal open(const nlohmann::json& stored) override {
        const std::string key(personal_json_key);
        const auto fields = stored.is_object() && stored.size() == 1 ? stored.find(key) : stored.end();
        if (fields == stored.end() || !fields->is_object()) {
            throw DecodeError(DecodeError::Kind::wrong_type, {}, {},
                              "expected a sealed personal value {\"$personal\": {...}}, found " +
                                  std::string(stored.is_object() ? "an object without it" : json_type_name(stored)));
        }
        const auto subject = fields->find("subject");
        const auto value = fields->find("value");
        const auto erased = fields->find("erased");
        const bool opened_form = fields->size() == 2 && subject != fields->end() && subject->is_string() &&
                                 (value != fields->end() || (erased != fields->end() && *erased == true));
        if (!opened_form) { // only the codec's reading makes this form, from every sealed value it finds
            throw DecodeError(DecodeError::Kind::invalid_value, {}, pointer(key),
                              "a personal value reached the decoder without being opened by the ShreddingCodec");
        }
        OpenedPersonal opened;
        opened.subject = subject->get<std::string>();
        if (value != fields->end()) opened.value = *value;
        return opened;
    }
};

} // namespace detail

/// The codec of a durable store (`SqliteEventStore`, `PostgresEventStore`) whose events hold personal data:
/// every `Personal<T>` in an event is written encrypted with its subject's key (XChaCha20-Poly1305, the key
/// from `KeyStore`), everything else exactly as `Inner` (`JsonCodec<Events>`) writes it. After
/// `forget(subject)`, every read gives that subject's values as `Personal<T>::erased(subject)`. See
/// docs/lifecycle.md.
///
///     orchestrix::SqliteKeyStore keys("keys.db");
///     using Codec = orchestrix::ShreddingCodec<AccountEvent, orchestrix::SqliteKeyStore>;
///     orchestrix::SqliteEventStore<AccountEvent, Codec> store("events.db", {}, Codec(keys));
///     store.codec().forget("customer-42"); // every personal value of customer-42 now reads erased
///
/// - Writes use the subject's current key, creating version 1 (`add_key`) for a subject that has none; a
///   forgotten subject throws `SubjectForgottenError` and nothing is written. The same event (same event id)
///   always gives the same bytes, so a retried append is recognised as one.
/// - A value that does not decrypt (altered, or moved to another subject or key version) is a `DecodeError`
///   naming the event type and the path, never an erased value. So is a key version the key store does not
///   have for a subject that was not forgotten (the wrong key store).
/// - Keys looked up are cached in the codec, shared by its copies (`ShreddingOptions`); `forget` and
///   `rotate` through the codec update that cache.
/// - `KeyStore` is held by reference: it must outlive the codec and every copy. Thread-safe as `Inner` is.
template <event_variant Events, key_store KeyStore, class Inner = JsonCodec<Events>>
class ShreddingCodec {
public:
    using event_type = Events;
    using key_store_type = KeyStore;
    using inner_codec_type = Inner;

    /// A codec sealing personal data with the keys of `keys`, converting events with `inner`.
    explicit ShreddingCodec(KeyStore& keys, Inner inner = Inner{}, ShreddingOptions options = {})
        : keys_(&keys), inner_(std::move(inner)), cache_(std::make_shared<detail::SubjectKeyCache>(options)) {}

    /// The codec that converts the events.
    [[nodiscard]] const Inner& inner() const noexcept { return inner_; }
    /// The store of subject keys.
    [[nodiscard]] KeyStore& key_store() const noexcept { return *keys_; }

    // ---- keys --------------------------------------------------------------------------------------------

    /// Adds the next version of `subject`'s key (version 1 if it has none) and returns its version: values
    /// written from now on use it; values written before keep their version and still read. Nothing already
    /// stored is encrypted again. Throws `SubjectForgottenError` for a forgotten subject and
    /// `InvalidArgumentError` for a malformed subject id.
    std::uint32_t rotate(std::string_view subject) const {
        detail::validate_subject(subject);
        if (keys_->is_forgotten(subject)) throw SubjectForgottenError(std::string(subject));
        std::uint32_t next = 1;
        if (std::optional<SubjectKey> current = keys_->current_key(subject)) {
            detail::KeyWiper wiper(*current);
            if (current->version == std::numeric_limits<std::uint32_t>::max()) {
                throw InvalidArgumentError("subject", "subject '" + std::string(subject) +
                                                          "' has used every key version; it cannot be rotated");
            }
            next = current->version + 1;
        }
        SubjectKey fresh = new_subject_key(next);
        detail::KeyWiper fresh_wiper(fresh);
        SubjectKey stored = keys_->add_key(subject, fresh);
        detail::KeyWiper stored_wiper(stored);
        cache_->remember(subject, stored, true);
        return stored.version;
    }

    /// Forgets `subject`: the key store destroys every version of its key, and this codec (and its copies)
    /// forget the keys they cached. From now on its personal data reads erased and cannot be written.
    /// Returns whether a key was destroyed. Idempotent.
    bool forget(std::string_view subject) const {
        const bool destroyed = keys_->forget(subject);
        cache_->forget(subject);
        return destroyed;
    }

    // ---- the durable-store API ---------------------------------------------------------------------------

    /// The four columns of an envelope's event (`serialize(event, metadata)`).
    [[nodiscard]] SerializedEvent serialize(const EventEnvelope<Events>& envelope) const {
        return serialize(envelope.event, envelope.metadata);
    }

    /// The four columns of an event as `Inner` writes them, each personal value sealed with its subject's
    /// current key. Throws `SubjectForgottenError` for a forgotten subject, `EncodeError` for what `Inner`
    /// refuses (and for a `Personal` with an empty subject or an erased value).
    [[nodiscard]] SerializedEvent serialize(const Events& event, const Metadata& metadata) const {
        WriteSealer sealer(*this, metadata.event_id);
        const detail::PersonalSealerScope scope(sealer);
        try {
            return inner_.serialize(event, metadata);
        } catch (...) {
            if (sealer.failure()) std::rethrow_exception(sealer.failure());
            throw;
        }
    }

    /// The event of a stored row, personal values opened (erased for a forgotten subject).
    [[nodiscard]] RecordedEvent<Events> deserialize(const SerializedEventView& row, std::string stream_id,
                                                    stream_version_t version, position_t position,
                                                    std::chrono::system_clock::time_point recorded_at) const {
        const std::optional<std::string> opened = open_payload(row.type, row.payload);
        const SerializedEventView view(row.type, row.schema_version, opened ? std::string_view(*opened) : row.payload,
                                       row.metadata);
        detail::OpenedPersonalReader reader;
        const detail::PersonalSealerScope scope(reader);
        return inner_.deserialize(view, std::move(stream_id), version, position, recorded_at);
    }

    /// The event alone, from the type, schema version and payload columns.
    [[nodiscard]] Events deserialize_event(std::string_view type, std::uint32_t schema_version,
                                           std::string_view payload) const {
        const std::optional<std::string> opened = open_payload(type, payload);
        detail::OpenedPersonalReader reader;
        const detail::PersonalSealerScope scope(reader);
        return inner_.deserialize_event(type, schema_version, opened ? std::string_view(*opened) : payload);
    }

    /// The metadata column, as `Inner` reads it (metadata holds no personal data).
    [[nodiscard]] Metadata deserialize_metadata(std::string_view metadata, std::string_view type = {}) const requires
        requires(const Inner& c, std::string_view text) {
        c.deserialize_metadata(text, text);
    }
    { return inner_.deserialize_metadata(metadata, type); }

    /// `Inner`'s read limits and strictness.
    [[nodiscard]] decltype(auto) options() const noexcept requires requires(const Inner& c) { c.options(); }
    { return inner_.options(); }

    /// `Inner`'s write limits.
    [[nodiscard]] decltype(auto) write_options() const noexcept requires requires(const Inner& c) { c.write_options(); }
    { return inner_.write_options(); }

private:
    // The sealer of one `serialize`: seals with each subject's current key (looked up once per call), under
    // a nonce synthesised from the event id, so the same event gives the same bytes; opens what it sealed
    // for `Inner`'s check that the event decodes back.
    class WriteSealer final : public detail::PersonalSealer {
    public:
        WriteSealer(const ShreddingCodec& codec, const Uuid& event_id) : codec_(&codec), event_id_(event_id) {}
        WriteSealer(const WriteSealer&) = delete;
        WriteSealer& operator=(const WriteSealer&) = delete;
        ~WriteSealer() override {
            for (auto& [subject, key] : keys_) detail::wipe(key);
        }

        [[nodiscard]] const std::exception_ptr& failure() const noexcept { return failure_; }

        nlohmann::json seal(std::string_view subject, const nlohmann::json* value) override {
            if (value == nullptr) {
                throw EncodeError("Personal", {},
                                  "the personal data of subject '" + std::string(subject) +
                                      "' was erased: an erased value cannot be written again");
            }
            if (!detail::is_encodable(*value)) {
                std::string path;
                detail::check_encodable(*value, "Personal", path);
            }
            std::string plaintext = value->dump();
            for (const Sealed& done : sealed_) // the check that the event decodes back encodes it again
                if (done.subject == subject && done.plaintext == plaintext) return done.stored;
            const SubjectKey& key = current_key(subject);
            const auto& id = event_id_.bytes();
            const PersonalNonce nonce =
                synthetic_personal_nonce(key, std::span<const std::uint8_t>(id), subject, plaintext);
            nlohmann::json stored = detail::sealed_personal_json(subject, key.version, nonce,
                                                                 seal_personal(key, subject, nonce, plaintext));
            sealed_.push_back(Sealed{std::string(subject), *value, std::move(plaintext), stored});
            return stored;
        }

        detail::OpenedPersonal open(const nlohmann::json& stored) override {
            for (const Sealed& done : sealed_)
                if (done.stored == stored) return {done.subject, done.value};
            const detail::SealedPersonal sealed = detail::read_sealed_personal(stored);
            SubjectKey key;
            const detail::KeyWiper wiper(key);
            if (!codec_->read_key(sealed.subject, sealed.key_version, key)) return {sealed.subject, std::nullopt};
            const std::optional<std::string> plaintext =
                open_personal(key, sealed.subject, sealed.nonce, sealed.ciphertext);
            if (!plaintext) {
                throw DecodeError(DecodeError::Kind::invalid_value, {}, {},
                                  "the personal data of subject '" + sealed.subject + "' does not decrypt");
            }
            return {sealed.subject, parse_json(*plaintext)};
        }

    private:
        const SubjectKey& current_key(std::string_view subject) {
            const auto held = keys_.find(subject);
            if (held != keys_.end()) return held->second;
            try {
                detail::validate_subject(subject);
                SubjectKey key;
                const detail::KeyWiper wiper(key);
                codec_->write_key(subject, key);
                return keys_.emplace(std::string(subject), key).first->second;
            } catch (...) {
                if (!failure_) failure_ = std::current_exception();
                throw;
            }
        }

        // A value this sealer sealed: its subject, its JSON and what was stored for it.
        struct Sealed {
            std::string subject{};
            nlohmann::json value{};
            std::string plaintext{};
            nlohmann::json stored{};
        };

        const ShreddingCodec* codec_;
        Uuid event_id_;
        std::vector<Sealed> sealed_;
        std::map<std::string, SubjectKey, std::less<>> keys_;
        std::exception_ptr failure_;
    };

    [[nodiscard]] DecodeOptions read_limits() const {
        if constexpr (requires(const Inner& c) {
                          { c.options() } -> std::convertible_to<DecodeOptions>;
                      }) {
            return inner_.options();
        } else {
            return DecodeOptions{};
        }
    }

    // Sets `out` to the subject's current key, creating version 1 if it has none. The caller wipes it.
    void write_key(std::string_view subject, SubjectKey& out) const {
        const detail::SubjectKeyCache::Lookup cached = cache_->find(subject, 0);
        if (cached.forgotten) throw SubjectForgottenError(std::string(subject));
        if (cached.key) {
            out = *cached.key;
            return;
        }
        std::optional<SubjectKey> key = keys_->current_key(subject);
        if (!key) {
            if (keys_->is_forgotten(subject)) {
                cache_->forget(subject);
                throw SubjectForgottenError(std::string(subject));
            }
            SubjectKey fresh = new_subject_key(1);
            const detail::KeyWiper fresh_wiper(fresh);
            key = keys_->add_key(subject, fresh);
        }
        const detail::KeyWiper wiper(*key);
        cache_->remember(subject, *key, true);
        out = *key;
    }

    // Sets `out` to key `version` of `subject` (the caller wipes it), or returns false if the subject was
    // forgotten. Throws `DecodeError` if the key store has no such key for a subject that was not forgotten.
    [[nodiscard]] bool read_key(std::string_view subject, std::uint32_t version, SubjectKey& out) const {
        const detail::SubjectKeyCache::Lookup cached = cache_->find(subject, version);
        if (cached.forgotten) return false;
        if (cached.key) {
            out = *cached.key;
            return true;
        }
        std::optional<SubjectKey> key = keys_->find_key(subject, version);
        if (key) {
            const detail::KeyWiper wiper(*key);
            cache_->remember(subject, *key, false);
            out = *key;
            return true;
        }
        if (keys_->is_forgotten(subject)) {
            cache_->forget(subject);
            return false;
        }
        throw DecodeError(DecodeError::Kind::invalid_value, {}, {},
                          "the key store has no key version " + std::to_string(version) + " of subject '" +
                              std::string(subject) +
                              "', and the subject was not forgotten: is it the key store "
                              "this data was written with?");
    }

    // The payload with each sealed value replaced by its opened form, or nothing if it holds none.
    [[nodiscard]] std::optional<std::string> open_payload(std::string_view type, std::string_view payload) const {
        // Every spelling of the key "$personal" ends so, escaped or not.
        if (payload.find("personal\"") == std::string_view::npos) return std::nullopt;
        nlohmann::json document;
        try {
            document = parse_json(payload, read_limits());
        } catch (DecodeError& e) {
            e.add_context("/payload", type);
            throw;
        }
        std::string path = "/payload";
        std::size_t opened = 0;
        open_values(document, type, path, opened);
        if (opened == 0) return std::nullopt;
        return document.dump();
    }

    void open_values(nlohmann::json& node, std::string_view type, std::string& path, std::size_t& opened) const {
        if (node.is_object()) {
            if (node.contains(std::string(personal_json_key))) {
                node = open_value(node, type, path);
                ++opened;
                return;
            }
            for (auto& [key, value] : node.items()) {
                const std::size_t size = path.size();
                detail::append_pointer(path, key);
                open_values(value, type, path, opened);
                path.resize(size);
            }
        } else if (node.is_array()) {
            for (std::size_t i = 0; i < node.size(); ++i) {
                const std::size_t size = path.size();
                path += detail::pointer(i);
                open_values(node[i], type, path, opened);
                path.resize(size);
            }
        }
    }

    [[nodiscard]] nlohmann::json open_value(const nlohmann::json& stored, std::string_view type,
                                            const std::string& path) const {
        detail::SealedPersonal sealed;
        try {
            sealed = detail::read_sealed_personal(stored);
        } catch (DecodeError& e) {
            e.add_context(path, type);
            throw;
        }
        SubjectKey key;
        const detail::KeyWiper wiper(key);
        try {
            if (!read_key(sealed.subject, sealed.key_version, key)) {
                return detail::opened_personal_json(sealed.subject, nullptr);
            }
        } catch (DecodeError& e) {
            e.add_context(path, type);
            throw;
        }
        const std::optional<std::string> plaintext =
            open_personal(key, sealed.subject, sealed.nonce, sealed.ciphertext);
        if (!plaintext) {
            throw DecodeError(DecodeError::Kind::invalid_value, std::string(type), path,
                              "the personal data of subject '" + sealed.subject + "' (key version " +
                                  std::to_string(sealed.key_version) +
                                  ") does not decrypt: it was altered, or moved from another subject or key");
        }
        nlohmann::json value;
        try {
            value = parse_json(*plaintext, read_limits());
        } catch (DecodeError& e) {
            e.add_context(path, type);
            throw;
        }
        return detail::opened_personal_json(sealed.subject, &value);
    }

    KeyStore* keys_;
    Inner inner_;
    std::shared_ptr<detail::SubjectKeyCache> cache_;
};

} // namespace orchestrix
