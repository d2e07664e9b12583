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

// Where a plugin file was found: the path (as found, before any symlink is
// followed) and the folder it was found in, which the trust checks
// (plugin/trust.h) keep a symlink's target inside.
struct Found {
  std::string path;
  std::string folder;
};

// Resolves a plugin path as written in the config. A bare name ("product",
// no slash) is looked up as <dir>/<name>.so, then <dir>/lib<name>.so, in each
// folder of `dirs`; anything with a slash is a path, relative to
// `config_dir` unless absolute. Throws LoadError when nothing exists there,
// naming what was tried. (A ".." is followed here; checkConfiguredPath in
// plugin/trust.h refuses it in a configured path.)
Found locate(const std::string& written, const std::string& config_dir, const std::vector<std::string>& dirs);

// locate(...).path.
std::string resolve(const std::string& written, const std::string& config_dir, const std::vector<std::string>& dirs);

}  // namespace evh::plugin
