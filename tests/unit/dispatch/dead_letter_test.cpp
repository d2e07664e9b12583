// Dead-letter entries: one line each, the original event kept as it came.
#include "dispatch/dead_letter.h"
#include "event/envelope.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <variant>
#include <vector>

namespace evh::dispatch {
namespace {

using Json = nlohmann::ordered_json;

event::Event decodeOne(const std::string& text) {
  event::Decoder decoder;
  std::vector<event::Item> items;
  decoder.decode(event::makeMessage(text, "jollyjet:events:test", "dev:jollyjet:events:test"), items);
  EXPECT_EQ(items.size(), 1u);
  return std::get<event::Event>(std::move(items.at(0)));
}

TEST(DeadLetterEntry, APrettyPrintedEventBecomesOneLineWithItsStringsIntact) {
  // Whitespace between tokens goes; whitespace, escapes and braces inside
  // strings stay; key order stays.
  const std::string text =
      "{\n  \"eventId\" : \"evt-1\",\n\t\"eventType\": \"PRODUCT_CREATED\",\r\n"
      "  \"timestamp\": \"2024-01-15T10:30:00.000Z\",\n"
      "  \"payload\": { \"name\": \"two  spaces \\\" quote\\\\ } {\\n\",\n"
      "               \"z\": [ 1, 2 ,3 ], \"a\": \"caf\\u00e9\" }\n}\n";
  const DeadLetterEntry e =
      makeEntry(DeadLetterInfo{"exhausted", "retry", "boom", "product", 3, 1, 2}, decodeOne(text));
  EXPECT_EQ(e.json.find('\n'), std::string::npos) << e.json;
  EXPECT_EQ(e.json.find('\r'), std::string::npos) << e.json;
  const Json j = Json::parse(e.json);
  EXPECT_EQ(j.at("originalEvent"), Json::parse(text));
  EXPECT_NE(e.json.find(R"("name":"two  spaces \" quote\\ } {\n")"), std::string::npos) << e.json;
  EXPECT_NE(e.json.find(R"("a":"caf\u00e9")"), std::string::npos) << e.json;  // escapes as sent
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.at("originalEvent").at("payload").items()) {
    keys.push_back(k);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "z", "a"}));
  // The documented fields, originalEvent last.
  EXPECT_EQ(j.at("reason"), "exhausted");
  EXPECT_EQ(j.at("eventId"), "evt-1");
  EXPECT_EQ(j.at("plugin"), "product");
  EXPECT_EQ(j.at("attempts"), 3);
  EXPECT_EQ(std::prev(j.end()).key(), "originalEvent");
}

TEST(DeadLetterEntry, ABatchMemberKeepsOnlyItsOwnEnvelope) {
  event::Decoder decoder;
  std::vector<event::Item> items;
  const std::string text =
      R"({"type": "BATCH", "messages": [ {"eventId": "a", "eventType": "T", "timestamp": 1, "payload": {}},)"
      R"( {"eventId": "b", "eventType": "T", "timestamp": 2, "payload": {"k": [ 1 ]}} ]})";
  decoder.decode(event::makeMessage(text, "c", "dev:c"), items);
  ASSERT_EQ(items.size(), 2u);
  const DeadLetterEntry e =
      makeEntry(DeadLetterInfo{"rejected", "reject", "no", "p", 1, 1, 1}, std::get<event::Event>(items[1]));
  const Json j = Json::parse(e.json);
  EXPECT_EQ(j.at("originalEvent"), Json::parse(R"({"eventId":"b","eventType":"T","timestamp":2,"payload":{"k":[1]}})"));
}

TEST(DeadLetterEntry, RawBytesAndMessagesBecomeValidJsonWhateverTheyHold) {
  // Control characters escaped; invalid UTF-8 (a lone continuation byte, a
  // truncated sequence, an overlong form, a surrogate) replaced by U+FFFD;
  // valid multi-byte characters kept.
  const std::string raw = std::string("a\"b\\c\x01\n\t") + "\x80" + "\xE2\x82" + "\xC0\xAF" + "\xED\xA0\x80" +
                          "caf\xC3\xA9 \xE2\x98\x95 \xF0\x9F\x98\x80";
  DeadLetterInfo info{"invalid", "not_json", "bad \xFF byte", "", 0, 0, 0};
  const DeadLetterEntry e = makeEntry(info, raw, "ch", "dev:ch");
  EXPECT_EQ(e.json.find('\n'), std::string::npos);
  const Json j = Json::parse(e.json);  // throws on invalid UTF-8
  const std::string fffd = "\xEF\xBF\xBD";
  // One U+FFFD per byte that cannot start a valid sequence: 1 + 2 + 2 + 3.
  std::string replaced;
  for (int k = 0; k < 8; ++k) {
    replaced += fffd;
  }
  EXPECT_EQ(j.at("raw").get<std::string>(),
            std::string("a\"b\\c\x01\n\t") + replaced + "caf\xC3\xA9 \xE2\x98\x95 \xF0\x9F\x98\x80");
  EXPECT_EQ(j.at("error").at("message"), "bad " + fffd + " byte");
  EXPECT_NE(e.json.find(R"(a\"b\\c\u0001\n\t)"), std::string::npos) << e.json;
  EXPECT_EQ(j.at("eventId"), "");
  EXPECT_EQ(j.at("redisChannel"), "dev:ch");
  EXPECT_FALSE(j.contains("originalEvent"));
  EXPECT_FALSE(j.contains("firstAttemptAt"));  // never attempted
}

}  // namespace
}  // namespace evh::dispatch
