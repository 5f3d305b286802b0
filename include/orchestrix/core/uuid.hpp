#pragma once

#include <orchestrix/detail/chrono.hpp>

#include <array>
#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>

#if defined(__linux__) && __has_include(<sys/random.h>)
#include <sys/random.h>
#define ORCHESTRIX_UUID_HAS_GETRANDOM 1
#else
#define ORCHESTRIX_UUID_HAS_GETRANDOM 0
#endif
#if __has_include(<pthread.h>) && !defined(_WIN32)
#include <pthread.h>
#define ORCHESTRIX_UUID_HAS_ATFORK 1
#else
#define ORCHESTRIX_UUID_HAS_ATFORK 0
#endif
#if !ORCHESTRIX_UUID_HAS_GETRANDOM
#include <random>
#endif
#if defined(__linux__)
#include <ctime> // clock_gettime, CLOCK_REALTIME_COARSE
#endif
#include <string>
#include <string_view>
#include <type_traits>

namespace orchestrix {

namespace detail {

/// The random bits of generated UUIDs: xoshiro256** per thread, seeded from the operating system
/// (getrandom on Linux, std::random_device elsewhere). A fork counter makes a child process reseed.
class uuid_random {
public:
    static uuid_random& local() {
        thread_local uuid_random generator;
        const std::uint64_t forks = fork_count();
        if (generator.forks_ != forks) {
            generator.seed();
            generator.forks_ = forks;
            generator.last_millis = 0; // the child's next id starts from fresh random bits, not the parent's
        }
        return generator;
    }

    // The last id this thread generated, for monotonic generation (see `Uuid::generate`): its timestamp,
    // its 12 rand_a bits and its 62 rand_b bits.
    std::uint64_t last_millis = 0;
    std::uint64_t last_rand_a = 0;
    std::uint64_t last_rand_b = 0;

    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17U;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

private:
    uuid_random() : forks_(fork_count()) { seed(); }

    // How many times this process has been the child of a fork. Only the fork handler writes it, in a child
    // that has a single thread at that moment, so a plain integer is race-free.
    static std::uint64_t& fork_counter() noexcept {
        static std::uint64_t count = 0;
        return count;
    }
    static std::uint64_t fork_count() noexcept {
#if ORCHESTRIX_UUID_HAS_ATFORK
        static const bool registered = [] {
            ::pthread_atfork(nullptr, nullptr, [] { ++fork_counter(); });
            return true;
        }();
        (void)registered;
#endif
        return fork_counter();
    }

    void seed() {
        std::uint64_t seed_words[4] = {0, 0, 0, 0};
        bool seeded = false;
#if ORCHESTRIX_UUID_HAS_GETRANDOM
        seeded = ::getrandom(seed_words, sizeof seed_words, 0) == static_cast<ssize_t>(sizeof seed_words);
#endif
        if (!seeded) {
#if ORCHESTRIX_UUID_HAS_GETRANDOM
            // getrandom refused (a sandbox filter, say): the kernel's pool through its device file, and
            // at the very least the clock and this thread's address.
            if (std::FILE* urandom = std::fopen("/dev/urandom", "rb")) {
                seeded = std::fread(seed_words, sizeof seed_words, 1, urandom) == 1;
                std::fclose(urandom);
            }
            if (!seeded) {
                seed_words[0] ^=
                    static_cast<std::uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
                seed_words[1] ^= reinterpret_cast<std::uintptr_t>(&seed_words);
            }
#else
            std::random_device device;
            for (auto& word : seed_words) word = (std::uint64_t{device()} << 32U) | device();
#endif
        }
        // Expand through splitmix64 so that no state word is zero.
        std::uint64_t mix = seed_words[0] ^ seed_words[1] ^ seed_words[2] ^ seed_words[3];
        for (std::size_t i = 0; i < 4; ++i) {
            mix += 0x9E3779B97F4A7C15ULL;
            std::uint64_t z = mix ^ seed_words[i];
            z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
            state_[i] = z ^ (z >> 31U);
        }
    }

