// channels.<name>.signature in the YAML: keys from private files and from the
// environment, defaults, and each refusal with its file:line -- never the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "support/temp_file.h"

#include <sys/stat.h>

#include <fstream>

namespace evh::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

LoadResult loadSigned(const std::string& yaml, const std::string& dir) {
  return loadString(yaml, dir + "/cfg.yaml", [](const std::string& name) -> std::optional<std::string> {
    if (name == "EVH_KEY") {
      return std::string(kKey);
    }
    if (name == "EVH_BAD_KEY") {
      return std::string("not-a-key-secret-text");
    }
    return std::nullopt;
  });
}

std::string channel(const std::string& signature) {
  return "channels:\n  orders:\n    signature:\n" + signature +
         "    routes: [{plugins: [p]}]\nplugins: {p: {path: p}}\n";
}

std::string allErrors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) {
    out += e + "\n";
  }
  return out;
}

class LoaderSignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() + "/k.key") << kKey << "\n";
    ::chmod((dir_.path() + "/k.key").c_str(), 0600);
  }
  test::TempDir dir_;
};

TEST_F(LoaderSignatureTest, KeysFromAFileAndTheEnvironmentWithDefaults) {
  const LoadResult r = loadSigned(
      channel("      keys:\n        - {id: k1, file: k.key}\n        - {id: k2, env: EVH_KEY}\n"), dir_.path());
  ASSERT_TRUE(r.config) << allErrors(r);
  const Signature& s = r.config->channels[0].signature;
  EXPECT_TRUE(s.enabled);
  ASSERT_EQ(s.keys.size(), 2u);
  EXPECT_EQ(s.keys[0].id, "k1");
  EXPECT_EQ(s.keys[0].secret.size(), 24u);
  EXPECT_EQ(s.keys[0].secret, s.keys[1].secret);
  EXPECT_EQ(s.tolerance_s, 300u);
  EXPECT_TRUE(s.replay_check);
  EXPECT_FALSE(loadSigned(channel("      keys: [{id: k, file: k.key}]\n"), dir_.path())
                   .config->channels[0]
                   .signature.keys.empty());
}

TEST_F(LoaderSignatureTest, ToleranceAndReplayCheck) {
  const LoadResult r = loadSigned(
      channel("      keys: [{id: k, env: EVH_KEY}]\n      tolerance_s: 60\n      replay_check: false\n"), dir_.path());
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->channels[0].signature.tolerance_s, 60u);
  EXPECT_FALSE(r.config->channels[0].signature.replay_check);
  EXPECT_THAT(
      allErrors(loadSigned(channel("      keys: [{id: k, env: EVH_KEY}]\n      tolerance_s: 0\n"), dir_.path())),
      HasSubstr("tolerance_s"));
}

TEST_F(LoaderSignatureTest, EachRefusalIsNamedAndNeverShowsTheKey) {
  ::chmod((dir_.path() + "/k.key").c_str(), 0644);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"      keys: [{id: k, file: k.key}]\n", "chmod 600 " + dir_.path() + "/k.key"},
      {"      keys: [{id: k, file: none.key}]\n", "No such file"},
      {"      keys: [{id: k, env: EVH_UNSET}]\n", "environment variable \"EVH_UNSET\" is not set"},
      {"      keys: [{id: k, env: EVH_BAD_KEY}]\n", "whsec_<base64"},
      {"      keys: [{id: k}]\n", "exactly one of \"file\""},
      {"      keys: [{id: k, env: EVH_KEY, file: k.key}]\n", "exactly one of \"file\""},
      {"      keys: [{env: EVH_KEY}]\n", "missing required key \"id\""},
      {"      keys: [{id: \"a b\", env: EVH_KEY}]\n", "a key id is 1 to 64 of"},
      {"      keys: [{id: k, env: EVH_KEY}, {id: k, env: EVH_KEY}]\n", "key id \"k\" is used twice"},
      {"      keys: []\n", "a list of keys, at least one"},
      {"      tolerance_s: 5\n", "missing required key \"keys\""},
      {"      keys: [{id: k, secret: abc}]\n", "secret"},
  };
  for (const auto& [yaml, expected] : cases) {
    const LoadResult r = loadSigned(channel(yaml), dir_.path());
    EXPECT_FALSE(r.config) << yaml;
    EXPECT_THAT(allErrors(r), HasSubstr(expected)) << yaml;
    EXPECT_THAT(allErrors(r), HasSubstr("cfg.yaml:")) << yaml;
    EXPECT_THAT(allErrors(r), Not(HasSubstr("MfKQ9r8G"))) << yaml;
    EXPECT_THAT(allErrors(r), Not(HasSubstr("not-a-key-secret"))) << yaml;
  }
}

TEST_F(LoaderSignatureTest, WithoutSigningKeysTheirFormIsCheckedButNothingRead) {
  // evhctl's load: an unset variable and a file it may not read are fine.
  const std::string yaml =
      channel("      keys:\n        - {id: k1, file: none.key}\n        - {id: k2, env: EVH_UNSET}\n");
  std::ofstream(dir_.path() + "/cfg.yaml") << yaml;
  const LoadResult r = loadFile(
      dir_.path() + "/cfg.yaml", [](const std::string&) { return std::nullopt; }, LoadOptions{false});
  ASSERT_TRUE(r.config) << allErrors(r);
  ASSERT_EQ(r.config->channels[0].signature.keys.size(), 2u);
  EXPECT_TRUE(r.config->channels[0].signature.keys[0].secret.empty());
  std::ofstream(dir_.path() + "/bad.yaml") << channel("      keys:\n        - {id: k1}\n");
  EXPECT_THAT(allErrors(loadFile(
                  dir_.path() + "/bad.yaml", [](const std::string&) { return std::nullopt; }, LoadOptions{false})),
              HasSubstr("exactly one of"));
}

}  // namespace
}  // namespace evh::config
