// Decoder's rejections: every reason (size, JSON, shape, types, timestamps,
// duplicates), hostile input quoted safely, and nesting depth limits.
#include "decoder_fixture.h"

namespace evh::event {
namespace {

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

}  // namespace
}  // namespace evh::event
