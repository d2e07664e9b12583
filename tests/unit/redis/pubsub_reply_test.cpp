// Tests of the subscriber's reply classification (redis/pubsub_reply.h), on
// replies hiredis's reader parses from RESP bytes.
#include "redis/pubsub_reply.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <memory>
#include <string>

namespace evh::redis {
namespace {

class PubSubReplyTest : public ::testing::Test {
 protected:
  // Parses one whole reply from `resp` (kept alive in reply_).
  const redisReply* parse(const std::string& resp) {
    std::unique_ptr<redisReader, void (*)(redisReader*)> reader(redisReaderCreate(), redisReaderFree);
    EXPECT_EQ(redisReaderFeed(reader.get(), resp.data(), resp.size()), REDIS_OK);
    void* r = nullptr;
    EXPECT_EQ(redisReaderGetReply(reader.get(), &r), REDIS_OK);
    EXPECT_NE(r, nullptr) << resp;
    reply_.reset(static_cast<redisReply*>(r));
    return reply_.get();
  }

  std::unique_ptr<redisReply, void (*)(void*)> reply_{nullptr, freeReplyObject};
};

TEST_F(PubSubReplyTest, MessageAndPatternMessage) {
  PubSubReply m = classifyPubSub(parse("*3\r\n$7\r\nmessage\r\n$5\r\ndev:a\r\n$2\r\n{}\r\n"));
  EXPECT_EQ(m.kind, PubSubReply::Kind::Message);
  EXPECT_EQ(m.channel, "dev:a");
  EXPECT_EQ(m.payload, "{}");
  m = classifyPubSub(parse("*4\r\n$8\r\npmessage\r\n$5\r\ndev:*\r\n$5\r\ndev:b\r\n$3\r\n[1]\r\n"));
  EXPECT_EQ(m.kind, PubSubReply::Kind::Message);
  EXPECT_EQ(m.channel, "dev:b");
  EXPECT_EQ(m.payload, "[1]");
}

TEST_F(PubSubReplyTest, ConfirmationsRefusalsAndKeepAlives) {
  EXPECT_EQ(classifyPubSub(parse("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")).kind, PubSubReply::Kind::Confirmed);
  const PubSubReply refused = classifyPubSub(parse("*3\r\n$17\r\nsubscribe-refused\r\n$1\r\nc\r\n$6\r\nNOPERM\r\n"));
  EXPECT_EQ(refused.kind, PubSubReply::Kind::Refused);
  EXPECT_EQ(refused.error, "NOPERM");
  EXPECT_EQ(classifyPubSub(parse("+PONG\r\n")).kind, PubSubReply::Kind::KeepAlive);
  EXPECT_EQ(classifyPubSub(parse("*2\r\n$4\r\npong\r\n$0\r\n\r\n")).kind, PubSubReply::Kind::KeepAlive);
  EXPECT_EQ(classifyPubSub(parse("*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n")).kind,
            PubSubReply::Kind::Unsubscribed);
  EXPECT_EQ(classifyPubSub(parse("*3\r\n$12\r\npunsubscribe\r\n$2\r\nc*\r\n:1\r\n")).kind,
            PubSubReply::Kind::Unsubscribed);
  // A Pub/Sub array of a kind the subscriber does not act on.
  EXPECT_EQ(classifyPubSub(parse("*3\r\n$7\r\nunknown\r\n$1\r\nc\r\n:1\r\n")).kind, PubSubReply::Kind::Other);
}

// Sharded Pub/Sub (Redis 7): SSUBSCRIBE's confirmation, its messages, Redis's
// SUNSUBSCRIBE (asked for, or its own when the slot moved away) and a refusal
// the reply guard turned into an array.
TEST_F(PubSubReplyTest, ShardChannels) {
  EXPECT_EQ(classifyPubSub(parse("*3\r\n$10\r\nssubscribe\r\n$1\r\nc\r\n:1\r\n")).kind, PubSubReply::Kind::Confirmed);
  const PubSubReply m = classifyPubSub(parse("*3\r\n$8\r\nsmessage\r\n$5\r\ndev:a\r\n$2\r\n{}\r\n"));
  EXPECT_EQ(m.kind, PubSubReply::Kind::Message);
  EXPECT_EQ(m.channel, "dev:a");
  EXPECT_EQ(m.payload, "{}");
  EXPECT_EQ(classifyPubSub(parse("*3\r\n$12\r\nsunsubscribe\r\n$1\r\nc\r\n:0\r\n")).kind,
            PubSubReply::Kind::Unsubscribed);
  const PubSubReply refused =
      classifyPubSub(parse("*3\r\n$18\r\nssubscribe-refused\r\n$1\r\nc\r\n$20\r\nMOVED 7365 1.2.3.4:5\r\n"));
  EXPECT_EQ(refused.kind, PubSubReply::Kind::Refused);
  EXPECT_EQ(refused.error, "MOVED 7365 1.2.3.4:5");
}

TEST_F(PubSubReplyTest, BrokenShapesAreUnexpectedOrEmpty) {
  EXPECT_EQ(classifyPubSub(parse(":1\r\n")).kind, PubSubReply::Kind::Unexpected);
  EXPECT_EQ(classifyPubSub(parse("*1\r\n$7\r\nmessage\r\n")).kind, PubSubReply::Kind::Unexpected);
  EXPECT_EQ(classifyPubSub(parse("*2\r\n:1\r\n$1\r\nc\r\n")).kind, PubSubReply::Kind::Unexpected);
  // A message whose channel and payload are not strings carries empty text,
  // never a null pointer: the decoder then rejects it as not JSON.
  const PubSubReply m = classifyPubSub(parse("*3\r\n$7\r\nmessage\r\n*0\r\n:5\r\n"));
  EXPECT_EQ(m.kind, PubSubReply::Kind::Message);
  EXPECT_EQ(m.channel, "");
  EXPECT_EQ(m.payload, "");
}

}  // namespace
}  // namespace evh::redis
