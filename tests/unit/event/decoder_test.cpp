// Tests of Decoder: accepted envelope shapes, every rejection reason, limits and hostile input.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "event/envelope.h"

namespace evh::event {
namespace {

constexpr std::string_view kProductCreated =
    R"({"eventId":"550e8400-e29b-41d4-a716-446655440000","eventType":"PRODUCT_CREATED",)"
    R"("timestamp":"2024-01-15T10:30:00.000Z","correlationId":"req-42",)"
    R"("payload":{"productId":"p-1","name":"Headphones","price":299.99,"category":"electronics"}})";

std::string nestedArrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A plain event whose payload holds `arrays` nested arrays: its deepest
// container is at depth 2 + arrays (top-level object 1, payload object 2).
std::string eventWithNesting(size_t arrays) {
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

// ---- accepted shapes ------------------------------------------------------

TEST_F(DecoderTest, DecodesPlainEnvelope) {
  const Event& event = onlyEvent(kProductCreated);
  EXPECT_EQ(event.eventId(), "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_EQ(event.eventType(), "PRODUCT_CREATED");
  EXPECT_EQ(event.correlationId(), "req-42");
  EXPECT_EQ(event.timestamp(), "2024-01-15T10:30:00.000Z");
  EXPECT_EQ(event.timestampMs(), 1705314600000);
  EXPECT_EQ(event.payload(), R"({"productId":"p-1","name":"Headphones","price":299.99,"category":"electronics"})");
  EXPECT_EQ(event.envelope(), kProductCreated);
  EXPECT_EQ(event.raw(), kProductCreated);
  EXPECT_EQ(event.channel(), "jollyjet:events:product");
  EXPECT_EQ(event.redisChannel(), "dev:jollyjet:events:product");
  EXPECT_FALSE(event.fromBatch());
  EXPECT_EQ(event.batchIndex(), 0U);
}

TEST_F(DecoderTest, EventViewsPointIntoTheSharedMessage) {
  const Event& event = onlyEvent(kProductCreated);
  const std::string& bytes = event.message()->bytes;
  EXPECT_GE(event.eventId().data(), bytes.data());
  EXPECT_LE(event.payload().data() + event.payload().size(), bytes.data() + bytes.size());
}

TEST_F(DecoderTest, FieldOrderDoesNotMatter) {
  const Event& event = onlyEvent(
      R"({"payload":{"x":1},"correlationId":"c","timestamp":"2024-01-15T10:30:00Z","eventType":"T","eventId":"id"})");
  EXPECT_EQ(event.eventId(), "id");
  EXPECT_EQ(event.eventType(), "T");
  EXPECT_EQ(event.correlationId(), "c");
  EXPECT_EQ(event.timestampMs(), 1705314600000);
  EXPECT_EQ(event.payload(), R"({"x":1})");
}

TEST_F(DecoderTest, KeepsPayloadTextExactlyAsSentIncludingWhitespace) {
  const Event& event = onlyEvent(
      "{ \"eventId\" : \"e\" , \"eventType\":\"T\",\"timestamp\":1,\n \"payload\" :\t{ \"a\" : [ 1 "
      ", 2 ] }\r\n }  ");
  EXPECT_EQ(event.payload(), R"({ "a" : [ 1 , 2 ] })");
  EXPECT_EQ(event.envelope(), event.raw());
}

TEST_F(DecoderTest, AcceptsEpochMillisecondsTimestamp) {
  const Event& event = onlyEvent(R"({"eventId":"e","eventType":"T","timestamp":1705314600123 ,"payload":{}})");
  EXPECT_EQ(event.timestamp(), "1705314600123");
  EXPECT_EQ(event.timestampMs(), 1705314600123);
}

TEST_F(DecoderTest, TreatsAbsentOrNullCorrelationIdAsEmpty) {
  EXPECT_EQ(onlyEvent(R"({"eventId":"e","eventType":"T","timestamp":1,"payload":{}})").correlationId(), "");
  EXPECT_EQ(
      onlyEvent(R"({"eventId":"e","eventType":"T","timestamp":1,"correlationId":null,"payload":{}})").correlationId(),
      "");
}

TEST_F(DecoderTest, IgnoresUnknownFields) {
  const Event& event =
      onlyEvent(R"({"version":2,"eventId":"e","meta":{"a":[1,{"b":null}],"c":true},"eventType":"T","timestamp":1,)"
                R"("payload":{},"extra":"x","eventid":5})");
  EXPECT_EQ(event.eventId(), "e");
}

TEST_F(DecoderTest, UnescapesEscapedStringFields) {
  const Event& event =
      onlyEvent(R"({"eventId":"a\"b","eventType":"caf\u00e9\n","timestamp":"2024-01-15T10:30:00\u002e000Z",)"
                R"("correlationId":"\\","payload":{"k":"a\"b"}})");
  EXPECT_EQ(event.eventId(), "a\"b");
  EXPECT_EQ(event.eventType(), "caf\xc3\xa9\n");
  EXPECT_EQ(event.timestamp(), "2024-01-15T10:30:00.000Z");
  EXPECT_EQ(event.timestampMs(), 1705314600000);
  EXPECT_EQ(event.correlationId(), "\\");
  EXPECT_EQ(event.payload(), R"({"k":"a\"b"})");  // the payload stays raw JSON
}

