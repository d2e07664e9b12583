// Randomized robustness test: mutated messages never crash the decoder, and nlohmann::json agrees
// with its verdicts.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "event/envelope.h"

namespace evh::event {
namespace {

// Valid messages covering every shape; mutations start from these.
const std::vector<std::string>& seeds() {
  static const std::vector<std::string> kSeeds = {
      R"({"eventId":"550e8400-e29b-41d4-a716-446655440000","eventType":"PRODUCT_CREATED",)"
      R"("timestamp":"2024-01-15T10:30:00.000Z","correlationId":"req-42",)"
      R"("payload":{"productId":"p-1","name":"Headphones","price":299.99,"category":"electronics"}})",
      R"({"payload":{"a":[1,-2.5e3,true,false,null,{"b":"c\"d\\e\u00e9"}]},"eventType":"T","eventId":"x\ty",)"
      R"("timestamp":1705314600000,"correlationId":null,"extra":[[],{}]})",
      R"({"specversion":"1.0","id":"ce-1","source":"/s","type":"PRODUCT_UPDATED","time":"2024-01-15T10:30:00+02:00",)"
      R"("correlationid":"c","data":{"productId":"p","changes":{"price":10,"tags":["x","y"]}}})",
      R"({"type":"BATCH","messages":[{"eventId":"a","eventType":"T","timestamp":1,"payload":{}},)"
      R"({"eventId":"b","eventType":"U","timestamp":"2024-01-15T10:30:00Z","payload":{"n":[1,2]}},)"
      R"({"specversion":"1.0","id":"c","source":"s","type":"V"}],"timestamp":"2024-01-15T10:30:01.000Z"})",
      "{ \"eventId\" : \"caf\xc3\xa9\" , \"eventType\" : \"\\ud83c\\udfa7\" , \"timestamp\" : 0 ,\n"
      "  \"payload\" : { \"emoji\" : \"\xf0\x9f\x8e\xa7\" } }\n",
  };
  return kSeeds;
}

class DecoderRobustnessTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kSeed = 20240115;
  static constexpr int kIterations = 100000;

  std::string mutate(std::string text) {
    // Bytes that change JSON structure are the interesting ones to insert.
    static constexpr std::string_view kAlphabet = "{}[]\":,\\ \n0123456789-+.eEtrufalsnu\x80\xc3\xff\x01";
    const int mutations = pick(1, 3);
    for (int m = 0; m < mutations && !text.empty(); ++m) {
      const size_t at = static_cast<size_t>(pick(0, static_cast<int>(text.size()) - 1));
      switch (pick(0, 5)) {
        case 0:  // flip one bit
          text[at] = static_cast<char>(text[at] ^ static_cast<char>(1 << pick(0, 7)));
          break;
        case 1:  // replace with a random byte
          text[at] = static_cast<char>(pick(0, 255));
          break;
        case 2:  // replace with a structural byte
          text[at] = kAlphabet[static_cast<size_t>(pick(0, static_cast<int>(kAlphabet.size()) - 1))];
          break;
        case 3:  // insert
          text.insert(at, 1, kAlphabet[static_cast<size_t>(pick(0, static_cast<int>(kAlphabet.size()) - 1))]);
          break;
        case 4:  // truncate
          text.resize(at);
          break;
        default:  // delete a short run
          text.erase(at, static_cast<size_t>(pick(1, 4)));
          break;
      }
    }
    return text;
  }

  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }

  std::mt19937 rng_{kSeed};
};

