#pragma once

namespace orchestrix::detail {

/// `false`, but dependent on `T...`: the condition of a `static_assert` that must fire only when the
/// template that holds it is instantiated (the branch of an `if constexpr` the user's type reached).
template <class...>
inline constexpr bool always_false = false;

} // namespace orchestrix::detail