TEST_F(DecoderTest, MatchesKeysWrittenWithEscapes) {
  const Event& event = onlyEvent(R"({"event\u0049d":"e","eventType":"T","timestamp":1,"payload":{}})");
  EXPECT_EQ(event.eventId(), "e");
}

TEST_F(DecoderTest, KeepsUnicodePayloadByteExact) {
  const std::string payload = "{\"name\":\"Caf\xc3\xa9 \xf0\x9f\x8e\xa7\",\"esc\":\"\\u00e9\\ud83c\\udfa7\"}";
  const Event& event = onlyEvent(R"({"eventId":"e","eventType":"T","timestamp":1,"payload":)" + payload + "}");
  EXPECT_EQ(event.payload(), payload);
}

TEST_F(DecoderTest, DecodesCloudEvent) {
  const Event& event =
      onlyEvent(R"({"specversion":"1.0","id":"ce-1","source":"/jollyjet/products","type":"PRODUCT_UPDATED",)"
                R"("time":"2024-01-15T10:30:00+02:00","datacontenttype":"application/json","correlationid":"corr-9",)"
                R"("data":{"productId":"p-1","changes":{"price":10}}})");
  EXPECT_EQ(event.eventId(), "ce-1");
  EXPECT_EQ(event.eventType(), "PRODUCT_UPDATED");
  EXPECT_EQ(event.correlationId(), "corr-9");
  EXPECT_EQ(event.timestamp(), "2024-01-15T10:30:00+02:00");
  EXPECT_EQ(event.timestampMs(), 1705314600000 - 2 * 3600000);
  EXPECT_EQ(event.payload(), R"({"productId":"p-1","changes":{"price":10}})");
}

TEST_F(DecoderTest, CloudEventWithoutTimeHasEmptyTimestamp) {
  const Event& event = onlyEvent(R"({"specversion":"1.0","id":"1","source":"s","type":"T","data":{}})");
  EXPECT_EQ(event.timestamp(), "");
  EXPECT_EQ(event.timestampMs(), 0);
  EXPECT_EQ(event.correlationId(), "");
}

TEST_F(DecoderTest, CloudEventWithoutDataHasEmptyObjectPayload) {
  EXPECT_EQ(onlyEvent(R"({"specversion":"1.0","id":"1","source":"s","type":"T"})").payload(), "{}");
  EXPECT_EQ(onlyEvent(R"({"specversion":"1.0","id":"1","source":"s","type":"T","data":null})").payload(), "{}");
}

