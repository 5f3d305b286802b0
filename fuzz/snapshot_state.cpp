// Fuzz target: snapshot state decoding. Arbitrary bytes go to json_state_codec<Cart>().decode (the
// path a repository takes for a stored snapshot); a state that decodes must encode again, decode to an
// equal aggregate and encode to the same text. Only the decoding of the input may throw DecodeError.

#include "fuzz_check.hpp"
#include "support/snapshot_domain.hpp"

#include <orchestrix/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using orchestrix_fuzz::require;
    using snapshot_domain::Cart;
    static const orchestrix::StateCodec<Cart> codec = orchestrix::json_state_codec<Cart>();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::optional<Cart> first;
    try {
        first.emplace(codec.decode(text));
    } catch (const orchestrix::DecodeError&) { // the one expected failure: the input is not a state
        return 0;
    }
    // From here on the text is the library's own: a DecodeError is a bug and ends the run as a crash.
    const std::string encoded = codec.encode(*first);
    const Cart second = codec.decode(encoded);
    require(second == *first, "decode(encode(state)) != state");
    require(codec.encode(second) == encoded, "encoding a state is not deterministic");
    return 0;
}
