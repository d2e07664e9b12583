// Plugins' config blocks checked up front: validate_config's problems at their YAML line, its misbehaviour
// contained, older descriptors without it, values from ${VAR} masked, and Registry::load refusing before any init.
#include "plugin/config_check.h"
#include "plugin/registry.h"
#include "support/fake_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace evh::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string testPlugin(const std::string& name) { return std::string(EVH_TEST_PLUGIN_DIR) + "/" + name + ".so"; }

config::Plugin checkedEntry(const std::string& name, const std::string& lib, const std::string& config_json = "{}") {
  config::Plugin p;
  p.name = name;
  p.path = testPlugin(lib);
  p.config_json = config_json;
  p.config_dir = ".";
  p.origin = config::Origin{"deploy.yaml", 7, "plugins." + name};
  return p;
}

class ConfigCheckTest : public ::testing::Test {
 protected:
  std::vector<std::string> check(const config::Plugin& p) { return checkConfig(*Library::open(p.path), p); }
};

TEST_F(ConfigCheckTest, ProblemsAreShownAtTheLineOfTheirKey) {
  config::Plugin p = checkedEntry("vr", "validate_reports", R"({"name":"","nested":{"level":12,"extra":1},"size":0})");
  p.config_map.line = 9;
  p.config_map.lines = {{"/size", 10}, {"/name", 11}, {"/nested", 12}, {"/nested/level", 13}};
  EXPECT_THAT(check(p), ElementsAre("deploy.yaml:10: plugin vr config /size: must be an integer from 1 to 100, got 0",
                                    "deploy.yaml:11: plugin vr config /name: must be a non-empty string, got \"\"",
                                    "deploy.yaml:12: plugin vr config /nested/extra: unknown key (known: level)",
                                    "deploy.yaml:13: plugin vr config /nested/level: must be an integer from 0 to 9, "
                                    "got 12"));
}

TEST_F(ConfigCheckTest, WithoutTheYamlMapTheProblemIsShownAtThePluginsLine) {
  EXPECT_THAT(check(checkedEntry("vr", "validate_reports", R"({"bogus":1})")),
              ElementsAre("deploy.yaml:7: plugin vr config /bogus: unknown key (known: size, name, nested, password, "
                          "throw)"));
  EXPECT_THAT(check(checkedEntry("vr", "validate_reports", "[1]")),
              ElementsAre("deploy.yaml:7: plugin vr config: must be a map"));
}

TEST_F(ConfigCheckTest, AGoodConfigHasNoProblems) {
  EXPECT_TRUE(check(checkedEntry("vr", "validate_reports", R"({"size":5,"name":"x"})")).empty());
}

TEST_F(ConfigCheckTest, AnExceptionInTheCppWrapperIsAProblemOfTheWholeBlock) {
  EXPECT_THAT(check(checkedEntry("vr", "validate_reports", R"({"size":0,"throw":true})")),
              ElementsAre(HasSubstr("config /size: must be an integer"),
                          "deploy.yaml:7: plugin vr config: validateConfig() threw: the parser fell over"));
}

TEST_F(ConfigCheckTest, ValuesFromVariablesAreMaskedWhereverTheyAppear) {
  config::Plugin p = checkedEntry("vr", "validate_reports", R"({"password":"hunter2-abc"})");
  p.config_map.expanded = {"hunter2-abc"};
  EXPECT_THAT(check(p), ElementsAre("deploy.yaml:7: plugin vr config /password: must be at least 12 characters, got "
                                    "\"***\""));
}

TEST_F(ConfigCheckTest, MaskingTakesLongValuesAnywhereAndShortOnesAsWholeWords) {
  config::ConfigBlockMap map;
  map.expanded = {"1", "pa\"ss word", "ab"};
  EXPECT_EQ(maskExpanded("got 1, not 10 or 21; x1 1", map), "got ***, not 10 or 21; x1 ***");
  EXPECT_EQ(maskExpanded("got \"pa\\\"ss word\" and pa\"ss words", map), "got \"***\" and ***s");
  EXPECT_EQ(maskExpanded("abc ab", map), "abc ***");
  map.expanded = {""};
  EXPECT_EQ(maskExpanded("nothing to mask", map), "nothing to mask");
}

TEST_F(ConfigCheckTest, AnErrorAnswerWithoutAProblemStillFails) {
  EXPECT_THAT(check(checkedEntry("e", "validate_edges", R"({"mode":"silent_fail"})")),
              ElementsAre("deploy.yaml:7: plugin e config: validate_config of " + testPlugin("validate_edges") +
                          " answered err_internal without reporting a problem"));
}