TEST_F(DecoderTest, RejectsInvalidCloudEvents) {
  EXPECT_EQ(onlyRejected(R"({"specversion":"1.0","id":"1","type":"T"})").detail, R"(missing field "source")");
  EXPECT_EQ(onlyRejected(R"({"specversion":"1.0","source":"s","type":"T"})").detail, R"(missing field "id")");
  const Rejected& version = onlyRejected(R"({"specversion":"0.3","id":"1","source":"s","type":"T"})");
  EXPECT_EQ(version.reason, Reason::WrongType);
  EXPECT_EQ(version.detail, R"(field "specversion" must be "1.0" (CloudEvents 1.0), got "0.3")");
  const Rejected& data = onlyRejected(R"({"specversion":"1.0","id":"1","source":"s","type":"T","data":"x"})");
  EXPECT_EQ(data.reason, Reason::WrongType);
  EXPECT_EQ(data.detail, R"(field "data" must be an object, got string)");
  EXPECT_EQ(onlyRejected(R"({"specversion":"1.0","id":"1","source":"s","type":"T","data_base64":"AA=="})").reason,
            Reason::WrongType);
  const Rejected& time = onlyRejected(R"({"specversion":"1.0","id":"1","source":"s","type":"T","time":"now"})");
  EXPECT_EQ(time.reason, Reason::BadTimestamp);
  EXPECT_EQ(time.detail, R"(field "time" is not an RFC 3339 date-time: "now")");
  EXPECT_EQ(onlyRejected(R"({"specversion":"1.0","id":"1","source":"s","type":"T","time":1})").reason,
            Reason::WrongType);
}

// ---- batches ----------------------------------------------------------------

TEST_F(DecoderTest, DecodesBatchMembersInOrder) {
  const std::string first = R"({"eventId":"a","eventType":"T","timestamp":1,"payload":{"n":1}})";
  const std::string second = R"({"eventId":"b","eventType":"U","timestamp":"2024-01-15T10:30:00Z","payload":{}})";
  const std::string batch =
      R"({"type":"BATCH","messages":[ )" + first + " ,\n" + second + R"( ],"timestamp":"2024-01-15T10:30:01.000Z"})";
  decode(batch);
  ASSERT_EQ(items_.size(), 2U) << describe(items_);
  const Event& a = std::get<Event>(items_[0]);
  const Event& b = std::get<Event>(items_[1]);
  EXPECT_EQ(a.eventId(), "a");
  EXPECT_EQ(a.envelope(), first);
  EXPECT_EQ(a.payload(), R"({"n":1})");
  EXPECT_EQ(a.raw(), batch);
  EXPECT_TRUE(a.fromBatch());
  EXPECT_EQ(a.batchIndex(), 0U);
  EXPECT_EQ(b.eventId(), "b");
  EXPECT_EQ(b.envelope(), second);
  EXPECT_EQ(b.batchIndex(), 1U);
  EXPECT_EQ(a.message(), b.message()) << "members share one Message";
}

TEST_F(DecoderTest, RecognisesBatchWhenMessagesComesBeforeType) {
  decode(R"({"messages":[{"eventId":"a","eventType":"T","timestamp":1,"payload":{}}],"type":"BATCH"})");
  ASSERT_EQ(items_.size(), 1U);
  EXPECT_TRUE(std::get<Event>(items_[0]).fromBatch());
}

TEST_F(DecoderTest, RejectsOnlyTheInvalidMembersOfABatch) {
  const std::string bad = R"({"eventId":"b","eventType":"T","timestamp":1,"payload":"oops"})";
  decode(R"({"type":"BATCH","messages":[{"eventId":"a","eventType":"T","timestamp":1,"payload":{}},)" + bad +
         R"(,42,{"specversion":"1.0","id":"c","source":"s","type":"CE"}]})");
  ASSERT_EQ(items_.size(), 4U) << describe(items_);
  EXPECT_EQ(std::get<Event>(items_[0]).eventId(), "a");
  const auto& rejected = std::get<Rejected>(items_[1]);
  EXPECT_EQ(rejected.reason, Reason::WrongType);
  EXPECT_EQ(rejected.detail, R"(field "payload" must be an object, got string)");
  EXPECT_EQ(rejected.rawPart(), bad);
  EXPECT_TRUE(rejected.from_batch);
  EXPECT_EQ(rejected.batch_index, 1U);
  const auto& number = std::get<Rejected>(items_[2]);
  EXPECT_EQ(number.reason, Reason::NotObject);
  EXPECT_EQ(number.rawPart(), "42");
  EXPECT_EQ(std::get<Event>(items_[3]).eventType(), "CE");
}

