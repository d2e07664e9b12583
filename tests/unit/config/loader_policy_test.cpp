// retry, circuit_breaker, dead_letter and plugin timeout_ms: defaults,
// the plan's environment variables, per-route and per-plugin overrides,
// and the checks on the merged policies.
#include "loader_fixture.h"

namespace evh::config {
namespace {

// ---- retry, circuit_breaker, dead_letter, plugin timeout_ms --------------------------

// Every field of a RetryPolicy, for comparing whole policies.
std::string describe(const RetryPolicy& p) {
  const char* jitter = p.jitter == Jitter::None ? "none" : p.jitter == Jitter::Full ? "full" : "equal";
  return "max_attempts=" + std::to_string(p.max_attempts) + " base_delay_ms=" + std::to_string(p.base_delay_ms) +
         " multiplier=" + std::to_string(p.multiplier) + " max_delay_ms=" + std::to_string(p.max_delay_ms) +
         " jitter=" + jitter;
}

std::string describe(const BreakerPolicy& p) {
  return "threshold=" + std::to_string(p.threshold) + " open_ms=" + std::to_string(p.open_ms) +
         " half_open_max_calls=" + std::to_string(p.half_open_max_calls) +
         " max_wait_ms=" + std::to_string(p.max_wait_ms) + " max_waiting=" + std::to_string(p.max_waiting);
}

TEST_F(LoaderTest, PoliciesHaveDefaultsWithoutAnyKey) {
  const Config config = valid(R"(
plugins: { p: { path: p } }
channels: { c: { routes: [ { plugins: [p] } ] } }
)");
  EXPECT_EQ(describe(config.retry), describe(RetryPolicy{}));
  EXPECT_EQ(config.retry.max_attempts, 3U);
  EXPECT_EQ(config.retry.base_delay_ms, 1000U);
  EXPECT_DOUBLE_EQ(config.retry.multiplier, 2.0);
  EXPECT_EQ(config.retry.max_delay_ms, 60000U);
  EXPECT_EQ(config.retry.jitter, Jitter::Equal);
  EXPECT_EQ(config.breaker.threshold, 5U);
  EXPECT_EQ(config.breaker.open_ms, 60000U);
  EXPECT_EQ(config.breaker.half_open_max_calls, 3U);
  EXPECT_EQ(config.breaker.max_wait_ms, 90000U);
  EXPECT_EQ(config.breaker.max_waiting, 10000U);
  EXPECT_EQ(config.dead_letter.plugin, "");
  EXPECT_EQ(config.dead_letter.fallback_file, "evhost-dead-letter.jsonl");
  EXPECT_EQ(config.dead_letter.timeout_ms, 5000U);
  EXPECT_EQ(config.dead_letter.channel, "jollyjet:events:dlq");  // the plan's PUBSUB_CHANNELS.DLQ
  EXPECT_EQ(config.dead_letter.origin.describe(), "cfg.yaml: dead_letter");
  ASSERT_EQ(config.plugins.size(), 1U);
  EXPECT_EQ(config.plugins[0].timeout_ms, 0U);
  EXPECT_EQ(describe(config.plugins[0].breaker), describe(BreakerPolicy{}));
  EXPECT_EQ(describe(config.channels[0].routes[0].retry), describe(RetryPolicy{}));
}

TEST_F(LoaderTest, EmptyPolicySectionsMeanDefaults) {
  const Config config = valid(R"(
retry:
circuit_breaker: {}
dead_letter:
plugins: { p: { path: p, circuit_breaker: } }
channels: { c: { routes: [ { plugins: [p], retry: {} } ] } }
)");
  EXPECT_EQ(describe(config.retry), describe(RetryPolicy{}));
  EXPECT_EQ(describe(config.breaker), describe(BreakerPolicy{}));
  EXPECT_EQ(describe(config.plugins[0].breaker), describe(BreakerPolicy{}));
  EXPECT_EQ(describe(config.channels[0].routes[0].retry), describe(RetryPolicy{}));
  EXPECT_EQ(config.dead_letter.fallback_file, "evhost-dead-letter.jsonl");
  EXPECT_EQ(config.dead_letter.origin.describe(), "cfg.yaml:3: dead_letter");
}

TEST_F(LoaderTest, PolicyKeysAreRead) {
  const Config config = valid(R"(
retry:
  max_attempts: 4
  base_delay_ms: 0
  multiplier: 1.5
  max_delay_ms: 0
  jitter: none
circuit_breaker:
  threshold: 1
  open_ms: 1
  half_open_max_calls: 2
  max_wait_ms: 0
  max_waiting: 0
dead_letter:
  plugin: dlq
  fallback_file: /var/lib/evhost/dead.jsonl
  timeout_ms: 1
  channel: acme:events:dead
plugins:
  dlq: { path: dlq, timeout_ms: 250 }
)");
  EXPECT_EQ(describe(config.retry), "max_attempts=4 base_delay_ms=0 multiplier=1.500000 max_delay_ms=0 jitter=none");
  EXPECT_EQ(describe(config.breaker), "threshold=1 open_ms=1 half_open_max_calls=2 max_wait_ms=0 max_waiting=0");
  EXPECT_EQ(config.dead_letter.plugin, "dlq");
  EXPECT_EQ(config.dead_letter.fallback_file, "/var/lib/evhost/dead.jsonl");
  EXPECT_EQ(config.dead_letter.timeout_ms, 1U);
  EXPECT_EQ(config.dead_letter.channel, "acme:events:dead");
  EXPECT_EQ(config.dead_letter.origin.describe(), "cfg.yaml:13: dead_letter");
  ASSERT_EQ(config.plugins.size(), 1U);
  EXPECT_EQ(config.plugins[0].timeout_ms, 250U);
  EXPECT_EQ(describe(config.plugins[0].breaker), describe(config.breaker));
}

TEST_F(LoaderTest, AnEmptyDeadLetterChannelIsRefused) {
  expectError("dead_letter: { channel: \"\" }\n", "cfg.yaml:1: dead_letter.channel: must not be empty");
}

TEST_F(LoaderTest, JitterTakesEachOfItsValues) {
  EXPECT_EQ(valid("retry: { jitter: none }").retry.jitter, Jitter::None);
  EXPECT_EQ(valid("retry: { jitter: full }").retry.jitter, Jitter::Full);
  EXPECT_EQ(valid("retry: { jitter: equal }").retry.jitter, Jitter::Equal);
}

TEST_F(LoaderTest, EnvironmentGivesDefaultsToAbsentKeys) {
  env_ = {{"RETRY_MAX_ATTEMPTS", "7"},
          {"RETRY_BASE_DELAY", "250"},
          {"CIRCUIT_BREAKER_THRESHOLD", "9"},
          {"CIRCUIT_BREAKER_TIMEOUT", "1234"}};
  const Config config = valid(R"(
plugins: { p: { path: p } }
channels: { c: { routes: [ { plugins: [p] } ] } }
)");
  EXPECT_EQ(config.retry.max_attempts, 7U);
  EXPECT_EQ(config.retry.base_delay_ms, 250U);
  EXPECT_EQ(config.breaker.threshold, 9U);
  EXPECT_EQ(config.breaker.open_ms, 1234U);
  // Folded into every route and plugin as well.
  EXPECT_EQ(describe(config.channels[0].routes[0].retry), describe(config.retry));
  EXPECT_EQ(describe(config.plugins[0].breaker), describe(config.breaker));
}

TEST_F(LoaderTest, EnvironmentDefaultsApplyEvenWithASectionPresent) {
  env_ = {{"RETRY_MAX_ATTEMPTS", "7"}, {"CIRCUIT_BREAKER_TIMEOUT", "1234"}};
  const Config config = valid(R"(
retry: { base_delay_ms: 10 }
circuit_breaker: { threshold: 2 }
)");
  EXPECT_EQ(config.retry.max_attempts, 7U);
  EXPECT_EQ(config.retry.base_delay_ms, 10U);
  EXPECT_EQ(config.breaker.threshold, 2U);
  EXPECT_EQ(config.breaker.open_ms, 1234U);
}

TEST_F(LoaderTest, KeyInTheFileBeatsTheEnvironment) {
  env_ = {{"RETRY_MAX_ATTEMPTS", "7"},
          {"RETRY_BASE_DELAY", "250"},
          {"CIRCUIT_BREAKER_THRESHOLD", "9"},
          {"CIRCUIT_BREAKER_TIMEOUT", "1234"}};
  const Config config = valid(R"(
retry: { max_attempts: 2, base_delay_ms: 500 }
circuit_breaker: { threshold: 3, open_ms: 4000 }
)");
  EXPECT_EQ(config.retry.max_attempts, 2U);
  EXPECT_EQ(config.retry.base_delay_ms, 500U);
  EXPECT_EQ(config.breaker.threshold, 3U);
  EXPECT_EQ(config.breaker.open_ms, 4000U);
}

TEST_F(LoaderTest, InvalidEnvironmentValueIsIgnoredWhenTheFileGivesTheKey) {
  env_ = {{"RETRY_MAX_ATTEMPTS", "many"}};
  EXPECT_EQ(valid("retry: { max_attempts: 2 }").retry.max_attempts, 2U);
}

TEST_F(LoaderTest, EmptyEnvironmentValueCountsAsUnset) {
  env_ = {{"RETRY_MAX_ATTEMPTS", ""}, {"CIRCUIT_BREAKER_TIMEOUT", ""}};
  const Config config = valid("{}");
  EXPECT_EQ(config.retry.max_attempts, 3U);
  EXPECT_EQ(config.breaker.open_ms, 60000U);
}

TEST_F(LoaderTest, InvalidEnvironmentValuesAreErrorsNamingTheVariable) {
  env_ = {{"RETRY_MAX_ATTEMPTS", "x"},
          {"RETRY_BASE_DELAY", "-5"},
          {"CIRCUIT_BREAKER_THRESHOLD", "0"},
          {"CIRCUIT_BREAKER_TIMEOUT", "1.5"}};
  const LoadResult result = load("workers: 0\n");
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               // No line: the values are not in the file. They come first.
                               "cfg.yaml: RETRY_MAX_ATTEMPTS: expected an integer in 1..4294967295, got \"x\" "
                               "(environment variable, the default of retry.max_attempts)",
                               "cfg.yaml: RETRY_BASE_DELAY: expected an integer in 0..4294967295, got \"-5\" "
                               "(environment variable, the default of retry.base_delay_ms)",
                               "cfg.yaml: CIRCUIT_BREAKER_THRESHOLD: expected an integer in 1..4294967295, got "
                               "\"0\" (environment variable, the default of circuit_breaker.threshold)",
                               "cfg.yaml: CIRCUIT_BREAKER_TIMEOUT: expected an integer in 1..4294967295, got "
                               "\"1.5\" (environment variable, the default of circuit_breaker.open_ms)",
                               "cfg.yaml:1: workers: expected an integer in 1..256, got \"0\"",
                           }))
      << joined(result.errors);
}

