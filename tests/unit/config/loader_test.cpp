// Tests of loading YAML into a Config: valid configurations and their
// values, ${VAR} expansion, the ops listener, redis.url and plugin pins.
// Errors, config blocks, files and policies have their own loader_*_test.cpp.
#include "loader_fixture.h"

namespace evh::config {
namespace {

// ---- valid configurations ----------------------------------------------------

TEST_F(LoaderTest, EmptyMapGivesDefaults) {
  const Config config = valid("{}");
  EXPECT_EQ(config.file, "cfg.yaml");
  EXPECT_EQ(config.environment, "");
  EXPECT_EQ(config.prefix(), "");
  EXPECT_EQ(config.redis.host, "127.0.0.1");
  EXPECT_EQ(config.redis.port, 6379);
  EXPECT_EQ(config.redis.db, 0U);
  EXPECT_EQ(config.redis.connect_timeout_ms, 2000U);
  EXPECT_EQ(config.redis.reconnect.initial_ms, 100U);
  EXPECT_EQ(config.redis.reconnect.max_ms, 10000U);
  EXPECT_DOUBLE_EQ(config.redis.reconnect.multiplier, 2.0);
  EXPECT_TRUE(config.plugins.empty());
  EXPECT_TRUE(config.channels.empty());
  EXPECT_EQ(config.limits.max_message_bytes, 1048576U);
  EXPECT_EQ(config.logging.level, "info");
  EXPECT_EQ(config.logging.format, LogFormat::Text);
  EXPECT_FALSE(config.logging.debug_events);
  EXPECT_EQ(config.workers, 4U);
  EXPECT_EQ(config.shutdown_timeout_ms, 10000U);
}

TEST_F(LoaderTest, FullExampleLoadsEveryValue) {
  const Config config = valid(R"(
environment: dev
redis:
  host: redis.internal
  port: 6380
  db: 3
  username: app
  password: secret
  connect_timeout_ms: 1500
  reconnect: { initial_ms: 50, max_ms: 5000, multiplier: 1.5 }
  ping_interval_ms: 4000
  ping_timeout_ms: 1000
plugins:
  product:
    path: product
    config: { any: yaml }
  audit:
    path: ./plugins/libaudit.so
channels:
  jollyjet:events:product:
    transport: pubsub
    pattern: false
    routes:
      - events: [PRODUCT_CREATED, PRODUCT_UPDATED]
        plugins: [product, audit]
      - events: "*"
        plugins: [audit]
  "jollyjet:events:*":
    pattern: true
    routes:
      - plugins: [audit]
limits: { max_message_bytes: 2048, max_in_flight: 50, max_json_depth: 16, max_dead_letter_bytes: 1048576 }
logging: { level: debug, format: json, debug_events: true }
workers: 8
shutdown_timeout_ms: 0
)");
  EXPECT_EQ(config.environment, "dev");
  EXPECT_EQ(config.prefix(), "dev:");
  EXPECT_EQ(config.redis.host, "redis.internal");
  EXPECT_EQ(config.redis.port, 6380);
  EXPECT_EQ(config.redis.db, 3U);
  EXPECT_EQ(config.redis.username, "app");
  EXPECT_EQ(config.redis.password, "secret");
  EXPECT_EQ(config.redis.connect_timeout_ms, 1500U);
  EXPECT_EQ(config.redis.reconnect.initial_ms, 50U);
  EXPECT_EQ(config.redis.reconnect.max_ms, 5000U);
  EXPECT_DOUBLE_EQ(config.redis.reconnect.multiplier, 1.5);
  EXPECT_EQ(config.redis.ping_interval_ms, 4000U);
  EXPECT_EQ(config.redis.ping_timeout_ms, 1000U);

  ASSERT_EQ(config.plugins.size(), 2U);
  EXPECT_EQ(config.plugins[0].name, "product");
  EXPECT_EQ(config.plugins[0].path, "product");
  EXPECT_EQ(config.plugins[0].config_json, R"({"any":"yaml"})");
  EXPECT_EQ(config.plugins[0].config_dir, ".");
  EXPECT_EQ(config.plugins[0].origin.describe(), "cfg.yaml:13: plugins.product");
  EXPECT_EQ(config.plugins[1].name, "audit");
  EXPECT_EQ(config.plugins[1].path, "./plugins/libaudit.so");
  EXPECT_EQ(config.plugins[1].config_json, "{}");

  ASSERT_EQ(config.channels.size(), 2U);
  const Channel& product = config.channels[0];
  EXPECT_EQ(product.name, "jollyjet:events:product");
  EXPECT_FALSE(product.pattern);
  EXPECT_EQ(product.transport, Transport::PubSub);
  EXPECT_EQ(product.origin.describe(), "cfg.yaml:19: channels.jollyjet:events:product");
  ASSERT_EQ(product.routes.size(), 2U);
  EXPECT_EQ(product.routes[0].events, (std::vector<std::string>{"PRODUCT_CREATED", "PRODUCT_UPDATED"}));
  EXPECT_EQ(product.routes[0].plugins, (std::vector<std::string>{"product", "audit"}));
  EXPECT_EQ(product.routes[0].origin.describe(), "cfg.yaml:23: channels.jollyjet:events:product.routes[0]");
  EXPECT_TRUE(product.routes[1].events.empty());
  EXPECT_EQ(product.routes[1].plugins, (std::vector<std::string>{"audit"}));
  EXPECT_EQ(product.routes[1].origin.line, 25);

  const Channel& all = config.channels[1];
  EXPECT_EQ(all.name, "jollyjet:events:*");
  EXPECT_TRUE(all.pattern);
  ASSERT_EQ(all.routes.size(), 1U);
  EXPECT_TRUE(all.routes[0].events.empty());  // no `events:` means every type

  EXPECT_EQ(config.limits.max_message_bytes, 2048U);
  EXPECT_EQ(config.limits.max_in_flight, 50U);
  EXPECT_EQ(config.limits.max_json_depth, 16U);
  EXPECT_EQ(config.limits.max_dead_letter_bytes, 1048576U);
  EXPECT_EQ(config.logging.level, "debug");
  EXPECT_EQ(config.logging.format, LogFormat::Json);
  EXPECT_TRUE(config.logging.debug_events);
  EXPECT_EQ(config.workers, 8U);
  EXPECT_EQ(config.shutdown_timeout_ms, 0U);
}

TEST_F(LoaderTest, ShippedJollyjetConfigLoads) {
  // The default deployment must always load with no environment set.
  const std::filesystem::path shipped = std::filesystem::path(EVH_SOURCE_DIR) / "config/jollyjet.yaml";
  ASSERT_TRUE(std::filesystem::exists(shipped)) << shipped;
  const LoadResult result = loadFile(shipped.string(), env());
  EXPECT_TRUE(result.errors.empty()) << joined(result.errors);
}

TEST_F(LoaderTest, DocumentedExampleLoads) {
  // docs/config.md's annotated example must stay true.
  const std::filesystem::path doc = std::filesystem::path(EVH_SOURCE_DIR) / "docs/config.md";
  std::ifstream in(doc);
  ASSERT_TRUE(in) << doc;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t begin = text.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = text.find("\n```", begin);
  ASSERT_NE(end, std::string::npos);
  const std::string yaml = text.substr(begin + 8, end - begin - 8 + 1);
  const LoadResult result = loadString(yaml, "config.md", env());
  ASSERT_TRUE(result.errors.empty()) << joined(result.errors);
  const Config& config = *result.config;
  EXPECT_EQ(config.prefix(), "dev:");
  ASSERT_EQ(config.plugins.size(), 3U);
  EXPECT_EQ(config.channels.size(), 2U);
  EXPECT_EQ(nlohmann::json::parse(config.plugins[1].config_json)["label"], "v1.0");
  // The policy examples: the root values, and one override each.
  EXPECT_EQ(config.retry.max_attempts, 3U);
  EXPECT_EQ(config.breaker.threshold, 5U);
  EXPECT_EQ(config.plugins[0].timeout_ms, 5000U);
  EXPECT_EQ(config.plugins[0].breaker.threshold, 10U);
  EXPECT_EQ(config.plugins[1].breaker.threshold, 5U);
  EXPECT_EQ(config.channels[0].routes[0].retry.max_attempts, 5U);
  EXPECT_EQ(config.channels[1].routes[0].retry.max_attempts, 3U);
  EXPECT_EQ(config.dead_letter.plugin, "dlq");
}

TEST_F(LoaderTest, AcceptsZeroChannels) {
  const Config config = valid(R"(
plugins:
  unused: { path: unused }
)");
  EXPECT_EQ(config.plugins.size(), 1U);
  EXPECT_TRUE(config.channels.empty());
}

TEST_F(LoaderTest, EmptySectionsMeanDefaults) {
  const Config config = valid(R"(
redis:
plugins:
channels:
logging:
)");
  EXPECT_EQ(config.redis.port, 6379);
  EXPECT_TRUE(config.plugins.empty());
}

TEST_F(LoaderTest, StarEventsMeansEveryType) {
  const Config config = valid(R"(
plugins: { a: { path: a } }
channels:
  c:
    routes:
      - { events: "*", plugins: [a] }
      - { events: ["*"], plugins: [a] }
)");
  ASSERT_EQ(config.channels.size(), 1U);
  ASSERT_EQ(config.channels[0].routes.size(), 2U);
  EXPECT_TRUE(config.channels[0].routes[0].events.empty());
  EXPECT_TRUE(config.channels[0].routes[1].events.empty());
}

TEST_F(LoaderTest, PluginsMayBeDefinedAfterChannels) {
  const Config config = valid(R"(
channels:
  c: { routes: [ { plugins: [late] } ] }
plugins:
  late: { path: late }
)");
  EXPECT_EQ(config.channels[0].routes[0].plugins, (std::vector<std::string>{"late"}));
}

TEST_F(LoaderTest, AcceptsYamlBooleanSpellings) {
  const Config config = valid("logging: { debug_events: yes }");
  EXPECT_TRUE(config.logging.debug_events);
}

TEST_F(LoaderTest, QuotedNumbersAreAcceptedForNumericKeys) {
  const Config config = valid(R"(workers: "12")");
  EXPECT_EQ(config.workers, 12U);
}

// ---- ${VAR} expansion ----------------------------------------------------------

TEST_F(LoaderTest, DefaultIsUsedWhenVariableIsUnset) {
  const Config config = valid(R"(
redis:
  host: ${REDIS_HOST:-localhost}
  port: ${REDIS_PORT:-6379}
logging:
  debug_events: ${DEBUG_EVENTS:-false}
)");
  EXPECT_EQ(config.redis.host, "localhost");
  EXPECT_EQ(config.redis.port, 6379);
  EXPECT_FALSE(config.logging.debug_events);
}

TEST_F(LoaderTest, SetVariableOverridesDefault) {
  env_ = {{"REDIS_HOST", "10.1.2.3"}, {"REDIS_PORT", "7001"}, {"DEBUG_EVENTS", "true"}};
  const Config config = valid(R"(
redis:
  host: ${REDIS_HOST:-localhost}
  port: ${REDIS_PORT:-6379}
logging:
  debug_events: ${DEBUG_EVENTS:-false}
)");
  EXPECT_EQ(config.redis.host, "10.1.2.3");
  EXPECT_EQ(config.redis.port, 7001);
  EXPECT_TRUE(config.logging.debug_events);
}

TEST_F(LoaderTest, UnsetVariableWithoutDefaultNamesFileLineKeyAndVariable) {
  expectError(R"(
redis:
  host: localhost
  password: ${REDIS_PASSWORD}
)",
              "cfg.yaml:3: redis.password: variable \"REDIS_PASSWORD\" is not set and has no "
              "default");
}

TEST_F(LoaderTest, DoubleDollarIsALiteralDollar) {
  const Config config = valid(R"(
redis:
  password: "pa$$word and $${NOT_EXPANDED}"
)");
  EXPECT_EQ(config.redis.password, "pa$word and ${NOT_EXPANDED}");
}

TEST_F(LoaderTest, MalformedReferenceIsAnError) {
  expectError("environment: ${ENV\n",
              "cfg.yaml:1: environment: malformed variable reference \"${ENV\": missing closing "
              "\"}\"");
}

TEST_F(LoaderTest, ExpandedValueThatIsNotANumberNamesBoth) {
  env_ = {{"REDIS_PORT", "sixty"}};
  expectError("redis: { port: \"${REDIS_PORT}\" }",
              "cfg.yaml:1: redis.port: expected an integer in 1..65535, got \"sixty\" (from "
              "\"${REDIS_PORT}\")");
}

TEST_F(LoaderTest, KeysAreNotExpanded) {
  expectError("${KEY}: 1\n",
              "cfg.yaml:1: ${KEY}: unknown key (expected one of: environment, redis, plugins, "
              "channels, limits, logging, retry, circuit_breaker, dead_letter, workers, "
              "shutdown_timeout_ms, loop_stall_ms, state_dir, ops)");
}

TEST_F(LoaderTest, StateDirIsReadAndDefaultsToTheEnvironmentThenTheWorkingDirectory) {
  EXPECT_EQ(valid("state_dir: /var/lib/evhost\n").stateDir(), "/var/lib/evhost");
  ::unsetenv("EVH_STATE_DIR");
  EXPECT_EQ(valid("workers: 2\n").stateDir(), ".");
  ::setenv("EVH_STATE_DIR", "/tmp/evh-state", 1);
  EXPECT_EQ(valid("workers: 2\n").stateDir(), "/tmp/evh-state");
  ::unsetenv("EVH_STATE_DIR");
}

TEST_F(LoaderTest, OpsHealthBoundsHaveDefaultsAndLimits) {
  const Config d = valid("workers: 2\n");
  EXPECT_EQ(d.ops.liveness_timeout_ms, 1000U);
  EXPECT_EQ(d.ops.pubsub_check_cache_ms, 5000U);
  EXPECT_EQ(d.ops.pubsub_check_timeout_ms, 2000U);
  const Config c = valid("ops: {liveness_timeout_ms: 2500, pubsub_check_cache_ms: 0, pubsub_check_timeout_ms: 300}\n");
  EXPECT_EQ(c.ops.liveness_timeout_ms, 2500U);
  EXPECT_EQ(c.ops.pubsub_check_cache_ms, 0U);
  EXPECT_EQ(c.ops.pubsub_check_timeout_ms, 300U);
  expectError("ops: {liveness_timeout_ms: 500}\n",
              "cfg.yaml:1: ops.liveness_timeout_ms: expected an integer in 1000..3600000, got \"500\"");
}

TEST_F(LoaderTest, LoopStallMsDefaultsToTwoSecondsAndIsBounded) {
  EXPECT_EQ(valid("workers: 2\n").loop_stall_ms, 2000U);
  EXPECT_EQ(valid("loop_stall_ms: 500\n").loop_stall_ms, 500U);
  expectError("loop_stall_ms: 50\n", "cfg.yaml:1: loop_stall_ms: expected an integer in 100..3600000, got \"50\"");
}

// ---- ops -------------------------------------------------------------------------

TEST_F(LoaderTest, OpsListensOnLoopbackPort9464ByDefault) {
  const Config config = valid("workers: 2\n");
  EXPECT_TRUE(config.ops.enabled);
  EXPECT_EQ(config.ops.address(), "127.0.0.1:9464");
  EXPECT_EQ(config.ops.origin.describe(), "cfg.yaml: ops.listen");
}

TEST_F(LoaderTest, OpsListenTakesIpv4AndBracketedIpv6AndRemembersWhere) {
  Config config = valid("workers: 2\nops:\n  listen: 0.0.0.0:9100\n");
  EXPECT_TRUE(config.ops.enabled);
  EXPECT_EQ(config.ops.host, "0.0.0.0");
  EXPECT_EQ(config.ops.port, 9100);
  EXPECT_EQ(config.ops.origin.describe(), "cfg.yaml:3: ops.listen");
  config = valid("ops: {listen: \"[::1]:0\"}\n");
  EXPECT_EQ(config.ops.host, "::1");
  EXPECT_EQ(config.ops.port, 0);
  EXPECT_EQ(config.ops.address(), "[::1]:0");
}

TEST_F(LoaderTest, OpsListenEmptyTurnsTheListenerOff) { EXPECT_FALSE(valid("ops: {listen: \"\"}\n").ops.enabled); }

TEST_F(LoaderTest, OpsListenBadValuesNameTheKeyAndTheValue) {
  expectError("ops:\n  listen: 127.0.0.1\n",
              "cfg.yaml:2: ops.listen: invalid address \"127.0.0.1\": no port (expected HOST:PORT, e.g. "
              "127.0.0.1:9464 or [::1]:9464; \"\" turns the listener off)");
  expectError("ops:\n  listen: 127.0.0.1:70000\n",
              "cfg.yaml:2: ops.listen: invalid address \"127.0.0.1:70000\": invalid port \"70000\" (expected an "
              "integer in 0..65535; 0 picks a free port)");
  expectError("ops:\n  listen: 127.0.0.1:-1\n",
              "cfg.yaml:2: ops.listen: invalid address \"127.0.0.1:-1\": invalid port \"-1\" (expected an "
              "integer in 0..65535; 0 picks a free port)");
  expectError("ops:\n  listen: localhost:9464\n",
              "cfg.yaml:2: ops.listen: invalid address \"localhost:9464\": \"localhost\" is not an IPv4 address "
              "(expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464; \"\" turns the listener off)");
  expectError("ops:\n  listen: 300.1.2.3:9464\n",
              "cfg.yaml:2: ops.listen: invalid address \"300.1.2.3:9464\": \"300.1.2.3\" is not an IPv4 address "
              "(expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464; \"\" turns the listener off)");
  expectError("ops:\n  listen: \"::1:9464\"\n",
              "cfg.yaml:2: ops.listen: invalid address \"::1:9464\": an IPv6 address must be written in brackets, "
              "e.g. [::1]:9464");
  expectError("ops:\n  listen: \"[::1\"\n",
              "cfg.yaml:2: ops.listen: invalid address \"[::1\": missing \"]\" after the IPv6 address (expected "
              "HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464; \"\" turns the listener off)");
  expectError("ops:\n  listen: \":9464\"\n",
              "cfg.yaml:2: ops.listen: invalid address \":9464\": no host (expected HOST:PORT, e.g. 127.0.0.1:9464 "
              "or [::1]:9464; \"\" turns the listener off; 0.0.0.0 listens on every interface)");
  expectError("ops:\n  lisen: 127.0.0.1:1\n", "cfg.yaml:2: ops.lisen: unknown key (did you mean \"listen\"?)");
}

TEST_F(LoaderTest, OpsListenFromAVariableNamesBothValues) {
  env_["OPS"] = "nowhere";
  expectError("ops:\n  listen: ${OPS}\n",
              "cfg.yaml:2: ops.listen: invalid address \"nowhere\" (from \"${OPS}\"): no port (expected "
              "HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464; \"\" turns the listener off)");
}

// ---- redis.url -------------------------------------------------------------------

TEST_F(LoaderTest, UrlSetsConnectionFields) {
  const Config config = valid(R"(
redis:
  url: redis://app:p%40ss@cache:6390/4
  connect_timeout_ms: 500
)");
  EXPECT_EQ(config.redis.host, "cache");
  EXPECT_EQ(config.redis.port, 6390);
  EXPECT_EQ(config.redis.db, 4U);
  EXPECT_EQ(config.redis.username, "app");
  EXPECT_EQ(config.redis.password, "p@ss");
  EXPECT_EQ(config.redis.connect_timeout_ms, 500U);
}

TEST_F(LoaderTest, UrlMayComeFromTheEnvironment) {
  env_ = {{"REDIS_URL", "redis://:pw@10.0.0.9"}};
  const Config config = valid("redis: { url: \"${REDIS_URL:-redis://localhost}\" }");
  EXPECT_EQ(config.redis.host, "10.0.0.9");
  EXPECT_EQ(config.redis.password, "pw");
}

TEST_F(LoaderTest, UrlTogetherWithHostIsAnError) {
  expectError(R"(
redis:
  url: redis://localhost
  host: other
)",
              "cfg.yaml:3: redis.host: cannot be combined with redis.url (the URL sets host, "
              "port, db, username and password)");
}

