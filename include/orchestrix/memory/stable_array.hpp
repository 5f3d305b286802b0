#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace orchestrix::detail {

/// A growable array whose elements never move: it allocates blocks of 8, 16, 32, ... elements and keeps
/// the earlier blocks where they are. Appending never relocates (a `std::vector` of strings moves every
/// element each time it doubles), and references stay valid until the element is removed. Indexing costs
/// a bit scan; `for_each_run` walks a range block by block without one. Not thread-safe.
template <class T>
class StableArray {
public:
    StableArray() = default;
    StableArray(const StableArray&) = delete;
    StableArray& operator=(const StableArray&) = delete;
    ~StableArray() {
        truncate(0);
        for (std::size_t b = 0; b < blocks_.size(); ++b) std::allocator<T>{}.deallocate(blocks_[b], block_capacity(b));
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    [[nodiscard]] T& operator[](std::size_t i) noexcept { return slot(i); }
    [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return slot(i); }

    /// Allocates blocks so that `extra` more elements fit; after it, only constructing an element can throw.
    void reserve_more(std::size_t extra) {
        const std::size_t needed = size_ + extra;
        while (capacity() < needed) {
            blocks_.reserve(blocks_.size() + 1);
            blocks_.push_back(std::allocator<T>{}.allocate(block_capacity(blocks_.size())));
        }
    }

    /// Constructs an element at the end (after `reserve_more`, only the construction can throw).
    template <class... Args>
    T& emplace_back(Args&&... args) {
        if (size_ == capacity()) reserve_more(1);
        T& slot_ref = slot(size_);
        std::construct_at(&slot_ref, std::forward<Args>(args)...);
        ++size_;
        return slot_ref;
    }

    /// Destroys the elements from index `size` on (keeps the blocks).
    void truncate(std::size_t size) noexcept {
        while (size_ > size) std::destroy_at(&slot(--size_));
    }

    /// Calls `f(first, count, index)` for each contiguous run of the elements [begin, end): `count`
    /// elements from `first`, the first of them at `index`. Arrays of the same type of block (any `T`) split
    /// an index range at the same places, so a run of one array lines up with the run of another.
    template <class F>
    void for_each_run(std::size_t begin, std::size_t end, F&& f) const {
        while (begin < end) {
            const auto block = static_cast<std::size_t>(std::bit_width(begin / first_block + 1)) - 1;
            const std::size_t block_start = first_block * ((std::size_t{1} << block) - 1);
            const std::size_t count = std::min(end, block_start + block_capacity(block)) - begin;
            f(&blocks_[block][begin - block_start], count, begin);
            begin += count;
        }
    }

    /// Calls `f(element)` for each element, in order.
    template <class F>
    void for_each(F&& f) {
        for (std::size_t i = 0; i < size_; ++i) f(slot(i));
    }

private:
    static constexpr std::size_t first_block = 8;

    static constexpr std::size_t block_capacity(std::size_t block) noexcept { return first_block << block; }

    // Blocks 0..n-1 hold first_block * (2^n - 1) elements.
    [[nodiscard]] std::size_t capacity() const noexcept {
        return first_block * ((std::size_t{1} << blocks_.size()) - 1);
    }

    [[nodiscard]] T& slot(std::size_t i) const noexcept {
        const std::size_t j = i / first_block + 1; // element i lies in block bit_width(j) - 1
        const auto block = static_cast<std::size_t>(std::bit_width(j)) - 1;
        return blocks_[block][i - first_block * ((std::size_t{1} << block) - 1)];
    }

    std::vector<T*> blocks_;
    std::size_t size_ = 0;
};

} // namespace orchestrix::detail