TEST_F(LoaderTest, ExplicitVariableReferenceReportsTheKeyAndBoth) {
  // The shipped file writes `${RETRY_MAX_ATTEMPTS:-3}`: then it is the key's error.
  env_ = {{"RETRY_MAX_ATTEMPTS", "0"}};
  expectError("retry:\n  max_attempts: ${RETRY_MAX_ATTEMPTS:-3}\n",
              "cfg.yaml:2: retry.max_attempts: expected an integer in 1..4294967295, got \"0\" "
              "(from \"${RETRY_MAX_ATTEMPTS:-3}\")");
}

TEST_F(LoaderTest, RouteRetryOverridesOnlyTheKeysItGives) {
  env_ = {{"RETRY_BASE_DELAY", "300"}};
  const Config config = valid(R"(
plugins: { p: { path: p } }
channels:
  c:
    routes:
      - events: [A]
        plugins: [p]
        retry: { max_attempts: 5 }
      - events: [B]
        plugins: [p]
      - events: [C]
        plugins: [p]
        retry: { multiplier: 3, jitter: full, max_delay_ms: 900 }
  d:
    routes:
      - { plugins: [p], retry: { base_delay_ms: 0, max_attempts: 1 } }
retry:                     # after the routes that inherit from it
  max_attempts: 4
  max_delay_ms: 30000
  jitter: none
)");
  EXPECT_EQ(describe(config.retry),
            "max_attempts=4 base_delay_ms=300 multiplier=2.000000 max_delay_ms=30000 jitter=none");
  const std::vector<Route>& c = config.channels[0].routes;
  ASSERT_EQ(c.size(), 3U);
  EXPECT_EQ(describe(c[0].retry),
            "max_attempts=5 base_delay_ms=300 multiplier=2.000000 max_delay_ms=30000 jitter=none");
  EXPECT_EQ(describe(c[1].retry), describe(config.retry));
  EXPECT_EQ(describe(c[2].retry), "max_attempts=4 base_delay_ms=300 multiplier=3.000000 max_delay_ms=900 jitter=full");
  ASSERT_EQ(config.channels[1].routes.size(), 1U);
  EXPECT_EQ(describe(config.channels[1].routes[0].retry),
            "max_attempts=1 base_delay_ms=0 multiplier=2.000000 max_delay_ms=30000 jitter=none");
}

