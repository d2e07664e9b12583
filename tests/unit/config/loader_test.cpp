// Tests of loading YAML into a Config: values, defaults, and every class of
// error with its file:line and key path.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <stdexcept>

#include "config/config.h"
#include "event/envelope.h"
#include "event/limits.h"

namespace evh::config {
namespace {

// The YAML text after a leading newline, so that a raw string literal can
// start on its own line and line 1 is its first line.
std::string yamlText(const char* text) {
  std::string s(text);
  if (!s.empty() && s.front() == '\n') {
    s.erase(0, 1);
  }
  return s;
}

std::string joined(const std::vector<std::string>& errors) {
  std::string out;
  for (const std::string& e : errors) {
    out += "  " + e + "\n";
  }
  return out;
}

class LoaderTest : public ::testing::Test {
 protected:
  EnvLookup env() {
    return [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) {
        return std::nullopt;
      }
      return it->second;
    };
  }

  LoadResult load(const char* yaml) { return loadString(yamlText(yaml), "cfg.yaml", env()); }

  // Loads YAML that must be valid and returns its Config.
  Config valid(const char* yaml) {
    LoadResult result = load(yaml);
    EXPECT_TRUE(result.errors.empty()) << joined(result.errors);
    EXPECT_TRUE(result.config.has_value());
    return result.config.value_or(Config{});
  }

  // Loads YAML that must fail with exactly the one error given.
  void expectError(const char* yaml, const std::string& error) {
    const LoadResult result = load(yaml);
    EXPECT_FALSE(result.config.has_value());
    ASSERT_EQ(result.errors.size(), 1U) << joined(result.errors);
    EXPECT_EQ(result.errors[0], error);
  }

  // The plugin config block of the single plugin in `yaml`, parsed back.
  nlohmann::json pluginConfig(const char* yaml) {
    const Config config = valid(yaml);
    if (config.plugins.size() != 1) {
      ADD_FAILURE() << "expected one plugin, got " << config.plugins.size();
      return nullptr;
    }
    return nlohmann::json::parse(config.plugins[0].config_json);
  }

