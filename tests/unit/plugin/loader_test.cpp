// Plugin loading: search path, ABI negotiation, every refusal and its message.
#include "plugin/library.h"
#include "plugin/registry.h"
#include "plugin/search_path.h"
#include "plugin/versioned.h"
#include "support/fake_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace evh::plugin {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string loaderTestPlugin(const std::string& name) { return std::string(EVH_TEST_PLUGIN_DIR) + "/" + name + ".so"; }

config::Plugin loaderEntry(const std::string& name, const std::string& path, const std::string& config_json = "{}") {
  config::Plugin p;
  p.name = name;
  p.path = path;
  p.config_json = config_json;
  p.config_dir = ".";
  p.origin = config::Origin{"deploy.yaml", 7, "plugins." + name};
  return p;
}

class LoaderTest : public ::testing::Test {
 protected:
  // Loads one plugin through the registry and returns the refusal message.
  std::string refusal(const std::string& path) {
    try {
      registry_.load({loaderEntry("p", path)}, {}, services_, "dev:");
    } catch (const LoadError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected " << path << " to be refused";
    return {};
  }

  test::FakeServices services_;
  Registry registry_;
};

TEST_F(LoaderTest, LoadsCPluginAndCallsIt) {
  registry_.load({loaderEntry("counter", loaderTestPlugin("ok_c"))}, {}, services_, "dev:");
  Instance* in = registry_.find("counter");
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->library().name(), "ok_c");
  EXPECT_EQ(in->library().version(), "1.2.3");
  EXPECT_FALSE(in->blocking());

  test::FakeCall call;
  evh_event ev = test::makeEvent("PRODUCT_CREATED");
  EXPECT_EQ(in->handle(ev, call.handle()), EVH_OK);
  ev = test::makeEvent("RETRY");
  EXPECT_EQ(in->handle(ev, call.handle()), EVH_RETRY);
  EXPECT_EQ(call.error, "ok_c asked for a retry");
  ev = test::makeEvent("REJECT");
  EXPECT_EQ(in->handle(ev, call.handle()), EVH_REJECT);
  EXPECT_EQ(test::metricValue(*in, "handled"), 3);
}

TEST_F(LoaderTest, SameLibraryTwiceGivesIndependentInstances) {
  registry_.load({loaderEntry("first", loaderTestPlugin("ok_c")), loaderEntry("second", loaderTestPlugin("ok_c"))}, {},
                 services_, "");
  ASSERT_EQ(registry_.instances().size(), 2U);
  test::FakeCall call;
  evh_event ev = test::makeEvent("X");
  registry_.find("first")->handle(ev, call.handle());
  registry_.find("first")->handle(ev, call.handle());
  registry_.find("second")->handle(ev, call.handle());
  EXPECT_EQ(test::metricValue(*registry_.find("first"), "handled"), 2);
  EXPECT_EQ(test::metricValue(*registry_.find("second"), "handled"), 1);
}

TEST_F(LoaderTest, RefusesMissingFile) {
  std::string path = std::string(EVH_TEST_PLUGIN_DIR) + "/no_such_plugin.so";
  std::string msg = refusal(path);
  EXPECT_THAT(msg, HasSubstr("deploy.yaml:7: plugins.p: plugin \"p\": "));
  EXPECT_THAT(msg, HasSubstr(path + ": plugin file does not exist"));
}

TEST_F(LoaderTest, RefusesFileThatIsNotASharedObject) {
  std::string path = loaderTestPlugin("not_elf");
  EXPECT_THAT(refusal(path), HasSubstr(path + ": not a shared object (no ELF header)"));
}

TEST_F(LoaderTest, RefusesSharedObjectWithoutEntrySymbol) {
  std::string path = loaderTestPlugin("missing_entry");
  EXPECT_THAT(refusal(path), HasSubstr(path + ": not an evhost plugin: it does not export evh_plugin_entry"));
}

TEST_F(LoaderTest, RefusesEntryReturningNoDescriptor) {
  std::string path = loaderTestPlugin("entry_returns_null");
  EXPECT_THAT(refusal(path),
              HasSubstr(path + ": evh_plugin_entry returned no descriptor (the plugin declined host ABI 1.3)"));
}

TEST_F(LoaderTest, RefusesOtherMajorNamingBothVersions) {
  std::string path = loaderTestPlugin("abi_wrong_major");
  EXPECT_THAT(refusal(path), HasSubstr(path + ": built for plugin ABI 2.0, but this evhost implements ABI 1.3"));
}

TEST_F(LoaderTest, RefusesNewerMinor) {
  std::string path = loaderTestPlugin("abi_newer_minor");
  EXPECT_THAT(refusal(path), HasSubstr(path + ": built for plugin ABI 1.99, newer than this evhost's ABI 1.3"));
}

TEST_F(LoaderTest, RefusalShowsPluginsOwnInitMessage) {
  std::string path = loaderTestPlugin("init_fails");
  EXPECT_THAT(refusal(path),
              HasSubstr("plugin \"p\" (" + path + "): init failed: database unreachable at 10.0.0.1:5432"));
}

