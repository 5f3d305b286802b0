#pragma once

#include <orchestrix/core/uuid.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace orchestrix::detail {

/// An open-addressing hash map from event id to a 64-bit value (a global position). It stores its entries
/// in one array, so inserting costs no allocation except when the table doubles. Value 0 marks an empty slot,
/// so values must be non-zero (positions start at 1). Not thread-safe.
class UuidIndex {
public:
    [[nodiscard]] std::optional<std::uint64_t> find(const Uuid& id) const noexcept {
        if (slots_.empty()) return std::nullopt;
        for (std::size_t i = home(id);; i = (i + 1) & mask()) {
            const Slot& slot = slots_[i];
            if (slot.value == 0) return std::nullopt;
            if (slot.id == id) return slot.value;
        }
    }

    /// Makes room for `extra` more entries; after it, that many inserts cannot throw.
    void reserve_more(std::size_t extra) {
        const std::size_t needed = size_ + extra;
        if (needed * 2 <= slots_.size()) return;
        std::size_t capacity = slots_.empty() ? 64 : slots_.size();
        while (needed * 2 > capacity) capacity *= 2;
        std::vector<Slot> old(capacity);
        old.swap(slots_);
        for (const Slot& slot : old)
            if (slot.value != 0) place(slot.id, slot.value);
    }

    /// Inserts a new id (it must not be present). Call `reserve_more` first.
    void insert(const Uuid& id, std::uint64_t value) noexcept {
        place(id, value);
        ++size_;
    }

    /// Removes an id inserted last (used to undo a failed append). Backward-shift deletion.
    void erase(const Uuid& id) noexcept {
        if (slots_.empty()) return;
        std::size_t i = home(id);
        while (slots_[i].value != 0 && !(slots_[i].id == id)) i = (i + 1) & mask();
        if (slots_[i].value == 0) return;
        for (std::size_t j = (i + 1) & mask();; j = (j + 1) & mask()) {
            if (slots_[j].value == 0) break;
            const std::size_t k = home(slots_[j].id);
            // Move slot j into the hole at i unless its home lies cyclically in (i, j].
            const bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i] = Slot{};
        --size_;
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    struct Slot {
        Uuid id{};
        std::uint64_t value = 0;
    };

    [[nodiscard]] std::size_t mask() const noexcept { return slots_.size() - 1; }
    [[nodiscard]] std::size_t home(const Uuid& id) const noexcept { return std::hash<Uuid>{}(id)&mask(); }

    void place(const Uuid& id, std::uint64_t value) noexcept {
        std::size_t i = home(id);
        while (slots_[i].value != 0) i = (i + 1) & mask();
        slots_[i] = Slot{id, value};
    }

    std::vector<Slot> slots_;
    std::size_t size_ = 0;
};

} // namespace orchestrix::detail