TEST_F(DecoderTest, RejectsEmptyBatch) {
  const Rejected& rejected = onlyRejected(R"({"type":"BATCH","messages":[],"timestamp":"2024-01-15T10:30:00Z"})");
  EXPECT_EQ(rejected.reason, Reason::EmptyBatch);
  EXPECT_FALSE(rejected.from_batch);
}

TEST_F(DecoderTest, RejectsNestedBatch) {
  decode(R"({"type":"BATCH","messages":[{"type":"BATCH","messages":[)"
         R"({"eventId":"a","eventType":"T","timestamp":1,"payload":{}}]}]})");
  ASSERT_EQ(items_.size(), 1U) << describe(items_);
  const auto& rejected = std::get<Rejected>(items_[0]);
  EXPECT_EQ(rejected.reason, Reason::WrongType);
  EXPECT_EQ(rejected.detail, "a BATCH member cannot itself be a BATCH");
  EXPECT_TRUE(rejected.from_batch);
}

TEST_F(DecoderTest, RejectsBatchWithoutMessagesArray) {
  const Rejected& missing = onlyRejected(R"({"type":"BATCH","timestamp":"2024-01-15T10:30:00Z"})");
  EXPECT_EQ(missing.reason, Reason::MissingField);
  EXPECT_EQ(missing.detail, R"(missing field "messages")");
  const Rejected& wrong = onlyRejected(R"({"type":"BATCH","messages":{}})");
  EXPECT_EQ(wrong.reason, Reason::WrongType);
  EXPECT_EQ(wrong.detail, R"(field "messages" must be an array, got object)");
}

TEST_F(DecoderTest, TreatsMessagesOfANonBatchAsAnOrdinaryField) {
  const Event& event = onlyEvent(R"({"messages":[{"eventId":"inner","eventType":"T","timestamp":1,"payload":{}}],)"
                                 R"("eventId":"outer","eventType":"T","timestamp":1,"payload":{}})");
  EXPECT_EQ(event.eventId(), "outer");
  EXPECT_FALSE(event.fromBatch());
}

// ---- rejections ---------------------------------------------------------------

TEST_F(DecoderTest, RejectsOversizedMessageWithoutParsing) {
  Decoder small(Decoder::Limits{100, 64});
  const std::string big = "{" + std::string(200, ' ') + "garbage";
  small.decode(makeMessage(big, "c", "c"), items_);
  ASSERT_EQ(items_.size(), 1U);
  const auto& rejected = std::get<Rejected>(items_[0]);
  EXPECT_EQ(rejected.reason, Reason::TooLarge);
  EXPECT_EQ(rejected.detail, "message of 208 bytes exceeds max_message_bytes 100");
  EXPECT_EQ(rejected.rawPart(), big);
}

TEST_F(DecoderTest, RejectsDefaultOversizeWithDetail) {
  const Rejected& rejected = onlyRejected(std::string(2000000, ' '));
  EXPECT_EQ(rejected.reason, Reason::TooLarge);
  EXPECT_EQ(rejected.detail, "message of 2000000 bytes exceeds max_message_bytes 1048576");
}

TEST_F(DecoderTest, RejectsEmptyInputAsNotJson) {
  for (const std::string_view json : {"", "   ", "\n\t"}) {
    const Rejected& rejected = onlyRejected(json);
    EXPECT_EQ(rejected.reason, Reason::NotJson);
    EXPECT_EQ(rejected.detail, "empty message");
  }
}

TEST_F(DecoderTest, RejectsTopLevelNonObjects) {
  for (const std::string_view json : {"[1,2]", R"("text")", "42", "-1.5e3", "true", "null", " [ ] "}) {
    const Rejected& rejected = onlyRejected(json);
    EXPECT_EQ(rejected.reason, Reason::NotObject) << json << ": " << rejected.detail;
    EXPECT_EQ(rejected.rawPart(), json);
  }
  EXPECT_EQ(onlyRejected("[1]").detail, "message is a JSON array, not an object");
}