TEST_F(LoaderTest, UrlWithBadSchemeIsAnError) {
  expectError("redis:\n  url: http://h\n",
              "cfg.yaml:2: redis.url: invalid URL: unsupported scheme \"http\" (redis:// or rediss:// for TLS)");
}

TEST_F(LoaderTest, UrlWithBadPortIsAnError) {
  expectError("redis:\n  url: redis://h:99999\n",
              "cfg.yaml:2: redis.url: invalid URL: invalid port (expected an integer in 1..65535; not "
              "shown, as it may be a password)");
}

TEST_F(LoaderTest, UserNameWithoutPasswordIsAnError) {
  expectError("redis:\n  username: app\n",
              "cfg.yaml:2: redis.username: a user name needs a password (AUTH <username> "
              "<password>)");
}

// ---- plugin sha256 pins ----------------------------------------------------------

TEST_F(LoaderTest, PluginSha256PinIsReadCaseInsensitivelyAsLowercase) {
  const Config config = valid(
      "plugins:\n  p:\n    path: p\n    sha256: "
      "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\n");
  ASSERT_EQ(config.plugins.size(), 1U);
  EXPECT_EQ(config.plugins[0].sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_EQ(valid("plugins:\n  p: {path: p}\n").plugins[0].sha256, "");
}

TEST_F(LoaderTest, MalformedPluginSha256PinIsAnErrorNamingTheKey) {
  expectError("plugins:\n  p:\n    path: p\n    sha256: abc12\n",
              "cfg.yaml:4: plugins.p.sha256: must be the plugin file's SHA-256 as 64 hexadecimal digits (sha256sum "
              "FILE, or evhctl plugin inspect, prints it); got 5 characters");
  expectError(
      "plugins:\n  p:\n    path: p\n    sha256: "
      "zbcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678g\n",
      "cfg.yaml:4: plugins.p.sha256: must be the plugin file's SHA-256 as 64 hexadecimal digits (sha256sum FILE, or "
      "evhctl plugin inspect, prints it); got 64 characters, not all hexadecimal");
  expectError("plugins:\n  p:\n    path: p\n    sha256: [1, 2]\n",
              "cfg.yaml:4: plugins.p.sha256: expected the plugin file's SHA-256 (64 hex digits), got a list");
}

}  // namespace
}  // namespace evh::config
