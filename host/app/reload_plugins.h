// The plugins' half of a reload: new instances for plugins added or
// changed (config, pin, timeout, breaker, or a new build of the file)
// loaded and initialised before the swap, and the instances that left
// retired once idle -- shut down, then unloaded (plugin/registry.h's
// stage, adopt, retireIdle).
#pragma once

#include "config/config.h"
#include "dispatch/dispatcher.h"
#include "loop/uv_handle.h"
#include "plugin/registry.h"

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evh::app {

class PluginReload {
 public:
  // Every reference outlives this. THREAD: loop.
  PluginReload(uv_loop_t* loop, plugin::Registry& registry, dispatch::Dispatcher& dispatcher,
               plugin::HostServices& services, std::vector<std::string> search_dirs);
  ~PluginReload();
  PluginReload(const PluginReload&) = delete;
  PluginReload& operator=(const PluginReload&) = delete;

  // Stages next's plugins over running's: loads, checks and initialises
  // what is new. Returns the problems (file:line first, one per entry);
  // none: staged, and find() answers from next's plugins until commit() or
  // abandon().
  std::vector<std::string> prepare(const config::Config& running, const config::Config& next);
  // The instance of that name a runtime built now should route to: the
  // staged one, else the running one. Null when there is none.
  std::shared_ptr<plugin::Instance> find(const std::string& name) const;
  // What prepare() found changed that the config does not show (a plugin
  // file replaced on disk), for the reload's log line; "" for nothing.
  std::string changes() const;
  // The staged set goes live: its new instances join the dispatcher (as
  // `next` sets them up), the registry adopts it, and the instances that
  // left retire -- each once no runtime holds it and nothing is owed to it
  // (looked at every 50 ms). Call before the runtime built from it is
  // swapped in. THREAD: loop.
  void commit(const config::Config& next);
  // The staged set is not used: its new instances retire (shut down once
  // nothing is owed to them).
  void abandon();

 private:
  // Looks for idle retiring instances every 50 ms while there are any.
  void retireLater();
  void retireIdle();

  plugin::Registry& registry_;
  dispatch::Dispatcher& dispatcher_;
  plugin::HostServices& services_;
  std::vector<std::string> search_dirs_;
  std::optional<plugin::Registry::Staged> staged_;
  UvHandle<uv_timer_t> timer_;  // retireIdle, while anything retires
};

}  // namespace evh::app