  std::map<std::string, std::string> env_;
};

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

// ---- plugin config blocks ------------------------------------------------------

TEST_F(LoaderTest, ConfigBlockBecomesTypedJson) {
  const nlohmann::json json = pluginConfig(R"(
plugins:
  p:
    path: p
    config:
      enabled: true
      disabled: False
      count: 3
      negative: -7
      ratio: 0.25
      exp: 1e3
      hex: 0x1f
      nothing: ~
      empty:
      text: hello world
      version: "1.0"
      quoted_bool: 'true'
      tagged: !!str 42
      big: 18446744073709551615
      infinity: .inf
      nested:
        list: [1, two, { three: 3 }]
        map: { a: [ ] }
)");
  EXPECT_EQ(json["enabled"], true);
  EXPECT_EQ(json["disabled"], false);
  EXPECT_EQ(json["count"], 3);
  EXPECT_EQ(json["negative"], -7);
  EXPECT_DOUBLE_EQ(json["ratio"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(json["exp"].get<double>(), 1000.0);
  EXPECT_EQ(json["hex"], 31);
  EXPECT_TRUE(json["nothing"].is_null());
  EXPECT_TRUE(json["empty"].is_null());
  EXPECT_EQ(json["text"], "hello world");
  EXPECT_EQ(json["version"], "1.0");
  EXPECT_EQ(json["quoted_bool"], "true");
  EXPECT_EQ(json["tagged"], "42");
  EXPECT_EQ(json["big"].get<uint64_t>(), 18446744073709551615ULL);
  EXPECT_EQ(json["infinity"], ".inf");
  EXPECT_EQ(json["nested"], nlohmann::json::parse(R"({"list":[1,"two",{"three":3}],"map":{"a":[]}})"));
}

TEST_F(LoaderTest, ConfigBlockKeepsQuotedNumbersAsStrings) {
  const nlohmann::json json = pluginConfig(R"(
plugins:
  p: { path: p, config: { zip: "01234", id: '7' } }
)");
  EXPECT_EQ(json["zip"], "01234");
  EXPECT_EQ(json["id"], "7");
}

TEST_F(LoaderTest, ConfigBlockValuesAreExpandedThenTyped) {
  env_ = {{"CIRCUIT_BREAKER_THRESHOLD", "9"}};
  const nlohmann::json json = pluginConfig(R"(
plugins:
  p:
    path: p
    config:
      threshold: ${CIRCUIT_BREAKER_THRESHOLD:-5}
      timeout_ms: ${CIRCUIT_BREAKER_TIMEOUT:-60000}
      label: "${CIRCUIT_BREAKER_THRESHOLD}"
)");
  EXPECT_EQ(json["threshold"], 9);
  EXPECT_EQ(json["timeout_ms"], 60000);
  EXPECT_EQ(json["label"], "9");
}

TEST_F(LoaderTest, ConfigBlockAcceptsAnyKeys) {
  const nlohmann::json json = pluginConfig(R"(
plugins:
  p: { path: p, config: { whatever: 1, "with space": 2 } }
)");
  EXPECT_EQ(json["whatever"], 1);
  EXPECT_EQ(json["with space"], 2);
}

TEST_F(LoaderTest, ConfigBlockMayBeAList) {
  const nlohmann::json json = pluginConfig("plugins: { p: { path: p, config: [1, 2] } }");
  EXPECT_EQ(json, nlohmann::json::parse("[1,2]"));
}

TEST_F(LoaderTest, ConfigBlockReportsUnsetVariablesWithTheirPath) {
  expectError(R"(
plugins:
  p:
    path: p
    config:
      retry:
        - ${RETRY_MAX_ATTEMPTS}
)",
              "cfg.yaml:6: plugins.p.config.retry[0]: variable \"RETRY_MAX_ATTEMPTS\" is not set "
              "and has no default");
}

TEST_F(LoaderTest, ConfigBlockWithSelfReferringAliasIsAnError) {
  const LoadResult result = load("plugins: { p: { path: p, config: &a [1, *a] } }");
  ASSERT_EQ(result.errors.size(), 1U) << joined(result.errors);
  EXPECT_NE(result.errors[0].find("nested deeper than 64 levels"), std::string::npos) << result.errors[0];
}

// Nine levels of ten aliases each ("billion laughs"): 10^9 values written in
// ten lines. Refused, naming the block, before anything is expanded far.
constexpr const char* kAliasBomb = R"(plugins:
  p:
    path: p
    config:
      a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
      i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
)";

TEST_F(LoaderTest, ConfigBlockWithAnAliasBombIsRefusedNamingTheBlock) {
  const LoadResult result = load(kAliasBomb);
  ASSERT_EQ(result.errors.size(), 1U) << joined(result.errors);
  EXPECT_EQ(result.errors[0],
            "cfg.yaml:4: plugins.p.config: too large: more than 100000 values or 16 MiB of text once its aliases "
            "are expanded (aliases of aliases multiply); refused");
}

TEST_F(LoaderTest, ConfigBlockWithBinaryTreeOfSelfAliasesIsRefused) {
  // Each level doubles: 2^64 values within the depth bound.
  const LoadResult result = load("plugins: { p: { path: p, config: &a [*a, *a] } }");
  ASSERT_FALSE(result.errors.empty());
  EXPECT_NE(joined(result.errors).find("cfg.yaml:1: plugins.p.config: too large"), std::string::npos)
      << joined(result.errors);
}

TEST_F(LoaderTest, ConfigBlockWithAliasesWithinTheBoundIsExpanded) {
  // Three levels: 1,000 values once expanded, each alias a full copy.
  const LoadResult result = load(R"(plugins:
  p:
    path: p
    config:
      a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
)");
  ASSERT_TRUE(result.errors.empty()) << joined(result.errors);
  const auto json = nlohmann::json::parse(result.config->plugins.at(0).config_json);
  EXPECT_EQ(json["c"].size(), 10U);
  EXPECT_EQ(json["c"][9][9], nlohmann::json::array({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

// What came from the environment is listed, whether the load succeeds or
// not, so that an error quoting it can be masked where it is shown.
TEST_F(LoaderTest, ValuesFromTheEnvironmentAreListed) {
  env_["BAD_LIMIT"] = "not-a-number-7f3";
  env_["HOST"] = "redis.internal";
  env_["RETRY_MAX_ATTEMPTS"] = "4";
  const LoadResult result = load(R"(
    redis: {host: "${HOST}", port: "${PORT:-6379}"}
    limits: {max_in_flight: "${BAD_LIMIT}"}
    plugins: {p: {path: p}}
  )");
  ASSERT_EQ(result.errors.size(), 1U) << joined(result.errors);
  EXPECT_NE(result.errors[0].find("got \"not-a-number-7f3\" (from \"${BAD_LIMIT}\")"), std::string::npos)
      << result.errors[0];
  std::vector<std::string> got = result.from_environment;
  std::sort(got.begin(), got.end());
  // Not the default "6379": it is written in the file.
  EXPECT_EQ(got, (std::vector<std::string>{"4", "not-a-number-7f3", "redis.internal"}));
}

// ---- config_dir and files --------------------------------------------------------

class LoaderFileTest : public LoaderTest {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::path(::testing::TempDir()) / ("evh_config_test_" + std::to_string(random()));
    std::filesystem::create_directories(dir_ / "sub");
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(LoaderFileTest, MissingFileIsAnError) {
  const std::string path = (dir_ / "absent.yaml").string();
  const LoadResult result = loadFile(path, env());
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], path + ": cannot read config file: No such file or directory");
}

TEST_F(LoaderFileTest, DirectoryIsAnError) {
  const LoadResult result = loadFile(dir_.string(), env());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], dir_.string() + ": cannot read config file: Is a directory");
}

// A FIFO at the path (no writer): refused at once as not a regular file,
// never waited on -- a reload reads on libuv's thread pool.
TEST_F(LoaderFileTest, AFifoIsRefusedWithoutBlocking) {
  const std::string path = (dir_ / "fifo.yaml").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const LoadResult result = loadFile(path, env());
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], path + ": cannot read config file: it is a FIFO, not a regular file");
}