TEST_F(LoaderTest, PluginBreakerOverridesOnlyTheKeysItGives) {
  env_ = {{"CIRCUIT_BREAKER_TIMEOUT", "5000"}};
  const Config config = valid(R"(
plugins:
  product:
    path: product
    timeout_ms: 1500
    circuit_breaker: { threshold: 10, max_waiting: 0 }
  audit: { path: audit }
circuit_breaker:           # after the plugins that inherit from it
  threshold: 4
  half_open_max_calls: 1
)");
  EXPECT_EQ(describe(config.breaker),
            "threshold=4 open_ms=5000 half_open_max_calls=1 max_wait_ms=90000 max_waiting=10000");
  ASSERT_EQ(config.plugins.size(), 2U);
  EXPECT_EQ(config.plugins[0].timeout_ms, 1500U);
  EXPECT_EQ(describe(config.plugins[0].breaker),
            "threshold=10 open_ms=5000 half_open_max_calls=1 max_wait_ms=90000 max_waiting=0");
  EXPECT_EQ(config.plugins[1].timeout_ms, 0U);
  EXPECT_EQ(describe(config.plugins[1].breaker), describe(config.breaker));
}

TEST_F(LoaderTest, UnknownJitterListsTheChoices) {
  expectError("retry:\n  jitter: random\n",
              "cfg.yaml:2: retry.jitter: expected one of none, full, equal; got \"random\"");
  expectError(R"(
plugins: { p: { path: p } }
channels: { c: { routes: [ { plugins: [p], retry: { jitter: Equal } } ] } }
)",
              "cfg.yaml:2: channels.c.routes[0].retry.jitter: expected one of none, full, equal; "
              "got \"Equal\"");
}

