// Tests of the Config helpers: Origin::describe and redis:// URL parsing.
#include "config/config.h"

#include <gtest/gtest.h>

namespace evh::config {
namespace {

class RedisUrlTest : public ::testing::Test {
 protected:
  // Parses into a Redis whose fields all differ from the URL defaults, to
  // show which ones the URL sets.
  bool parse(const std::string& url) {
    redis_ = Redis{};
    redis_.host = "unset";
    redis_.port = 1;
    redis_.db = 99;
    redis_.username = "unset";
    redis_.password = "unset";
    redis_.connect_timeout_ms = 1234;
    error_.clear();
    return parseRedisUrl(url, redis_, error_);
  }

  Redis redis_;
  std::string error_;
};

TEST_F(RedisUrlTest, HostOnlyUsesDefaultPortAndDb) {
  ASSERT_TRUE(parse("redis://cache.internal")) << error_;
  EXPECT_EQ(redis_.host, "cache.internal");
  EXPECT_EQ(redis_.port, 6379);
  EXPECT_EQ(redis_.db, 0U);
  EXPECT_EQ(redis_.username, "");
  EXPECT_EQ(redis_.password, "");
  EXPECT_EQ(redis_.connect_timeout_ms, 1234U);  // not the URL's business
}

TEST_F(RedisUrlTest, ParsesUserPasswordPortAndDb) {
  ASSERT_TRUE(parse("redis://app:s3cret@10.0.0.5:6380/2")) << error_;
  EXPECT_EQ(redis_.host, "10.0.0.5");
  EXPECT_EQ(redis_.port, 6380);
  EXPECT_EQ(redis_.db, 2U);
  EXPECT_EQ(redis_.username, "app");
  EXPECT_EQ(redis_.password, "s3cret");
}

TEST_F(RedisUrlTest, PasswordWithoutUserMeansLegacyAuth) {
  ASSERT_TRUE(parse("redis://:pw@localhost")) << error_;
  EXPECT_EQ(redis_.username, "");
  EXPECT_EQ(redis_.password, "pw");
}

TEST_F(RedisUrlTest, DecodesPercentEscapesInUserAndPassword) {
  ASSERT_TRUE(parse("redis://us%40er:p%3Aa%2Fss%25@h:1")) << error_;
  EXPECT_EQ(redis_.username, "us@er");
  EXPECT_EQ(redis_.password, "p:a/ss%");
}

TEST_F(RedisUrlTest, LastAtSignEndsTheUserInfo) {
  ASSERT_TRUE(parse("redis://:p@ss/word@h")) << error_;
  EXPECT_EQ(redis_.password, "p@ss/word");
  EXPECT_EQ(redis_.host, "h");
}

TEST_F(RedisUrlTest, SchemeIsCaseInsensitive) { EXPECT_TRUE(parse("REDIS://h")) << error_; }

TEST_F(RedisUrlTest, TrailingSlashMeansDbZero) {
  ASSERT_TRUE(parse("redis://h:7000/")) << error_;
  EXPECT_EQ(redis_.port, 7000);
  EXPECT_EQ(redis_.db, 0U);
}

TEST_F(RedisUrlTest, AcceptsBracketedIpv6) {
  ASSERT_TRUE(parse("redis://[::1]:6390/3")) << error_;
  EXPECT_EQ(redis_.host, "::1");
  EXPECT_EQ(redis_.port, 6390);
  EXPECT_EQ(redis_.db, 3U);
}

TEST_F(RedisUrlTest, RedissTurnsTlsOn) {
  ASSERT_TRUE(parse("rediss://cache.internal:6380")) << error_;
  EXPECT_EQ(redis_.host, "cache.internal");
  EXPECT_EQ(redis_.port, 6380);
  EXPECT_TRUE(redis_.tls.enabled);
  ASSERT_TRUE(parse("REDISS://h")) << error_;
  EXPECT_TRUE(redis_.tls.enabled);
}

TEST_F(RedisUrlTest, RejectsOtherSchemes) {
  EXPECT_FALSE(parse("http://h"));
  EXPECT_EQ(error_, "unsupported scheme \"http\" (redis:// or rediss:// for TLS)");
  EXPECT_FALSE(parse("localhost:6379"));
  EXPECT_EQ(redis_.host, "unset");  // untouched on failure
}

TEST_F(RedisUrlTest, RejectsBadPorts) {
  EXPECT_FALSE(parse("redis://h:abc"));
  EXPECT_EQ(error_, "invalid port (expected an integer in 1..65535; not shown, as it may be a password)");
  EXPECT_FALSE(parse("redis://h:0"));
  EXPECT_FALSE(parse("redis://h:65536"));
  EXPECT_FALSE(parse("redis://h:"));
  EXPECT_FALSE(parse("redis://h:-1"));
}

TEST_F(RedisUrlTest, RejectsBadDb) {
  EXPECT_FALSE(parse("redis://h/x"));
  EXPECT_EQ(error_, "invalid database (expected an integer in 0..2147483647; not shown, as it may hold a password)");
  EXPECT_FALSE(parse("redis://h/-1"));
  EXPECT_FALSE(parse("redis://h/1/2"));
}

TEST_F(RedisUrlTest, RejectsMissingHost) {
  EXPECT_FALSE(parse("redis://"));
  EXPECT_EQ(error_, "missing host");
  EXPECT_FALSE(parse("redis://user:pw@:6379"));
}

TEST_F(RedisUrlTest, RejectsBadPercentEncoding) {
  EXPECT_FALSE(parse("redis://u:p%zz@h"));
  EXPECT_EQ(error_, "invalid percent-encoding in the password");
  EXPECT_FALSE(parse("redis://u%4@h"));
  EXPECT_EQ(error_, "invalid percent-encoding in the user name");
}

TEST_F(RedisUrlTest, RejectsQueryStrings) { EXPECT_FALSE(parse("redis://h:6379/0?timeout=5")); }

TEST_F(RedisUrlTest, RejectsUnbracketedIpv6) { EXPECT_FALSE(parse("redis://::1:6379")); }

class OriginTest : public ::testing::Test {};

TEST_F(OriginTest, DescribesFileLineAndKey) {
  EXPECT_EQ((Origin{"cfg.yaml", 12, "channels.x.routes[0]"}).describe(), "cfg.yaml:12: channels.x.routes[0]");
  EXPECT_EQ((Origin{"cfg.yaml", 0, ""}).describe(), "cfg.yaml");
}

}  // namespace
}  // namespace evh::config
