#pragma once

// A synchronous face over an asynchronous store (`orchestrix::async_event_store`): each call issues the
// asynchronous operation and waits for its completion. It lets the event-store contract run unchanged over
// every asynchronous store.

#include <orchestrix/async/event_store.hpp>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace test_support {

template <orchestrix::async_event_store Async>
class BlockingStore {
public:
    using event_type = typename Async::event_type;
    using envelope_type = typename Async::envelope_type;
    using recorded_type = typename Async::recorded_type;

    explicit BlockingStore(std::unique_ptr<Async> async) : async_(std::move(async)) {}

    orchestrix::AppendResult append(std::string_view stream, std::span<const envelope_type> events,
                                    orchestrix::ExpectedVersion expected) {
        return async_
            ->append_async(std::string(stream), std::vector<envelope_type>(events.begin(), events.end()), expected)
            .get();
    }
    orchestrix::AppendResult append(std::string_view stream, std::initializer_list<envelope_type> events,
                                    orchestrix::ExpectedVersion expected) {
        return append(stream, std::span<const envelope_type>(events.begin(), events.size()), expected);
    }
    template <class Range>
    requires(!std::convertible_to<Range, std::span<const envelope_type>>) && requires(const Range& r) {
        std::begin(r);
        std::end(r);
    }
    orchestrix::AppendResult append(std::string_view stream, const Range& events,
                                    orchestrix::ExpectedVersion expected) {
        std::vector<envelope_type> batch;
        for (const auto& e : events) batch.emplace_back(e);
        return async_->append_async(std::string(stream), std::move(batch), expected).get();
    }

    [[nodiscard]] std::vector<recorded_type> read_stream(std::string_view stream,
                                                         orchestrix::stream_version_t from_version = 1,
                                                         std::uint64_t max_count = orchestrix::unlimited) const {
        return async_->read_stream_async(std::string(stream), from_version, max_count).get();
    }
    [[nodiscard]] std::vector<recorded_type> read_all(orchestrix::position_t from_position = 1,
                                                      std::uint64_t max_count = orchestrix::unlimited) const {
        return async_->read_all_async(from_position, max_count).get();
    }
    [[nodiscard]] orchestrix::stream_version_t stream_version(std::string_view stream) const {
        return async_->stream_version_async(std::string(stream)).get();
    }

    [[nodiscard]] Async& async() noexcept { return *async_; }

private:
    std::unique_ptr<Async> async_;
};

} // namespace test_support
