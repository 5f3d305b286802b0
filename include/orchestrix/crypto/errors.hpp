#pragma once

// The errors of the crypto module.

#include <orchestrix/core/errors.hpp>

namespace orchestrix {

/// libsodium could not be initialised, or refused to encrypt a value (one too long for it). Nothing was
/// encrypted, and a store that was appending wrote nothing.
class CryptoError : public Error {
public:
    using Error::Error;
};

} // namespace orchestrix