TEST_F(DecoderTest, RejectsInvalidJson) {
  const std::string valid_head = R"({"eventId":"e","eventType":"T","timestamp":1,"payload":)";
  for (const std::string& json : std::vector<std::string>{
           std::string(kProductCreated.substr(0, 60)),                   // truncated
           std::string(kProductCreated) + " x",                          // trailing garbage
           std::string(kProductCreated) + "}",                           // trailing brace
           std::string(kProductCreated) + std::string(1, '\0'),          // trailing NUL
           std::string(kProductCreated) + std::string(kProductCreated),  // two documents
           valid_head + "{\"a\":\"\xff\"}}",                             // invalid UTF-8
           valid_head + "{\"a\":\"\xc3\"}}",                             // truncated UTF-8 sequence
           valid_head + R"({"a":"\x"}})",                                // bad escape
           valid_head + R"({"a":"\ud800"}})",                            // lone surrogate
           valid_head + "{\"a\":\"tab\there\"}}",                        // raw control character
           valid_head + R"({"a":tru}})",                                 // broken literal
           valid_head + R"({"a":nul}})",                                 // broken literal
           valid_head + R"({"a":01}})",                                  // leading zero
           valid_head + R"({"a":1.}})",                                  // bad number
           valid_head + R"({"a":[1,]}})",                                // trailing comma
           valid_head + R"({"a":[1}]}})",                                // mismatched brackets
           valid_head + R"({"a" 1}})",                                   // missing colon
           valid_head + R"({a:1}})",                                     // unquoted key
           "{\"eventId\":\"e\",}",                                       // trailing comma at top
           "[1,2",                                                       // truncated top-level array
           "\"abc",                                                      // unclosed string
           "42 43",                                                      // two scalars
           "nulll",                                                      // broken top-level literal
       }) {
    const Rejected& rejected = onlyRejected(json);
    EXPECT_EQ(rejected.reason, Reason::NotJson) << json << ": " << rejected.detail;
    EXPECT_EQ(rejected.rawPart(), json);
  }
}

TEST_F(DecoderTest, RejectsMissingFields) {
  EXPECT_EQ(onlyRejected(R"({"eventType":"T","timestamp":1,"payload":{}})").detail, R"(missing field "eventId")");
  EXPECT_EQ(onlyRejected(R"({"eventId":"e","timestamp":1,"payload":{}})").detail, R"(missing field "eventType")");
  EXPECT_EQ(onlyRejected(R"({"eventId":"e","eventType":"T","payload":{}})").detail, R"(missing field "timestamp")");
  const Rejected& rejected = onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":1})");
  EXPECT_EQ(rejected.reason, Reason::MissingField);
  EXPECT_EQ(rejected.detail, R"(missing field "payload")");
  EXPECT_EQ(onlyRejected("{}").reason, Reason::MissingField);
}

TEST_F(DecoderTest, RejectsWrongTypes) {
  const Rejected& payload = onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":1,"payload":"x"})");
  EXPECT_EQ(payload.reason, Reason::WrongType);
  EXPECT_EQ(payload.detail, R"(field "payload" must be an object, got string)");
  EXPECT_EQ(onlyRejected(R"({"eventId":7,"eventType":"T","timestamp":1,"payload":{}})").detail,
            R"(field "eventId" must be a non-empty string, got number)");
  EXPECT_EQ(onlyRejected(R"({"eventId":"","eventType":"T","timestamp":1,"payload":{}})").detail,
            R"(field "eventId" must be a non-empty string, got an empty string)");
  EXPECT_EQ(onlyRejected(R"({"eventId":"e","eventType":null,"timestamp":1,"payload":{}})").reason, Reason::WrongType);
  EXPECT_EQ(onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":1,"correlationId":5,"payload":{}})").detail,
            R"(field "correlationId" must be a string or null, got number)");
  EXPECT_EQ(onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":{},"payload":{}})").detail,
            R"(field "timestamp" must be a string or an integer, got object)");
  EXPECT_EQ(onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":1,"payload":[]})").detail,
            R"(field "payload" must be an object, got array)");
}