    static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
        return (x << static_cast<unsigned>(k)) | (x >> static_cast<unsigned>(64 - k));
    }

    std::uint64_t state_[4]{};
    std::uint64_t forks_;
};

/// The millisecond timestamp of generated UUIDs: Linux's coarse wall clock (CLOCK_REALTIME_COARSE, a read of
/// the time the kernel last stored, no system call and no time-counter read: a few nanoseconds instead of
/// about 25), elsewhere `std::chrono::system_clock`. The coarse clock trails the precise one by about one
/// kernel tick (`uuid_clock_resolution()`: 4 ms on most distributions; a few more on a loaded machine).
inline std::uint64_t uuid_clock_millis() noexcept {
#if defined(__linux__) && defined(CLOCK_REALTIME_COARSE)
    timespec now{};
    if (::clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0) {
        return static_cast<std::uint64_t>(now.tv_sec) * 1000U + static_cast<std::uint64_t>(now.tv_nsec) / 1'000'000U;
    }
#endif
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

/// How far the timestamp of a generated UUID may trail `std::chrono::system_clock::now()`.
inline std::chrono::nanoseconds uuid_clock_resolution() noexcept {
#if defined(__linux__) && defined(CLOCK_REALTIME_COARSE)
    timespec resolution{};
    if (::clock_getres(CLOCK_REALTIME_COARSE, &resolution) == 0) {
        return std::chrono::seconds(resolution.tv_sec) + std::chrono::nanoseconds(resolution.tv_nsec);
    }
#endif
    return std::chrono::milliseconds(1);
}

} // namespace detail

/// A 128-bit universally unique identifier (RFC 9562).
///
/// `Uuid::generate()` makes version 7 identifiers: a 48-bit Unix-millisecond timestamp followed by random
/// bits, so ids made later sort later and index well in a database. Within one thread they strictly
/// increase (RFC 9562, section 6.2, method 2). The default-constructed value is the nil UUID, which no
/// generated id ever equals.
class Uuid {
public:
    using bytes_type = std::array<std::uint8_t, 16>;

    constexpr Uuid() noexcept = default;
    constexpr explicit Uuid(const bytes_type& bytes) noexcept : bytes_(bytes) {}

    /// A new version-7 UUID. Thread-safe: each thread has its own generator, seeded from the operating
    /// system's entropy and seeded again in a child process after `fork()`, so parent and child never
    /// produce the same ids.
    ///
    /// Each id a thread generates is greater than the one before it, even within one millisecond or when
    /// the clock steps back: the previous id's 74 random bits are then advanced by a random amount of at
    /// most 2^32 (an overflow carries into the timestamp). Stores rely on it: an id greater than every
    /// stored id needs no lookup to be known new.
    ///
    /// Cost: no system call and no entropy read per id. The timestamp comes from the kernel's coarse wall
    /// clock on Linux, so it trails the precise time by about one kernel tick (typically 4 ms, a few more on
    /// a loaded machine; RFC 9562 lets an implementation lower the timestamp's precision), and the random bits from the
    /// thread's generator, seeded once from the operating system.
    [[nodiscard]] static Uuid generate() {
        constexpr std::uint64_t rand_b_limit = std::uint64_t{1} << 62U;
        const std::uint64_t now = detail::uuid_clock_millis();
        detail::uuid_random& random = detail::uuid_random::local();
        std::uint64_t millis = now & 0xFFFF'FFFF'FFFFULL;
        std::uint64_t rand_a = 0;
        std::uint64_t rand_b = 0;
        if (millis > random.last_millis) {
            const std::uint64_t bits = random.next();
            rand_a = bits >> 52U;
            rand_b = random.next() >> 2U;
        } else { // same millisecond, or the clock went back: continue from the last id
            millis = random.last_millis;
            rand_a = random.last_rand_a;
            rand_b = random.last_rand_b + 1 + (random.next() >> 32U);
            if (rand_b >= rand_b_limit) {
                rand_b -= rand_b_limit;
                if (++rand_a == 0x1000U) {
                    rand_a = 0;
                    ++millis;
                }
            }
        }
        random.last_millis = millis;
        random.last_rand_a = rand_a;
        random.last_rand_b = rand_b;
        const std::uint64_t high = (millis << 16U) | 0x7000U | rand_a;   // version 7
        const std::uint64_t low = (std::uint64_t{0b10} << 62U) | rand_b; // RFC 9562 variant
        bytes_type b{};
        for (std::size_t i = 0; i < 8; ++i) {
            b[i] = static_cast<std::uint8_t>(high >> (56 - 8 * i));
            b[8 + i] = static_cast<std::uint8_t>(low >> (56 - 8 * i));
        }
        return Uuid{b};
    }

