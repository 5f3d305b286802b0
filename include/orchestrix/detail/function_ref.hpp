#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace orchestrix::detail {

template <class Signature>
class FunctionRef;

/// A non-owning reference to a callable, for code that is the same for every callable a template is given:
/// the template passes its lambda as a `FunctionRef` to a function instantiated once, instead of
/// instantiating that function per lambda. The callable must outlive the call (a lambda argument does).
template <class R, class... Args>
class FunctionRef<R(Args...)> {
public:
    template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
        FunctionRef(F&& f)
    noexcept // NOLINT(google-explicit-constructor,bugprone-forwarding-reference-overload)
        : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
          call_([](void* object, Args... args) -> R {
              return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
          }) {}

    R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

private:
    void* object_;
    R (*call_)(void*, Args...);
};

} // namespace orchestrix::detail