TEST_F(LoaderFileTest, CharacterDeviceIsRefused) {
  const LoadResult result = loadFile("/dev/null", env());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], "/dev/null: cannot read config file: it is a character device, not a regular file");
}

TEST_F(LoaderFileTest, ConfigDirIsTheAbsoluteFolderOfTheFile) {
  const std::filesystem::path path = write("sub/app.yaml", "plugins: { p: { path: p } }\n");
  const LoadResult result = loadFile(path.string(), env());
  ASSERT_TRUE(result.config) << joined(result.errors);
  EXPECT_EQ(result.config->file, path.string());
  ASSERT_EQ(result.config->plugins.size(), 1U);
  EXPECT_EQ(result.config->plugins[0].config_dir, (dir_ / "sub").lexically_normal().string());
  EXPECT_EQ(result.config->plugins[0].origin.file, path.string());
}

TEST_F(LoaderFileTest, RelativePathGivesAbsoluteConfigDir) {
  const std::filesystem::path path = write("sub/app.yaml", "plugins: { p: { path: p } }\n");
  // Relative to the current directory, with a detour, so that the result
  // must be both made absolute and normalised.
  const std::string relative =
      (std::filesystem::relative(dir_, std::filesystem::current_path()) / "sub/../sub/app.yaml").string();
  ASSERT_TRUE(std::filesystem::path(relative).is_relative()) << relative;
  const LoadResult result = loadFile(relative, env());
  ASSERT_TRUE(result.config) << joined(result.errors);
  EXPECT_EQ(result.config->file, relative);
  const std::string config_dir = result.config->plugins[0].config_dir;
  EXPECT_TRUE(std::filesystem::path(config_dir).is_absolute()) << config_dir;
  EXPECT_TRUE(std::filesystem::equivalent(config_dir, dir_ / "sub")) << config_dir;
  EXPECT_EQ(config_dir.find(".."), std::string::npos) << config_dir;
}

