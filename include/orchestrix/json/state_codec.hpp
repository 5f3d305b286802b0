#pragma once

// `json_state_codec<Aggregate>()`: snapshots of an aggregate as JSON (see <orchestrix/json.hpp>).

#include <orchestrix/core/snapshot.hpp>
#include <orchestrix/json/checked_conversion.hpp>
#include <orchestrix/json/codec.hpp>
#include <orchestrix/json/document.hpp>
#include <orchestrix/json/field.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace orchestrix {

namespace detail {

// The state text of a snapshot as JSON, parsed strictly; errors are located below `/state`.
[[nodiscard]] inline nlohmann::json parse_state(std::string_view text, std::string_view type,
                                                const DecodeOptions& options) {
    try {
        return parse_json(text, options);
    } catch (DecodeError& e) {
        e.add_context("/state", type);
        throw;
    }
}

} // namespace detail

/// The nlohmann_json `StateCodec` of an aggregate, as `json_state_codec<Aggregate>()` returns it: encodes with
/// the aggregate's `to_json` (throws `EncodeError`), decodes strictly with its `from_json` (throws
/// `DecodeError`, paths below `/state`), and upcasts the states of older snapshot schema versions through
/// the upcasters registered with `upcast` (JSON k -> k + 1, as `JsonCodec` does for events).
///
///     .state = orchestrix::json_state_codec<Cart>()
///                  .upcast(1, [](nlohmann::json& state) { state["coupons_"] = nlohmann::json::array(); })
///                  .upcast(2, [](nlohmann::json& state) { state["checked_out_"] = false; }),
///
/// It is a `StateCodec<Aggregate>` and converts to one; the upcasters live in its `decode_old`, so copies
/// taken before a later `upcast` keep the chain they had.
template <class Aggregate>
class JsonStateCodec : public StateCodec<Aggregate> {
    static_assert(detail::json_convertible<Aggregate>,
                  "json_state_codec<Aggregate>: the aggregate needs nlohmann to_json/from_json; add "
                  "NLOHMANN_DEFINE_TYPE_INTRUSIVE(Aggregate, member1, member2, ...) inside the class");
    static_assert(detail::has_aggregate_type_name<Aggregate>,
                  "json_state_codec<Aggregate>: add `static constexpr std::string_view aggregate_type_name = "
                  "\"...\";` to the aggregate");

    static constexpr std::uint32_t current = snapshot_schema_version_of<Aggregate>;

public:
    explicit JsonStateCodec(DecodeOptions options = {}) : options_(options) {
        this->encode = [](const Aggregate& aggregate) {
            return to_checked_json(aggregate, Aggregate::aggregate_type_name).dump();
        };
        this->decode = [options](std::string_view text) {
            const std::string_view type = Aggregate::aggregate_type_name;
            return from_checked_json<Aggregate>(detail::parse_state(text, type, options), type, "/state", options);
        };
    }

    [[nodiscard]] const DecodeOptions& options() const noexcept { return options_; }

    /// Registers the upcaster of the state's JSON from snapshot schema version `from_version` to
    /// `from_version + 1`: either `void(nlohmann::json& state)`, changing the state in place, or, like an
    /// event `Upcaster`, `nlohmann::json(nlohmann::json state)`, returning the new one. Throws
    /// `InvalidArgumentError` for a version that is not below the aggregate's `snapshot_schema_version`, an
    /// empty function, or a second upcaster for the same step.
    ///
    /// Decoding an older state then fails with a `DecodeError` (the repository reports
    /// `SnapshotIssue::Reason::upcast_failed` and replays the full history) if a step of its chain has no
    /// upcaster (`missing_upcaster`), an upcaster throws (`upcast_failed`), or the upcast state does not decode.
    template <class F>
    JsonStateCodec& upcast(std::uint32_t from_version, F&& upcaster) & {
        add(from_version, to_upcaster(std::forward<F>(upcaster)));
        return *this;
    }

    template <class F>
    [[nodiscard]] JsonStateCodec upcast(std::uint32_t from_version, F&& upcaster) && {
        add(from_version, to_upcaster(std::forward<F>(upcaster)));
        return std::move(*this);
    }

private:
    using InPlace = std::function<void(nlohmann::json&)>;

    template <class F>
    static Upcaster to_upcaster(F&& upcaster) {
        using Fn = std::remove_cvref_t<F>;
        if constexpr (std::is_invocable_r_v<nlohmann::json, Fn&, nlohmann::json>) {
            return Upcaster(std::forward<F>(upcaster));
        } else {
            static_assert(std::is_invocable_v<Fn&, nlohmann::json&> && !std::is_invocable_v<Fn&, nlohmann::json&&>,
                          "JsonStateCodec::upcast: an upcaster either takes `nlohmann::json& state` and changes it "
                          "in place, or takes `nlohmann::json state` by value and returns the new state");
            InPlace in_place(std::forward<F>(upcaster));
            if (!in_place) return Upcaster{};
            return [in_place = std::move(in_place)](nlohmann::json state) {
                in_place(state);
                return state;
            };
        }
    }

    void add(std::uint32_t from_version, Upcaster upcaster) {
        const std::string call = "upcast(" + std::to_string(from_version) + ")";
        if (from_version == 0 || from_version >= current) {
            throw InvalidArgumentError(
                "from_version", current == 1
                                    ? call + ": the aggregate's snapshot_schema_version is 1, so there is "
                                             "nothing to upcast to"
                                    : call + ": the version must be between 1 and " + std::to_string(current - 1) +
                                          ", the aggregate's snapshot_schema_version minus one");
        }
        if (!upcaster) throw InvalidArgumentError("upcaster", call + ": the upcaster is empty");
        upcasters_.resize(current - 1);
        if (upcasters_[from_version - 1]) {
            throw InvalidArgumentError("from_version", call + ": that step has an upcaster already");
        }
        upcasters_[from_version - 1] = std::move(upcaster);
        this->decode_old = [options = options_, chain = std::make_shared<const std::vector<Upcaster>>(upcasters_)](
                               std::uint32_t schema_version, std::string_view text) {
            return decode_upcast(*chain, options, schema_version, text);
        };
    }

    // A state stored at `stored`, upcast step by step to the current schema version and decoded.
    static Aggregate decode_upcast(const std::vector<Upcaster>& chain, const DecodeOptions& options,
                                   std::uint32_t stored, std::string_view text) {
        const std::string type(Aggregate::aggregate_type_name);
        // A missing step is reported before the text is parsed: it is the reason the snapshot is unusable.
        const auto steps = detail::upcaster_steps(&chain, type, stored, current);
        nlohmann::json state = detail::parse_state(text, type, options);
        detail::run_upcasters(steps, type, "/state", stored, state);
        return from_checked_json<Aggregate>(state, type, "/state", options);
    }

    DecodeOptions options_;
    std::vector<Upcaster> upcasters_; // step k at [k - 1]
};

/// The nlohmann_json `StateCodec` of an aggregate (see `JsonStateCodec`); register snapshot upcasters on it
/// with `.upcast(k, upcaster)`.
template <class Aggregate>
[[nodiscard]] JsonStateCodec<Aggregate> json_state_codec(DecodeOptions options = {}) {
    return JsonStateCodec<Aggregate>(options);
}

} // namespace orchestrix
