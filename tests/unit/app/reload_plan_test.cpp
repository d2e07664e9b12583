// What a reload may change in place (routes, signature settings, plugins)
// and what it names as needing a restart -- by key and file:line, never by
// value.
#include "app/reload_plan.h"
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace evh::app {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
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

TEST(ReloadPlanTest, RedisSettingsChangeInPlaceNamedWithoutTheirValues) {
  const config::Config was = load(yaml("host: 127.0.0.1, password: old-secret-1", kPlugins, kChannels));
  const config::Config now = load(yaml("host: 127.0.0.2, password: new-secret-2", kPlugins, kChannels));
  EXPECT_THAT(changesNeedingRestart(was, now), IsEmpty());
  EXPECT_THAT(redisChanges(was, now), ElementsAre("redis.host", "redis.password"));
  const std::string said = describeChanges(was, now);
  EXPECT_EQ(said, "the Redis settings (redis.host, redis.password: every connection reconnected)");
  EXPECT_THAT(said, Not(HasSubstr("secret")));
  // Nothing of redis changed: no connection is touched.
  EXPECT_THAT(redisChanges(was, was), IsEmpty());
}

TEST(ReloadPlanTest, SentinelAndTlsChangesAreRedisSettings) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now = load(yaml(
      "sentinel: {master: m1, nodes: ['127.0.0.1:26379']}, tls: {enabled: true, verify: false}", kPlugins, kChannels));
  EXPECT_THAT(changesNeedingRestart(was, now), IsEmpty());
  EXPECT_THAT(redisChanges(was, now), AllOf(Contains("redis.sentinel"), Contains("redis.tls")));
}

TEST(ReloadPlanTest, UnderAClusterRedisSettingsNeedARestart) {
  const config::Config single = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config cluster = load(yaml("cluster: {nodes: ['127.0.0.1:7000']}", kPlugins, kChannels));
  const config::Config other =
      load(yaml("cluster: {nodes: ['127.0.0.1:7001']}, password: s3cret", kPlugins, kChannels));
  // To, from and within a cluster: refused by key, never applied in place.
  EXPECT_THAT(redisChanges(single, cluster), IsEmpty());
  EXPECT_THAT(changesNeedingRestart(single, cluster), Contains(HasSubstr("redis.cluster: changed")));
  EXPECT_THAT(changesNeedingRestart(cluster, single), Contains(HasSubstr("redis.cluster: changed")));
  EXPECT_THAT(redisChanges(cluster, other), IsEmpty());
  const std::vector<std::string> refused = changesNeedingRestart(cluster, other);
  EXPECT_THAT(refused, Contains(HasSubstr("redis.cluster: changed (a reload cannot apply this yet: restart evhost)")));
  EXPECT_THAT(refused, Contains(HasSubstr("redis.password: changed")));
  for (const auto& line : refused) {
    EXPECT_THAT(line, Not(HasSubstr("s3cret")));
  }
  EXPECT_THAT(changesNeedingRestart(cluster, cluster), IsEmpty());
}

TEST(ReloadPlanTest, PluginsAddedRemovedChangedOrReorderedChangeInPlace) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now =
      load(yaml("host: 127.0.0.1", "  c: {path: c}\n  a: {path: a, config: {key: v}, timeout_ms: 50}\n", kChannels));
  EXPECT_THAT(changesNeedingRestart(was, now), IsEmpty());
  EXPECT_EQ(describeChanges(was, now), "plugin c added, plugin a replaced and plugin b removed");
  // Reordered only: nothing to do (the init order matters to new instances only).
  const config::Config swapped = load(yaml("host: 127.0.0.1", "  b: {path: b}\n  a: {path: a}\n", kChannels));
  EXPECT_THAT(changesNeedingRestart(was, swapped), IsEmpty());
  EXPECT_EQ(describeChanges(was, swapped), "nothing");
}

TEST(ReloadPlanTest, EachPluginSettingReplacesTheInstance) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  for (const char* a : {"{path: a2}", "{path: a, config: {k: 1}}", "{path: a, timeout_ms: 9}",
                        "{path: a, circuit_breaker: {threshold: 2}}",
                        "{path: a, sha256: 0000000000000000000000000000000000000000000000000000000000000000}"}) {
    const config::Config now =
        load(yaml("host: 127.0.0.1", std::string("  a: ") + a + "\n  b: {path: b}\n", kChannels));
    EXPECT_THAT(changesNeedingRestart(was, now), IsEmpty()) << a;
    EXPECT_EQ(describeChanges(was, now), "plugin a replaced") << a;
  }
}

TEST(ReloadPlanTest, TheDeadLetterPluginStillNeedsARestart) {
  const std::string dl = "dead_letter: {plugin: b}\n";
  const config::Config was = load(dl + yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now =
      load(dl + yaml("host: 127.0.0.1", "  a: {path: a}\n  b: {path: b, config: {k: 1}}\n", kChannels));
  const auto lines = changesNeedingRestart(was, now);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], AllOf(HasSubstr("evhost.yaml:6: plugins.b: changed (the dead-letter plugin)"),
                              HasSubstr("restart evhost")));
  // Its neighbours still change in place.
  const config::Config other =
      load(dl + yaml("host: 127.0.0.1", "  a: {path: a, config: {k: 1}}\n  b: {path: b}\n", kChannels));
  EXPECT_THAT(changesNeedingRestart(was, other), IsEmpty());
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

TEST(ReloadPlanTest, ChannelPluginAndRedisChangesAreNamedTogether) {
  const config::Config was = load(yaml("host: 127.0.0.1", kPlugins, kChannels));
  const config::Config now = load(yaml("host: 127.0.0.2", kPlugins + "  c: {path: c}\n",
                                       kChannels + "  refunds:\n"
                                                   "    routes:\n"
                                                   "      - plugins: [c]\n"));
  EXPECT_THAT(changesNeedingRestart(was, now), IsEmpty());
  EXPECT_EQ(describeChanges(was, now),
            "the channels (1 added), plugin c added and the Redis settings (redis.host: every connection "
            "reconnected)");
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
  for (const char* key : {"environment", "limits", "logging.level", "workers"}) {
    EXPECT_THAT(all, HasSubstr(std::string(key) + ": changed")) << all;
  }
}

}  // namespace
}  // namespace evh::app