TEST_F(DecoderTest, RejectsBadTimestamps) {
  const Rejected& text =
      onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":"2024-02-30T00:00:00Z","payload":{}})");
  EXPECT_EQ(text.reason, Reason::BadTimestamp);
  EXPECT_EQ(text.detail, R"(field "timestamp" is not an RFC 3339 date-time: "2024-02-30T00:00:00Z")");
  const Rejected& fraction = onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":1.5,"payload":{}})");
  EXPECT_EQ(fraction.reason, Reason::BadTimestamp);
  EXPECT_EQ(fraction.detail, R"(field "timestamp" must be an integer number of epoch milliseconds, got "1.5")");
  for (const std::string_view value : {"1e3", "1.0", "99999999999999999999", R"("yesterday")", R"("")"}) {
    const std::string json =
        R"({"eventId":"e","eventType":"T","timestamp":)" + std::string(value) + R"(,"payload":{}})";
    EXPECT_EQ(onlyRejected(json).reason, Reason::BadTimestamp) << value;
  }
}

// JSON sets no limit on numbers, and the payload reaches plugins as text: a
// number no double can hold is valid input, kept byte for byte.
TEST_F(DecoderTest, AcceptsNumbersOfAnySizeAndPassesThemOnAsWritten) {
  const std::string digits(5000, '7');
  for (const std::string& number : std::vector<std::string>{digits, "-" + digits, digits + ".5e-3", "1e400",
                                                            "-1E+99999", "0." + digits, "1e-99999"}) {
    const std::string payload = R"({"big":)" + number + R"(,"list":[)" + number + "," + number + R"(],"after":1})";
    const std::string json = R"({"eventId":"e","eventType":"T","timestamp":1,"payload":)" + payload + "}";
    const Event& event = onlyEvent(json);
    EXPECT_EQ(event.payload(), payload) << number.substr(0, 20);
  }
  // Where it is the last value of the payload and of the envelope.
  const std::string last =
      R"({"eventId":"e","eventType":"T","timestamp":1,"payload":{"n":)" + digits + R"(},"x":)" + digits + "}";
  EXPECT_EQ(onlyEvent(last).payload(), R"({"n":)" + digits + "}");
  // A BATCH member with one.
  const std::string batch = R"({"type":"BATCH","messages":[{"eventId":"a","eventType":"T","timestamp":1,)"
                            R"("payload":{"n":)" +
                            digits + "}}]}";
  EXPECT_EQ(onlyEvent(batch).payload(), R"({"n":)" + digits + "}");
}

TEST_F(DecoderTest, StillRejectsMalformedNumbersOfAnySize) {
  const std::string digits(5000, '7');
  for (const std::string& number : std::vector<std::string>{"0" + digits, digits + ".", digits + "e", "-", "+" + digits,
                                                            digits + "e+", "." + digits}) {
    const std::string json = R"({"eventId":"e","eventType":"T","timestamp":1,"payload":{"n":)" + number + "}}";
    EXPECT_EQ(onlyRejected(json).reason, Reason::NotJson) << number.substr(0, 20);
  }
}

TEST_F(DecoderTest, AHugeTimestampIsRefusedAsATimestampNotAsJson) {
  const std::string json =
      R"({"eventId":"e","eventType":"T","timestamp":)" + std::string(5000, '9') + R"(,"payload":{}})";
  const Rejected& rejected = onlyRejected(json);
  EXPECT_EQ(rejected.reason, Reason::BadTimestamp) << rejected.detail;
  EXPECT_NE(rejected.detail.find("must be an integer number of epoch milliseconds"), std::string::npos)
      << rejected.detail;
  EXPECT_LT(rejected.detail.size(), 200U) << "the value is quoted shortened";
}

TEST_F(DecoderTest, AHugeTopLevelNumberIsNotAnObject) {
  const std::string digits(5000, '7');
  EXPECT_EQ(onlyRejected(digits).reason, Reason::NotObject);
  EXPECT_EQ(onlyRejected(digits + " \n").reason, Reason::NotObject);
  EXPECT_EQ(onlyRejected(digits + " 1").reason, Reason::NotJson);
}

TEST_F(DecoderTest, QuotesHostileValuesInDetailsSafely) {
  const std::string long_value(500, 'x');
  const Rejected& rejected =
      onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":"a\"b\n)" + long_value + R"(","payload":{}})");
  EXPECT_EQ(rejected.reason, Reason::BadTimestamp);
  EXPECT_EQ(rejected.detail.find('\n'), std::string::npos);
  EXPECT_LT(rejected.detail.size(), 150U);
  EXPECT_NE(rejected.detail.find(R"("a\"b\u000axxx)"), std::string::npos) << rejected.detail;
}

