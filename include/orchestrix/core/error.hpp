#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace orchestrix {

/// The root of every exception orchestrix throws. Catch `orchestrix::Error` to handle them all.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// An argument was malformed: an empty or over-long stream id, a version out of range, and the like.
/// `argument()` names the parameter that was wrong. Nothing was written.
class InvalidArgumentError : public Error {
public:
    InvalidArgumentError(std::string argument, const std::string& message)
        : Error(message), argument_(std::move(argument)) {}

    [[nodiscard]] const std::string& argument() const noexcept { return argument_; }

private:
    std::string argument_;
};

} // namespace orchestrix
