// Tests of Event: ownership (moves and copies keep views valid) and the C view given to plugins.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "event/envelope.h"

namespace evh::event {
namespace {

std::string_view sv(evh_str s) { return std::string_view(s.ptr, s.len); }

class EventTest : public ::testing::Test {
 protected:
  // Decodes `json`, which must give exactly one event, and moves it out.
  Event decodeEvent(std::string_view json, std::string_view channel = "jollyjet:events:product") {
    std::vector<Item> items;
    decoder_.decode(makeMessage(json, channel, "dev:" + std::string(channel)), items);
    EXPECT_EQ(items.size(), 1U);
    Event* event = items.empty() ? nullptr : std::get_if<Event>(&items.front());
    if (event == nullptr) {
      ADD_FAILURE() << "not an event";
      return Event();
    }
    return std::move(*event);
  }

  std::vector<Event> decodeBatch(std::string_view json) {
    std::vector<Item> items;
    decoder_.decode(makeMessage(json, "c", "dev:c"), items);
    std::vector<Event> events;
    for (Item& item : items) {
      events.push_back(std::get<Event>(std::move(item)));
    }
    return events;
  }

  Decoder decoder_;
};

// Escaped fields live in the event's own (short, SSO) string: the case that
// would break if views were stored as raw pointers.
constexpr std::string_view kEscaped =
    R"({"eventId":"a\"b","eventType":"T\u0031","timestamp":"2024-01-15T10:30:00Z","correlationId":"c\/d",)"
    R"("payload":{"k":1}})";

TEST_F(EventTest, MoveKeepsViewsValid) {
  Event original = decodeEvent(kEscaped);
  Event moved(std::move(original));
  EXPECT_EQ(moved.eventId(), "a\"b");
  EXPECT_EQ(moved.eventType(), "T1");
  EXPECT_EQ(moved.correlationId(), "c/d");
  EXPECT_EQ(moved.payload(), R"({"k":1})");
  Event assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.eventId(), "a\"b");
  EXPECT_EQ(assigned.eventType(), "T1");
  EXPECT_EQ(assigned.envelope(), kEscaped);
}

TEST_F(EventTest, VectorGrowthKeepsViewsValid) {
  std::vector<Event> events;
  for (int i = 0; i < 100; ++i) {
    events.push_back(decodeEvent(kEscaped));
  }
  for (const Event& event : events) {
    EXPECT_EQ(event.eventId(), "a\"b");
    EXPECT_EQ(event.correlationId(), "c/d");
  }
}

TEST_F(EventTest, CopyIsIndependentAndSharesTheMessage) {
  const Event original = decodeEvent(kEscaped);
  const Event copy = original;  // NOLINT(performance-unnecessary-copy-initialization): copying is the point
  EXPECT_EQ(copy.eventId(), "a\"b");
  EXPECT_NE(copy.eventId().data(), original.eventId().data());
  EXPECT_EQ(copy.message(), original.message());
  EXPECT_EQ(copy.payload().data(), original.payload().data());
}

TEST_F(EventTest, OutlivesTheDecoderAndItsNextMessages) {
  Event event = decodeEvent(kEscaped);
  for (int i = 0; i < 10; ++i) {
    decodeEvent(R"({"eventId":"zzzzzzzzz","eventType":"zzz","timestamp":1,"payload":{"z":"zzzzzzzzzzzz"}})");
  }
  EXPECT_EQ(event.eventId(), "a\"b");
  EXPECT_EQ(event.eventType(), "T1");
}

TEST_F(EventTest, FillViewFillsEveryField) {
  const Event event = decodeEvent(kEscaped);
  evh_event view;
  view.flags = 0xFFFFFFFFU;  // must be overwritten
  event.fillView(view, 2, 3);
  EXPECT_EQ(view.struct_size, sizeof(evh_event));
  EXPECT_EQ(view.attempt, 2U);
  EXPECT_EQ(view.max_attempts, 3U);
  EXPECT_EQ(view.flags, 0U);
  EXPECT_EQ(sv(view.channel), "jollyjet:events:product");
  EXPECT_EQ(sv(view.redis_channel), "dev:jollyjet:events:product");
  EXPECT_EQ(sv(view.event_type), "T1");
  EXPECT_EQ(sv(view.event_id), "a\"b");
  EXPECT_EQ(sv(view.correlation_id), "c/d");
  EXPECT_EQ(sv(view.timestamp), "2024-01-15T10:30:00Z");
  EXPECT_EQ(view.timestamp_ms, 1705314600000);
  EXPECT_EQ(sv(view.payload), R"({"k":1})");
  EXPECT_EQ(sv(view.envelope), kEscaped);
  EXPECT_EQ(sv(view.raw), kEscaped);
  EXPECT_NE(view.delivery_id.ptr, nullptr);
  EXPECT_EQ(view.delivery_id.len, 0U);
}

TEST_F(EventTest, FillViewNeverGivesNullPointers) {
  const Event event = decodeEvent(R"({"specversion":"1.0","id":"1","source":"s","type":"T"})", "");
  evh_event view{};
  event.fillView(view, 1, 1);
  EXPECT_NE(view.correlation_id.ptr, nullptr);
  EXPECT_EQ(view.correlation_id.len, 0U);
  EXPECT_NE(view.timestamp.ptr, nullptr);
  EXPECT_EQ(view.timestamp.len, 0U);
  EXPECT_NE(view.channel.ptr, nullptr);
  EXPECT_EQ(sv(view.payload), "{}");
  EXPECT_EQ(view.timestamp_ms, 0);
}

TEST_F(EventTest, FillViewFlagsBatchMembers) {
  const std::string batch = R"({"type":"BATCH","messages":[{"eventId":"a","eventType":"T","timestamp":1,"payload":{}},)"
                            R"({"eventId":"b","eventType":"T","timestamp":2,"payload":{"x":[]}}]})";
  const std::vector<Event> events = decodeBatch(batch);
  ASSERT_EQ(events.size(), 2U);
  evh_event view{};
  events[1].fillView(view, 1, 3);
  EXPECT_EQ(view.flags, static_cast<uint32_t>(EVH_EVENT_FROM_BATCH));
  EXPECT_EQ(sv(view.envelope), R"({"eventId":"b","eventType":"T","timestamp":2,"payload":{"x":[]}})");
  EXPECT_EQ(sv(view.raw), batch);
  EXPECT_EQ(sv(view.timestamp), "2");
  EXPECT_EQ(view.timestamp_ms, 2);
}

TEST_F(EventTest, DefaultEventIsEmpty) {
  const Event event;
  EXPECT_EQ(event.eventId(), "");
  EXPECT_EQ(event.raw(), "");
  EXPECT_EQ(event.channel(), "");
  evh_event view{};
  event.fillView(view, 1, 1);
  EXPECT_EQ(view.struct_size, sizeof(evh_event));
  EXPECT_NE(view.raw.ptr, nullptr);
  EXPECT_EQ(view.raw.len, 0U);
}

}  // namespace
}  // namespace evh::event