TEST_F(LoaderFileTest, ErrorsNameTheFileAsGiven) {
  const std::filesystem::path path = write("bad.yaml", "workers: 0\n");
  const LoadResult result = loadFile(path.string(), env());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], path.string() + ":1: workers: expected an integer in 1..256, got \"0\"");
}

TEST_F(LoaderTest, LoadStringUsesTheFolderOfTheFileName) {
  const LoadResult result = loadString("plugins: { p: { path: p } }", "conf/x.yaml", env());
  ASSERT_TRUE(result.config) << joined(result.errors);
  EXPECT_EQ(result.config->plugins[0].config_dir, "conf");
}

// ---- syntax and structure errors -------------------------------------------------

TEST_F(LoaderTest, YamlSyntaxErrorGivesLineAndColumn) {
  const LoadResult result = load(R"(
redis:
  host: a
  port: [1, 2
workers: 4
)");
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U) << joined(result.errors);
  // The line of the "[" whose list never ends, and yaml-cpp's column, 1-based.
  EXPECT_EQ(result.errors[0], "cfg.yaml:4:8: YAML syntax error: end of sequence flow not found");
}

TEST_F(LoaderTest, UnquotedStarHintsAtQuoting) {
  const LoadResult result = load(R"(
channels:
  c: { routes: [ { events: *, plugins: [p] } ] }
)");
  ASSERT_EQ(result.errors.size(), 1U) << joined(result.errors);
  EXPECT_EQ(result.errors[0].rfind("cfg.yaml:2:", 0), 0U) << result.errors[0];
  EXPECT_NE(result.errors[0].find("must be quoted"), std::string::npos) << result.errors[0];
}

TEST_F(LoaderTest, EmptyFileIsAnError) {
  expectError("", "cfg.yaml: empty configuration");
  expectError("# nothing but a comment\n", "cfg.yaml: empty configuration");
}

TEST_F(LoaderTest, RootMustBeAMap) {
  expectError("- a\n- b\n", "cfg.yaml:1: expected a map of top-level keys, got a list");
}

TEST_F(LoaderTest, SeveralDocumentsAreAnError) {
  expectError("workers: 1\n---\nworkers: 2\n", "cfg.yaml:3: expected one YAML document, found 2");
  expectError("workers: 1\n---\nworkers: 2\n---\n---\n", "cfg.yaml:3: expected one YAML document, found 4");
}

// Found by fuzzing (tests/fuzz/corpus/config/regression-yaml-stuck.yaml): on
// such text yaml-cpp 0.7's LoadAll returned empty documents for ever, and
// evhost --check-config ran until memory ran out. Now it is one error.
TEST_F(LoaderTest, TextTheYamlParserCannotGetPastIsAnError) {
  expectError(",\n", "cfg.yaml:1: not YAML here: the parser cannot go on");
  expectError("# comment\n\n,\n", "cfg.yaml:3: not YAML here: the parser cannot go on");
}

TEST_F(LoaderTest, UnknownKeySuggestsTheClosestKey) {
  expectError(R"(
redis:
  host: localhost
  prot: 6379
)",
              "cfg.yaml:3: redis.prot: unknown key (did you mean \"port\"?)");
}

TEST_F(LoaderTest, UnknownKeyFarFromAnyListsTheKeys) {
  expectError("logging:\n  colour: red\n",
              "cfg.yaml:2: logging.colour: unknown key (expected one of: level, format, "
              "debug_events)");
}

TEST_F(LoaderTest, UnknownKeysAreCaughtAtEveryLevel) {
  const LoadResult result = load(R"(
workrs: 2
redis:
  reconnect: { inital_ms: 5 }
plugins:
  p: { path: p, confg: {} }
channels:
  c:
    patern: true
    routes:
      - { plugins: [p], event: [X] }
)");
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               "cfg.yaml:1: workrs: unknown key (did you mean \"workers\"?)",
                               "cfg.yaml:3: redis.reconnect.inital_ms: unknown key (did you mean \"initial_ms\"?)",
                               "cfg.yaml:5: plugins.p.confg: unknown key (did you mean \"config\"?)",
                               "cfg.yaml:8: channels.c.patern: unknown key (did you mean \"pattern\"?)",
                               "cfg.yaml:10: channels.c.routes[0].event: unknown key (did you mean \"events\"?)",
                           }))
      << joined(result.errors);
}

