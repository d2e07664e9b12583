// The loader tests' fixture: YAML text loaded with a controlled
// environment, and the checks of a valid config or of its one error.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <stdexcept>

#include "config/config.h"
#include "event/envelope.h"
#include "event/limits.h"

namespace evh::config {

// The YAML text after a leading newline, so that a raw string literal can
// start on its own line and line 1 is its first line.
inline std::string yamlText(const char* text) {
  std::string s(text);
  if (!s.empty() && s.front() == '\n') {
    s.erase(0, 1);
  }
  return s;
}

inline std::string joined(const std::vector<std::string>& errors) {
  std::string out;
  for (const std::string& e : errors) {
    out += "  " + e + "\n";
  }
  return out;
}

class LoaderTest : public ::testing::Test {
 protected:
  EnvLookup env() {
    return [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) {
        return std::nullopt;
      }
      return it->second;
    };
  }

  LoadResult load(const char* yaml) { return loadString(yamlText(yaml), "cfg.yaml", env()); }

  // Loads YAML that must be valid and returns its Config.
  Config valid(const char* yaml) {
    LoadResult result = load(yaml);
    EXPECT_TRUE(result.errors.empty()) << joined(result.errors);
    EXPECT_TRUE(result.config.has_value());
    return result.config.value_or(Config{});
  }

  // Loads YAML that must fail with exactly the one error given.
  void expectError(const char* yaml, const std::string& error) {
    const LoadResult result = load(yaml);
    EXPECT_FALSE(result.config.has_value());
    ASSERT_EQ(result.errors.size(), 1U) << joined(result.errors);
    EXPECT_EQ(result.errors[0], error);
  }

  // The plugin config block of the single plugin in `yaml`, parsed back.
  nlohmann::json pluginConfig(const char* yaml) {
    const Config config = valid(yaml);
    if (config.plugins.size() != 1) {
      ADD_FAILURE() << "expected one plugin, got " << config.plugins.size();
      return nullptr;
    }
    return nlohmann::json::parse(config.plugins[0].config_json);
  }

  std::map<std::string, std::string> env_;
};

}  // namespace evh::config
