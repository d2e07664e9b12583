// The command-line tests' fixture: a scratch folder to write configs into,
// and evhost --check-config run on one. cli_test.cpp and cli_plugin_test.cpp
// use it.
#pragma once

#include "support/evhost_process.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <string>
#include <utility>

namespace evh::test {

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
    return runCommand({evhostBin(), "--check-config", path, "--plugin-dir", testPluginDir()});
  }

  std::string dir_;
};

}  // namespace evh::test
