// Tests of Decoder: accepted envelope shapes (plain, CloudEvents, batches)
// and the decoder's own behaviour. Rejections and depth limits are
// decoder_rejections_test.cpp's.
#include "decoder_fixture.h"

namespace evh::event {
namespace {

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
