#pragma once

// The body of a JetStream message: one append's batch, in a small binary framing (little-endian integers,
// length-prefixed byte strings), so that a batch is one message and its append is atomic.
//
//   "OXJ1"                          4 bytes: what the store writes, and the framing's version
//   first position                  u64: the global position of the batch's first event
//   first version                   u64: the stream version of the batch's first event
//   recorded_at                     i64: microseconds since the Unix epoch, one value per batch
//   count                           u32: events in the batch, at least 1
//   per event:
//     event id                      16 bytes (the UUID's bytes)
//     schema version                u32
//     type, payload, metadata       each u32 length + bytes (payload and metadata JSON texts)
//     tags                          u32 count, then each u32 length + bytes
//
// The stream id is the subject's (`subject.hpp`).

#include <orchestrix/core/uuid.hpp>
#include <orchestrix/json/codec.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace orchestrix::jetstream {

/// The framing's first four bytes.
inline constexpr std::string_view batch_magic = "OXJ1";

/// One event of a decoded batch: views into the message's bytes.
struct BatchEventView {
    Uuid id{};
    std::uint32_t schema_version = 0;
    std::string_view type{};
    std::string_view payload{};
    std::string_view metadata{};
    std::vector<std::string_view> tags{};
};

/// A decoded batch.
struct BatchView {
    std::uint64_t first_position = 0;
    std::uint64_t first_version = 0;
    std::int64_t recorded_at_micros = 0;
    std::vector<BatchEventView> events{};
};

namespace detail {

inline void put_u32(std::string& out, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFFU);
}
inline void put_u64(std::string& out, std::uint64_t value) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFFU);
}
inline void put_bytes(std::string& out, std::string_view bytes) {
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

class BatchCursor {
public:
    explicit BatchCursor(std::string_view data) noexcept : data_(data) {}
    [[nodiscard]] bool u32(std::uint32_t& value) noexcept {
        if (data_.size() - at_ < 4) return false;
        value = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            value |= static_cast<std::uint32_t>(static_cast<unsigned char>(data_[at_ + i])) << (8 * i);
        }
        at_ += 4;
        return true;
    }
    [[nodiscard]] bool u64(std::uint64_t& value) noexcept {
        if (data_.size() - at_ < 8) return false;
        value = 0;
        for (std::size_t i = 0; i < 8; ++i) {
            value |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[at_ + i])) << (8 * i);
        }
        at_ += 8;
        return true;
    }
    [[nodiscard]] bool bytes(std::string_view& value, std::size_t length) noexcept {
        if (data_.size() - at_ < length) return false;
        value = data_.substr(at_, length);
        at_ += length;
        return true;
    }
    [[nodiscard]] bool string(std::string_view& value) noexcept {
        std::uint32_t length = 0;
        return u32(length) && bytes(value, length);
    }
    [[nodiscard]] bool done() const noexcept { return at_ == data_.size(); }
    [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - at_; }

private:
    std::string_view data_;
    std::size_t at_ = 0;
};

} // namespace detail

/// Encodes a batch: `ids[i]` is the id of `events[i]`, `tags[i]` its tags (`tags` may be empty: no event
/// has tags).
[[nodiscard]] inline std::string encode_batch(std::uint64_t first_position, std::uint64_t first_version,
                                              std::int64_t recorded_at_micros, std::span<const Uuid> ids,
                                              std::span<const SerializedEvent> events,
                                              std::span<const std::vector<std::string>> tags) {
    std::size_t size = 32;
    for (const SerializedEvent& e : events) size += 36 + e.type.size() + e.payload.size() + e.metadata.size();
    std::string out;
    out.reserve(size);
    out.append(batch_magic);
    detail::put_u64(out, first_position);
    detail::put_u64(out, first_version);
    detail::put_u64(out, static_cast<std::uint64_t>(recorded_at_micros));
    detail::put_u32(out, static_cast<std::uint32_t>(events.size()));
    for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& bytes = ids[i].bytes();
        out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        detail::put_u32(out, events[i].schema_version);
        detail::put_bytes(out, events[i].type);
        detail::put_bytes(out, events[i].payload);
        detail::put_bytes(out, events[i].metadata);
        if (tags.empty()) {
            detail::put_u32(out, 0);
        } else {
            detail::put_u32(out, static_cast<std::uint32_t>(tags[i].size()));
            for (const std::string& tag : tags[i]) detail::put_bytes(out, tag);
        }
    }
    return out;
}

/// Decodes a batch written by `encode_batch`; nothing if `data` is not one (another framing, cut short,
/// bytes left over, no event).
[[nodiscard]] inline std::optional<BatchView> decode_batch(std::string_view data) {
    if (data.substr(0, batch_magic.size()) != batch_magic) return std::nullopt;
    detail::BatchCursor in(data.substr(batch_magic.size()));
    BatchView out;
    std::uint64_t recorded = 0;
    std::uint32_t count = 0;
    if (!in.u64(out.first_position) || !in.u64(out.first_version) || !in.u64(recorded) || !in.u32(count) ||
        count == 0) {
        return std::nullopt;
    }
    out.recorded_at_micros = static_cast<std::int64_t>(recorded);
    // Each event takes at least 36 bytes: a count larger than the bytes left can hold is damage.
    if (count > in.remaining() / 36) return std::nullopt;
    out.events.resize(count);
    for (BatchEventView& e : out.events) {
        std::string_view id;
        std::uint32_t tag_count = 0;
        if (!in.bytes(id, 16) || !in.u32(e.schema_version) || !in.string(e.type) || !in.string(e.payload) ||
            !in.string(e.metadata) || !in.u32(tag_count) || tag_count > in.remaining() / 4) {
            return std::nullopt;
        }
        Uuid::bytes_type bytes{};
        std::memcpy(bytes.data(), id.data(), bytes.size());
        e.id = Uuid(bytes);
        e.tags.resize(tag_count);
        for (std::string_view& tag : e.tags) {
            if (!in.string(tag)) return std::nullopt;
        }
    }
    if (!in.done()) return std::nullopt;
    return out;
}

} // namespace orchestrix::jetstream
