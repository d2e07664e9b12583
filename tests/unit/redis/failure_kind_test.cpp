// Failure messages of the Redis connection, each in its kind.
#include "redis/failure_kind.h"

#include <gtest/gtest.h>

namespace evh::redis {
namespace {

TEST(FailureKindTest, EachMessageHasItsKind) {
  EXPECT_STREQ(failureKind("cannot resolve redis.internal: unknown node or service"), "dns");
  EXPECT_STREQ(failureKind("Connection refused"), "refused");
  EXPECT_STREQ(failureKind("no connection within connect_timeout_ms=2000"), "timeout");
  EXPECT_STREQ(failureKind("no reply to PING within ping_timeout_ms=3000; reconnecting"), "timeout");
  EXPECT_STREQ(failureKind("Connection timed out"), "timeout");
  EXPECT_STREQ(failureKind("AUTH failed: WRONGPASS invalid username-password pair or user is disabled. (as user evh)"),
               "auth");
  EXPECT_STREQ(failureKind("PING failed: NOAUTH Authentication required."), "auth");
  EXPECT_STREQ(failureKind("SELECT 3 failed: ERR DB index is out of range"), "handshake");
  EXPECT_STREQ(failureKind("PING failed: LOADING Redis is loading the dataset in memory"), "handshake");
  EXPECT_STREQ(failureKind("protocol error: unexpected reply to PING from 127.0.0.1:1 (type 2, not +PONG)"),
               "protocol");
  EXPECT_STREQ(failureKind("Protocol error, got \"H\" as reply type byte"), "protocol");
  EXPECT_STREQ(failureKind("TLS handshake failed: unknown CA: Redis's certificate is not signed by a CA evhost trusts"),
               "tls");
  EXPECT_STREQ(failureKind("Redis refused the TLS session: it requires a client certificate"), "tls");
  EXPECT_STREQ(failureKind("no connection within connect_timeout_ms=1000 (at no answer to the TLS hello: ...)"),
               "timeout");
  EXPECT_STREQ(failureKind("closed"), "closed");
  EXPECT_STREQ(failureKind("Server closed the connection"), "closed");
  EXPECT_STREQ(failureKind("Connection reset by peer"), "closed");
  EXPECT_STREQ(failureKind("out of memory creating a Redis context"), "other");
}

TEST(FailureKindTest, EveryKindIsExported) {
  for (const char* why : {"cannot resolve x", "refused", "timed out", "AUTH failed: x", "SELECT 1 failed: x",
                          "protocol error", "TLS handshake failed: x", "closed", "?"}) {
    const std::string_view kind = failureKind(why);
    bool listed = false;
    for (const char* k : kFailureKinds) {
      listed = listed || kind == k;
    }
    EXPECT_TRUE(listed) << kind;
  }
}

}  // namespace
}  // namespace evh::redis
