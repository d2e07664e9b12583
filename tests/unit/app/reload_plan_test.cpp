// What a reload may change in place (routes, signature settings) and what it
// names as needing a restart -- by key and file:line, never by value.
#include "app/reload_plan.h"
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace evh::app {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::optional<std::string> noEnv(const std::string&) { return std::nullopt; }

config::Config load(const std::string& yaml) {
  config::LoadResult r = config::loadString(yaml, "evhost.yaml", noEnv);
  EXPECT_THAT(r.errors, IsEmpty());
  return r.config ? *r.config : config::Config{};
}

std::string yaml(const std::string& redis, const std::string& plugins, const std::string& channels) {
  return "environment: dev\n"
         "redis: {" +
         redis +
         "}\n"
         "plugins:\n" +
         plugins + "channels:\n" + channels;
}

const std::string kPlugins = "  a: {path: a}\n  b: {path: b}\n";
const std::string kChannels =
    "  orders:\n"
    "    routes:\n"
    "      - events: [ORDER_CREATED]\n"
    "        plugins: [a]\n";

TEST(ReloadPlanTest, TheSameConfigChangesNothing) {
  const config::Config c = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  EXPECT_THAT(changesNeedingRestart(c, c), IsEmpty());
  EXPECT_EQ(describeChanges(c, c), "nothing");
}

TEST(ReloadPlanTest, RoutesAndRetryPoliciesChangeInPlace) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now = load(yaml("host: 127.0.0.1", kPlugins,
                                       "  orders:\n"
                                       "    routes:\n"
                                       "      - events: [ORDER_CREATED, ORDER_PAID]\n"
                                       "        plugins: [b, a]\n"
                                       "        retry: {max_attempts: 7}\n"));
  EXPECT_THAT(changesNeedingRestart(was, now), IsEmpty());
  EXPECT_EQ(describeChanges(was, now), "the routes of 1 channel(s)");
}

TEST(ReloadPlanTest, ARedisPasswordChangeIsNamedWithoutItsValue) {
  const config::Config was = load(yaml("host: 127.0.0.1, password: old-secret-1", kPlugins, kChannels));
  const config::Config now = load(yaml("host: 127.0.0.1, password: new-secret-2", kPlugins, kChannels));
  const auto lines = changesNeedingRestart(was, now);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], AllOf(HasSubstr("evhost.yaml"), HasSubstr("redis.password: changed"),
                              HasSubstr("restart evhost"), Not(HasSubstr("secret"))));
}

TEST(ReloadPlanTest, PluginsAddedRemovedOrChangedAreNamedWithTheirLine) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now =
      load(yaml("host: 127.0.0.1", "  a: {path: a, config: {key: v}}\n  c: {path: c}\n", kChannels));
  const auto lines = changesNeedingRestart(was, now);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("evhost.yaml:4: plugins.a.config: changed"));
  EXPECT_THAT(lines[1], HasSubstr("evhost.yaml:5: plugins.c: added"));
  EXPECT_THAT(lines[2], HasSubstr("plugins.b: removed"));
}

TEST(ReloadPlanTest, ChannelsAddedRemovedOrWithOtherStreamOptionsApplyInPlace) {
  const std::string stream =
      "  orders:\n"
      "    transport: stream\n"
      "    stream: {count: 10}\n"
      "    routes:\n"
      "      - plugins: [a]\n";
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, stream));
  config::Config now = load(yaml("host: 127.0.0.1", kPlugins,
                                 "  orders:\n"
                                 "    transport: stream\n"
                                 "    stream: {count: 20}\n"
                                 "    routes:\n"
                                 "      - plugins: [a]\n"
                                 "  refunds:\n"
                                 "    routes:\n"
                                 "      - plugins: [b]\n"));
  EXPECT_THAT(changesNeedingRestart(was, now), IsEmpty());
  EXPECT_EQ(describeChanges(was, now), "the channels (1 added) and the reading of 1 stream channel(s)");
  EXPECT_EQ(describeChanges(now, was), "the channels (1 removed) and the reading of 1 stream channel(s)");
  // The same channel turned from Pub/Sub into a stream is another channel.
  const config::Config pubsub = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  EXPECT_THAT(changesNeedingRestart(pubsub, was), IsEmpty());
  EXPECT_EQ(describeChanges(pubsub, was), "the channels (1 added, 1 removed)");
  // A pattern is a channel of its own too.
  const config::Config pattern = load(yaml("host: 127.0.0.1", kPlugins,
                                           "  orders:\n"
                                           "    pattern: true\n"
                                           "    routes:\n"
                                           "      - plugins: [a]\n"
                                           "  refunds:\n"
                                           "    routes:\n"
                                           "      - plugins: [b]\n"));
  EXPECT_EQ(describeChanges(pubsub, pattern), "the channels (2 added, 1 removed)");
}

TEST(ReloadPlanTest, ChannelChangesAndTheOtherRefusalsAreNamedTogether) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now = load(yaml("host: 127.0.0.1", kPlugins + "  c: {path: c}\n",
                                       kChannels + "  refunds:\n"
                                                   "    routes:\n"
                                                   "      - plugins: [c]\n"));
  EXPECT_THAT(changesNeedingRestart(was, now), ElementsAre(HasSubstr("plugins.c: added")));
}

TEST(ReloadPlanTest, EverythingBuiltAtStartIsCompared) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now = load(
      "environment: prod\n"
      "redis: {host: 127.0.0.2}\n"
      "limits: {max_in_flight: 5}\n"
      "logging: {level: debug}\n"
      "workers: 9\n"
      "plugins:\n" +
      kPlugins + "channels:\n" + kChannels);
  const auto lines = changesNeedingRestart(was, now);
  std::string all;
  for (const auto& l : lines) {
    all += l + "\n";
  }
  for (const char* key : {"redis.host", "environment", "limits", "logging.level", "workers"}) {
    EXPECT_THAT(all, HasSubstr(std::string(key) + ": changed")) << all;
  }
}

}  // namespace
}  // namespace evh::app
