#pragma once

#include <orchestrix/core/errors.hpp>
#include <orchestrix/core/message.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace orchestrix {

namespace detail {

/// The side of a bus that a `Subscription` talks to.
class subscription_owner {
public:
    subscription_owner() = default;
    subscription_owner(const subscription_owner&) = delete;
    subscription_owner& operator=(const subscription_owner&) = delete;
    virtual ~subscription_owner() = default;

    virtual void unsubscribe(std::uint64_t key) noexcept = 0;
};

/// The compiler's spelling of `T`, for messages only (never persisted: it differs between compilers).
template <class T>
[[nodiscard]] constexpr std::string_view compiler_type_name() noexcept {
#if defined(__clang__) || defined(__GNUC__)
    constexpr std::string_view function = __PRETTY_FUNCTION__;
    constexpr std::string_view marker = "T = ";
    constexpr std::size_t begin = function.find(marker);
    if constexpr (begin == std::string_view::npos) {
        return function;
    } else {
        constexpr std::size_t start = begin + marker.size();
        constexpr std::size_t end = function.find_first_of(";]", start);
        return function.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    }
#elif defined(_MSC_VER)
    return __FUNCSIG__;
#else
    return "unknown type";
#endif
}

/// The name of a message type for messages: its `type_name` (or `event_traits` name) if it declares one,
/// the compiler's spelling of the type otherwise.
template <class T>
[[nodiscard]] constexpr std::string_view message_name() noexcept {
    if constexpr (named_event<T>) {
        return event_name<T>;
    } else if constexpr (requires {
                             { T::type_name } -> std::convertible_to<std::string_view>;
                         }) {
        return std::string_view(T::type_name);
    } else {
        return compiler_type_name<T>();
    }
}

template <class E, class V>
struct variant_index_of;
template <class E, class... Ts>
struct variant_index_of<E, std::variant<Ts...>> {
    static constexpr std::size_t value = [] {
        constexpr bool matches[] = {std::is_same_v<E, Ts>...};
        for (std::size_t i = 0; i < sizeof...(Ts); ++i)
            if (matches[i]) return i;
        return sizeof...(Ts);
    }();
};

/// The index of alternative `E` in the variant `V` (its size if `E` is no alternative).
template <class E, class V>
inline constexpr std::size_t variant_index_v = variant_index_of<E, V>::value;

} // namespace detail

/// A handler's registration on a bus. Move-only; destroying it (or calling `unsubscribe()`) removes the
/// handler. A subscription may outlive its bus: it then does nothing.
///
///     orchestrix::Subscription s = bus.subscribe<UserCreated>([](const UserCreated& e) { ... });
///     ...
///     s.unsubscribe();        // or let `s` go out of scope
///
/// `release()` gives the handler up to the bus: it stays subscribed as long as the bus lives.
class [[nodiscard]] Subscription {
public:
    /// A subscription that refers to no handler: `active()` is false.
    Subscription() noexcept = default;

    /// Used by buses: the handler with `key` on `owner`, whose public id is `id`.
    Subscription(std::weak_ptr<detail::subscription_owner> owner, std::uint64_t key, std::uint64_t id) noexcept
        : owner_(std::move(owner)), key_(key), id_(id) {}

    Subscription(Subscription&& other) noexcept
        : owner_(std::move(other.owner_)), key_(std::exchange(other.key_, 0)), id_(std::exchange(other.id_, 0)) {}

    /// Unsubscribes the handler this subscription held, then takes over `other`'s.
    Subscription& operator=(Subscription&& other) noexcept {
        if (this != &other) {
            unsubscribe();
            owner_ = std::move(other.owner_);
            key_ = std::exchange(other.key_, 0);
            id_ = std::exchange(other.id_, 0);
        }
        return *this;
    }

    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

    ~Subscription() { unsubscribe(); }

    /// Removes the handler from its bus. Idempotent; does nothing if the bus is gone. See each bus for
    /// what happens to a call of the handler that is running meanwhile.
    void unsubscribe() noexcept {
        if (key_ == 0) return;
        if (auto owner = owner_.lock()) owner->unsubscribe(key_);
        owner_.reset();
        key_ = 0;
    }

    /// Leaves the handler subscribed for the rest of its bus's life and empties this handle.
    void release() noexcept {
        owner_.reset();
        key_ = 0;
    }

    /// Whether this handle still holds a handler on a bus that is alive.
    [[nodiscard]] bool active() const noexcept { return key_ != 0 && !owner_.expired(); }

    /// The bus-wide id of the subscription, as reported by `HandlerFailure::subscription_id` (0 if empty).
    /// Kept after `unsubscribe()` so a failure can still be matched to it.
    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

private:
    std::weak_ptr<detail::subscription_owner> owner_;
    std::uint64_t key_ = 0;
    std::uint64_t id_ = 0;
};

namespace detail {

inline HandlerFailure describe_failure(std::string_view event_type, std::uint64_t subscription_id,
                                       std::exception_ptr error) {
    std::string message;
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        message = e.what();
    } catch (...) {
        message = "an exception that is not a std::exception";
    }
    return HandlerFailure{std::string(event_type), subscription_id, std::move(error), std::move(message)};
}

} // namespace detail

/// A synchronous bus for event type `E`: `subscribe<E>(handler)` returns a `Subscription`, and
/// `publish(e)` runs the handlers before it returns.
template <class Bus, class E>
concept message_bus = requires(Bus& bus, const E& e, void (*handler)(const E&)) {
    { bus.template subscribe<E>(handler) } -> std::same_as<Subscription>;
    { bus.publish(e) } -> std::same_as<void>;
};

template <class T>
class Completion; // async/completion.hpp: the concept below names the type without needing its definition

/// An asynchronous bus for event type `E`: `publish(e)` returns at once with a `Completion<void>` that
/// becomes ready when every handler has run.
template <class Bus, class E>
concept async_message_bus = requires(Bus& bus, const E& e, void (*handler)(const E&)) {
    { bus.template subscribe<E>(handler) } -> std::same_as<Subscription>;
    { bus.publish(e) } -> std::same_as<Completion<void>>;
    bus.shutdown();
};

} // namespace orchestrix
