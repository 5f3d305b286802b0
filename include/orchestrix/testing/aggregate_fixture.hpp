#pragma once

#include <orchestrix/core/aggregate.hpp>
#include <orchestrix/core/event_fields.hpp>
#include <orchestrix/core/message.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <ostream>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#if __has_include(<cxxabi.h>)
#include <cstdlib>
#include <cxxabi.h>
#include <memory>
#endif

/// Given/when/then tests for aggregates:
///
///     orchestrix::AggregateFixture<User> fixture;
///     fixture.given(UserCreated{"user-123", "John", "john@example.com"})
///            .when(RenameUser{"John Smith"})
///            .then(UserRenamed{"John Smith"});
///
/// A check that fails throws `orchestrix::FixtureFailure` whose `what()` shows the expected and the actual
/// events side by side. See docs/testing.md.
namespace orchestrix {

/// A fixture's expectation did not hold; `what()` explains the difference. Catch2 reports it as the test's
/// failure ("due to unexpected exception with message: ..."); without a framework, an uncaught one ends the
/// program and the standard library prints its message.
class FixtureFailure : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

namespace detail {

/// A readable name for a C++ type ("std::logic_error" rather than "St11logic_error").
[[nodiscard]] inline std::string type_display_name(const std::type_info& type) {
#if __has_include(<cxxabi.h>)
    int status = 0;
    const std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                      std::free);
    if (status == 0 && name) return name.get();
#endif
    return type.name();
}

/// "TypeName: what()" for the exception in `error`.
[[nodiscard]] inline std::string describe_exception(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return type_display_name(typeid(e)) + ": " + e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

template <class E>
concept json_printable = requires(const E& e) {
    nlohmann::json(e);
};

template <class E>
concept stream_printable = requires(std::ostream& os, const E& e) {
    os << e;
};

/// The payload of one event as text: an fmt formatter, else nlohmann `to_json`, else `operator<<`, else
/// nothing (then only the event's name is shown).
template <class E>
[[nodiscard]] std::string describe_payload(const E& e) {
    if constexpr (fmt::is_formattable<E>::value) {
        return fmt::format("{}", e);
    } else if constexpr (json_printable<E>) {
        return nlohmann::json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else if constexpr (stream_printable<E>) {
        std::ostringstream out;
        out << e;
        return out.str();
    } else {
        return {};
    }
}

} // namespace detail

namespace diagnostic {

/// What a call on `AggregateFixture<Aggregate>` was given instead of the aggregate's events (see namespace
/// diagnostic in core/message.hpp).
template <class Aggregate>
struct in_fixture_of {
    template <class Argument>
    struct pass_one_of_its_events_not; // given()/then() take the aggregate's events, or ranges of them
};

template <class...>
inline constexpr bool fixture_takes = false;

} // namespace diagnostic

/// Tests one aggregate type: `given` past events, `when` a command, `then` the events it must raise (or
/// `then_error<E>()`, or `then_nothing()`). Every `then...` throws `FixtureFailure` when its expectation does
/// not hold and returns the fixture otherwise, so checks chain.
template <class Aggregate>
class AggregateFixture {
public:
    using event_type = typename Aggregate::event_type;
    /// Turns an event into text for failure messages; replaces the built-in description.
    using Printer = std::function<std::string(const event_type&)>;

    /// Uses `printer` to describe events in failure messages (by default: the event's stable name and its
    /// payload through an fmt formatter, nlohmann `to_json` or `operator<<`, whichever the event has).
    AggregateFixture& describe_events_with(Printer printer) {
        printer_ = std::move(printer);
        return *this;
    }

    /// The aggregate's history: events (alternatives of its variant, or the variant itself), or ranges of them,
    /// replayed in order. Call before `when`; `given()` with nothing is a new aggregate.
    template <class... Events>
    AggregateFixture& given(const Events&... events) {
        require_no_when("given()");
        (given_one(events), ...);
        return *this;
    }

    /// Earlier commands that bring the aggregate to the state under test; the events they raise count as
    /// history. A command that throws here is a `FixtureFailure`.
    template <class... Commands>
    AggregateFixture& given_commands(const Commands&... commands) {
        require_no_when("given_commands()");
        (given_command(commands), ...);
        return *this;
    }

    /// Executes the command under test, recording the events it raises or the exception it throws.
    template <class Command>
    AggregateFixture& when(const Command& command) {
        require_no_when("when()");
        when_ = detail::type_display_name(typeid(Command));
        aggregate_.mark_committed();
        try {
            (void)aggregate_.execute(command);
        } catch (...) {
            error_ = std::current_exception();
        }
        for (const auto& envelope : aggregate_.uncommitted_events()) raised_.push_back(envelope.event);
        return *this;
    }

    /// The command must have succeeded and raised exactly these events, in this order (payloads compared
    /// with `same_event`: `==`, or field by field for an event that names its fields; metadata is ignored). Arguments
    /// are events or ranges of events.
    template <class... Expected>
    AggregateFixture& then(const Expected&... expected) {
        require_when("then()");
        std::vector<event_type> wanted;
        (append_events(wanted, expected), ...);
        if (error_) {
            fail("then()",
                 fmt::format("expected {}, but the command threw {}", count(wanted.size()),
                             detail::describe_exception(error_)),
                 wanted);
        }
        if (wanted.size() == raised_.size() &&
            std::equal(wanted.begin(), wanted.end(), raised_.begin(),
                       [](const event_type& a, const event_type& b) { return same_event(a, b); })) {
            return *this;
        }
        std::string reason = "the command raised other events than expected";
        if (wanted.size() == raised_.size() &&
            std::is_permutation(wanted.begin(), wanted.end(), raised_.begin(),
                                [](const event_type& a, const event_type& b) { return same_event(a, b); })) {
            reason = "the command raised the expected events, but in another order";
        } else if (wanted.size() != raised_.size()) {
            reason = fmt::format("expected {}, but the command raised {}", count(wanted.size()), raised_.size());
        }
        fail("then()", reason, wanted);
    }

    /// The command must have thrown an `Error` (or a type derived from it); if `message_contains` is not
    /// empty, its `what()` must contain that text. `then_error()` accepts any `std::exception`.
    template <class Error = std::exception>
    AggregateFixture& then_error(std::string_view message_contains = {}) {
        require_when("then_error()");
        const std::string check = fmt::format("then_error<{}>()", detail::type_display_name(typeid(Error)));
        if (!error_) {
            fail(check,
                 fmt::format("expected the command to throw {}, but it succeeded",
                             detail::type_display_name(typeid(Error))),
                 {});
        }
        try {
            std::rethrow_exception(error_);
        } catch (const Error& e) {
            if constexpr (requires { e.what(); }) {
                const std::string_view what = e.what();
                if (what.find(message_contains) == std::string_view::npos) {
                    fail(check,
                         fmt::format(R"(expected a message containing "{}", but the message is "{}")", message_contains,
                                     what),
                         {});
                }
            }
        } catch (...) {
            fail(check,
                 fmt::format("expected the command to throw {}, but it threw {}",
                             detail::type_display_name(typeid(Error)), detail::describe_exception(error_)),
                 {});
        }
        return *this;
    }

    /// The command must have succeeded without raising any event.
    AggregateFixture& then_nothing() {
        require_when("then_nothing()");
        if (error_) {
            fail("then_nothing()",
                 fmt::format("expected no events, but the command threw {}", detail::describe_exception(error_)), {});
        }
        if (!raised_.empty()) {
            fail("then_nothing()", fmt::format("expected no events, but the command raised {}", raised_.size()), {});
        }
        return *this;
    }

    /// `predicate(aggregate)` must hold after the command; `description` says what it checks.
    template <class Predicate>
    AggregateFixture& then_state(std::string_view description, Predicate&& predicate) {
        require_when("then_state()");
        if (!std::invoke(std::forward<Predicate>(predicate), std::as_const(aggregate_))) {
            fail("then_state()", fmt::format("expected the aggregate to satisfy \"{}\", but it does not", description),
                 {});
        }
        return *this;
    }

    /// The aggregate under test (after `when`, with the command's events applied).
    [[nodiscard]] const Aggregate& aggregate() const noexcept { return aggregate_; }
    /// The events the command raised.
    [[nodiscard]] const std::vector<event_type>& raised_events() const noexcept { return raised_; }
    /// Describes one event the way failure messages do: "user.renamed {\"name\":\"John\"}".
    [[nodiscard]] std::string describe(const event_type& event) const {
        if (printer_) return printer_(event);
        return std::visit(
            [](const auto& e) {
                std::string text(event_name<std::remove_cvref_t<decltype(e)>>);
                const std::string payload = detail::describe_payload(e);
                if (!payload.empty()) text += " " + payload;
                return text;
            },
            event);
    }

private:
    template <class E>
    void given_one(const E& e) {
        if constexpr (alternative_of<E, event_type> || std::is_same_v<E, event_type>) {
            const event_type& event = e; // the event itself, or a variant made from the alternative
            try {
                aggregate_.replay(event);
            } catch (...) {
                throw FixtureFailure(fmt::format("given(): replaying {} threw {}", describe(event),
                                                 detail::describe_exception(std::current_exception())));
            }
            history_.push_back(event);
        } else if constexpr (std::ranges::input_range<E>) {
            for (const auto& element : e) given_one(element);
        } else {
            (void)sizeof(typename diagnostic::in_fixture_of<Aggregate>::template pass_one_of_its_events_not<E>);
            static_assert(diagnostic::fixture_takes<Aggregate, E>,
                          "AggregateFixture::given: each argument must be one of the aggregate's events (an "
                          "alternative of its variant, or the variant) or a range of them");
        }
    }

    template <class Command>
    void given_command(const Command& command) {
        try {
            (void)aggregate_.execute(command);
        } catch (...) {
            throw FixtureFailure(fmt::format("given_commands(): {} threw {}",
                                             detail::type_display_name(typeid(Command)),
                                             detail::describe_exception(std::current_exception())));
        }
        for (const auto& envelope : aggregate_.uncommitted_events()) history_.push_back(envelope.event);
        aggregate_.mark_committed();
    }

    template <class E>
    static void append_events(std::vector<event_type>& out, const E& e) {
        if constexpr (alternative_of<E, event_type> || std::is_same_v<E, event_type>) {
            out.emplace_back(e);
        } else if constexpr (std::ranges::input_range<E>) {
            for (const auto& element : e) append_events(out, element);
        } else {
            (void)sizeof(typename diagnostic::in_fixture_of<Aggregate>::template pass_one_of_its_events_not<E>);
            static_assert(diagnostic::fixture_takes<Aggregate, E>,
                          "AggregateFixture::then: each argument must be one of the aggregate's events (an "
                          "alternative of its variant, or the variant) or a range of them");
        }
    }

    void require_no_when(std::string_view call) const {
        if (!when_.empty()) {
            throw FixtureFailure(fmt::format("{} after when(): a fixture tests one command; put earlier commands "
                                             "in given_commands() and use a new fixture for the next test",
                                             call));
        }
    }
    void require_when(std::string_view call) const {
        if (when_.empty()) throw FixtureFailure(fmt::format("{} needs a command: call when(command) first", call));
    }

    static std::string count(std::size_t n) { return fmt::format("{} event{}", n, n == 1 ? "" : "s"); }

    // Throws a FixtureFailure that names the check, the reason, the scenario and, when events are involved,
    // the expected and actual events side by side.
    [[noreturn]] void fail(std::string_view check, std::string_view reason,
                           const std::vector<event_type>& wanted) const {
        std::string text = fmt::format("AggregateFixture<{}>::{} failed: {}\n",
                                       detail::type_display_name(typeid(Aggregate)), check, reason);
        text += fmt::format("  given: {}\n", history_.empty() ? std::string("no events") : count(history_.size()));
        for (const auto& e : history_) text += fmt::format("    {}\n", describe(e));
        text += fmt::format("  when:  {}\n", when_);
        const std::size_t rows = std::max(wanted.size(), raised_.size());
        if (rows == 0) {
            if (error_) text += fmt::format("  threw: {}\n", detail::describe_exception(error_));
            throw_failure(std::move(text));
        }
        std::vector<std::string> left(rows, "(none)");
        std::vector<std::string> right(rows, "(none)");
        for (std::size_t i = 0; i < wanted.size(); ++i) left[i] = describe(wanted[i]);
        for (std::size_t i = 0; i < raised_.size(); ++i) right[i] = describe(raised_[i]);
        std::size_t width = std::string_view("expected").size();
        for (const auto& l : left) width = std::max(width, std::min<std::size_t>(l.size(), 60));
        text += fmt::format("  then:\n     #  {:<{}} | {}\n", "expected", width, error_ ? "actual (threw)" : "actual");
        for (std::size_t i = 0; i < rows; ++i) {
            const bool same = i < wanted.size() && i < raised_.size() && wanted[i] == raised_[i];
            const bool is_wanted = i < wanted.size();
            const bool is_raised = !error_ && i < raised_.size();
            text += fmt::format("  {} {:>2}  {:<{}} | {}\n", same ? ' ' : '*', i + 1, left[i], width,
                                is_raised ? right[i] : std::string(is_wanted && error_ ? "-" : "(none)"));
        }
        if (error_) text += fmt::format("  threw: {}\n", detail::describe_exception(error_));
        throw_failure(std::move(text));
    }

    [[noreturn]] static void throw_failure(std::string text) {
        while (!text.empty() && text.back() == '\n') text.pop_back();
        throw FixtureFailure(text);
    }

    Aggregate aggregate_{};
    std::vector<event_type> history_;
    std::vector<event_type> raised_;
    std::exception_ptr error_;
    std::string when_;
    Printer printer_;
};

} // namespace orchestrix
