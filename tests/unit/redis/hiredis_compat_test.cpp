// hiredis' reader errors in evhost's words, and a blocking context's reply
// budget (evhctl), against Debian's hiredis 0.14 reader itself.
#include "redis/hiredis_compat.h"
#include "redis/failure_kind.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <memory>
#include <string>
#include <vector>

namespace evh::redis {
namespace {

// What hiredis' reader says of `bytes`: {err, errstr}.
std::pair<int, std::string> readerError(const std::string& bytes) {
  std::unique_ptr<redisReader, void (*)(redisReader*)> r(redisReaderCreate(), redisReaderFree);
  redisReaderFeed(r.get(), bytes.data(), bytes.size());
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(r.get(), &reply), REDIS_ERR) << bytes;
  EXPECT_EQ(reply, nullptr);
  return {r->err, r->errstr};
}

std::string worded(const std::string& bytes) {
  auto [err, text] = readerError(bytes);
  return compat::protocolError(err, text.c_str(), "127.0.0.1:6379");
}

TEST(ProtocolErrorTest, EachReaderErrorIsAProtocolErrorNamingThePeer) {
  EXPECT_EQ(worded("GET / HTTP/1.1\r\n"), "protocol error: got \"G\" as reply type byte from 127.0.0.1:6379");
  EXPECT_EQ(worded("*4294967295\r\n"), "protocol error: multi-bulk length out of range from 127.0.0.1:6379");
  EXPECT_EQ(worded("*2147483648\r\n"), "protocol error: multi-bulk length out of range from 127.0.0.1:6379");
  EXPECT_EQ(worded("$-5\r\n"), "protocol error: bulk string length out of range from 127.0.0.1:6379");
  EXPECT_EQ(worded("$x\r\n"), "protocol error: bad bulk string length from 127.0.0.1:6379");
  std::string nested;
  for (int i = 0; i < 100; ++i) {
    nested += "*1\r\n";
  }
  EXPECT_EQ(worded(nested),
            "protocol error: no support for nested multi bulk replies with depth > 7 from 127.0.0.1:6379");
  EXPECT_STREQ(failureKind(worded("*4294967295\r\n")), "protocol");
}

TEST(ProtocolErrorTest, OtherErrorsAreNotProtocolErrors) {
  EXPECT_EQ(compat::protocolError(REDIS_ERR_IO, "Connection reset by peer", "h:1"), "");
  EXPECT_EQ(compat::protocolError(REDIS_ERR_EOF, "Server closed the connection", "h:1"), "");
  EXPECT_EQ(compat::protocolError(0, "", "h:1"), "");
}

// A blocking context whose reader is fed by hand (no server).
class ReplyBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    c_ = redisConnectFd(fds_[0]);  // owns fds_[0] from now on
    ASSERT_NE(c_, nullptr);
    compat::hookReader(c_, &budget_);
  }
  void TearDown() override {
    redisFree(c_);
    close(fds_[1]);
  }
  // The next reply of what was fed so far: REDIS_OK (reply may be null: more is needed) or REDIS_ERR.
  int feed(const std::string& bytes, void** reply) {
    redisReaderFeed(c_->reader, bytes.data(), bytes.size());
    return redisGetReplyFromReader(c_, reply);
  }

  int fds_[2] = {-1, -1};
  redisContext* c_ = nullptr;
  compat::ReplyBudget budget_;
};

TEST_F(ReplyBudgetTest, AReplyWithinTheBoundIsBuiltAndCosted) {
  budget_.bound = 64 * 1024;
  void* reply = nullptr;
  ASSERT_EQ(feed("*3\r\n:1\r\n$3\r\nabc\r\n$-1\r\n", &reply), REDIS_OK);
  ASSERT_NE(reply, nullptr);
  freeReplyObject(reply);
  EXPECT_FALSE(budget_.over);
  // Four redisReply objects and a copy of "abc", each with the allocator's
  // overhead: more than the 4 x 48 + 4 bytes asked for.
  EXPECT_GT(budget_.built, 4 * sizeof(redisReply) + 4);
}

