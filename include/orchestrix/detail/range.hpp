#pragma once

#include <iterator>

namespace orchestrix::detail {

/// What a range-based `for` accepts, checked with <iterator> alone (<ranges> costs more to parse than all
/// of orchestrix's own core headers).
template <class R>
concept iterable = requires(R& r) {
    std::ranges::begin(r);
    std::ranges::end(r);
};

/// An iterable whose size is known without walking it.
template <class R>
concept sized_iterable = iterable<R> && requires(R& r) {
    std::ranges::size(r);
};

} // namespace orchestrix::detail