TEST_F(LoaderTest, DuplicateKeyIsAnError) {
  expectError(R"(
workers: 2
redis: {}
workers: 3
)",
              "cfg.yaml:3: workers: duplicate key (first defined on line 1)");
}

TEST_F(LoaderTest, DuplicatePluginNameIsAnError) {
  expectError(R"(
plugins:
  p: { path: a }
  p: { path: b }
)",
              "cfg.yaml:3: plugins.p: duplicate key (first defined on line 2)");
}

// ---- wrong types and ranges --------------------------------------------------------

TEST_F(LoaderTest, MapWhereScalarExpectedIsAnError) {
  expectError("redis:\n  host: { name: x }\n", "cfg.yaml:2: redis.host: expected a string, got a map");
}

TEST_F(LoaderTest, ScalarWhereMapExpectedIsAnError) {
  expectError("redis: localhost\n", "cfg.yaml:1: redis: expected a map, got \"localhost\"");
}

TEST_F(LoaderTest, MissingValueIsAnError) {
  expectError("redis:\n  host:\n", "cfg.yaml:2: redis.host: expected a string, got no value");
}

TEST_F(LoaderTest, NonNumericPortIsAnError) {
  expectError(R"(
redis:
  host: x
  port: abc
)",
              "cfg.yaml:3: redis.port: expected an integer in 1..65535, got \"abc\"");
}

TEST_F(LoaderTest, OutOfRangeNumbersAreErrors) {
  const LoadResult result = load(R"(
redis:
  port: 70000
  db: -1
  connect_timeout_ms: 0
  reconnect: { multiplier: 0.5 }
workers: 257
limits: { max_json_depth: 1.5 }
)");
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               "cfg.yaml:2: redis.port: expected an integer in 1..65535, got \"70000\"",
                               "cfg.yaml:3: redis.db: expected an integer in 0..2147483647, got \"-1\"",
                               "cfg.yaml:4: redis.connect_timeout_ms: expected an integer in 1..4294967295, got "
                               "\"0\"",
                               "cfg.yaml:5: redis.reconnect.multiplier: expected a number >= 1, got \"0.5\"",
                               "cfg.yaml:6: workers: expected an integer in 1..256, got \"257\"",
                               "cfg.yaml:7: limits.max_json_depth: expected an integer in 1..1024, got \"1.5\"",
                           }))
      << joined(result.errors);
}

// --check-config said ok to limits the decoder then refused from the
// server's constructor, without file:line: the loader checks the decoder's
// own bounds (event/limits.h).
TEST_F(LoaderTest, LimitsBeyondWhatTheDecoderSupportsAreErrors) {
  const LoadResult result = load(R"(
limits:
  max_json_depth: 1025
  max_message_bytes: 2147483649
)");
  EXPECT_EQ(result.errors,
            (std::vector<std::string>{
                "cfg.yaml:2: limits.max_json_depth: expected an integer in 1..1024, got \"1025\"",
                "cfg.yaml:3: limits.max_message_bytes: expected an integer in 1..2147483648, got \"2147483649\"",
            }))
      << joined(result.errors);
}