TEST_F(ReplyBudgetTest, TinyElementsCountAtWhatTheHeapPays) {
  // 100,000 one-byte elements: 0.8 MB of pointers and 4.9 MB of objects and
  // copies asked for -- under 8 MiB -- but some 10 MB paid to the heap.
  budget_.bound = 8 * 1024 * 1024;
  std::string elements;
  for (int i = 0; i < 100000; ++i) {
    elements += "$1\r\nx\r\n";
  }
  void* reply = nullptr;
  EXPECT_EQ(feed("*100000\r\n" + elements, &reply), REDIS_ERR);
  EXPECT_EQ(reply, nullptr);
  EXPECT_TRUE(budget_.over);
  EXPECT_LE(budget_.built, budget_.bound + 1024);
}

TEST_F(ReplyBudgetTest, TheDeclaredLengthOfAPendingBulkStringIsSeen) {
  budget_.bound = 64 * 1024;
  void* reply = nullptr;
  ASSERT_EQ(feed("$4294967296\r\nxx", &reply), REDIS_OK);
  EXPECT_EQ(reply, nullptr);
  EXPECT_EQ(compat::pendingBulkLength(c_), 4294967296ULL);
  EXPECT_FALSE(budget_.over);  // refused by its reader (SyncRedis), never built
}

// SSUBSCRIBE through hiredis 0.14 (compat::shardSubscribe): registered as a
// SUBSCRIBE, so that hiredis matches "ssubscribe", "smessage" and
// "sunsubscribe" arrays to the callback by channel name; the bytes that go
// out are SSUBSCRIBE's from the first write on.
class ShardSubscribeTest : public ::testing::Test {
 protected:
  ShardSubscribeTest() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener_, 1), 0);
    EXPECT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    ac_ = redisAsyncConnect("127.0.0.1", ntohs(a.sin_port));
    ac_->ev.data = this;
    ac_->ev.addWrite = [](void* self) {
      auto* t = static_cast<ShardSubscribeTest*>(self);
      t->writes_.emplace_back(compat::pendingOutput(t->ac_));
    };
  }
  ~ShardSubscribeTest() override {
    redisAsyncFree(ac_);  // calls the channel's callback with NULL
    close(listener_);
  }
  static void onReply(redisAsyncContext*, void* r, void* privdata) {
    auto* t = static_cast<ShardSubscribeTest*>(privdata);
    const auto* reply = static_cast<const redisReply*>(r);
    t->replies_.push_back(reply == nullptr ? "NULL" : std::string(reply->element[0]->str, reply->element[0]->len));
  }
  void feed(const std::string& bytes) { compat::feedAndProcess(ac_, bytes.data(), bytes.size()); }

  int listener_ = -1;
  redisAsyncContext* ac_ = nullptr;
  std::vector<std::string> writes_;   // what hiredis held at each write asked for
  std::vector<std::string> replies_;  // the kinds the callback saw
};

TEST_F(ShardSubscribeTest, SendsSsubscribeAfterWhatWasQueuedAndMatchesTheRepliesByChannel) {
  compat::writeRaw(ac_, "*1\r\n$4\r\nPING\r\n");
  ASSERT_TRUE(compat::shardSubscribe(ac_, "dev:s", &ShardSubscribeTest::onReply, this));
  const std::string ssubscribe = "*2\r\n$10\r\nSSUBSCRIBE\r\n$5\r\ndev:s\r\n";
  EXPECT_EQ(compat::pendingOutput(ac_), "*1\r\n$4\r\nPING\r\n" + ssubscribe);
  ASSERT_EQ(writes_.size(), 2U);  // the PING's, then once with SSUBSCRIBE in place
  EXPECT_EQ(writes_[1], "*1\r\n$4\r\nPING\r\n" + ssubscribe);
  EXPECT_TRUE(compat::subscribed(ac_));
  EXPECT_FALSE(compat::awaitingReply(ac_));  // no regular callback queued

  feed("*3\r\n$10\r\nssubscribe\r\n$5\r\ndev:s\r\n:1\r\n");
  feed("*3\r\n$8\r\nsmessage\r\n$5\r\ndev:s\r\n$2\r\n{}\r\n");
  feed("*3\r\n$12\r\nsunsubscribe\r\n$5\r\ndev:s\r\n:0\r\n");
  // hiredis keeps the callback after a SUNSUBSCRIBE (see shardSubscribe).
  feed("*3\r\n$8\r\nsmessage\r\n$5\r\ndev:s\r\n$2\r\n[]\r\n");
  EXPECT_EQ(replies_, (std::vector<std::string>{"ssubscribe", "smessage", "sunsubscribe", "smessage"}));
  EXPECT_TRUE(compat::subscribed(ac_));
}

}  // namespace
}  // namespace evh::redis
