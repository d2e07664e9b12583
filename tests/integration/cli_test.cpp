// The command lines: evhost --check-config, start-up refusals, bad
// arguments and --help of evhost and evhctl. Plugins seen from the command
// line (inspect, trust, their config checks) are cli_plugin_test.cpp's.
#include "cli_fixture.h"
#include "support/tested_binaries.h"

namespace evh::test {
namespace {

TEST_F(CliTest, CheckConfigPrintsOkForTheShippedConfigs) {
  // The production example needs its secrets from the environment.
  // ... and a state directory that exists: the audit and dlq plugins check
  // that their files could be written there.
  const std::vector<std::string> env = {"REDIS_HOST=redis.internal", "REDIS_PASSWORD=s3cret", "EVH_STATE_DIR=" + dir_};
  for (const char* rel : {"config/jollyjet.yaml", "config/examples/minimal.yaml", "config/examples/production.yaml",
                          "config/examples/durable.yaml"}) {
    auto [code, out] = runCommand({evhostBin(), "--check-config", std::string(EVH_SOURCE_DIR) + "/" + rel}, env);
    EXPECT_EQ(code, 0) << rel << ": " << out;
    EXPECT_EQ(out, "ok\n") << rel;
  }
}

TEST_F(CliTest, ProductionExampleRefusesToStartWithoutItsSecrets) {
  auto [code, out] =
      runCommand({evhostBin(), "--check-config", std::string(EVH_SOURCE_DIR) + "/config/examples/production.yaml"});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("redis.host: variable \"REDIS_HOST\" is not set and has no default"));
  EXPECT_THAT(out, HasSubstr("redis.password: variable \"REDIS_PASSWORD\" is not set and has no default"));
}

TEST_F(CliTest, CheckConfigReportsEveryErrorWithFileAndLine) {
  std::string path = write("bad.yaml", R"(environment: dev
redis:
  prot: 6379
plugins:
  rec: {path: recorder}
channels:
  ch:
    routes:
      - events: "*"
        plugins: [rce]
workers: many
)");
  auto [code, out] = check(path);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr(path + ":3: redis.prot: unknown key (did you mean \"port\"?)"));
  EXPECT_THAT(
      out, HasSubstr(path + ":10: channels.ch.routes[0].plugins[0]: undefined plugin \"rce\" (did you mean \"rec\"?)"));
  EXPECT_THAT(out, HasSubstr(path + ":11: workers:"));
}

// Nine levels of ten aliases in a plugin's config block stand for 10^9
// values: refused at once with file:line, not expanded until memory runs out.
TEST_F(CliTest, CheckConfigRefusesAnAliasBombInAConfigBlock) {
  std::string yaml = "environment: dev\nplugins:\n  rec:\n    path: recorder\n    config:\n";
  yaml += "      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int level = 1; level < 9; ++level) {
    std::string prev = "*l" + std::to_string(level - 1);
    yaml += "      l" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) {
      yaml += (i > 0 ? ", " : "") + prev;
    }
    yaml += "]\n";
  }
  yaml += "channels:\n  ch:\n    routes:\n      - events: \"*\"\n        plugins: [rec]\n";
  std::string path = write("bomb.yaml", yaml);
  auto [code, out] = check(path);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr(path + ":5: plugins.rec.config: too large: more than 100000 values"));
}

TEST_F(CliTest, CheckConfigReportsYamlSyntaxWithLine) {
  std::string path = write("syntax.yaml", "environment: dev\nplugins:\n  rec: {path: recorder\n");
  auto [code, out] = check(path);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr(path + ":"));
  EXPECT_THAT(out, HasSubstr("YAML syntax error"));
}

TEST_F(CliTest, CheckConfigReportsUnsetVariable) {
  std::string path = write("var.yaml", "environment: ${EVH_TEST_SURELY_UNSET_VAR}\n");
  auto [code, out] = check(path);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr(path + ":1: environment:"));
  EXPECT_THAT(out, HasSubstr("EVH_TEST_SURELY_UNSET_VAR"));
}

TEST_F(CliTest, CheckConfigReportsUnloadablePlugins) {
  std::string path = write("plug.yaml", R"(plugins:
  old: {path: abi_wrong_major}
  gone: {path: ./nothing-here.so}
)");
  auto [code, out] = check(path);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("built for plugin ABI 2.0, but this evhost implements ABI 1.3"));
  EXPECT_THAT(out, HasSubstr(dir_ + "/nothing-here.so: plugin file does not exist"));
}

