// The command lines: evhost --check-config, start-up refusals, evhctl.
#include "support/evhost_process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CliTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  void SetUp() override {
    char tmpl[] = "/tmp/evh-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::pair<int, std::string> check(const std::string& path) {
    return runCommand({EVH_EVHOST_BIN, "--check-config", path, "--plugin-dir", EVH_TEST_PLUGIN_DIR});
  }

  std::string dir_;
};

TEST_F(CliTest, CheckConfigPrintsOkForTheShippedConfigs) {
  // The production example needs its secrets from the environment.
  // ... and a state directory that exists: the audit and dlq plugins check
  // that their files could be written there.
  const std::vector<std::string> env = {"REDIS_HOST=redis.internal", "REDIS_PASSWORD=s3cret", "EVH_STATE_DIR=" + dir_};
  for (const char* rel : {"config/jollyjet.yaml", "config/examples/minimal.yaml", "config/examples/production.yaml",
                          "config/examples/durable.yaml"}) {
    auto [code, out] = runCommand({EVH_EVHOST_BIN, "--check-config", std::string(EVH_SOURCE_DIR) + "/" + rel}, env);
    EXPECT_EQ(code, 0) << rel << ": " << out;
    EXPECT_EQ(out, "ok\n") << rel;
  }
}

TEST_F(CliTest, ProductionExampleRefusesToStartWithoutItsSecrets) {
  auto [code, out] =
      runCommand({EVH_EVHOST_BIN, "--check-config", std::string(EVH_SOURCE_DIR) + "/config/examples/production.yaml"});
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
  auto [code, out] =
      runCommand({EVH_EVHOST_BIN, "--config", path, "--plugin-dir", EVH_TEST_PLUGIN_DIR, "--ops-listen", ""});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("plugin \"db\" (" + std::string(EVH_TEST_PLUGIN_DIR) +
                             "/init_fails.so): init failed: database unreachable at 10.0.0.1:5432"));
}

TEST_F(CliTest, APluginWhoseInitThrowsIsNamedWithItsFiles) {
  std::string path = write("throws.yaml", R"(redis: {port: 1}
plugins:
  ok: {path: ok_c}
  pool: {path: init_throws}
)");
  auto [code, out] =
      runCommand({EVH_EVHOST_BIN, "--config", path, "--plugin-dir", EVH_TEST_PLUGIN_DIR, "--ops-listen", ""});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr(path + ":4: plugins.pool: plugin \"pool\" (" + std::string(EVH_TEST_PLUGIN_DIR) +
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
    std::vector<std::string> argv = {EVH_EVHOST_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    auto [code, out] = runCommand(argv);
    EXPECT_EQ(code, 2) << out;
    EXPECT_THAT(out, HasSubstr(message));
    EXPECT_THAT(out, HasSubstr("Usage: evhost [OPTIONS]")) << message;
  }
}

// The bad line goes to stderr, nothing to stdout.
TEST_F(CliTest, BadArgumentsGoToStderr) {
  for (const char* bin : {EVH_EVHOST_BIN, EVH_EVHCTL_BIN}) {
    auto [code, out] = runCommand({"/bin/sh", "-c", "\"$0\" --frobnicate 2>/dev/null", bin});
    EXPECT_EQ(code, 2) << bin;
    EXPECT_EQ(out, "") << bin;
  }
}

// --help is CLI11's, on stdout: every option with its one line.
TEST_F(CliTest, EvhostHelpListsEveryOption) {
  auto [code, out] = runCommand({EVH_EVHOST_BIN, "--help"});
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
  auto [code2, out2] = runCommand({EVH_EVHOST_BIN, "-h"});
  EXPECT_EQ(code2, 0);
  EXPECT_EQ(out2, out);
  auto [code3, version] = runCommand({EVH_EVHOST_BIN, "--version"});
  EXPECT_EQ(code3, 0);
  EXPECT_THAT(version, ::testing::MatchesRegex("evhost [0-9.]+ \\(plugin ABI 1\\.[0-9]+\\)\n"));
}

TEST_F(CliTest, EvhctlHelpNamesEveryCommandAndOption) {
  auto [code, out] = runCommand({EVH_EVHCTL_BIN, "--help"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("Usage: evhctl [OPTIONS] [SUBCOMMAND]"));
  for (const char* line : {"  plugin ", "  dlq ", "  publish ", "  status ", "--version", "-h,--help"}) {
    EXPECT_THAT(out, HasSubstr(line));
  }
  auto [vcode, version] = runCommand({EVH_EVHCTL_BIN, "--version"});
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
    std::vector<std::string> argv = {EVH_EVHCTL_BIN};
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
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "EVH_CONFIG", EVH_EVHCTL_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    auto [code, out] = runCommand(argv);
    EXPECT_EQ(code, 2) << out;
    EXPECT_THAT(out, HasSubstr(message));
    EXPECT_THAT(out, HasSubstr("Usage: evhctl")) << message;
  }
}

TEST_F(CliTest, PluginInspectPrintsWhatTheHostSees) {
  auto [code, out] = runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", std::string(EVH_TEST_PLUGIN_DIR) + "/ok_cpp.so"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("name:            ok_cpp"));
  EXPECT_THAT(out, HasSubstr("version:         2.0.0"));
  EXPECT_THAT(out, HasSubstr("abi:             1.3 (host 1.3)"));
  EXPECT_THAT(out, HasSubstr("flags:           blocking"));
  EXPECT_THAT(out, HasSubstr("max_concurrency: 2"));
}

// The README's `evhctl plugin inspect ./name.so`: a path relative to the
// working directory, in a folder no library search would look in.
TEST_F(CliTest, PluginInspectTakesAPathRelativeToTheWorkingDirectory) {
  std::filesystem::copy_file(std::string(EVH_TEST_PLUGIN_DIR) + "/ok_cpp.so", dir_ + "/mine.so");
  const std::string up = "../" + std::filesystem::path(dir_).filename().string() + "/mine.so";
  for (const std::string& target : {std::string("./mine.so"), up}) {
    auto [code, out] =
        runCommand({"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" plugin inspect \"$2\"", dir_, EVH_EVHCTL_BIN, target});
    EXPECT_EQ(code, 0) << target << ": " << out;
    EXPECT_THAT(out, HasSubstr("path:            " + dir_ + "/mine.so\n")) << target;
    EXPECT_THAT(out, HasSubstr("name:            ok_cpp")) << target;
  }
}

// --check-config said "ok" to limits the decoder refuses, and --config then
// failed from the server's constructor without file:line. Both now refuse
// them alike, naming the file, the line and the range.
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
      runCommand({EVH_EVHOST_BIN, "--config", path, "--plugin-dir", EVH_TEST_PLUGIN_DIR, "--ops-listen", ""});
  EXPECT_EQ(run_code, 1) << run_out;
  EXPECT_THAT(run_out, HasSubstr(path + ":9: limits.max_json_depth: expected an integer in 1..1024"));
  EXPECT_THAT(run_out, HasSubstr("evhost: invalid configuration, not starting"));
}

