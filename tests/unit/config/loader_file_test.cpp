// Loading a config file: missing, a directory, a FIFO or a device refused
// without blocking, and config_dir as the file's absolute folder.
#include "loader_fixture.h"

namespace evh::config {
namespace {

// ---- config_dir and files --------------------------------------------------------

class LoaderFileTest : public LoaderTest {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::path(::testing::TempDir()) / ("evh_config_test_" + std::to_string(random()));
    std::filesystem::create_directories(dir_ / "sub");
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(LoaderFileTest, MissingFileIsAnError) {
  const std::string path = (dir_ / "absent.yaml").string();
  const LoadResult result = loadFile(path, env());
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], path + ": cannot read config file: No such file or directory");
}

TEST_F(LoaderFileTest, DirectoryIsAnError) {
  const LoadResult result = loadFile(dir_.string(), env());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], dir_.string() + ": cannot read config file: Is a directory");
}

// A FIFO at the path (no writer): refused at once as not a regular file,
// never waited on -- a reload reads on libuv's thread pool.
TEST_F(LoaderFileTest, AFifoIsRefusedWithoutBlocking) {
  const std::string path = (dir_ / "fifo.yaml").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const LoadResult result = loadFile(path, env());
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], path + ": cannot read config file: it is a FIFO, not a regular file");
}

TEST_F(LoaderFileTest, CharacterDeviceIsRefused) {
  const LoadResult result = loadFile("/dev/null", env());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], "/dev/null: cannot read config file: it is a character device, not a regular file");
}

TEST_F(LoaderFileTest, ConfigDirIsTheAbsoluteFolderOfTheFile) {
  const std::filesystem::path path = write("sub/app.yaml", "plugins: { p: { path: p } }\n");
  const LoadResult result = loadFile(path.string(), env());
  ASSERT_TRUE(result.config) << joined(result.errors);
  EXPECT_EQ(result.config->file, path.string());
  ASSERT_EQ(result.config->plugins.size(), 1U);
  EXPECT_EQ(result.config->plugins[0].config_dir, (dir_ / "sub").lexically_normal().string());
  EXPECT_EQ(result.config->plugins[0].origin.file, path.string());
}

TEST_F(LoaderFileTest, RelativePathGivesAbsoluteConfigDir) {
  const std::filesystem::path path = write("sub/app.yaml", "plugins: { p: { path: p } }\n");
  // Relative to the current directory, with a detour, so that the result
  // must be both made absolute and normalised.
  const std::string relative =
      (std::filesystem::relative(dir_, std::filesystem::current_path()) / "sub/../sub/app.yaml").string();
  ASSERT_TRUE(std::filesystem::path(relative).is_relative()) << relative;
  const LoadResult result = loadFile(relative, env());
  ASSERT_TRUE(result.config) << joined(result.errors);
  EXPECT_EQ(result.config->file, relative);
  const std::string config_dir = result.config->plugins[0].config_dir;
  EXPECT_TRUE(std::filesystem::path(config_dir).is_absolute()) << config_dir;
  EXPECT_TRUE(std::filesystem::equivalent(config_dir, dir_ / "sub")) << config_dir;
  EXPECT_EQ(config_dir.find(".."), std::string::npos) << config_dir;
}

TEST_F(LoaderFileTest, ErrorsNameTheFileAsGiven) {
  const std::filesystem::path path = write("bad.yaml", "workers: 0\n");
  const LoadResult result = loadFile(path.string(), env());
  ASSERT_EQ(result.errors.size(), 1U);
  EXPECT_EQ(result.errors[0], path.string() + ":1: workers: expected an integer in 1..256, got \"0\"");
}

TEST_F(LoaderTest, LoadStringUsesTheFolderOfTheFileName) {
  const LoadResult result = loadString("plugins: { p: { path: p } }", "conf/x.yaml", env());
  ASSERT_TRUE(result.config) << joined(result.errors);
  EXPECT_EQ(result.config->plugins[0].config_dir, "conf");
}

}  // namespace
}  // namespace evh::config