// Every limit the loader accepts is one the decoder accepts: the largest
// ones build a Decoder, and the decoder refuses one more.
TEST_F(LoaderTest, TheLargestLimitsTheLoaderAcceptsBuildADecoder) {
  const LoadResult result = load(R"(
limits:
  max_json_depth: 1024
  max_message_bytes: 2147483648
)");
  ASSERT_TRUE(result.config) << joined(result.errors);
  const Limits& limits = result.config->limits;
  EXPECT_EQ(limits.max_json_depth, event::kMaxSupportedJsonDepth);
  EXPECT_EQ(limits.max_message_bytes, event::kMaxSupportedMessageBytes);
  EXPECT_NO_THROW(event::Decoder(event::Decoder::Limits{limits.max_message_bytes, limits.max_json_depth}));
  EXPECT_THROW(event::Decoder(event::Decoder::Limits{limits.max_message_bytes, size_t{limits.max_json_depth} + 1}),
               std::invalid_argument);
  EXPECT_THROW(event::Decoder(event::Decoder::Limits{size_t{limits.max_message_bytes} + 1, limits.max_json_depth}),
               std::invalid_argument);
}

TEST_F(LoaderTest, BackoffMaxBelowInitialIsAnError) {
  expectError(R"(
redis:
  reconnect:
    initial_ms: 500
    max_ms: 100
)",
              "cfg.yaml:4: redis.reconnect.max_ms: must be >= initial_ms (500), got 100");
}

TEST_F(LoaderTest, NonBooleanIsAnError) {
  expectError("logging: { debug_events: maybe }",
              "cfg.yaml:1: logging.debug_events: expected a boolean (true or false), got "
              "\"maybe\"");
}

TEST_F(LoaderTest, UnknownLogLevelListsTheChoices) {
  expectError("logging:\n  level: verbose\n",
              "cfg.yaml:2: logging.level: expected one of trace, debug, info, warn, error, "
              "critical, off; got \"verbose\"");
}

TEST_F(LoaderTest, UnknownTransportListsTheChoices) {
  expectError(R"(
plugins: { p: { path: p } }
channels:
  c:
    transport: streams
    routes: [ { plugins: [p] } ]
)",
              "cfg.yaml:4: channels.c.transport: expected one of pubsub, stream; got \"streams\"");
}

TEST_F(LoaderTest, InvalidEnvironmentIsAnError) {
  expectError("environment: \"dev env\"\n",
              "cfg.yaml:1: environment: expected only letters, digits, \"_\", \".\" and \"-\"; "
              "got \"dev env\"");
}

// ---- plugins and routes --------------------------------------------------------------

TEST_F(LoaderTest, RouteNamingUndefinedPluginSuggestsTheClosest) {
  expectError(R"(
plugins:
  product: { path: product }
  audit: { path: audit }
channels:
  x:
    routes:
      - events: [A]
        plugins: [audit, prodcut]
)",
              "cfg.yaml:8: channels.x.routes[0].plugins[1]: undefined plugin \"prodcut\" (did you "
              "mean \"product\"?)");
}

TEST_F(LoaderTest, UndefinedPluginWithNothingCloseListsTheDefinedOnes) {
  expectError(R"(
plugins:
  product: { path: product }
channels:
  x: { routes: [ { plugins: [zzz] } ] }
)",
              "cfg.yaml:4: channels.x.routes[0].plugins[0]: undefined plugin \"zzz\" (defined: "
              "product)");
}

TEST_F(LoaderTest, PluginWithoutPathIsAnError) {
  expectError("plugins:\n  p:\n    config: {}\n", "cfg.yaml:2: plugins.p: missing required key \"path\"");
}

TEST_F(LoaderTest, PluginWithEmptyPathIsAnError) {
  expectError("plugins:\n  p: { path: \"\" }\n", "cfg.yaml:2: plugins.p.path: must not be empty");
}

TEST_F(LoaderTest, InvalidPluginNameIsAnError) {
  expectError("plugins:\n  Product: { path: p }\n",
              "cfg.yaml:2: plugins.Product: invalid plugin instance name \"Product\" (use "
              "lowercase letters, digits, \"_\" and \"-\")");
}

TEST_F(LoaderTest, ChannelWithoutRoutesIsAnError) {
  expectError("channels:\n  c: { pattern: true }\n", "cfg.yaml:2: channels.c: missing required key \"routes\"");
}

TEST_F(LoaderTest, ChannelWithEmptyRoutesIsAnError) {
  expectError("channels:\n  c: { routes: [] }\n", "cfg.yaml:2: channels.c.routes: expected at least one route");
}