TEST_F(LoaderTest, PolicyValuesOutOfRangeAreErrors) {
  const LoadResult result = load(R"(
retry:
  max_attempts: 0
  base_delay_ms: -1
  multiplier: 0.9
  max_delay_ms: 4294967296
circuit_breaker:
  threshold: 0
  open_ms: 0
  half_open_max_calls: 0
  max_wait_ms: -1
  max_waiting: lots
dead_letter:
  plugin: [a]
  fallback_file: ""
  timeout_ms: 0
plugins:
  p:
    path: p
    timeout_ms: -1
    circuit_breaker: { threshold: 0 }
channels:
  c: { routes: [ { plugins: [p], retry: { max_attempts: 0, multiplier: x } } ] }
)");
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               "cfg.yaml:2: retry.max_attempts: expected an integer in 1..4294967295, got \"0\"",
                               "cfg.yaml:3: retry.base_delay_ms: expected an integer in 0..4294967295, got "
                               "\"-1\"",
                               "cfg.yaml:4: retry.multiplier: expected a number >= 1, got \"0.9\"",
                               "cfg.yaml:5: retry.max_delay_ms: expected an integer in 0..4294967295, got "
                               "\"4294967296\"",
                               "cfg.yaml:7: circuit_breaker.threshold: expected an integer in 1..4294967295, got "
                               "\"0\"",
                               "cfg.yaml:8: circuit_breaker.open_ms: expected an integer in 1..4294967295, got "
                               "\"0\"",
                               "cfg.yaml:9: circuit_breaker.half_open_max_calls: expected an integer in "
                               "1..4294967295, got \"0\"",
                               "cfg.yaml:10: circuit_breaker.max_wait_ms: expected an integer in 0..4294967295, "
                               "got \"-1\"",
                               "cfg.yaml:11: circuit_breaker.max_waiting: expected an integer in 0..4294967295, "
                               "got \"lots\"",
                               "cfg.yaml:13: dead_letter.plugin: expected a plugin instance name, got a list",
                               "cfg.yaml:14: dead_letter.fallback_file: must not be empty",
                               "cfg.yaml:15: dead_letter.timeout_ms: expected an integer in 1..4294967295, got "
                               "\"0\"",
                               "cfg.yaml:19: plugins.p.timeout_ms: expected an integer in 0..4294967295, got "
                               "\"-1\"",
                               "cfg.yaml:20: plugins.p.circuit_breaker.threshold: expected an integer in "
                               "1..4294967295, got \"0\"",
                               "cfg.yaml:22: channels.c.routes[0].retry.max_attempts: expected an integer in "
                               "1..4294967295, got \"0\"",
                               "cfg.yaml:22: channels.c.routes[0].retry.multiplier: expected a number >= 1, got "
                               "\"x\"",
                           }))
      << joined(result.errors);
}