TEST_F(CliTest, PluginInspectFindsBundledPluginsByName) {
  auto [code, out] = runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", "product"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("name:            product"));
}

TEST_F(CliTest, PluginInspectExplainsRefusals) {
  auto [code, out] =
      runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", std::string(EVH_TEST_PLUGIN_DIR) + "/abi_newer_minor.so"});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("refused:"));
  EXPECT_THAT(out, HasSubstr("newer than this evhost's ABI 1.3 (upgrade evhost)"));
  auto [code2, out2] =
      runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", std::string(EVH_TEST_PLUGIN_DIR) + "/not_elf.so"});
  EXPECT_EQ(code2, 1);
  EXPECT_THAT(out2, HasSubstr("not a shared object"));
}

// sha256sum's digest (coreutils), not evhost's own code, as the reference.
std::string sha256sum(const std::string& path) {
  auto [code, out] = runCommand({"/usr/bin/sha256sum", path});
  return code == 0 ? out.substr(0, 64) : "sha256sum failed: " + out;
}

TEST_F(CliTest, PluginInspectShowsTheDigestAndEveryTrustRule) {
  const std::string path = std::string(EVH_TEST_PLUGIN_DIR) + "/ok_cpp.so";
  auto [code, out] = runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", path});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("sha256:          " + sha256sum(path) + "\n"));
  EXPECT_THAT(out, HasSubstr("trust:           trusted\n"));
  for (const char* rule : {"symlink", "owner", "mode", "folder", "sha256", "abi-note"}) {
    EXPECT_THAT(out, HasSubstr(std::string("  ") + rule)) << rule;
  }
  EXPECT_THAT(out, HasSubstr("abi-note       passed: ABI 1.3"));
  EXPECT_THAT(out, Not(HasSubstr("REFUSED")));
}