bool within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// What nlohmann (last duplicate wins, but duplicates of read fields are
// rejected by the decoder, so there is no ambiguity) says a field holds.
void expectAgreesWithNlohmann(const Event& event) {
  const auto envelope = nlohmann::json::parse(event.envelope(), nullptr, false);
  ASSERT_FALSE(envelope.is_discarded()) << event.envelope();
  const auto payload = nlohmann::json::parse(event.payload(), nullptr, false);
  ASSERT_TRUE(payload.is_object()) << event.payload();
  if (envelope.contains("specversion")) {
    EXPECT_EQ(envelope["id"].get<std::string>(), event.eventId());
    EXPECT_EQ(envelope["type"].get<std::string>(), event.eventType());
    EXPECT_EQ(envelope.value("data", nlohmann::json::object()).dump(), payload.dump());
  } else {
    EXPECT_EQ(envelope["eventId"].get<std::string>(), event.eventId());
    EXPECT_EQ(envelope["eventType"].get<std::string>(), event.eventType());
    EXPECT_EQ(envelope["payload"], payload);
    const auto& timestamp = envelope["timestamp"];
    if (timestamp.is_string()) {
      EXPECT_EQ(timestamp.get<std::string>(), event.timestamp());
    } else {
      EXPECT_EQ(timestamp.get<int64_t>(), event.timestampMs());
    }
  }
}

TEST_F(DecoderRobustnessTest, SeedsDecodeAndAgreeWithNlohmann) {
  Decoder decoder;
  std::vector<Item> items;
  for (const std::string& seed : seeds()) {
    decoder.decode(makeMessage(seed, "c", "c"), items);
    ASSERT_FALSE(items.empty());
    for (const Item& item : items) {
      const Event* event = std::get_if<Event>(&item);
      ASSERT_NE(event, nullptr) << seed << "\n" << std::get<Rejected>(item).detail;
      expectAgreesWithNlohmann(*event);
    }
  }
}

TEST_F(DecoderRobustnessTest, MutatedMessagesNeverCrashAndAgreeWithNlohmann) {
  Decoder decoder;
  std::vector<Item> items;
  int events = 0;
  int rejections = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string& seed = seeds()[static_cast<size_t>(pick(0, static_cast<int>(seeds().size()) - 1))];
    const std::string text = mutate(seed);
    decoder.decode(makeMessage(text, "c", "c"), items);
    ASSERT_FALSE(items.empty()) << "iteration " << i;
    // nlohmann's lexer takes a NUL byte for the end of input, so it would
    // accept "{...}\0"; a NUL is never valid JSON (RFC 8259), in or out of strings.
    const bool valid_json = text.find('\0') == std::string::npos && nlohmann::json::accept(text);
    for (const Item& item : items) {
      if (const Event* event = std::get_if<Event>(&item)) {
        ++events;
        ASSERT_TRUE(valid_json) << "decoded an event from invalid JSON (seed " << kSeed << ", iteration " << i << "):\n"
                                << text;
        ASSERT_FALSE(event->eventId().empty());
        ASSERT_FALSE(event->eventType().empty());
        ASSERT_TRUE(within(event->envelope(), event->raw())) << text;
        // A CloudEvent without data gets a "{}" of its own.
        ASSERT_TRUE(within(event->payload(), event->envelope()) || event->payload() == "{}") << text;
        if (!event->fromBatch()) {
          ASSERT_EQ(event->envelope(), event->raw());
        }
        expectAgreesWithNlohmann(*event);
        if (HasFatalFailure() || HasNonfatalFailure()) {
          FAIL() << "iteration " << i << ":\n" << text;
        }
        evh_event view{};
        event->fillView(view, 1, 1);
      } else {
        ++rejections;
        const Rejected& rejected = std::get<Rejected>(item);
        ASSERT_STRNE(reasonCode(rejected.reason), "unknown");
        ASSERT_FALSE(rejected.detail.empty());
        ASSERT_TRUE(within(rejected.rawPart(), rejected.message->bytes));
        if (rejected.reason == Reason::NotJson) {
          ASSERT_FALSE(valid_json) << "valid JSON reported as not_json (" << rejected.detail << ", iteration " << i
                                   << "):\n"
                                   << text;
          ASSERT_EQ(items.size(), 1U);
        }
      }
    }
    if (!valid_json) {
      ASSERT_EQ(items.size(), 1U) << text;
    }
  }
  // Both outcomes must be exercised for the test to mean anything.
  EXPECT_GT(events, kIterations / 20);
  EXPECT_GT(rejections, kIterations / 2);
}

}  // namespace
}  // namespace evh::event
