// The evhost configuration an evhctl command works from.
#pragma once

#include "config/config.h"

#include <cstdio>
#include <optional>
#include <string>

namespace evh::cli {

// Loads `path` (without the channels' signing keys: evhctl never verifies);
// on failure prints every error and "evhctl: invalid configuration <path>"
// on stderr and returns nullopt (the command exits 1).
inline std::optional<config::Config> loadConfigOrReport(const std::string& path) {
  config::LoadResult loaded = config::loadFile(path, config::processEnv, config::LoadOptions{false});
  if (!loaded.config) {
    for (const auto& e : loaded.errors) {
      std::fprintf(stderr, "%s\n", e.c_str());
    }
    std::fprintf(stderr, "evhctl: invalid configuration %s\n", path.c_str());
  }
  return std::move(loaded.config);
}

}  // namespace evh::cli
