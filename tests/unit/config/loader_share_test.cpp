// channels.<name>.share: a Pub/Sub channel shared among instances through a
// stream -- its defaults, its keys, and where it is refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace evh::config {
namespace {

using ::testing::HasSubstr;

std::string shareJoined(const std::vector<std::string>& errors) {
  std::string out;
  for (const std::string& e : errors) {
    out += "  " + e + "\n";
  }
  return out;
}

LoadResult loadShare(const std::string& channel_body) {
  const std::string yaml = "plugins:\n  p: {path: p}\nchannels:\n  jollyjet:events:product:\n" + channel_body +
                           "    routes:\n      - plugins: [p]\n";
  return loadString(yaml, "cfg.yaml", [](const std::string&) { return std::nullopt; });
}

TEST(LoaderShareTest, AnEmptyShareMapTakesTheDefaults) {
  const LoadResult r = loadShare("    share: {}\n");
  ASSERT_TRUE(r.config) << shareJoined(r.errors);
  const Channel& ch = r.config->channels.at(0);
  EXPECT_EQ(ch.transport, Transport::PubSub);
  EXPECT_TRUE(ch.share.enabled);
  EXPECT_EQ(ch.share.stream, "jollyjet:events:product:shared");
  EXPECT_EQ(ch.share.window_s, 60U);
  EXPECT_EQ(ch.share.maxlen, 100000U);
  EXPECT_EQ(ch.share.origin.line, 5U);  // share: is on line 5
  EXPECT_EQ(ch.stream.group, "evhost");
}

TEST(LoaderShareTest, EveryKeyAndTheStreamOptionsAreRead) {
  const LoadResult r = loadShare(
      "    share: {stream: product-events, window_s: 300, maxlen: 0}\n"
      "    stream: {group: shop, claim_idle_ms: 1000}\n");
  ASSERT_TRUE(r.config) << shareJoined(r.errors);
  const Channel& ch = r.config->channels.at(0);
  EXPECT_EQ(ch.share.stream, "product-events");
  EXPECT_EQ(ch.share.window_s, 300U);
  EXPECT_EQ(ch.share.maxlen, 0U);
  EXPECT_EQ(ch.stream.group, "shop");
  EXPECT_EQ(ch.stream.claim_idle_ms, 1000U);
}

TEST(LoaderShareTest, StreamOptionsWithoutShareAreStillRefusedOnPubSub) {
  const LoadResult r = loadShare("    stream: {group: shop}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("cfg.yaml:5: channels.jollyjet:events:product.stream: only for transport: "
                                     "stream, or a channel with share:"));
}

TEST(LoaderShareTest, ShareIsRefusedOnAStreamAndOnAPattern) {
  LoadResult r = loadShare("    transport: stream\n    share: {}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("channels.jollyjet:events:product.share: only for a Pub/Sub channel"));
  r = loadShare("    pattern: true\n    share: {}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("channels.jollyjet:events:product.share: not with pattern: true"));
}

TEST(LoaderShareTest, BadValuesAreNamedWithTheirKey) {
  LoadResult r = loadShare("    share: {window_s: 0}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("channels.jollyjet:events:product.share.window_s"));
  r = loadShare("    share: {stream: \"\"}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("share.stream: must not be empty"));
  r = loadShare("    share: {stream: jollyjet:events:product}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("share.stream: must differ from the channel's own name"));
  r = loadShare("    share: {streams: x}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("share.streams"));
  r = loadShare("    share: yes\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("channels.jollyjet:events:product.share"));
}

// channels.<name>.sharded: sharded Pub/Sub (SSUBSCRIBE), for a Pub/Sub
// channel by its name only.
TEST(LoaderShardedTest, AShardedChannelIsAPubSubChannel) {
  const LoadResult r = loadShare("    sharded: true\n");
  ASSERT_TRUE(r.config) << shareJoined(r.errors);
  const Channel& ch = r.config->channels.at(0);
  EXPECT_TRUE(ch.sharded);
  EXPECT_EQ(ch.transport, Transport::PubSub);
  const LoadResult classic = loadShare("    pattern: false\n");
  ASSERT_TRUE(classic.config) << shareJoined(classic.errors);
  EXPECT_FALSE(classic.config->channels.at(0).sharded);
}

TEST(LoaderShardedTest, NotWithAStreamAPatternOrShare) {
  LoadResult r = loadShare("    sharded: true\n    transport: stream\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_EQ(r.errors[0],
            "cfg.yaml:4: channels.jollyjet:events:product.sharded: only for a Pub/Sub channel (transport: pubsub)");
  r = loadShare("    sharded: true\n    pattern: true\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("cfg.yaml:4: channels.jollyjet:events:product.sharded: not with pattern: true "
                                     "(sharded Pub/Sub has no patterns"));
  r = loadShare("    sharded: true\n    share: {}\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("cfg.yaml:4: channels.jollyjet:events:product.sharded: not with share:"));
  r = loadShare("    sharded: yes please\n");
  ASSERT_EQ(r.errors.size(), 1U) << shareJoined(r.errors);
  EXPECT_THAT(r.errors[0], HasSubstr("cfg.yaml:5: channels.jollyjet:events:product.sharded: "));
}

}  // namespace
}  // namespace evh::config