TEST_F(DecoderTest, RejectsDuplicatesOfFieldsItReads) {
  const Rejected& rejected =
      onlyRejected(R"({"eventId":"e","eventType":"A","timestamp":1,"payload":{},"eventType":"B"})");
  EXPECT_EQ(rejected.reason, Reason::WrongType);
  EXPECT_EQ(rejected.detail, R"(duplicate field "eventType")");
  EXPECT_EQ(onlyRejected(R"({"type":"BATCH","type":"BATCH","messages":[]})").detail, R"(duplicate field "type")");
}

TEST_F(DecoderTest, AllowsDuplicatesOfOtherFields) {
  EXPECT_EQ(onlyEvent(R"({"x":1,"eventId":"e","eventType":"T","timestamp":1,"payload":{"a":1,"a":2},"x":2})").eventId(),
            "e");
}

// ---- depth ------------------------------------------------------------------

TEST_F(DecoderTest, AllowsNestingOfExactlyMaxDepth) {
  EXPECT_EQ(onlyEvent(eventWithNesting(62)).eventId(), "e");  // deepest container at depth 64
}

TEST_F(DecoderTest, RejectsNestingOfMaxDepthPlusOne) {
  const Rejected& rejected = onlyRejected(eventWithNesting(63));  // depth 65
  EXPECT_EQ(rejected.reason, Reason::TooDeep);
  EXPECT_EQ(rejected.detail, "nesting deeper than 64");
}

TEST_F(DecoderTest, CountsTheTopLevelObjectAsDepthOne) {
  Decoder flat(Decoder::Limits{1024, 2});
  flat.decode(makeMessage(eventWithNesting(0), "c", "c"), items_);  // payload {"a":...} at depth 2
  EXPECT_TRUE(std::holds_alternative<Rejected>(items_.at(0)));      // the array inside it is depth 3
  flat.decode(makeMessage(R"({"eventId":"e","eventType":"T","timestamp":1,"payload":{"a":1}})", "c", "c"), items_);
  EXPECT_TRUE(std::holds_alternative<Event>(items_.at(0)));
  Decoder one(Decoder::Limits{1024, 1});
  one.decode(makeMessage(R"({"eventId":"e","eventType":"T","timestamp":1,"payload":{}})", "c", "c"), items_);
  EXPECT_EQ(std::get<Rejected>(items_.at(0)).reason, Reason::TooDeep);
}

TEST_F(DecoderTest, CountsBatchMemberDepthFromTheTopLevel) {
  // top object 1, messages array 2, member 3, payload 4, then k arrays.
  const auto batch = [](size_t arrays) {
    return R"({"type":"BATCH","messages":[{"eventId":"e","eventType":"T","timestamp":1,"payload":{"a":)" +
           nestedArrays(arrays) + "}}]}";
  };
  decode(batch(60));
  EXPECT_TRUE(std::holds_alternative<Event>(items_.at(0))) << describe(items_);
  EXPECT_EQ(onlyRejected(batch(61)).reason, Reason::TooDeep);
}

TEST_F(DecoderTest, RejectsDeepNestingInFieldsItDoesNotRead) {
  EXPECT_EQ(
      onlyRejected(R"({"eventId":"e","eventType":"T","timestamp":1,"payload":{},"junk":)" + nestedArrays(100) + "}")
          .reason,
      Reason::TooDeep);
}

TEST_F(DecoderTest, ReportsTooDeepBeforeShapeErrors) {
  EXPECT_EQ(onlyRejected(R"({"payload":"wrong","junk":)" + nestedArrays(100) + "}").reason, Reason::TooDeep);
}