TEST_F(CliTest, PluginInspectShowsARefusedFilesDigestAndRuleWithoutLoadingIt) {
  const std::string path = dir_ + "/open.so";
  std::filesystem::copy_file(std::string(EVH_TEST_PLUGIN_DIR) + "/ok_cpp.so", path);
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  auto [code, out] = runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", path});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("sha256:          " + sha256sum(path) + "\n"));
  EXPECT_THAT(out, HasSubstr("trust:           refused\n"));
  EXPECT_THAT(out, HasSubstr("  owner          passed: uid "));
  EXPECT_THAT(out, HasSubstr("  mode           REFUSED: " + path + ": refused by plugin trust rule \"mode\""));
  EXPECT_THAT(out, HasSubstr("evhctl: refused: " + path + ": refused by plugin trust rule \"mode\": the file " + path +
                             " is writable by others (mode 0666); fix: chmod go-w " + path));
  EXPECT_THAT(out, Not(HasSubstr("name:")));
}

// The plugin's ELF constructor would create the marker: inspect must refuse it from its ABI note alone.
TEST_F(CliTest, PluginInspectDoesNotRunAPluginWhoseAbiNoteIsIncompatible) {
  const std::string marker = dir_ + "/constructor-ran";
  auto [code, out] = runCommand({"/usr/bin/env", "EVH_TEST_MARKER=" + marker, EVH_EVHCTL_BIN, "plugin", "inspect",
                                 std::string(EVH_TEST_PLUGIN_DIR) + "/note_wrong_major.so"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("abi-note       REFUSED: "));
  EXPECT_THAT(out, HasSubstr("its ABI note says it was built for plugin ABI 2.0"));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the plugin's constructor ran";
}

TEST_F(CliTest, CheckConfigRefusesAnUntrustedPluginNamingTheLineAndTheRule) {
  const std::string plugin = dir_ + "/open.so";
  std::filesystem::copy_file(std::string(EVH_TEST_PLUGIN_DIR) + "/ok_cpp.so", plugin);
  ASSERT_EQ(::chmod(plugin.c_str(), 0646), 0);
  std::string path = write("untrusted.yaml",
                           "plugins:\n  p: {path: ./open.so}\n  q: {path: ../x/open.so}\n"
                           "  r: {path: ./pinned.so, sha256: " +
                               std::string(64, '0') + "}\n");
  std::filesystem::copy_file(std::string(EVH_TEST_PLUGIN_DIR) + "/ok_cpp.so", dir_ + "/pinned.so");
  ASSERT_EQ(::chmod((dir_ + "/pinned.so").c_str(), 0644), 0);
  auto [code, out] = check(path);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr(path + ":2: plugins.p: plugin \"p\": " + plugin +
                             ": refused by plugin trust rule \"mode\": the file " + plugin +
                             " is writable by others (mode 0646)"));
  EXPECT_THAT(out,
              HasSubstr(path + ":3: plugins.q: plugin \"q\": ../x/open.so: refused by plugin trust rule \"dotdot\""));
  EXPECT_THAT(out, HasSubstr(path + ":4: plugins.r: plugin \"r\": " + dir_ +
                             "/pinned.so: refused by plugin trust "
                             "rule \"sha256\": the file's SHA-256 is " +
                             sha256sum(dir_ + "/pinned.so") + ", but the config pins " + std::string(64, '0')));
}

// Issue 16, part 2: a plugin's config block is checked up front by its
// validate_config. Each bundled plugin with one bad key: --check-config
// names the file, the line of the key, the plugin and what is wrong.
TEST_F(CliTest, CheckConfigReportsABadKeyOfEachBundledPluginWithFileAndLine) {
  const std::string spool = dir_ + "/spool.jsonl";
  std::string path = write("bundled.yaml", R"(environment: dev
plugins:
  product:
    path: product
    config:
      notifications:
        enabeld: false
  audit:
    path: audit
    config:
      file: )" + dir_ + R"(/audit.jsonl
      fsync: sometimes
  dlq:
    path: dlq
    config:
      spool_file: )" + spool + R"(
      max_length: 0
dead_letter: {plugin: dlq}
)");
  auto [code, out] = runCommand({EVH_EVHOST_BIN, "--check-config", path});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr(path + ":7: plugin product config /notifications/enabeld: unknown key (known: channel, "
                                    "enabled)\n"));
  EXPECT_THAT(out, HasSubstr(path + ":12: plugin audit config /fsync: must be one of \"always\", \"interval\", "
                                    "\"never\", got \"sometimes\"\n"));
  EXPECT_THAT(out, HasSubstr(path + ":17: plugin dlq config /max_length: must be an integer from 1 to 100000000, got "
                                    "0\n"));
  EXPECT_THAT(out, Not(HasSubstr("ok\n")));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/audit.jsonl")) << "a check creates no file";
  EXPECT_FALSE(std::filesystem::exists(spool));
}

