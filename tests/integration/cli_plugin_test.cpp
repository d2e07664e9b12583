// Plugins from the command line: evhctl plugin inspect (the digest, trust
// rules, refusals, the ABI note), and --check-config on a plugin's own
// config (validate_config, masked values, a crash in it).
#include "cli_fixture.h"
#include "support/tested_binaries.h"

namespace evh::test {
namespace {

TEST_F(CliTest, PluginInspectPrintsWhatTheHostSees) {
  auto [code, out] = runCommand({evhctlBin(), "plugin", "inspect", std::string(testPluginDir()) + "/ok_cpp.so"});
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
  std::filesystem::copy_file(std::string(testPluginDir()) + "/ok_cpp.so", dir_ + "/mine.so");
  const std::string up = "../" + std::filesystem::path(dir_).filename().string() + "/mine.so";
  for (const std::string& target : {std::string("./mine.so"), up}) {
    auto [code, out] =
        runCommand({"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" plugin inspect \"$2\"", dir_, evhctlBin(), target});
    EXPECT_EQ(code, 0) << target << ": " << out;
    EXPECT_THAT(out, HasSubstr("path:            " + dir_ + "/mine.so\n")) << target;
    EXPECT_THAT(out, HasSubstr("name:            ok_cpp")) << target;
  }
}

// --check-config said "ok" to limits the decoder refuses, and --config then
// failed from the server's constructor without file:line. Both now refuse
// them alike, naming the file, the line and the range.

TEST_F(CliTest, PluginInspectFindsBundledPluginsByName) {
  auto [code, out] = runCommand({evhctlBin(), "plugin", "inspect", "product"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("name:            product"));
}

TEST_F(CliTest, PluginInspectExplainsRefusals) {
  auto [code, out] =
      runCommand({evhctlBin(), "plugin", "inspect", std::string(testPluginDir()) + "/abi_newer_minor.so"});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("refused:"));
  EXPECT_THAT(out, HasSubstr("newer than this evhost's ABI 1.3 (upgrade evhost)"));
  auto [code2, out2] = runCommand({evhctlBin(), "plugin", "inspect", std::string(testPluginDir()) + "/not_elf.so"});
  EXPECT_EQ(code2, 1);
  EXPECT_THAT(out2, HasSubstr("not a shared object"));
}

// sha256sum's digest (coreutils), not evhost's own code, as the reference.
std::string sha256sum(const std::string& path) {
  auto [code, out] = runCommand({"/usr/bin/sha256sum", path});
  return code == 0 ? out.substr(0, 64) : "sha256sum failed: " + out;
}

TEST_F(CliTest, PluginInspectShowsTheDigestAndEveryTrustRule) {
  const std::string path = std::string(testPluginDir()) + "/ok_cpp.so";
  auto [code, out] = runCommand({evhctlBin(), "plugin", "inspect", path});
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
  std::filesystem::copy_file(std::string(testPluginDir()) + "/ok_cpp.so", path);
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  auto [code, out] = runCommand({evhctlBin(), "plugin", "inspect", path});
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
  auto [code, out] = runCommand({"/usr/bin/env", "EVH_TEST_MARKER=" + marker, evhctlBin(), "plugin", "inspect",
                                 std::string(testPluginDir()) + "/note_wrong_major.so"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("abi-note       REFUSED: "));
  EXPECT_THAT(out, HasSubstr("its ABI note says it was built for plugin ABI 2.0"));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the plugin's constructor ran";
}

TEST_F(CliTest, CheckConfigRefusesAnUntrustedPluginNamingTheLineAndTheRule) {
  const std::string plugin = dir_ + "/open.so";
  std::filesystem::copy_file(std::string(testPluginDir()) + "/ok_cpp.so", plugin);
  ASSERT_EQ(::chmod(plugin.c_str(), 0646), 0);
  std::string path = write("untrusted.yaml",
                           "plugins:\n  p: {path: ./open.so}\n  q: {path: ../x/open.so}\n"
                           "  r: {path: ./pinned.so, sha256: " +
                               std::string(64, '0') + "}\n");
  std::filesystem::copy_file(std::string(testPluginDir()) + "/ok_cpp.so", dir_ + "/pinned.so");
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
  auto [code, out] = runCommand({evhostBin(), "--check-config", path});
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
  auto [check_code, check_out] = runCommand({evhostBin(), "--check-config", path});
  EXPECT_EQ(check_code, 1) << check_out;
  EXPECT_THAT(check_out, HasSubstr(message));
  auto [code, out] = runCommand({evhostBin(), "--config", path, "--ops-listen", ""});
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
      runCommand({evhostBin(), "--config", path, "--plugin-dir", testPluginDir(), "--ops-listen", ""});
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
    auto [code, out] = runCommand({evhostBin(), mode, path, "--plugin-dir", testPluginDir(), "--ops-listen", ""}, env);
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
  auto [code, out] = runCommand({evhctlBin(), "plugin", "inspect", "dlq"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("config check:    validate_config (evhost --check-config checks its config block)\n"));
  auto [old_code, old_out] =
      runCommand({evhctlBin(), "plugin", "inspect", std::string(testPluginDir()) + "/abi12_no_validate.so"});
  EXPECT_EQ(old_code, 0) << old_out;
  EXPECT_THAT(old_out, HasSubstr("config check:    none (its config block is checked only by init, at start)\n"));
}

}  // namespace
}  // namespace evh::test