TEST_F(CliTest, EvhostRefusesToStartWhenAPluginInitFails) {
  std::string path = write("init.yaml", R"(redis: {port: 1}
plugins:
  db: {path: init_fails}
)");
  auto [code, out] = runCommand({evhostBin(), "--config", path, "--plugin-dir", testPluginDir(), "--ops-listen", ""});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("plugin \"db\" (" + std::string(testPluginDir()) +
                             "/init_fails.so): init failed: database unreachable at 10.0.0.1:5432"));
}

TEST_F(CliTest, APluginWhoseInitThrowsIsNamedWithItsFiles) {
  std::string path = write("throws.yaml", R"(redis: {port: 1}
plugins:
  ok: {path: ok_c}
  pool: {path: init_throws}
)");
  auto [code, out] = runCommand({evhostBin(), "--config", path, "--plugin-dir", testPluginDir(), "--ops-listen", ""});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr(path + ":4: plugins.pool: plugin \"pool\" (" + std::string(testPluginDir()) +
                             "/init_throws.so): init failed: connection pool exhausted"));
}

// Bad arguments: exit 2, the program and the option named with what was
// wrong, then the usage.
TEST_F(CliTest, EvhostRejectsBadArguments) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--frobnicate"}, "evhost: The following argument was not expected: --frobnicate\n"},
      {{"--config", "a.yaml", "extra"}, "evhost: The following argument was not expected: extra\n"},
      {{"--plugin-dir", "a", "b", "--config", "c.yaml"}, "evhost: The following argument was not expected: b\n"},
      {{}, "evhost: no configuration: give --config FILE (or --check-config FILE)\n"},
      {{"--config"}, "evhost: --config: 1 required FILE missing\n"},
      {{"--check-config"}, "evhost: --check-config: 1 required FILE missing\n"},
      {{"--config", "a.yaml", "--ops-listen"}, "evhost: --ops-listen: 1 required ADDR missing\n"},
      {{"--config", "a.yaml", "--check-config", "b.yaml"}, "evhost: --config excludes --check-config\n"},
      {{"--config", "a.yaml", "--config", "b.yaml"}, "evhost: --config: At Most 1 required but received 2\n"},
      {{"--config", "a.yaml", "--log-level", "loud"}, "evhost: --log-level: unknown level \"loud\"\n"},
      {{"--config", "a.yaml", "--ops-listen", "localhost"}, "evhost: --ops-listen: invalid address \"localhost\": "},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {evhostBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto [code, out] = runCommand(argv);
    EXPECT_EQ(code, 2) << out;
    EXPECT_THAT(out, HasSubstr(message));
    EXPECT_THAT(out, HasSubstr("Usage: evhost [OPTIONS]")) << message;
  }
}

// The bad line goes to stderr, nothing to stdout.
TEST_F(CliTest, BadArgumentsGoToStderr) {
  for (const char* bin : {evhostBin(), evhctlBin()}) {
    auto [code, out] = runCommand({"/bin/sh", "-c", "\"$0\" --frobnicate 2>/dev/null", bin});
    EXPECT_EQ(code, 2) << bin;
    EXPECT_EQ(out, "") << bin;
  }
}

