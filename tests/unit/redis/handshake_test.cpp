// The handshake evhost and evhctl share: which commands, and what each
// reply means -- with the password never in a failure's text.
#include "redis/handshake.h"

#include "redis/address.h"
#include "redis/sentinel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <hiredis/hiredis.h>

#include <string>
#include <vector>

namespace evh::redis {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

redisReply fakeReply(int type, std::string& text) {
  redisReply r{};
  r.type = type;
  r.str = text.data();
  r.len = text.size();
  return r;
}

std::vector<std::vector<std::string>> commands(const Handshake& h) {
  std::vector<std::vector<std::string>> out;
  for (const auto& s : h.steps()) {
    out.push_back(s.argv);
  }
  return out;
}

TEST(HandshakeTest, OnlyAPingWithoutPasswordOrDatabase) {
  Handshake h{Endpoint{}};
  EXPECT_THAT(commands(h), ElementsAre(ElementsAre("PING")));
}

TEST(HandshakeTest, AuthWithPasswordOrUserThenSelectThenPing) {
  Endpoint e;
  e.password = "s3cret";
  e.db = 3;
  EXPECT_THAT(commands(Handshake(e)),
              ElementsAre(ElementsAre("AUTH", "s3cret"), ElementsAre("SELECT", "3"), ElementsAre("PING")));
  e.username = "evh";
  EXPECT_THAT(commands(Handshake(e)),
              ElementsAre(ElementsAre("AUTH", "evh", "s3cret"), ElementsAre("SELECT", "3"), ElementsAre("PING")));
  e.password.clear();  // a user without a password: no AUTH (as before)
  EXPECT_THAT(commands(Handshake(e)), ElementsAre(ElementsAre("SELECT", "3"), ElementsAre("PING")));
}

TEST(HandshakeTest, TheExpectedStatusRepliesPass) {
  Endpoint e;
  e.password = "s3cret";
  e.db = 1;
  Handshake h(e);
  std::string ok = "OK", pong = "PONG";
  EXPECT_EQ(h.check(0, fakeReply(REDIS_REPLY_STATUS, ok), "h:1"), "");
  EXPECT_EQ(h.check(1, fakeReply(REDIS_REPLY_STATUS, ok), "h:1"), "");
  EXPECT_EQ(h.check(2, fakeReply(REDIS_REPLY_STATUS, pong), "h:1"), "");
}

TEST(HandshakeTest, ARefusalNamesTheStepAndTheUserNeverThePassword) {
  Endpoint e;
  e.username = "evh";
  e.password = "s3cret";
  e.db = 7;
  Handshake h(e);
  std::string wrongpass = "WRONGPASS invalid username-password pair or user is disabled.";
  std::string db = "ERR DB index is out of range";
  std::string noauth = "NOAUTH Authentication required.";
  const std::string auth = h.check(0, fakeReply(REDIS_REPLY_ERROR, wrongpass), "127.0.0.1:6379");
  EXPECT_EQ(auth, "AUTH failed: " + wrongpass + " (as user evh)");
  EXPECT_EQ(h.check(1, fakeReply(REDIS_REPLY_ERROR, db), "127.0.0.1:6379"), "SELECT 7 failed: " + db);
  EXPECT_EQ(h.check(2, fakeReply(REDIS_REPLY_ERROR, noauth), "127.0.0.1:6379"), "PING failed: " + noauth);
  EXPECT_THAT(auth, Not(HasSubstr("s3cret")));
}

// Redis with AUTH renamed away answers "unknown command" and echoes the
// arguments (cut at 128 bytes); another server may quote them its own way.
TEST(HandshakeTest, AServerEchoingThePasswordInAnErrorIsMasked) {
  Endpoint e;
  e.username = "evh";
  e.password = "pw-0123456789abcdef";
  Handshake h(e);
  std::string unknown = "ERR unknown command 'AUTH', with args beginning with: 'evh' 'pw-0123456789abcdef' ";
  EXPECT_EQ(h.check(0, fakeReply(REDIS_REPLY_ERROR, unknown), "h:1"),
            "AUTH failed: ERR unknown command 'AUTH' (its arguments not shown) (as user evh)");
  std::string quoted = "ERR auth 'evh' 'pw-0123456789abcdef' refused";
  EXPECT_EQ(h.check(0, fakeReply(REDIS_REPLY_ERROR, quoted), "h:1"),
            "AUTH failed: ERR auth 'evh' '(password)' refused (as user evh)");
  std::string cut = "ERR bad auth: pw-0123456789a";
  EXPECT_EQ(h.check(0, fakeReply(REDIS_REPLY_ERROR, cut), "h:1"),
            "AUTH failed: ERR bad auth: (cut: the rest may hold the password) (as user evh)");
  // Only AUTH carried it: other steps' errors are left as they are.
  e.db = 2;
  Handshake with_db(e);
  std::string db = "ERR DB index is out of range";
  EXPECT_EQ(with_db.check(1, fakeReply(REDIS_REPLY_ERROR, db), "h:1"), "SELECT 2 failed: " + db);
}

TEST(HandshakeTest, AnythingButTheExpectedStatusIsAProtocolError) {
  Endpoint e;
  e.password = "s3cret";
  Handshake h(e);
  std::string ok = "OK", pong = "PONG", text = "s3cret";
  EXPECT_EQ(h.check(1, fakeReply(REDIS_REPLY_STATUS, ok), "[::1]:6390"),
            "protocol error: unexpected reply to PING from [::1]:6390 (type 5, not +PONG)");
  EXPECT_EQ(h.check(0, fakeReply(REDIS_REPLY_STATUS, pong), "[::1]:6390"),
            "protocol error: unexpected reply to AUTH from [::1]:6390 (type 5, not +OK)");
  // A server echoing the password back gets no further than the text above.
  const std::string echoed = h.check(0, fakeReply(REDIS_REPLY_STRING, text), "[::1]:6390");
  EXPECT_EQ(echoed, "protocol error: unexpected reply to AUTH from [::1]:6390 (type 1, not +OK)");
}

TEST(HandshakeTest, AnAddressDescribesAnIpv6LiteralInBrackets) {
  EXPECT_EQ((Address{"127.0.0.1", 6379}).describe(), "127.0.0.1:6379");
  EXPECT_EQ((Address{"::1", 6390}).describe(), "[::1]:6390");
  EXPECT_EQ((Address{"redis.internal", 7000}).describe(), "redis.internal:7000");
}

// Sentinel: after the handshake ROLE must name the master; a replica (a
// demoted master, or one a late sentinel still names) is refused.
TEST(HandshakeTest, RoleIsCheckedOnlyWhenTheMasterIsRequired) {
  Endpoint e;
  EXPECT_THAT(commands(Handshake(e)), ElementsAre(ElementsAre("PING")));
  e.require_master = true;
  Handshake h(e);
  EXPECT_THAT(commands(h), ElementsAre(ElementsAre("PING"), ElementsAre("ROLE")));
  std::string master = "master", slave = "slave", sentinel = "sentinel";
  redisReply role{};
  redisReply* first = nullptr;
  role.type = REDIS_REPLY_ARRAY;
  role.elements = 1;
  role.element = &first;
  redisReply name = fakeReply(REDIS_REPLY_STRING, master);
  first = &name;
  EXPECT_EQ(h.check(1, role, "h:1"), "");
  name = fakeReply(REDIS_REPLY_STRING, slave);
  EXPECT_EQ(h.check(1, role, "h:1"), "ROLE: h:1 is not the master (it is a replica)");
  name = fakeReply(REDIS_REPLY_STRING, sentinel);
  EXPECT_EQ(h.check(1, role, "h:1"), "ROLE: h:1 is not the master (it is a sentinel)");
  std::string ok = "OK";
  EXPECT_THAT(h.check(1, fakeReply(REDIS_REPLY_STATUS, ok), "h:1"),
              HasSubstr("protocol error: unexpected reply to ROLE"));
}

TEST(SentinelAddressTest, SwitchMasterMessagesAreReadForOurMasterOnly) {
  const Address a = SentinelAddress::switchedTo("mymaster 10.0.0.1 6379 10.0.0.2 6380", "mymaster");
  EXPECT_EQ(a, (Address{"10.0.0.2", 6380}));
  EXPECT_TRUE(SentinelAddress::switchedTo("other 10.0.0.1 6379 10.0.0.2 6380", "mymaster").host.empty());
  EXPECT_TRUE(SentinelAddress::switchedTo("mymaster 10.0.0.1 6379 10.0.0.2", "mymaster").host.empty());
  EXPECT_TRUE(SentinelAddress::switchedTo("mymaster 10.0.0.1 6379 10.0.0.2 0", "mymaster").host.empty());
  EXPECT_TRUE(SentinelAddress::switchedTo("mymaster 10.0.0.1 6379 10.0.0.2 99999", "mymaster").host.empty());
  EXPECT_TRUE(SentinelAddress::switchedTo("", "mymaster").host.empty());
}

}  // namespace
}  // namespace evh::redis
