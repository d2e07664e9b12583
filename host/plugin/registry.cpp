// Loading a deployment's plugins; shutdown and unload in reverse order.
#include "plugin/registry.h"

#include "common/log.h"
#include "plugin/config_check.h"
#include "plugin/search_path.h"
#include "plugin/trust.h"

#include <map>

namespace evh::plugin {

LibraryPtr openConfigured(const config::Plugin& p, const std::vector<std::string>& search_dirs,
                          std::map<std::string, LibraryPtr>& by_path) {
  checkConfiguredPath(p.path);
  const Found found = locate(p.path, p.config_dir, search_dirs);
  LibraryPtr& lib = by_path[found.path];
  if (!lib) {
    lib = Library::open(found, p.sha256);
  } else if (std::string refusal = pinMismatch(found.path, p.sha256, lib->sha256()); !refusal.empty()) {
    throw LoadError(refusal);  // the same file, configured again with another pin
  }
  return lib;
}

Registry::~Registry() { unloadAll(); }

void Registry::load(const std::vector<config::Plugin>& plugins, const std::vector<std::string>& search_dirs,
                    HostServices& services, const std::string& env_prefix) {
  std::map<std::string, LibraryPtr> by_path;
  std::vector<std::unique_ptr<Instance>> loaded;
  std::string faults;
  for (const auto& p : plugins) {
    try {
      const LibraryPtr lib = openConfigured(p, search_dirs, by_path);
      loaded.push_back(std::make_unique<Instance>(p.name, lib, services, env_prefix, *stats_));
    } catch (const LoadError& e) {
      faults += (faults.empty() ? "" : "\n") + p.origin.describe() + ": plugin \"" + p.name + "\": " + e.what();
    }
  }
  if (!faults.empty()) {
    throw LoadError(faults);
  }
  by_path.clear();  // instances hold the libraries now
  // Every config block before any init(): nothing of a deployment starts
  // (no plugin thread, no Redis command) when one of its configs is wrong.
  std::string problems;
  for (size_t i = 0; i < loaded.size(); ++i) {
    for (const std::string& line : checkConfig(loaded[i]->library(), plugins[i])) {
      problems += (problems.empty() ? "" : "\n") + line;
    }
  }
  if (!problems.empty()) {
    throw LoadError(problems);
  }
  for (size_t i = 0; i < loaded.size(); ++i) {
    const auto& p = plugins[i];
    std::string fault;
    try {
      loaded[i]->init(p.config_json);
    } catch (const LoadError& e) {
      fault = p.origin.describe() + ": " + e.what();
    } catch (const std::exception& e) {
      // An exception let out of a bare-ABI init: the plugin's text alone
      // would not say which plugin failed.
      fault = p.origin.describe() + ": plugin \"" + p.name + "\" (" + loaded[i]->library().path() +
              "): init failed: " + e.what();
    } catch (...) {
      fault = p.origin.describe() + ": plugin \"" + p.name + "\" (" + loaded[i]->library().path() +
              "): init failed: an exception that is not a std::exception";
    }
    if (!fault.empty()) {
      // The plugin's own text may quote a secret from its config.
      if (const size_t why = fault.find("init failed: "); why != std::string::npos) {
        fault = fault.substr(0, why) + maskExpanded(fault.substr(why), p.config_map);
      }
      instances_ = std::move(loaded);  // shut down what was initialised, in reverse
      unloadAll();
      throw LoadError(fault);
    }
    // The digest says which build runs (and what to pin) without another look at the file.
    log::host().info("plugin {} loaded: {} {} (ABI {}.{}, {}) from {} sha256 {}", p.name, loaded[i]->library().name(),
                     loaded[i]->library().version(), loaded[i]->library().abiMajor(), loaded[i]->library().abiMinor(),
                     loaded[i]->blocking() ? "blocking" : "inline", loaded[i]->library().path(),
                     loaded[i]->library().sha256());
  }
  instances_ = std::move(loaded);
}

void Registry::shutdownAll() {
  for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
    (*it)->shutdown();
  }
}

void Registry::unloadAll() {
  shutdownAll();
  // Destroying an instance drops its reference to the library; the last one
  // dlcloses it, after every instance of that library has shut down.
  while (!instances_.empty()) {
    instances_.pop_back();
  }
}

Instance* Registry::find(std::string_view name) const {
  for (const auto& in : instances_) {
    if (in->name() == name) {
      return in.get();
    }
  }
  return nullptr;
}

}  // namespace evh::plugin