// `evhost --config` refuses the same config with the same messages, before
// any plugin's init runs (the audit plugin's would create its file).
TEST_F(CliTest, EvhostRefusesABadPluginConfigBeforeAnyInitWithTheSameMessage) {
  std::string path = write("dlq.yaml", R"(redis: {port: 1}
plugins:
  audit:
    path: audit
    config: {file: )" + dir_ + R"(/audit.jsonl}
  dlq:
    path: dlq
    config:
      max_length: 0
      spool_file: )" + dir_ + R"(/spool.jsonl
dead_letter: {plugin: dlq}
)");
  const std::string message = path + ":9: plugin dlq config /max_length: must be an integer from 1 to 100000000, got 0";
  auto [check_code, check_out] = runCommand({EVH_EVHOST_BIN, "--check-config", path});
  EXPECT_EQ(check_code, 1) << check_out;
  EXPECT_THAT(check_out, HasSubstr(message));
  auto [code, out] = runCommand({EVH_EVHOST_BIN, "--config", path, "--ops-listen", ""});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("evhost: not starting:\n" + message + "\n"));
  EXPECT_THAT(out, Not(HasSubstr("init failed")));
  EXPECT_THAT(out, Not(HasSubstr("plugin audit loaded")));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/audit.jsonl")) << "audit's init ran";
}

// A plugin without validate_config (built against ABI 1.2, or older): the
// check says its config is left to init, and init still refuses at start.
TEST_F(CliTest, CheckConfigNotesAPluginWhoseConfigOnlyInitChecks) {
  std::string path = write("old.yaml", R"(redis: {port: 1}
plugins:
  old:
    path: abi12_no_validate
    config: {init_refuses: true}
)");
  auto [code, out] = check(path);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("note: " + path +
                             ":3: plugins.old: plugin \"old\" (abi12_no_validate, ABI 1.2) has no validate_config: its "
                             "config is checked only by its init, when evhost starts\n"));
  EXPECT_THAT(out, HasSubstr("ok\n"));
  auto [run_code, run_out] =
      runCommand({EVH_EVHOST_BIN, "--config", path, "--plugin-dir", EVH_TEST_PLUGIN_DIR, "--ops-listen", ""});
  EXPECT_EQ(run_code, 1) << run_out;
  EXPECT_THAT(run_out, HasSubstr("init failed: init refuses this config"));
}

// A value from ${VAR} may be a secret: never shown in a plugin's config
// error, even when the plugin quotes it (validate_reports does, on purpose).
TEST_F(CliTest, PluginConfigErrorsMaskValuesFromVariables) {
  std::string path = write("secret.yaml", R"(redis: {port: 1}
plugins:
  vr:
    path: validate_reports
    config:
      name: fine
      password: ${EVH_TEST_PLUGIN_PASSWORD}
)");
  const std::vector<std::string> env = {"EVH_TEST_PLUGIN_PASSWORD=s3cr3t-pw"};
  for (const std::string& mode : {std::string("--check-config"), std::string("--config")}) {
    auto [code, out] =
        runCommand({EVH_EVHOST_BIN, mode, path, "--plugin-dir", EVH_TEST_PLUGIN_DIR, "--ops-listen", ""}, env);
    EXPECT_EQ(code, 1) << mode << ": " << out;
    EXPECT_THAT(out, HasSubstr(path + ":7: plugin vr config /password: must be at least 12 characters, got \"***\""))
        << mode;
    EXPECT_THAT(out, Not(HasSubstr("s3cr3t"))) << mode;
  }
}

// A crash in validate_config ends the check like any crash in plugin code,
// named on stderr.
TEST_F(CliTest, CheckConfigNamesAPluginThatCrashesInValidateConfig) {
  std::string path = write("crash.yaml", "plugins:\n  edgy: {path: validate_edges, config: {mode: crash}}\n");
  auto [code, out] = check(path);
  EXPECT_EQ(code, 128 + SIGSEGV) << out;
  EXPECT_THAT(out, HasSubstr("evhost: fatal signal SIGSEGV in plugin \"validate_edges\" (instance \"edgy\") while "
                             "running its validate_config"));
}

TEST_F(CliTest, PluginInspectSaysWhetherAPluginChecksItsConfig) {
  auto [code, out] = runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", "dlq"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("config check:    validate_config (evhost --check-config checks its config block)\n"));
  auto [old_code, old_out] =
      runCommand({EVH_EVHCTL_BIN, "plugin", "inspect", std::string(EVH_TEST_PLUGIN_DIR) + "/abi12_no_validate.so"});
  EXPECT_EQ(old_code, 0) << old_out;
  EXPECT_THAT(old_out, HasSubstr("config check:    none (its config block is checked only by init, at start)\n"));
}

}  // namespace
}  // namespace evh::test
