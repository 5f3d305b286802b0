#pragma once

#include <orchestrix/core/errors.hpp>

#include <string>
#include <string_view>

namespace orchestrix {

/// A second handler was registered for a command type that has one. Nothing changed.
class HandlerAlreadyRegisteredError : public Error {
public:
    explicit HandlerAlreadyRegisteredError(std::string_view command_type)
        : Error("a handler for command '" + std::string(command_type) +
                "' is registered already; a command type has exactly one handler (unsubscribe the first one "
                "before registering another)"),
          command_type_(command_type) {}

    /// The command's `type_name`, or the compiler's name for its type if it declares none.
    [[nodiscard]] const std::string& command_type() const noexcept { return command_type_; }

private:
    std::string command_type_;
};

/// A command was dispatched, but no handler is registered for its type. Nothing ran.
class NoHandlerError : public Error {
public:
    explicit NoHandlerError(std::string_view command_type)
        : Error("no handler is registered for command '" + std::string(command_type) + "'"),
          command_type_(command_type) {}

    /// The command's `type_name`, or the compiler's name for its type if it declares none.
    [[nodiscard]] const std::string& command_type() const noexcept { return command_type_; }

private:
    std::string command_type_;
};

} // namespace orchestrix
