// Plugins' config blocks checked before anything runs: each plugin's validate_config (ABI 1.3), its problems shown
// at the YAML line they are about. Used by `evhost --check-config`, by Registry::load before any init(), and meant
// for a reload's check of a new configuration.
#pragma once

#include "config/config.h"
#include "plugin/library.h"

#include <string>
#include <string_view>
#include <vector>

namespace evh::plugin {

// The most problems kept from one validate_config call (the rest are counted
// in one more line), and the longest message kept (cut with "...").
constexpr size_t kMaxConfigProblems = 100;
constexpr size_t kMaxConfigMessageBytes = 1000;

// Runs `lib`'s validate_config on `p`'s config block and returns one line per
// problem:
//   FILE:LINE: plugin NAME config POINTER: MESSAGE
// LINE being that of the value POINTER names (or its nearest ancestor in the
// YAML, or the `config:` key); for the whole block (POINTER ""):
//   FILE:LINE: plugin NAME config: MESSAGE
// A call that answers an error without reporting anything gets a line saying so.
// Values of the block that came from ${VAR} are masked in MESSAGE. Empty when
// the config is good, or when the library has no validate_config (see
// Library::validateConfig). Nothing of the plugin runs but validate_config.
// THREAD: any, one check at a time per library (plugin.h).
std::vector<std::string> checkConfig(const Library& lib, const config::Plugin& p);

// `text` with every value of `map.expanded` masked (config::maskValues).
std::string maskExpanded(std::string text, const config::ConfigBlockMap& map);

// What checkPlugins found.
struct PluginsCheck {
  std::vector<std::string> errors;  // load refusals and config problems, each one line with file:line
  std::vector<std::string> notes;   // plugins whose config only init() checks (no validate_config)
};

// Resolves, checks (trust rules, ABI) and loads every configured plugin, as
// Registry::load does, and checks each instance's config block with
// checkConfig; runs no init(). The libraries are unloaded before it returns.
// THREAD: any (evhost's main thread for --check-config).
PluginsCheck checkPlugins(const std::vector<config::Plugin>& plugins, const std::vector<std::string>& search_dirs);

}  // namespace evh::plugin
