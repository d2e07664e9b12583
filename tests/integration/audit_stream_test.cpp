// The audit plugin with streams: its copy of each line in a capped Redis
// stream, and redeliveries after a crash (the dedup window of the newest
// lines, loaded back from the file).
#include "audit_fixture.h"

namespace evh::test {
namespace {

// --------------------------------------------------------------------------
// The stream

TEST_F(AuditTest, StreamGetsEveryLineUnderThePrefixedKey) {
  EvhostProcess host(config(", config: {stream: {key: jollyjet:audit, maxlen: 1000}}"));
  waitSubscribed(host);
  EXPECT_THAT(host.log(), HasSubstr("also XADD to stream test:jollyjet:audit MAXLEN ~ 1000"));
  for (int i = 0; i < 5; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  publish(kProductChannel, R"({"eventId":"p1","eventType":"PRODUCT_DELETED","timestamp":1705314600000,
                               "payload":{"productId":"prod-1"}})");
  ASSERT_TRUE(eventually([&] { return redis_->command({"XLEN", "test:jollyjet:audit"})->integer == 6; })) << host.log();
  EXPECT_EQ(redis_->command({"EXISTS", "jollyjet:audit"})->integer, 0) << "the key has the environment prefix";
  auto r = redis_->command({"XRANGE", "test:jollyjet:audit", "-", "+"});
  FileLines f = readLines(file(host));
  ASSERT_EQ(f.lines.size(), 6U);
  ASSERT_EQ(r->elements, 6U);
  for (size_t i = 0; i < 6; ++i) {
    const redisReply* fields = r->element[i]->element[1];
    ASSERT_EQ(fields->elements, 2U);
    EXPECT_EQ(std::string(fields->element[0]->str), "data");
    EXPECT_EQ(std::string(fields->element[1]->str, fields->element[1]->len), f.lines[i]);
  }
  json deleted = json::parse(f.lines[5]);
  EXPECT_EQ(deleted["eventType"], "PRODUCT_DELETED");
  EXPECT_EQ(deleted["timestamp"], "1705314600000");  // epoch ms as sent, as text
}

TEST_F(AuditTest, StreamIsCappedApproximatelyAtMaxlen) {
  // Small stream nodes, so that MAXLEN ~ (which trims whole nodes) trims
  // close to the limit.
  redis_ = std::make_unique<RedisServer>(std::vector<std::string>{"--stream-node-max-entries", "10"});
  EvhostProcess host(config(", config: {fsync: never, stream: {key: jollyjet:audit, maxlen: 10}}"));
  waitSubscribed(host);
  constexpr int kEvents = 100;
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  auto newest = [&] {
    auto r = redis_->command({"XREVRANGE", "test:jollyjet:audit", "+", "-", "COUNT", "1"});
    if (r->elements != 1) {
      return std::string();
    }
    const redisReply* v = r->element[0]->element[1]->element[1];
    return std::string(v->str, v->len);
  };
  ASSERT_TRUE(eventually([&] { return newest().find("evt-" + pad(kEvents - 1)) != std::string::npos; })) << host.log();
  long long len = redis_->command({"XLEN", "test:jollyjet:audit"})->integer;
  EXPECT_GE(len, 10);
  EXPECT_LE(len, 20);  // at most one node beyond maxlen
  EXPECT_EQ(readLines(file(host)).lines.size(), static_cast<size_t>(kEvents)) << "the file keeps everything";
}

TEST_F(AuditTest, StreamFailuresAreLoggedOnceWhileTheFileKeepsEveryLine) {
  redis_->command({"SET", "test:jollyjet:audit", "not a stream"});  // XADD answers WRONGTYPE
  EvhostProcess host(config(", config: {stream: {key: jollyjet:audit}}"));
  waitSubscribed(host);
  for (int i = 0; i < 3; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), 3); })) << host.log();
  // Redis's own count says when all three XADDs have run (and failed).
  ASSERT_TRUE(eventually([&] { return xaddCalls() == 3; })) << host.log();
  ASSERT_TRUE(host.waitForLog("cannot add audit lines to stream test:jollyjet:audit (WRONGTYPE")) << host.log();
  redis_->command({"DEL", "test:jollyjet:audit"});
  publish(kActivityChannel, userActivity(3));
  ASSERT_TRUE(host.waitForLog("XADD to stream test:jollyjet:audit works again; 3 audit lines did not reach it"))
      << host.log();
  EXPECT_EQ(host.countInLog("cannot add audit lines to stream"), 1U) << host.log();
  EXPECT_EQ(redis_->command({"XLEN", "test:jollyjet:audit"})->integer, 1);
  EXPECT_EQ(readLines(file(host)).lines.size(), 4U);
}

// --------------------------------------------------------------------------
// Redeliveries after a crash

class AuditRedeliveryTest : public AuditTest {
 protected:
  static constexpr const char* kStream = "test:jollyjet:events:orders";