TEST_F(LoaderTest, RouteWithoutPluginsIsAnError) {
  expectError(R"(
channels:
  c:
    routes:
      - events: [A]
)",
              "cfg.yaml:4: channels.c.routes[0]: missing required key \"plugins\"");
}

TEST_F(LoaderTest, RouteWithEmptyPluginListIsAnError) {
  expectError("channels:\n  c: { routes: [ { plugins: [] } ] }\n",
              "cfg.yaml:2: channels.c.routes[0].plugins: expected a non-empty list of plugin "
              "instance names, got an empty list");
}

TEST_F(LoaderTest, SingleEventTypeMustBeAList) {
  expectError(R"(
plugins: { p: { path: p } }
channels:
  c: { routes: [ { events: PRODUCT_CREATED, plugins: [p] } ] }
)",
              "cfg.yaml:3: channels.c.routes[0].events: expected a list of event types or \"*\", "
              "got \"PRODUCT_CREATED\" (write [PRODUCT_CREATED] for a single type)");
}

TEST_F(LoaderTest, StarMixedWithEventTypesIsAnError) {
  expectError(R"(
plugins: { p: { path: p } }
channels:
  c: { routes: [ { events: ["*", A], plugins: [p] } ] }
)",
              "cfg.yaml:3: channels.c.routes[0].events: \"*\" already matches every event type; "
              "list no others");
}

TEST_F(LoaderTest, DuplicatePluginInARouteIsAnError) {
  expectError(R"(
plugins: { p: { path: p } }
channels:
  c: { routes: [ { plugins: [p, p] } ] }
)",
              "cfg.yaml:3: channels.c.routes[0].plugins[1]: plugin \"p\" is already listed in "
              "this route");
}

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

// ---- many errors at once ------------------------------------------------------------

TEST_F(LoaderTest, ReportsEveryErrorInFileOrder) {
  const LoadResult result = load(R"(
channels:
  c:
    routes:
      - events: [A]
        plugins: [missing]
redis:
  port: abc
  hots: x
logging:
  level: loud
plugins:
  p:
    config: {}
workers: ${WORKERS}
)");
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors, (std::vector<std::string>{
                               "cfg.yaml:5: channels.c.routes[0].plugins[0]: undefined plugin \"missing\" "
                               "(defined: p)",
                               "cfg.yaml:7: redis.port: expected an integer in 1..65535, got \"abc\"",
                               "cfg.yaml:8: redis.hots: unknown key (did you mean \"host\"?)",
                               "cfg.yaml:10: logging.level: expected one of trace, debug, info, warn, error, "
                               "critical, off; got \"loud\"",
                               "cfg.yaml:12: plugins.p: missing required key \"path\"",
                               "cfg.yaml:14: workers: variable \"WORKERS\" is not set and has no default",
                           }))
      << joined(result.errors);
}

TEST_F(LoaderTest, ErrorsStayOnOneLine) {
  const LoadResult result = load("logging:\n  level: |\n    two\n    lines\n");
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0].find('\n'), std::string::npos) << result.errors[0];
  EXPECT_NE(result.errors[0].find("got \"two\\nlines\\n\""), std::string::npos) << result.errors[0];
}

}  // namespace
}  // namespace evh::config

