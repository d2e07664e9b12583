// Every class of config error with its file:line and key path: syntax,
// structure, unknown keys, types and ranges, plugins and routes, stream
// channel keys, and many errors reported at once in file order.
#include "loader_fixture.h"

namespace evh::config {
namespace {

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

}  // namespace
}  // namespace evh::config
