// Plugin config blocks: typed JSON from YAML 1.2's core schema, ${VAR}s
// expanded, alias bombs refused, and where each value is (JSON Pointer ->
// line) for the plugin's own checks.
#include "loader_fixture.h"

namespace evh::config {
namespace {

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