// --help is CLI11's, on stdout: every option with its one line.
TEST_F(CliTest, EvhostHelpListsEveryOption) {
  auto [code, out] = runCommand({evhostBin(), "--help"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("Usage: evhost [OPTIONS]"));
  for (const char* line :
       {"--config FILE", "Run the deployment described by FILE (YAML)", "--check-config FILE",
        "Validate FILE, its plugins and their config blocks; print ok or every error", "--plugin-dir DIR",
        "Look for plugins given by bare name in DIR first (repeatable)", "--log-level LEVEL",
        "Override logging.level: trace, debug, info, warn, error, critical or off", "--ops-listen ADDR",
        "Override ops.listen: HOST:PORT", "--version", "Print evhost's version and plugin ABI and exit", "-h,--help"}) {
    EXPECT_THAT(out, HasSubstr(line));
  }
  auto [code2, out2] = runCommand({evhostBin(), "-h"});
  EXPECT_EQ(code2, 0);
  EXPECT_EQ(out2, out);
  auto [code3, version] = runCommand({evhostBin(), "--version"});
  EXPECT_EQ(code3, 0);
  EXPECT_THAT(version, ::testing::MatchesRegex("evhost [0-9.]+ \\(plugin ABI 1\\.[0-9]+\\)\n"));
}

TEST_F(CliTest, EvhctlHelpNamesEveryCommandAndOption) {
  auto [code, out] = runCommand({evhctlBin(), "--help"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("Usage: evhctl [OPTIONS] [SUBCOMMAND]"));
  for (const char* line : {"  plugin ", "  dlq ", "  publish ", "  status ", "--version", "-h,--help"}) {
    EXPECT_THAT(out, HasSubstr(line));
  }
  auto [vcode, version] = runCommand({evhctlBin(), "--version"});
  EXPECT_EQ(vcode, 0);
  EXPECT_THAT(version, ::testing::MatchesRegex("evhctl [0-9.]+ \\(plugin ABI 1\\.[0-9]+\\)\n"));
  // Each command's own --help: its usage line and every option.
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> commands = {
      {{"plugin", "inspect"}, {"Usage: evhctl plugin inspect [OPTIONS] PLUGIN", "--plugin-dir DIR"}},
      {{"dlq"},
       {"Usage: evhctl dlq [OPTIONS]", "-c,--config FILE", "  list ", "  show ", "  remove ", "  replay ", "  purge "}},
      {{"dlq", "list"}, {"Usage: evhctl dlq list [OPTIONS]", "--limit N"}},
      {{"dlq", "show"}, {"Usage: evhctl dlq show [OPTIONS] EVENTID"}},
      {{"dlq", "remove"}, {"Usage: evhctl dlq remove [OPTIONS] EVENTID"}},
      {{"dlq", "replay"}, {"Usage: evhctl dlq replay [OPTIONS] [EVENTID]", "--all", "--reason R"}},
      {{"dlq", "purge"}, {"Usage: evhctl dlq purge [OPTIONS]", "--yes"}},
      {{"publish"},
       {"Usage: evhctl publish [OPTIONS] [STDIN]", "-c,--config FILE", "--stream", "--channel NAME", "--type TYPE",
        "--id ID", "--correlation-id ID", "--count N", "--file FILE", "--payload JSON"}},
      {{"status"}, {"Usage: evhctl status [OPTIONS]", "-c,--config FILE", "--url URL", "--json"}},
  };
  for (const auto& [command, lines] : commands) {
    std::vector<std::string> argv = {evhctlBin()};
    argv.insert(argv.end(), command.begin(), command.end());
    argv.push_back("--help");
    auto [ccode, help] = runCommand(argv);
    EXPECT_EQ(ccode, 0) << command[0] << ": " << help;
    for (const auto& line : lines) {
      EXPECT_THAT(help, HasSubstr(line)) << command.back();
    }
  }
}

TEST_F(CliTest, EvhctlRejectsBadArguments) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "evhctl: give a command: plugin, dlq, publish, status or reload\n"},
      {{"frobnicate"}, "evhctl: The following argument was not expected: frobnicate\n"},
      {{"--frobnicate"}, "evhctl: The following argument was not expected: --frobnicate\n"},
      {{"plugin"}, "evhctl: plugin needs a command: inspect\n"},
      {{"plugin", "inspect"}, "evhctl: PLUGIN is required\n"},
      {{"plugin", "inspect", "a.so", "b.so"}, "evhctl: The following argument was not expected: b.so\n"},
      {{"plugin", "inspect", "a.so", "--plugin-dir"}, "evhctl: --plugin-dir: 1 required DIR missing\n"},
      {{"status", "--url"}, "evhctl: --url: 1 required URL missing\n"},
      {{"status", "--bogus"}, "evhctl: The following argument was not expected: --bogus\n"},
      {{"status"}, "evhctl: status needs --config FILE (or EVH_CONFIG), or --url http://HOST:PORT\n"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "EVH_CONFIG", evhctlBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto [code, out] = runCommand(argv);
    EXPECT_EQ(code, 2) << out;
    EXPECT_THAT(out, HasSubstr(message));
    EXPECT_THAT(out, HasSubstr("Usage: evhctl")) << message;
  }
}

TEST_F(CliTest, CheckConfigAndConfigRefuseLimitsTheDecoderCannotTake) {
  std::string path = write("limits.yaml", R"(plugins:
  rec: {path: recorder}
channels:
  ch:
    routes:
      - events: "*"
        plugins: [rec]
limits:
  max_json_depth: 4096
  max_message_bytes: 4294967295
)");
  auto [code, out] = check(path);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, Not(HasSubstr("ok\n")));
  EXPECT_THAT(out, HasSubstr(path + ":9: limits.max_json_depth: expected an integer in 1..1024, got \"4096\""));
  EXPECT_THAT(out, HasSubstr(path + ":10: limits.max_message_bytes: expected an integer in 1..2147483648, got "
                                    "\"4294967295\""));

  auto [run_code, run_out] =
      runCommand({evhostBin(), "--config", path, "--plugin-dir", testPluginDir(), "--ops-listen", ""});
  EXPECT_EQ(run_code, 1) << run_out;
  EXPECT_THAT(run_out, HasSubstr(path + ":9: limits.max_json_depth: expected an integer in 1..1024"));
  EXPECT_THAT(run_out, HasSubstr("evhost: invalid configuration, not starting"));
}

}  // namespace
}  // namespace evh::test