TEST_F(LoaderTest, PolicySectionsMustBeMaps) {
  const LoadResult result = load(R"(
retry: 3
circuit_breaker: [1]
dead_letter: dlq
plugins: { p: { path: p, circuit_breaker: on } }
channels: { c: { routes: [ { plugins: [p], retry: 5 } ] } }
)");
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               "cfg.yaml:1: retry: expected a map, got \"3\"",
                               "cfg.yaml:2: circuit_breaker: expected a map, got a list",
                               "cfg.yaml:3: dead_letter: expected a map, got \"dlq\"",
                               "cfg.yaml:4: plugins.p.circuit_breaker: expected a map, got \"on\"",
                               "cfg.yaml:5: channels.c.routes[0].retry: expected a map, got \"5\"",
                           }))
      << joined(result.errors);
}

TEST_F(LoaderTest, RootMaxDelayBelowBaseDelayIsAnError) {
  expectError(R"(
retry:
  base_delay_ms: 5000
  max_delay_ms: 1000
)",
              "cfg.yaml:3: retry.max_delay_ms: must be >= base_delay_ms (5000), got 1000");
  expectError("retry: { max_delay_ms: 999 }\n",
              "cfg.yaml:1: retry.max_delay_ms: must be >= base_delay_ms (1000, the default), got "
              "999");
  expectError("retry: { base_delay_ms: 60001 }\n",
              "cfg.yaml:1: retry.base_delay_ms: must be <= max_delay_ms (60000, the default), "
              "got 60001");
}

TEST_F(LoaderTest, BaseDelayFromTheEnvironmentIsCheckedAgainstMaxDelay) {
  env_ = {{"RETRY_BASE_DELAY", "70000"}};
  expectError("{}",
              "cfg.yaml: RETRY_BASE_DELAY: must be <= max_delay_ms (60000, the default), got "
              "70000 (environment variable, the default of retry.base_delay_ms)");
  expectError("retry:\n  max_delay_ms: 65000\n",
              "cfg.yaml:2: retry.max_delay_ms: must be >= base_delay_ms (70000, from "
              "RETRY_BASE_DELAY), got 65000");
  EXPECT_EQ(valid("retry: { max_delay_ms: 70000 }").retry.base_delay_ms, 70000U);
}

TEST_F(LoaderTest, RouteDelaysAreCheckedOnTheMergedPolicy) {
  const LoadResult result = load(R"(
retry:
  base_delay_ms: 2000
  max_delay_ms: 10000
plugins: { p: { path: p } }
channels:
  c:
    routes:
      - plugins: [p]
        retry: { max_delay_ms: 1500 }
      - plugins: [p]
        retry: { base_delay_ms: 20000 }
      - plugins: [p]
        retry: { base_delay_ms: 300, max_delay_ms: 200 }
      - plugins: [p]
        retry: { base_delay_ms: 100, max_delay_ms: 1000 }
      - plugins: [p]
        retry: { max_attempts: 9 }
)");
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               "cfg.yaml:9: channels.c.routes[0].retry.max_delay_ms: must be >= base_delay_ms "
                               "(2000, from retry.base_delay_ms), got 1500",
                               "cfg.yaml:11: channels.c.routes[1].retry.base_delay_ms: must be <= max_delay_ms "
                               "(10000, from retry.max_delay_ms), got 20000",
                               "cfg.yaml:13: channels.c.routes[2].retry.max_delay_ms: must be >= base_delay_ms "
                               "(300), got 200",
                           }))
      << joined(result.errors);
}