TEST_F(DecoderTest, RefusesHundredThousandNestedArraysQuickly) {
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& json : {nestedArrays(100000), std::string(100000, '['), eventWithNesting(100000),
                                  "{\"payload\":" + std::string(100000, '{')}) {
    const Rejected& rejected = onlyRejected(json);
    EXPECT_EQ(rejected.reason, Reason::TooDeep) << rejected.detail;
    EXPECT_EQ(rejected.rawPart().size(), json.size());
    EXPECT_LT(rejected.detail.size(), 100U) << "the input must not be dumped into the detail";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(DecoderTest, SupportsTheLargestConfigurableDepth) {
  Decoder deep(Decoder::Limits{1024 * 1024, Decoder::kMaxSupportedDepth});
  deep.decode(makeMessage(eventWithNesting(Decoder::kMaxSupportedDepth - 2), "c", "c"), items_);
  EXPECT_TRUE(std::holds_alternative<Event>(items_.at(0)));
  deep.decode(makeMessage(eventWithNesting(Decoder::kMaxSupportedDepth - 1), "c", "c"), items_);
  EXPECT_EQ(std::get<Rejected>(items_.at(0)).reason, Reason::TooDeep);
}

// ---- the decoder itself ---------------------------------------------------------

TEST_F(DecoderTest, RefusesUnusableLimits) {
  EXPECT_THROW(Decoder(Decoder::Limits{1024, 0}), std::invalid_argument);
  EXPECT_THROW(Decoder(Decoder::Limits{1024, Decoder::kMaxSupportedDepth + 1}), std::invalid_argument);
  EXPECT_THROW(Decoder(Decoder::Limits{0, 64}), std::invalid_argument);
  EXPECT_EQ(Decoder().limits().max_depth, 64U);
  EXPECT_EQ(Decoder().limits().max_message_bytes, 1048576U);
}

TEST_F(DecoderTest, DecodesMessagesWithoutPaddingThroughACopy) {
  auto message = std::make_shared<Message>();
  message->bytes = std::string(kProductCreated);
  message->bytes.shrink_to_fit();
  decoder_.decode(message, items_);
  ASSERT_EQ(items_.size(), 1U);
  const Event& event = std::get<Event>(items_[0]);
  EXPECT_EQ(event.eventId(), "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_EQ(static_cast<size_t>(event.payload().data() - event.raw().data()), kProductCreated.find("{\"productId"));
}

TEST_F(DecoderTest, ReplacesPreviousItemsAndKeepsCapacity) {
  decode(R"({"type":"BATCH","messages":[{"eventId":"a","eventType":"T","timestamp":1,"payload":{}},)"
         R"({"eventId":"b","eventType":"T","timestamp":1,"payload":{}}]})");
  ASSERT_EQ(items_.size(), 2U);
  const size_t capacity = items_.capacity();
  decode(kProductCreated);
  EXPECT_EQ(items_.size(), 1U);
  EXPECT_EQ(items_.capacity(), capacity);
}

TEST_F(DecoderTest, TreatsNullMessageAsEmpty) {
  decoder_.decode(nullptr, items_);
  ASSERT_EQ(items_.size(), 1U);
  EXPECT_EQ(std::get<Rejected>(items_[0]).reason, Reason::NotJson);
}

TEST_F(DecoderTest, SurvivesGrowingAndShrinkingMessages) {
  for (size_t size : {10U, 5000U, 100U, 300000U, 50U}) {
    const std::string json =
        R"({"eventId":"e","eventType":"T","timestamp":1,"payload":{"s":")" + std::string(size, 'x') + "\"}}";
    EXPECT_EQ(onlyEvent(json).payload().size(), size + 8);
  }
}

TEST_F(DecoderTest, HasStableReasonCodes) {
  EXPECT_STREQ(reasonCode(Reason::TooLarge), "too_large");
  EXPECT_STREQ(reasonCode(Reason::TooDeep), "too_deep");
  EXPECT_STREQ(reasonCode(Reason::NotJson), "not_json");
  EXPECT_STREQ(reasonCode(Reason::NotObject), "not_object");
  EXPECT_STREQ(reasonCode(Reason::MissingField), "missing_field");
  EXPECT_STREQ(reasonCode(Reason::WrongType), "wrong_type");
  EXPECT_STREQ(reasonCode(Reason::BadTimestamp), "bad_timestamp");
  EXPECT_STREQ(reasonCode(Reason::EmptyBatch), "empty_batch");
}

}  // namespace
}  // namespace evh::event
