// Every plugin instance of a deployment: load, init in order, shut down in reverse.
#pragma once

#include "config/config.h"
#include "ops/stats.h"
#include "plugin/instance.h"

#include <functional>
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
  // The running instance of that name (shared: runtimes that route to it
  // hold it too), or null.
  std::shared_ptr<Instance> findShared(std::string_view name) const;
  ops::Registry& stats() const noexcept { return *stats_; }
  // The running instances, in init order.
  const std::vector<std::shared_ptr<Instance>>& instances() const noexcept { return instances_; }

  // ---- Reload (plugin/registry_reload.cpp)
  // A reload's plugins, made beside the running ones.
  struct Staged {
    std::vector<std::shared_ptr<Instance>> next;     // next's plugins in its order: kept or new
    std::vector<std::shared_ptr<Instance>> fresh;    // the new ones, initialised, in init order
    std::vector<std::shared_ptr<Instance>> leaving;  // running ones `next` does not keep
    // Replacements the config does not show: "plugin X replaced (a new build of its file)".
    std::vector<std::string> changes;
    std::shared_ptr<Instance> find(std::string_view name) const;
  };
  // Stages `next` over `running` (the configs of the running instances):
  // keeps each running instance whose entry (path, config, sha256 pin,
  // timeout_ms, circuit_breaker) is unchanged and whose file is the one
  // loaded (device, inode, size and mtime: a new build renamed over it is
  // loaded anew); loads, checks (validate_config) and initialises, in
  // next's order, a new instance for every other plugin. A new instance of
  // a running name gets the next generation. `fixed` names an instance that
  // must not be replaced or removed (the dead-letter plugin: a restart).
  // Throws LoadError as load() does -- every load fault, else every config
  // problem, else the first init failure --, after shutting down and
  // dropping what it made; the running instances are untouched either way.
  // THREAD: loop.
  Staged stage(const std::vector<config::Plugin>& running, const std::vector<config::Plugin>& next,
               const std::vector<std::string>& search_dirs, HostServices& services, const std::string& env_prefix,
               const std::string& fixed);
  // A staged set not used after all: its new instances retire (see
  // retireIdle: shut down once no callback is owed to them). THREAD: loop.
  void discard(Staged& staged);
  // Makes staged.next the running set. The leaving instances are retiring:
  // kept (and shut down by shutdownAll, dropped by unloadAll) until
  // retireIdle() finds them idle. THREAD: loop.
  void adopt(Staged staged);
  // One step for every retiring instance that nothing else holds (no
  // runtime routes to it, so no event of theirs is unfinished): first
  // `forget` (the dispatcher drops its state; false: not yet) and its host services close;
  // then, once no callback is owed to it (Instance::owed), its shutdown(),
  // and it goes -- its library with it when it was the last instance of
  // it. Returns how many are still retiring. THREAD: loop.
  size_t retireIdle(const std::function<bool(Instance&)>& forget);
  // The instances retiring, oldest first.
  std::vector<const Instance*> retiring() const;

 private:
  struct Retiring {
    std::shared_ptr<Instance> instance;
    bool closed = false;  // forgotten, its services closed: waiting for its callbacks
  };
  // The highest generation of `name` running or retiring; 0: none.
  uint64_t lastGeneration(std::string_view name) const;

  std::unique_ptr<ops::Registry> own_stats_;  // outlives the instances
  ops::Registry* stats_;
  std::vector<std::shared_ptr<Instance>> instances_;  // init order
  std::vector<Retiring> retiring_;                    // removed or replaced by a reload, not yet idle
};

// The log line for an instance initialised (its build and digest).
void logLoaded(const Instance& in);
// Calls in.init() with p's config; returns the failure as the operator
// reads it ("FILE:LINE: plugin ...: init failed: ...", the plugin's text
// masked as config problems are), or "" when it went through.
std::string initConfigured(Instance& in, const config::Plugin& p);

}  // namespace evh::plugin
