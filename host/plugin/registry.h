// Every plugin instance of a deployment: load, init in order, shut down in reverse.
#pragma once

#include "config/config.h"
#include "ops/stats.h"
#include "plugin/instance.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evh::plugin {

// Opens `p`'s plugin file -- the configured-path rule, the search, the trust
// rules and ABI checks (Library::open) -- or returns the library `by_path`
// already holds for that file (refusing another pin for it), and records it
// there. Throws LoadError.
LibraryPtr openConfigured(const config::Plugin& p, const std::vector<std::string>& search_dirs,
                          std::map<std::string, LibraryPtr>& by_path);

class Registry {
 public:
  // The plugins' metrics join `stats` (labelled plugin="<instance name>").
  explicit Registry(ops::Registry& stats) : stats_(&stats) {}
  // With a stats registry of its own (tests, tools).
  Registry() : own_stats_(std::make_unique<ops::Registry>()), stats_(own_stats_.get()) {}
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Resolves and loads every configured plugin, checks every instance's
  // config block with its validate_config (plugin/config_check.h), then
  // initialises them in config order. Throws LoadError: every load fault
  // found (one per line), else every config problem (one per line, before
  // any init() ran), else the first init failure (its text masked as config
  // problems are). On failure the instances already initialised
  // are shut down in reverse order before the throw. A library configured
  // several times is loaded once and instantiated once per entry. THREAD: loop.
  void load(const std::vector<config::Plugin>& plugins, const std::vector<std::string>& search_dirs,
            HostServices& services, const std::string& env_prefix);

  // Calls every instance's shutdown() in reverse init order; the instances
  // and libraries stay loaded (a callback queued before may still need the
  // code). Idempotent. THREAD: loop.
  void shutdownAll();
  // shutdownAll(), then destroys the instances and unloads the libraries
  // (each after its last instance). Idempotent. THREAD: loop.
  void unloadAll();

  Instance* find(std::string_view name) const;
  ops::Registry& stats() const noexcept { return *stats_; }
  const std::vector<std::unique_ptr<Instance>>& instances() const noexcept { return instances_; }

 private:
  std::unique_ptr<ops::Registry> own_stats_;  // outlives the instances
  ops::Registry* stats_;
  std::vector<std::unique_ptr<Instance>> instances_;  // init order
};

}  // namespace evh::plugin
