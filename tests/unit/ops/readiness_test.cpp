// The /readyz body: ready, or not ready with every reason.
#include "ops/readiness.h"

#include <gtest/gtest.h>

namespace evh::ops {
namespace {

TEST(ReadinessTest, ReadyHasNoReasons) {
  Readiness r;
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.json(), R"({"status":"ready"})");
}

TEST(ReadinessTest, NotReadyListsEveryReasonAsValidJson) {
  Readiness r;
  r.not_ready = {"redis command connection (127.0.0.1:6379) is down",
                 "subscription dev:orders refused by Redis: NOPERM \"quoted\"\n\xff"};
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.json(),
            "{\"reasons\":[\"redis command connection (127.0.0.1:6379) is down\","
            "\"subscription dev:orders refused by Redis: NOPERM \\\"quoted\\\"\\n\xEF\xBF\xBD\"],"
            "\"status\":\"not ready\"}");
}

}  // namespace
}  // namespace evh::ops
