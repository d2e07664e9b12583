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

void logLoaded(const Instance& in) {
  // The digest says which build runs (and what to pin) without another look at the file.
  const Library& lib = in.library();
  log::host().info("plugin {} loaded: {} {} (ABI {}.{}, {}) from {} sha256 {}{}", in.name(), lib.name(), lib.version(),
                   lib.abiMajor(), lib.abiMinor(), in.blocking() ? "blocking" : "inline", lib.path(), lib.sha256(),
                   in.generation() > 1 ? " (generation " + std::to_string(in.generation()) + ")" : std::string());
}

std::string initConfigured(Instance& in, const config::Plugin& p) {
  std::string fault;
  try {
    in.init(p.config_json);
  } catch (const LoadError& e) {
    fault = p.origin.describe() + ": " + e.what();
  } catch (const std::exception& e) {
    // An exception let out of a bare-ABI init: the plugin's text alone
    // would not say which plugin failed.
    fault = p.origin.describe() + ": plugin \"" + p.name + "\" (" + in.library().path() + "): init failed: " + e.what();
  } catch (...) {
    fault = p.origin.describe() + ": plugin \"" + p.name + "\" (" + in.library().path() +
            "): init failed: an exception that is not a std::exception";
  }
  // The plugin's own text may quote a secret from its config.
  if (const size_t why = fault.find("init failed: "); why != std::string::npos) {
    fault = fault.substr(0, why) + maskExpanded(fault.substr(why), p.config_map);
  }
  return fault;
}

Registry::~Registry() { unloadAll(); }

void Registry::load(const std::vector<config::Plugin>& plugins, const std::vector<std::string>& search_dirs,
                    HostServices& services, const std::string& env_prefix) {
  std::map<std::string, LibraryPtr> by_path;
  std::vector<std::shared_ptr<Instance>> loaded;
  std::string faults;
  for (const auto& p : plugins) {
    try {
      const LibraryPtr lib = openConfigured(p, search_dirs, by_path);
      loaded.push_back(std::make_shared<Instance>(p.name, lib, services, env_prefix, *stats_));
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
    if (std::string fault = initConfigured(*loaded[i], plugins[i]); !fault.empty()) {
      instances_ = std::move(loaded);  // shut down what was initialised, in reverse
      unloadAll();
      throw LoadError(fault);
    }
    logLoaded(*loaded[i]);
  }
  instances_ = std::move(loaded);
}

void Registry::shutdownAll() {
  for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
    (*it)->shutdown();
  }
  for (auto it = retiring_.rbegin(); it != retiring_.rend(); ++it) {
    it->instance->shutdown();
  }
}

void Registry::unloadAll() {
  shutdownAll();
  // Destroying an instance drops its reference to the library; the last one
  // dlcloses it, after every instance of that library has shut down. (An
  // instance a runtime still holds goes with that runtime.)
  while (!instances_.empty()) {
    instances_.pop_back();
  }
  while (!retiring_.empty()) {
    retiring_.pop_back();
  }
}

Instance* Registry::find(std::string_view name) const { return findShared(name).get(); }

std::shared_ptr<Instance> Registry::findShared(std::string_view name) const {
  for (const auto& in : instances_) {
    if (in->name() == name) {
      return in;
    }
  }
  return nullptr;
}

}  // namespace evh::plugin
