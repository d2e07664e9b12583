// Plugin trust: every rule checked before dlopen, each refusal naming the file, the rule and the fix; sha256 pins;
// the ABI note read from the file without running any of the plugin's code.
#include "plugin/trust.h"
#include "config/sha256.h"
#include "plugin/abi_note.h"
#include "plugin/library.h"
#include "plugin/registry.h"
#include "support/fake_host.h"
#include "support/temp_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace evh::plugin {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
namespace fs = std::filesystem;

std::string trustTestPlugin(const std::string& name) { return std::string(EVH_TEST_PLUGIN_DIR) + "/" + name + ".so"; }

constexpr uid_t kNobody = 65534;

class TrustTest : public ::testing::Test {
 protected:
  // A folder of ours (0755) holding a copy of ok_c (0644): trusted as it is. Modes are set explicitly: the test
  // must not depend on the umask.
  void SetUp() override {
    ::chmod(dir_.path().c_str(), 0755);
    plugin_ = dir_.path() + "/p.so";
    fs::copy_file(trustTestPlugin("ok_c"), plugin_);
    ::chmod(plugin_.c_str(), 0644);
  }

  config::Plugin entry(const std::string& name, const std::string& path, const std::string& pin = "") {
    config::Plugin p;
    p.name = name;
    p.path = path;
    p.config_json = "{}";
    p.config_dir = dir_.path();
    p.sha256 = pin;
    p.origin = config::Origin{"deploy.yaml", 7, "plugins." + name};
    return p;
  }

  // Loads the plugins through the registry, as evhost does; "" when they load, else the refusal.
  std::string load(const std::vector<config::Plugin>& plugins) {
    try {
      registry_.load(plugins, {}, services_, "dev:");
    } catch (const LoadError& e) {
      return e.what();
    }
    return "";
  }
  std::string load(const std::string& path, const std::string& pin = "") { return load({entry("p", path, pin)}); }

  std::string digest(const std::string& path) { return sha256Hex(test::readFile(path)); }

  test::TempDir dir_;
  std::string plugin_;
  test::FakeServices services_;
  Registry registry_;
};

TEST_F(TrustTest, AFileOfOursInAFolderOfOursLoads) {
  EXPECT_EQ(load(plugin_), "");
  ASSERT_NE(registry_.find("p"), nullptr);
  EXPECT_EQ(registry_.find("p")->library().sha256(), digest(plugin_));
}

TEST_F(TrustTest, RefusesAWorldWritableFile) {
  ::chmod(plugin_.c_str(), 0666);
  EXPECT_THAT(load(plugin_), HasSubstr(plugin_ + ": refused by plugin trust rule \"mode\": the file " + plugin_ +
                                       " is writable by others (mode 0666); fix: chmod go-w " + plugin_));
}

TEST_F(TrustTest, RefusesAGroupWritableFile) {
  ::chmod(plugin_.c_str(), 0664);
  EXPECT_THAT(load(plugin_), HasSubstr("rule \"mode\": the file " + plugin_ + " is writable by its group (mode 0664)"));
}

TEST_F(TrustTest, RefusesAFileInAWorldWritableFolder) {
  ::chmod(dir_.path().c_str(), 0777);
  EXPECT_THAT(load(plugin_),
              HasSubstr(plugin_ + ": refused by plugin trust rule \"folder\": the folder " + dir_.path() +
                        " is writable by others (mode 0777); fix: chmod go-w " + dir_.path()));
}

TEST_F(TrustTest, RefusesAFileInAGroupWritableFolder) {
  ::chmod(dir_.path().c_str(), 0775);
  EXPECT_THAT(load(plugin_), HasSubstr("rule \"folder\": the folder " + dir_.path() + " is writable by its group"));
}