  std::string streamConfig(const std::string& audit_config) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_->port() << "}\n"
      << "dead_letter: {fallback_file: " << dir_ << "/dead.jsonl}\n"
      << "plugins:\n  audit: {path: audit, config: {file: " << dir_ << "/audit.jsonl" << audit_config << "}}\n"
      << "channels:\n  jollyjet:events:orders:\n    transport: stream\n"
      << "    stream: {group: g, consumer: c1, block_ms: 100}\n"
      << "    routes: [{plugins: [audit]}]\n";
    return y.str();
  }

  // What a crash leaves behind: evt-a's line in the file and evt-b's in the
  // rotated one, both entries (and evt-c's, never written) still pending
  // for consumer c1; evt-d is new.
  void crashLeftovers() {
    std::ofstream(dir_ + "/audit.jsonl.1") << orderLine("evt-b") << "\n";
    std::ofstream(dir_ + "/audit.jsonl") << orderLine("evt-a") << "\n";
    redis_->command({"XGROUP", "CREATE", kStream, "g", "0", "MKSTREAM"});
    for (const char* id : {"evt-a", "evt-b", "evt-c"}) {
      redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
    }
    ReplyPtr r = redis_->command({"XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "STREAMS", kStream, ">"});
    ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
    ASSERT_EQ(pending(), 3);
    redis_->command({"XADD", kStream, "*", "event", orderEvent("evt-d")});
  }

  long long pending() {
    ReplyPtr r = redis_->command({"XPENDING", kStream, "g"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }
};

TEST_F(AuditRedeliveryTest, ARedeliveredEventWhoseLineIsInTheFileIsNotWrittenAgain) {
  crashLeftovers();
  EvhostProcess host(streamConfig(""));
  ASSERT_TRUE(eventually([&] { return pending() == 0 && hasLines(dir_ + "/audit.jsonl", 3); })) << host.log();
  EXPECT_TRUE(host.waitForLog("remembered the eventIds of the last 2 lines of " + dir_ + "/audit.jsonl")) << host.log();
  stop(host);
  // evt-a and evt-b were written before the crash; evt-c was pending but
  // never written; evt-d is new.
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"), (std::vector<std::string>{"evt-a", "evt-c", "evt-d"}));
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl.1"), (std::vector<std::string>{"evt-b"}));
  EXPECT_THAT(host.log(), HasSubstr("redeliveries_skipped=2"));
}

// Many redelivered events in one batch, with repeats among themselves (the
// same eventId in two entries): each eventId is written once.
TEST_F(AuditRedeliveryTest, RepeatsAmongRedeliveredEventsAreWrittenOnce) {
  redis_->command({"XGROUP", "CREATE", kStream, "g", "0", "MKSTREAM"});
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "evt-" + std::to_string(i);
    redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
    redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
    want.push_back(id);
  }
  ReplyPtr r = redis_->command({"XREADGROUP", "GROUP", "g", "c1", "COUNT", "1000", "STREAMS", kStream, ">"});
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(pending(), 600);
  EvhostProcess host(streamConfig(""));
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
  stop(host);
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"), want);
  EXPECT_THAT(host.log(), HasSubstr("redeliveries_skipped=300"));
}

TEST_F(AuditRedeliveryTest, WithTheWindowOffARedeliveredEventIsWrittenAgain) {
  crashLeftovers();
  EvhostProcess host(streamConfig(", dedup_window: 0"));
  ASSERT_TRUE(eventually([&] { return pending() == 0 && hasLines(dir_ + "/audit.jsonl", 5); })) << host.log();
  EXPECT_TRUE(host.waitForLog("no check for redelivered eventIds")) << host.log();
  stop(host);
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"), (std::vector<std::string>{"evt-a", "evt-a", "evt-b", "evt-c", "evt-d"}));
}

// The window is the newest lines, whoever wrote them: lines written since the
// start count, a line that is not an audit line does not, and a redelivered
// event that fell out of the window is written again.
TEST_F(AuditRedeliveryTest, TheWindowHoldsTheNewestLinesWrittenSinceTheStart) {
  std::ofstream(dir_ + "/audit.jsonl") << "not an audit line\n" << orderLine("evt-0") << "\n";
  EvhostProcess host(streamConfig(", dedup_window: 2"));
  for (const char* id : {"evt-1", "evt-2", "evt-3"}) {
    redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
  }
  ASSERT_TRUE(eventually([&] { return hasLines(dir_ + "/audit.jsonl", 5) && pending() == 0; })) << host.log();
  EXPECT_TRUE(host.waitForLog("remembered the eventIds of the last 1 lines")) << host.log();
  stop(host);
  // Redeliver evt-1 (out of the window of 2) and evt-3 (in it) as a crash
  // would: pending for c1 again.
  ReplyPtr all = redis_->command({"XRANGE", kStream, "-", "+"});
  ASSERT_EQ(all->elements, 3U);
  std::vector<std::string> entries;
  for (size_t i = 0; i < all->elements; ++i) {
    entries.emplace_back(all->element[i]->element[0]->str);
  }
  redis_->command({"XGROUP", "SETID", kStream, "g", "0"});
  redis_->command({"XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", kStream, ">"});
  redis_->command({"XACK", kStream, "g", entries[1]});
  ASSERT_EQ(pending(), 2);
  EvhostProcess again(streamConfig(", dedup_window: 2"));
  ASSERT_TRUE(eventually([&] { return pending() == 0 && hasLines(dir_ + "/audit.jsonl", 6); })) << again.log();
  stop(again);
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"),
            (std::vector<std::string>{"(not JSON)", "evt-0", "evt-1", "evt-2", "evt-3", "evt-1"}));
}

}  // namespace
}  // namespace evh::test