TEST_F(LoaderTest, ConstructorExceptionOfCppPluginFailsInitWithItsMessage) {
  try {
    registry_.load({loaderEntry("cpp", loaderTestPlugin("ok_cpp"), R"({"mode":"throw_in_ctor"})")}, {}, services_, "");
    FAIL() << "expected init to fail";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("init failed: config says throw_in_ctor"));
  }
}

TEST_F(LoaderTest, ReportsEveryLoadFaultAtOnce) {
  try {
    registry_.load(
        {loaderEntry("a", loaderTestPlugin("missing_entry")), loaderEntry("b", loaderTestPlugin("abi_wrong_major"))},
        {}, services_, "");
    FAIL() << "expected a refusal";
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("plugin \"a\""));
    EXPECT_THAT(e.what(), HasSubstr("plugin \"b\""));
  }
}

TEST_F(LoaderTest, InitFailureLeavesNothingLoaded) {
  EXPECT_THROW(
      registry_.load({loaderEntry("a", loaderTestPlugin("ok_c")), loaderEntry("b", loaderTestPlugin("init_fails"))}, {},
                     services_, ""),
      LoadError);
  EXPECT_TRUE(registry_.instances().empty());
}

TEST_F(LoaderTest, AcceptsOlderMinorDescriptorWithoutReadingPastItsEnd) {
  // The descriptor ends exactly where an inaccessible page begins.
  registry_.load({loaderEntry("old", loaderTestPlugin("abi_older_minor"))}, {}, services_, "");
  Instance* in = registry_.find("old");
  ASSERT_NE(in, nullptr);
  test::FakeCall call;
  evh_event ev = test::makeEvent("X");
  EXPECT_EQ(in->handle(ev, call.handle()), EVH_OK);
}

// A host of a later minor has a longer descriptor; reading an older
// plugin's must stop at the plugin's struct_size and zero the rest.
TEST_F(LoaderTest, CopyVersionedStopsAtDeclaredSize) {
  void* h = dlopen(loaderTestPlugin("abi_older_minor").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr);
  auto entry_fn = reinterpret_cast<evh_plugin_entry_fn>(dlsym(h, EVH_PLUGIN_ENTRY_SYMBOL));
  ASSERT_NE(entry_fn, nullptr);
  const evh_plugin_desc* guarded = entry_fn(EVH_ABI_VERSION);
  ASSERT_NE(guarded, nullptr);

  // Today's descriptor: 1.1's health callback reads as NULL.
  evh_plugin_desc now;
  std::memset(&now, 0xAB, sizeof(now));
  EXPECT_EQ(copyVersioned(guarded, now), kMinDescriptorSize);
  EXPECT_EQ(now.health, nullptr);
  EXPECT_NE(now.handle, nullptr);

  // Some later minor's, longer still.
  struct Future {
    uint32_t struct_size;
    uint32_t abi_version;
    unsigned char rest[sizeof(evh_plugin_desc) - 8];
    uint64_t added_later;
  };
  Future f;
  std::memset(&f, 0xAB, sizeof(f));
  EXPECT_EQ(copyVersioned(guarded, f), kMinDescriptorSize);
  EXPECT_EQ(f.added_later, 0U);
  EXPECT_EQ(f.abi_version, EVH_ABI_MAKE_VERSION(1, 0));
  dlclose(h);
}

TEST_F(LoaderTest, BareNameIsFoundInPluginDir) {
  EXPECT_EQ(resolve("ok_c", "/nowhere", {"/does/not/exist", EVH_TEST_PLUGIN_DIR}), loaderTestPlugin("ok_c"));
}

TEST_F(LoaderTest, BareNameNotFoundNamesTheFoldersTried) {
  try {
    resolve("nosuch", ".", {"/a", "/b"});
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_THAT(e.what(), HasSubstr("plugin \"nosuch\" not found in the plugin search path (/a, /b)"));
  }
}

TEST_F(LoaderTest, RelativePathIsTakenFromTheConfigFolder) {
  fs::path dir = fs::path(EVH_TEST_PLUGIN_DIR);
  EXPECT_EQ(resolve("../test-plugins/ok_c.so", dir.string(), {}), loaderTestPlugin("ok_c"));
}

TEST_F(LoaderTest, EnvironmentPathComesAfterPluginDirAndBeforeBundled) {
  ASSERT_EQ(setenv("EVH_PLUGIN_PATH", "/env/one:/env/two", 1), 0);
  auto dirs = searchPath({"/cli"});
  unsetenv("EVH_PLUGIN_PATH");
  ASSERT_EQ(dirs.size(), 4U);
  EXPECT_EQ(dirs[0], "/cli");
  EXPECT_EQ(dirs[1], "/env/one");
  EXPECT_EQ(dirs[2], "/env/two");
  EXPECT_EQ(dirs[3], bundledPluginDir());
}

TEST_F(LoaderTest, BundledPluginsAreFoundRelativeToTheExecutable) {
  EXPECT_EQ(fs::path(bundledPluginDir()), fs::path(EVH_BUNDLED_PLUGIN_DIR).lexically_normal());
  EXPECT_EQ(resolve("product", ".", searchPath({})),
            (fs::path(EVH_BUNDLED_PLUGIN_DIR) / "product.so").lexically_normal().string());
}

}  // namespace
}  // namespace evh::plugin