// Root (as tests run in CI) may chown; any other user cannot give a file away.
TEST_F(TrustTest, RefusesAFileOwnedByAnotherUser) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to chown a file to nobody";
  }
  ASSERT_EQ(::chown(plugin_.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  EXPECT_THAT(load(plugin_), HasSubstr(plugin_ + ": refused by plugin trust rule \"owner\": the file " + plugin_ +
                                       " is owned by uid 65534"));
  EXPECT_THAT(load(plugin_), HasSubstr("is owned by uid 65534 (nobody), not by root; fix: chown root " + plugin_));
}

TEST_F(TrustTest, RefusesAFolderOwnedByAnotherUser) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to chown a folder to nobody";
  }
  ASSERT_EQ(::chown(dir_.path().c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  EXPECT_THAT(load(plugin_), HasSubstr("refused by plugin trust rule \"folder\": the folder " + dir_.path() +
                                       " is owned by uid 65534"));
}

TEST_F(TrustTest, RefusesASymlinkPointingOutOfItsFolder) {
  const std::string link = dir_.path() + "/out.so";
  fs::create_symlink(trustTestPlugin("ok_c"), link);
  const std::string real = fs::canonical(trustTestPlugin("ok_c")).string();
  EXPECT_THAT(load(link), HasSubstr(link + ": refused by plugin trust rule \"symlink\": it resolves to " + real +
                                    ", outside the folder it was found in (" + dir_.path() + ")"));
}

TEST_F(TrustTest, RefusesASymlinkFoundByNameThatPointsOutOfTheSearchFolder) {
  fs::create_symlink(trustTestPlugin("ok_c"), dir_.path() + "/named.so");
  try {
    registry_.load({entry("p", "named")}, {dir_.path()}, services_, "");
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("rule \"symlink\""));
  }
}

TEST_F(TrustTest, AcceptsASymlinkToAFileInsideItsFolder) {
  fs::create_directory(dir_.path() + "/v1");
  ::chmod((dir_.path() + "/v1").c_str(), 0755);
  fs::rename(plugin_, dir_.path() + "/v1/p.so");
  fs::create_symlink("v1/p.so", dir_.path() + "/current.so");
  fs::create_symlink("current.so", dir_.path() + "/twice.so");
  EXPECT_EQ(load(dir_.path() + "/current.so"), "");
  registry_.unloadAll();
  EXPECT_EQ(load(dir_.path() + "/twice.so"), "");
}

// Whoever may write to a folder between the two could swap the file.
TEST_F(TrustTest, RefusesASymlinkThroughAWritableSubfolder) {
  fs::create_directories(dir_.path() + "/open/v1");
  ::chmod((dir_.path() + "/open").c_str(), 0777);
  ::chmod((dir_.path() + "/open/v1").c_str(), 0755);
  fs::rename(plugin_, dir_.path() + "/open/v1/p.so");
  fs::create_symlink("open/v1/p.so", dir_.path() + "/current.so");
  EXPECT_THAT(load(dir_.path() + "/current.so"),
              HasSubstr("rule \"folder\": the folder " + dir_.path() + "/open is writable by others (mode 0777)"));
}

TEST_F(TrustTest, RefusesAConfiguredPathWithDotDot) {
  fs::create_directory(dir_.path() + "/sub");
  EXPECT_THAT(load("sub/../p.so"), HasSubstr("sub/../p.so: refused by plugin trust rule \"dotdot\": the configured "
                                             "path has a \"..\" component"));
  EXPECT_THAT(load("../" + fs::path(dir_.path()).filename().string() + "/p.so"), HasSubstr("rule \"dotdot\""));
  EXPECT_THAT(load(dir_.path() + "/sub/../p.so"), HasSubstr("fix: write the path without \"..\""));
  EXPECT_EQ(load("./p.so"), "");
}

TEST_F(TrustTest, APinThatMatchesLoads) { EXPECT_EQ(load(plugin_, digest(plugin_)), ""); }

TEST_F(TrustTest, APinThatDoesNotMatchIsRefusedNamingBothDigests) {
  const std::string pin(64, 'a');
  EXPECT_THAT(load(plugin_, pin), HasSubstr(plugin_ +
                                            ": refused by plugin trust rule \"sha256\": the file's SHA-256 "
                                            "is " +
                                            digest(plugin_) + ", but the config pins " + pin));
}

