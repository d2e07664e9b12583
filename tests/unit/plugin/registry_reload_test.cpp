// A reload's plugins in the registry: what is kept, what gets a new
// instance (a changed entry, a new build renamed over the file), and when a
// leaving instance is shut down -- only once nothing holds it and no
// callback is owed to it.
#include "plugin/registry.h"
#include "support/fake_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace evh::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

class RegistryReloadTest : public ::testing::Test {
 protected:
  RegistryReloadTest() {
    char tmpl[] = "/tmp/evh-registry-reload-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    EXPECT_NE(made, nullptr);
    dir_ = made != nullptr ? made : "/tmp";
    install(1);
  }
  ~RegistryReloadTest() override {
    registry_.unloadAll();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Build `version` of the probe renamed over dir/probe.so.
  void install(int version) {
    const std::string tmp = dir_ + "/probe.so.new";
    fs::copy_file(std::string(EVH_TEST_PLUGIN_DIR) + "/reload_probe_v" + std::to_string(version) + ".so", tmp,
                  fs::copy_options::overwrite_existing);
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                             fs::perms::others_exec);
    fs::rename(tmp, dir_ + "/probe.so");
  }
  config::Plugin entry(const std::string& name, const std::string& tag, const std::string& more = "") const {
    config::Plugin p;
    p.name = name;
    p.path = dir_ + "/probe.so";
    p.config_json = R"({"tag":")" + tag + R"(","log":")" + dir_ + R"(/probe.log")" + more + "}";
    p.config_dir = dir_;
    p.origin = config::Origin{"deploy.yaml", 7, "plugins." + name};
    return p;
  }
  std::vector<std::string> probeLog() const {
    std::ifstream in(dir_ + "/probe.log");
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) {
      out.push_back(l);
    }
    return out;
  }
  Registry::Staged stage(const std::vector<config::Plugin>& running, const std::vector<config::Plugin>& next,
                         const std::string& fixed = "") {
    return registry_.stage(running, next, {}, services_, "dev:", fixed);
  }
  size_t retire() {
    return registry_.retireIdle([this](Instance& in) {
      forgotten_.push_back(in.name());
      return true;
    });
  }

  std::string dir_;
  test::FakeServices services_;
  Registry registry_;
  std::vector<std::string> forgotten_;
};

TEST_F(RegistryReloadTest, KeepsWhatIsUnchangedAndReplacesWhatChanged) {
  const std::vector<config::Plugin> running{entry("p", "t1"), entry("q", "q1")};
  registry_.load(running, {}, services_, "dev:");
  const std::shared_ptr<Instance> q = registry_.findShared("q");
  Registry::Staged s = stage(running, {entry("q", "q1"), entry("p", "t2")});
  ASSERT_EQ(s.next.size(), 2u);
  EXPECT_EQ(s.next[0], q);  // kept, in the new order
  ASSERT_EQ(s.fresh.size(), 1u);
  EXPECT_EQ(s.fresh[0]->name(), "p");
  EXPECT_EQ(s.fresh[0]->generation(), 2u);
  // The file did not change: the new instance shares the loaded library.
  EXPECT_EQ(s.fresh[0]->libraryPtr(), q->libraryPtr());
  EXPECT_THAT(s.changes, IsEmpty());  // the config shows it
  ASSERT_EQ(s.leaving.size(), 1u);
  EXPECT_THAT(probeLog(), ElementsAre("init t1 v1", "init q1 v1", "init t2 v1"));
  registry_.adopt(std::move(s));
  EXPECT_EQ(registry_.find("p")->generation(), 2u);
  EXPECT_EQ(registry_.retiring().size(), 1u);
}

TEST_F(RegistryReloadTest, ALeavingInstanceIsShutDownOnlyOnceNothingHoldsItAndNothingIsOwed) {
  const std::vector<config::Plugin> running{entry("p", "t1")};
  registry_.load(running, {}, services_, "dev:");
  std::shared_ptr<Instance> held = registry_.findShared("p");  // as a runtime with an event in flight does
  held->owe();                                                 // a Redis reply on its way
  registry_.adopt(stage(running, {}));
  EXPECT_EQ(retire(), 1u);
  EXPECT_THAT(forgotten_, IsEmpty());
  EXPECT_FALSE(held->servicesClosed());

  Instance* raw = held.get();
  held.reset();  // the last event is done
  EXPECT_EQ(retire(), 1u);
  EXPECT_THAT(forgotten_, ElementsAre("p"));
  EXPECT_TRUE(raw->servicesClosed());
  EXPECT_THAT(probeLog(), ElementsAre("init t1 v1"));  // the reply would still enter its code

  raw->paid();
  EXPECT_EQ(retire(), 0u);
  EXPECT_THAT(forgotten_, ElementsAre("p"));  // once
  EXPECT_THAT(probeLog(), ElementsAre("init t1 v1", "shutdown t1 v1"));
  EXPECT_TRUE(registry_.retiring().empty());
}

TEST_F(RegistryReloadTest, ANewBuildRenamedOverTheFileIsLoadedAnew) {
  const std::vector<config::Plugin> running{entry("p", "t1")};
  registry_.load(running, {}, services_, "dev:");
  EXPECT_EQ(registry_.find("p")->library().version(), "1.0.1");
  install(2);
  Registry::Staged s = stage(running, running);
  ASSERT_EQ(s.fresh.size(), 1u);
  // Loaded beside the old build, whose name the dynamic loader knows.
  EXPECT_EQ(s.fresh[0]->library().version(), "1.0.2");
  EXPECT_EQ(registry_.find("p")->library().version(), "1.0.1");
  EXPECT_NE(s.fresh[0]->library().sha256(), registry_.find("p")->library().sha256());
  EXPECT_THAT(s.changes, ElementsAre("plugin p replaced (a new build of its file)"));
  registry_.adopt(std::move(s));
  EXPECT_EQ(retire(), 0u);
  EXPECT_THAT(probeLog(), ElementsAre("init t1 v1", "init t1 v2", "shutdown t1 v1"));
  // Unchanged since: kept by the next reload.
  EXPECT_THAT(stage(running, running).fresh, IsEmpty());
}

TEST_F(RegistryReloadTest, AFailedInitRefusesTheStageAndWhatItMadeRetires) {
  const std::vector<config::Plugin> running{entry("p", "t1")};
  registry_.load(running, {}, services_, "dev:");
  try {
    stage(running, {entry("p", "t1"), entry("n", "new1"), entry("m", "bad", R"(,"fail_init":true)")});
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("deploy.yaml:7: plugins.m: plugin \"m\""));
    EXPECT_THAT(e.what(), HasSubstr("reload_probe bad was told to fail its init"));
  }
  EXPECT_EQ(registry_.instances().size(), 1u);
  EXPECT_EQ(registry_.retiring().size(), 2u);  // n (initialised) and m
  EXPECT_EQ(retire(), 0u);
  EXPECT_THAT(probeLog(), ElementsAre("init t1 v1", "init new1 v1", "shutdown new1 v1"));
}

TEST_F(RegistryReloadTest, TheDeadLetterPluginIsNeitherReplacedNorRemoved) {
  const std::vector<config::Plugin> running{entry("dl", "t1")};
  registry_.load(running, {}, services_, "dev:");
  try {
    stage(running, {entry("dl", "t2")}, "dl");
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("dead-letter plugin"));
  }
  try {
    stage(running, {}, "dl");
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot be removed by a reload"));
  }
  EXPECT_THAT(probeLog(), ElementsAre("init t1 v1"));
}

}  // namespace
}  // namespace evh::plugin
