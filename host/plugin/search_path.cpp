// Plugin path resolution, identical from the build tree and an install.
#include "plugin/search_path.h"

#include "plugin/library.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>

#ifndef EVH_PLUGIN_RELDIR
#error "EVH_PLUGIN_RELDIR must be defined by the build (bin dir -> plugin dir)"
#endif

namespace evh::plugin {
namespace fs = std::filesystem;

std::string bundledPluginDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return {};
  }
  return (exe.parent_path() / EVH_PLUGIN_RELDIR).lexically_normal().string();
}

std::vector<std::string> searchPath(const std::vector<std::string>& cli_dirs) {
  std::vector<std::string> dirs(cli_dirs);
  if (const char* env = std::getenv("EVH_PLUGIN_PATH"); env != nullptr) {
    std::string all(env);
    size_t start = 0;
    while (start <= all.size()) {
      size_t end = all.find(':', start);
      if (end == std::string::npos) {
        end = all.size();
      }
      if (end > start) {
        dirs.push_back(all.substr(start, end - start));
      }
      start = end + 1;
    }
  }
  if (std::string bundled = bundledPluginDir(); !bundled.empty()) {
    dirs.push_back(bundled);
  }
  return dirs;
}

std::string resolve(const std::string& written, const std::string& config_dir, const std::vector<std::string>& dirs) {
  return locate(written, config_dir, dirs).path;
}

Found locate(const std::string& written, const std::string& config_dir, const std::vector<std::string>& dirs) {
  std::error_code ec;
  if (written.find('/') != std::string::npos) {
    // A path with a slash is a path: made absolute, because the normal form
    // of "./x.so" is "x.so", which dlopen would look up in the library path.
    fs::path p(written);
    if (p.is_relative()) {
      p = fs::path(config_dir) / p;
    }
    fs::path absolute = fs::absolute(p, ec);
    p = (ec ? p : absolute).lexically_normal();
    if (!fs::exists(p, ec)) {
      throw LoadError(p.string() + ": plugin file does not exist");
    }
    if (!fs::is_regular_file(p, ec)) {
      throw LoadError(p.string() + ": plugin path is not a regular file");
    }
    return Found{p.string(), p.parent_path().string()};
  }
  const bool has_suffix = written.size() > 3 && written.compare(written.size() - 3, 3, ".so") == 0;
  std::string tried;
  for (const auto& dir : dirs) {
    for (const std::string& file : {has_suffix ? written : written + ".so", "lib" + written + ".so"}) {
      fs::path p = fs::path(dir) / file;
      if (fs::is_regular_file(p, ec)) {
        return Found{p.lexically_normal().string(), fs::path(dir).lexically_normal().string()};
      }
    }
    tried += (tried.empty() ? "" : ", ") + dir;
  }
  throw LoadError("plugin \"" + written + "\" not found in the plugin search path (" +
                  (tried.empty() ? std::string("empty") : tried) +
                  "); use --plugin-dir, EVH_PLUGIN_PATH, or a path containing '/'");
}

}  // namespace evh::plugin