TEST_F(LoaderTest, RouteMayLowerBothDelaysBelowTheRoot) {
  const Config config = valid(R"(
retry: { base_delay_ms: 2000, max_delay_ms: 10000 }
plugins: { p: { path: p } }
channels: { c: { routes: [ { plugins: [p], retry: { base_delay_ms: 10, max_delay_ms: 20 } } ] } }
)");
  EXPECT_EQ(config.channels[0].routes[0].retry.base_delay_ms, 10U);
  EXPECT_EQ(config.channels[0].routes[0].retry.max_delay_ms, 20U);
}

TEST_F(LoaderTest, InvalidRootDelayIsReportedOnceNotPerRoute) {
  // The root's bad value does not make a second, misleading error per route.
  expectError(R"(
retry: { base_delay_ms: soon }
plugins: { p: { path: p } }
channels: { c: { routes: [ { plugins: [p], retry: { max_delay_ms: 5 } } ] } }
)",
              "cfg.yaml:1: retry.base_delay_ms: expected an integer in 0..4294967295, got "
              "\"soon\"");
}

TEST_F(LoaderTest, UnknownPolicyKeysSuggestTheClosest) {
  const LoadResult result = load(R"(
retry:
  max_attempt: 3
  backoff: 2
circuit_breaker:
  treshold: 5
  open_timeout: 1
dead_letter:
  plugins: dlq
  fallback: x
plugins:
  p:
    path: p
    timout_ms: 5
    circuit_breaker: { half_open_max_call: 1 }
channels:
  c: { routes: [ { plugins: [p], retry: { jiter: none } } ] }
rerty: {}
)");
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               "cfg.yaml:2: retry.max_attempt: unknown key (did you mean \"max_attempts\"?)",
                               "cfg.yaml:3: retry.backoff: unknown key (expected one of: max_attempts, "
                               "base_delay_ms, multiplier, max_delay_ms, jitter)",
                               "cfg.yaml:5: circuit_breaker.treshold: unknown key (did you mean \"threshold\"?)",
                               "cfg.yaml:6: circuit_breaker.open_timeout: unknown key (expected one of: "
                               "threshold, open_ms, half_open_max_calls, max_wait_ms, max_waiting)",
                               "cfg.yaml:8: dead_letter.plugins: unknown key (did you mean \"plugin\"?)",
                               "cfg.yaml:9: dead_letter.fallback: unknown key (expected one of: plugin, "
                               "fallback_file, timeout_ms, channel)",
                               "cfg.yaml:13: plugins.p.timout_ms: unknown key (did you mean \"timeout_ms\"?)",
                               "cfg.yaml:14: plugins.p.circuit_breaker.half_open_max_call: unknown key (did you "
                               "mean \"half_open_max_calls\"?)",
                               "cfg.yaml:16: channels.c.routes[0].retry.jiter: unknown key (did you mean "
                               "\"jitter\"?)",
                               "cfg.yaml:17: rerty: unknown key (did you mean \"retry\"?)",
                           }))
      << joined(result.errors);
}

TEST_F(LoaderTest, DeadLetterPluginMustBeDefined) {
  expectError(R"(
plugins:
  dlq: { path: dlq }
  audit: { path: audit }
dead_letter:
  plugin: dlx
)",
              "cfg.yaml:5: dead_letter.plugin: undefined plugin \"dlx\" (did you mean \"dlq\"?)");
  expectError("dead_letter: { plugin: dlq }\n",
              "cfg.yaml:1: dead_letter.plugin: undefined plugin \"dlq\" (no plugins are defined "
              "under \"plugins\")");
}

TEST_F(LoaderTest, DeadLetterPluginMayBeDefinedLaterAndUsedByRoutes) {
  const Config config = valid(R"(
dead_letter: { plugin: dlq }
channels: { c: { routes: [ { plugins: [dlq] } ] } }
plugins: { dlq: { path: dlq } }
)");
  EXPECT_EQ(config.dead_letter.plugin, "dlq");
  EXPECT_EQ(config.dead_letter.origin.describe(), "cfg.yaml:1: dead_letter");
}

TEST_F(LoaderTest, EmptyDeadLetterPluginMeansNone) {
  const Config config = valid("dead_letter: { plugin: \"${DLQ_PLUGIN:-}\", timeout_ms: 10 }");
  EXPECT_EQ(config.dead_letter.plugin, "");
  EXPECT_EQ(config.dead_letter.timeout_ms, 10U);
}

}  // namespace
}  // namespace evh::config