    /// Parses the canonical 36-character form (`8-4-4-4-12` hex digits, either case).
    /// Returns `std::nullopt` for anything else.
    [[nodiscard]] static constexpr std::optional<Uuid> parse(std::string_view text) noexcept {
        if (text.size() != 36) return std::nullopt;
        bytes_type b{};
        std::size_t out = 0;
        for (std::size_t i = 0; i < text.size();) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (text[i] != '-') return std::nullopt;
                ++i;
                continue;
            }
            const int hi = hex_value(text[i]);
            const int lo = hex_value(text[i + 1]);
            if (hi < 0 || lo < 0) return std::nullopt;
            b[out++] = static_cast<std::uint8_t>(hi * 16 + lo);
            i += 2;
        }
        return Uuid{b};
    }

    [[nodiscard]] constexpr bool is_nil() const noexcept { return (high() | low()) == 0; }

    [[nodiscard]] constexpr const bytes_type& bytes() const noexcept { return bytes_; }

    /// The canonical lower-case form, e.g. `01890a5d-ac96-774b-bcce-b302099a8057`.
    [[nodiscard]] std::string to_string() const {
        constexpr std::string_view digits = "0123456789abcdef";
        std::string text;
        text.reserve(36);
        for (std::size_t i = 0; i < bytes_.size(); ++i) {
            if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
            text.push_back(digits[bytes_[i] >> 4U]);
            text.push_back(digits[bytes_[i] & 0x0FU]);
        }
        return text;
    }

    friend constexpr bool operator==(const Uuid& a, const Uuid& b) noexcept {
        // Two 64-bit comparisons instead of a call to memcmp: ids are compared on every append.
        return a.high() == b.high() && a.low() == b.low();
    }
    friend constexpr std::strong_ordering operator<=>(const Uuid& a, const Uuid& b) noexcept {
        if (auto c = a.high() <=> b.high(); std::is_neq(c)) return c;
        return a.low() <=> b.low();
    }

    /// The first and last 8 bytes as big-endian integers (ordering by them orders by bytes).
    [[nodiscard]] constexpr std::uint64_t high() const noexcept { return load(0); }
    [[nodiscard]] constexpr std::uint64_t low() const noexcept { return load(8); }

private:
    static constexpr int hex_value(char c) noexcept {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    constexpr std::uint64_t load(std::size_t offset) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
        if (!std::is_constant_evaluated()) { // one load and a byte swap instead of eight shifts
            std::uint64_t raw = 0;
            std::memcpy(&raw, bytes_.data() + offset, sizeof raw);
            if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(raw);
            return raw;
        }
#endif
        std::uint64_t value = 0;
        for (std::size_t i = 0; i < 8; ++i) value = (value << 8U) | bytes_[offset + i];
        return value;
    }

    bytes_type bytes_{};
};

} // namespace orchestrix

// Specializations of other libraries' templates are left out of the API reference (docs/Doxyfile.in).
/// @cond
template <>
struct std::hash<orchestrix::Uuid> {
    std::size_t operator()(const orchestrix::Uuid& id) const noexcept {
        // A 64-bit mix of both halves (the multiply-xorshift finaliser), good for sequential ids too.
        std::uint64_t h = id.high() ^ (id.low() * 0x9E3779B97F4A7C15ULL);
        h ^= h >> 32U;
        h *= 0xD6E8FEB86659FD93ULL;
        h ^= h >> 32U;
        return static_cast<std::size_t>(h);
    }
};
/// @endcond