TEST_F(ConfigCheckTest, AProblemReportedWithAnOkAnswerStillCounts) {
  EXPECT_THAT(check(checkedEntry("e", "validate_edges", R"({"mode":"ok_but_report"})")),
              ElementsAre("deploy.yaml:7: plugin e config /mode: reported, then answered OK"));
}

TEST_F(ConfigCheckTest, AFloodOfProblemsIsCutAndCounted) {
  const auto errors = check(checkedEntry("e", "validate_edges", R"({"mode":"flood"})"));
  ASSERT_EQ(errors.size(), kMaxConfigProblems + 1);
  EXPECT_EQ(errors.front(), "deploy.yaml:7: plugin e config /item/0: one of many");
  EXPECT_EQ(errors.back(), "deploy.yaml:7: plugin e config: ... and 900 more problems");
}

TEST_F(ConfigCheckTest, BadStringsAreReadSafelyAndShownOnOneLine) {
  const auto errors = check(checkedEntry("e", "validate_edges", R"({"mode":"bad_strings"})"));
  ASSERT_EQ(errors.size(), 3U);
  EXPECT_EQ(errors[0], "deploy.yaml:7: plugin e config: the pointer was NULL");
  EXPECT_EQ(errors[1], "deploy.yaml:7: plugin e config /mode: line one\\nline two \\u001b[31mred");
  EXPECT_EQ(errors[2], "deploy.yaml:7: plugin e config /mode: " + std::string(kMaxConfigMessageBytes, 'x') + "...");
}

// A 1.2 plugin has no validate_config; one declaring 1.3 with a 1.2-sized
// descriptor has none either: the host reads no byte past struct_size (an
// inaccessible page follows the descriptor).
TEST_F(ConfigCheckTest, OlderOrShortDescriptorsHaveNoValidateConfig) {
  for (const char* lib : {"abi12_no_validate", "abi13_short_desc"}) {
    SCOPED_TRACE(lib);
    auto library = Library::open(testPlugin(lib));
    EXPECT_EQ(library->validateConfig(), nullptr);
    EXPECT_EQ(library->desc().validate_config, nullptr);
    EXPECT_TRUE(check(checkedEntry("old", lib, R"({"init_refuses":1})")).empty());
  }
  EXPECT_EQ(Library::open(testPlugin("abi13_short_desc"))->abiMinor(), 3U);
}

TEST_F(ConfigCheckTest, CheckPluginsNotesThoseWithoutValidateConfigAndCollectsEveryError) {
  const PluginsCheck result =
      checkPlugins({checkedEntry("old", "abi12_no_validate"), checkedEntry("vr", "validate_reports", R"({"size":0})"),
                    checkedEntry("gone", "no_such_plugin"), checkedEntry("ok", "validate_reports")},
                   {});
  EXPECT_THAT(result.notes,
              ElementsAre("deploy.yaml:7: plugins.old: plugin \"old\" (abi12_no_validate, ABI 1.2) has no "
                          "validate_config: its config is checked only by its init, when evhost starts"));
  EXPECT_THAT(result.errors, ElementsAre(HasSubstr("plugin vr config /size:"),
                                         HasSubstr("plugins.gone: plugin \"gone\": " + testPlugin("no_such_plugin") +
                                                   ": plugin file does not exist")));
}

class RegistryConfigCheckTest : public ::testing::Test {
 protected:
  test::FakeServices services_;
  Registry registry_;
};

// Every config is checked before any init runs: the first instance's init,
// which would fail, is not reached when a later one's config is wrong.
TEST_F(RegistryConfigCheckTest, LoadRefusesABadConfigBeforeAnyInit) {
  try {
    registry_.load({checkedEntry("first", "abi12_no_validate", R"({"init_refuses":1})"),
                    checkedEntry("second", "validate_reports", R"({"size":0})"),
                    checkedEntry("third", "validate_edges", R"({"mode":"ok_but_report"})")},
                   {}, services_, "");
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()),
              "deploy.yaml:7: plugin second config /size: must be an integer from 1 to 100, got 0\n"
              "deploy.yaml:7: plugin third config /mode: reported, then answered OK");
  }
  EXPECT_TRUE(registry_.instances().empty());
}

TEST_F(RegistryConfigCheckTest, APluginWithoutValidateConfigIsStillRefusedByItsInit) {
  try {
    registry_.load({checkedEntry("old", "abi12_no_validate", R"({"init_refuses":1})")}, {}, services_, "");
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("init failed: init refuses this config"));
  }
}

TEST_F(RegistryConfigCheckTest, AnInitFailureMasksValuesFromVariables) {
  config::Plugin p = checkedEntry("old", "abi12_no_validate", R"({"init_refuses":1})");
  p.config_map.expanded = {"refuses"};
  try {
    registry_.load({p}, {}, services_, "");
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("init failed: init *** this config"));
  }
}

}  // namespace
}  // namespace evh::plugin
