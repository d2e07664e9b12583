// The decoder tests' fixture: a plan-shaped PRODUCT_CREATED envelope,
// nesting builders, and a Decoder with the default or given limits.
// decoder_test.cpp and decoder_rejections_test.cpp use it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "event/envelope.h"

namespace evh::event {

inline constexpr std::string_view kProductCreated =
    R"({"eventId":"550e8400-e29b-41d4-a716-446655440000","eventType":"PRODUCT_CREATED",)"
    R"("timestamp":"2024-01-15T10:30:00.000Z","correlationId":"req-42",)"
    R"("payload":{"productId":"p-1","name":"Headphones","price":299.99,"category":"electronics"}})";

inline std::string nestedArrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A plain event whose payload holds `arrays` nested arrays: its deepest
// container is at depth 2 + arrays (top-level object 1, payload object 2).
inline std::string eventWithNesting(size_t arrays) {
  return R"({"eventId":"e","eventType":"T","timestamp":0,"payload":{"a":)" + nestedArrays(arrays) + "}}";
}

class DecoderTest : public ::testing::Test {
 protected:
  const std::vector<Item>& decode(std::string_view json) {
    decoder_.decode(makeMessage(json, "jollyjet:events:product", "dev:jollyjet:events:product"), items_);
    return items_;
  }

  const Event& onlyEvent(std::string_view json) {
    decode(json);
    EXPECT_EQ(items_.size(), 1U);
    const Event* event = items_.empty() ? nullptr : std::get_if<Event>(&items_.front());
    if (event == nullptr) {
      ADD_FAILURE() << "expected an event, got " << describe(items_);
      static const Event kEmpty;
      return kEmpty;
    }
    return *event;
  }

  const Rejected& onlyRejected(std::string_view json) {
    decode(json);
    EXPECT_EQ(items_.size(), 1U);
    const Rejected* rejected = items_.empty() ? nullptr : std::get_if<Rejected>(&items_.front());
    if (rejected == nullptr) {
      ADD_FAILURE() << "expected a rejection, got " << describe(items_);
      static const Rejected kEmpty;
      return kEmpty;
    }
    return *rejected;
  }

  static std::string describe(const std::vector<Item>& items) {
    std::string out = std::to_string(items.size()) + " item(s):";
    for (const Item& item : items) {
      if (const auto* rejected = std::get_if<Rejected>(&item)) {
        out += std::string(" rejected(") + reasonCode(rejected->reason) + ": " + rejected->detail + ")";
      } else {
        out += " event(" + std::string(std::get<Event>(item).eventId()) + ")";
      }
    }
    return out;
  }

  Decoder decoder_;
  std::vector<Item> items_;
};

}  // namespace evh::event