namespace evh::config {
namespace {

class StreamConfigTest : public ::testing::Test {
 protected:
  LoadResult load(const std::string& yaml) {
    return loadString(yaml, "cfg.yaml", [](const std::string&) { return std::optional<std::string>(); });
  }
};

TEST_F(StreamConfigTest, StreamChannelKeysAreRead) {
  LoadResult r = load(R"(plugins:
  p: {path: x}
channels:
  orders:
    transport: stream
    stream: {group: g1, consumer: c7, count: 10, block_ms: 500, start: new}
    routes:
      - plugins: [p]
)");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const Channel& ch = r.config->channels[0];
  EXPECT_EQ(ch.transport, Transport::Stream);
  EXPECT_EQ(ch.stream.group, "g1");
  EXPECT_EQ(ch.stream.consumer, "c7");
  EXPECT_EQ(ch.stream.count, 10U);
  EXPECT_EQ(ch.stream.block_ms, 500U);
  EXPECT_FALSE(ch.stream.from_beginning);
}

TEST_F(StreamConfigTest, StreamDefaults) {
  LoadResult r =
      load("plugins: {p: {path: x}}\nchannels:\n  orders:\n    transport: stream\n    routes: [{plugins: [p]}]\n");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const StreamOptions& s = r.config->channels[0].stream;
  EXPECT_EQ(s.group, "evhost");
  EXPECT_TRUE(s.consumer.empty());
  EXPECT_EQ(s.count, 100U);
  EXPECT_TRUE(s.from_beginning);
}

TEST_F(StreamConfigTest, AStreamCannotBeAPattern) {
  LoadResult r = load(
      "plugins: {p: {path: x}}\nchannels:\n  \"o:*\":\n    transport: stream\n    pattern: true\n    routes: "
      "[{plugins: [p]}]\n");
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0], "cfg.yaml:3: channels.o:*.pattern: a stream channel cannot be a pattern");
}

TEST_F(StreamConfigTest, StreamBlockNeedsTransportStream) {
  LoadResult r =
      load("plugins: {p: {path: x}}\nchannels:\n  o:\n    stream: {group: g}\n    routes: [{plugins: [p]}]\n");
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0], "cfg.yaml:4: channels.o.stream: only for transport: stream, or a channel with share:");
}

TEST_F(StreamConfigTest, UnknownStreamKeyHasASuggestion) {
  LoadResult r = load(
      "plugins: {p: {path: x}}\nchannels:\n  o:\n    transport: stream\n    stream: {gruop: g}\n    routes: [{plugins: "
      "[p]}]\n");
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_NE(r.errors[0].find("channels.o.stream.gruop: unknown key (did you mean \"group\"?)"), std::string::npos)
      << r.errors[0];
}

// A plugin's config block keeps where each value is (by JSON Pointer), so
// that a problem its validate_config reports is shown at its line, and which
// values came from ${VAR} (masked in what is shown).
TEST_F(LoaderTest, PluginConfigBlockMapsPointersToLinesAndKeepsExpandedValues) {
  env_["DB_PASSWORD"] = "s3cr3t-value";
  const Config config = valid(R"(
plugins:
  db:
    path: db
    config:
      size: 3
      nested:
        level: 1
        "a/b~c": x
      list:
        - one
        - {deep: 2}
      password: ${DB_PASSWORD}
      literal: "$$5"
      folder: ${EVH_TEST_UNSET_DIR:-/var/lib/x}/f
  bare: {path: bare}
)");
  const ConfigBlockMap& map = config.plugins.at(0).config_map;
  EXPECT_EQ(map.line, 4);
  EXPECT_EQ(map.lines.at("/size"), 5);
  EXPECT_EQ(map.lines.at("/nested"), 6);
  EXPECT_EQ(map.lines.at("/nested/level"), 7);
  EXPECT_EQ(map.lines.at("/nested/a~1b~0c"), 8);
  EXPECT_EQ(map.lines.at("/list/0"), 10);
  EXPECT_EQ(map.lines.at("/list/1/deep"), 11);
  EXPECT_EQ(map.lineOf("/nested/missing"), 6) << "a missing key: its parent's line";
  EXPECT_EQ(map.lineOf("/absent/deeper"), 4) << "nothing known: the config: key";
  EXPECT_EQ(map.lineOf(""), 4);
  EXPECT_EQ(map.lineOf("not a pointer"), 4);
  EXPECT_EQ(map.expanded, std::vector<std::string>{"s3cr3t-value"}) << "$$ is no variable, a default no secret";
  const ConfigBlockMap& bare = config.plugins.at(1).config_map;
  EXPECT_EQ(bare.line, 0);
  EXPECT_TRUE(bare.lines.empty());
}

}  // namespace
}  // namespace evh::config
