// Where plugins are found: --plugin-dir, EVH_PLUGIN_PATH, the bundled folder.
#pragma once

#include <string>
#include <vector>

namespace evh::plugin {

// The bundled plugins' folder, relative to the running executable (the same
// relative place in the build tree and in an install).
std::string bundledPluginDir();

// The search path in order: each --plugin-dir, each folder of
// EVH_PLUGIN_PATH (colon-separated), then the bundled folder.
std::vector<std::string> searchPath(const std::vector<std::string>& cli_dirs);

// Resolves a plugin path as written in the config. A bare name ("product",
// no slash) is looked up as <dir>/<name>.so, then <dir>/lib<name>.so, in each
// folder of `dirs`; anything with a slash is a path, relative to
// `config_dir` unless absolute. Throws LoadError when nothing exists there,
// naming what was tried.
std::string resolve(const std::string& written, const std::string& config_dir, const std::vector<std::string>& dirs);

}  // namespace evh::plugin