TEST_F(TrustTest, EveryInstanceOfASharedLibraryIsCheckedAgainstItsOwnPin) {
  const std::string msg = load({entry("a", plugin_, digest(plugin_)), entry("b", plugin_, std::string(64, 'b'))});
  EXPECT_THAT(msg, HasSubstr("plugin \"b\": " + plugin_ + ": refused by plugin trust rule \"sha256\""));
  EXPECT_THAT(msg, Not(HasSubstr("plugin \"a\"")));
}

// The marker file is created by the plugin's ELF constructor: that it does not exist proves no code of the plugin
// ran. The control (a plain dlopen) proves the constructor does create it.
TEST_F(TrustTest, AnIncompatibleAbiNoteIsRefusedBeforeAnyPluginCodeRuns) {
  const std::string marker = dir_.path() + "/constructor-ran";
  ASSERT_EQ(::setenv("EVH_TEST_MARKER", marker.c_str(), 1), 0);
  EXPECT_THAT(load(trustTestPlugin("note_wrong_major")),
              HasSubstr(trustTestPlugin("note_wrong_major") +
                        ": refused by plugin trust rule \"abi-note\": its ABI note says it was built for plugin ABI "
                        "2.0, but this evhost implements ABI 1.3 (refused without loading it); fix: rebuild the "
                        "plugin against this SDK"));
  EXPECT_THAT(load(trustTestPlugin("note_newer_minor")),
              HasSubstr("its ABI note says it was built for plugin ABI 1.99, newer than this evhost's ABI 1.3 (refused "
                        "without loading it); fix: upgrade evhost"));
  EXPECT_FALSE(fs::exists(marker)) << "the plugin's constructor ran";

  void* h = dlopen(trustTestPlugin("note_newer_minor").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  EXPECT_TRUE(fs::exists(marker)) << "the control: dlopen runs the constructor";
  dlclose(h);
  ::unsetenv("EVH_TEST_MARKER");
}

TEST_F(TrustTest, PluginsBuiltAgainstThisHeaderCarryTheAbiNote) {
  int fd = ::open(plugin_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(readAbiNotes(fd, plugin_), std::vector<uint32_t>{EVH_ABI_VERSION});
  ::close(fd);
}

// tests/abi/v1_0/abi10_recorder.so was built before the note existed: it has none, and loads, its version checked
// from the descriptor after dlopen.
TEST_F(TrustTest, APluginWithoutTheNoteFallsBackToTheDescriptorsVersion) {
  const std::string old = std::string(EVH_SOURCE_DIR) + "/tests/abi/v1_0/abi10_recorder.so";
  CheckedFile file = checkTrust(Found{old, fs::path(old).parent_path().string()}, "");
  EXPECT_EQ(file.refusal, "");
  EXPECT_THAT(file.abi_notes, IsEmpty());
  EXPECT_THAT(file.rules.back().text, HasSubstr("none (built before ABI notes)"));
  LibraryPtr lib = Library::load(file);
  EXPECT_EQ(lib->abiMajor(), 1U);
  EXPECT_EQ(lib->abiMinor(), 0U);
}

TEST_F(TrustTest, TheVerdictListsEveryRuleInOrder) {
  CheckedFile file = checkTrust(Found{plugin_, dir_.path()}, digest(plugin_));
  EXPECT_EQ(file.refusal, "");
  std::vector<std::string> rules;
  for (const auto& r : file.rules) {
    EXPECT_TRUE(r.passed) << r.rule << ": " << r.text;
    rules.push_back(r.rule);
  }
  EXPECT_EQ(rules, (std::vector<std::string>{"symlink", "owner", "mode", "folder", "sha256", "abi-note"}));
  EXPECT_EQ(file.sha256, digest(plugin_));
}

}  // namespace
}  // namespace evh::plugin
