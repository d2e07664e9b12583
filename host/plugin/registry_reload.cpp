// A reload's plugins: staged beside the running ones (new instances loaded
// and initialised before the swap), adopted, and the instances that left
// retired once idle -- shut down, then unloaded.
#include "plugin/registry.h"

#include "common/log.h"
#include "plugin/config_check.h"
#include "plugin/search_path.h"
#include "plugin/trust.h"

#include <algorithm>
#include <tuple>

namespace evh::plugin {
namespace {

bool sameEntry(const config::Plugin& a, const config::Plugin& b) {
  const auto breaker = [](const config::BreakerPolicy& x) {
    return std::make_tuple(x.threshold, x.open_ms, x.half_open_max_calls, x.max_wait_ms, x.max_waiting);
  };
  return a.path == b.path && a.config_dir == b.config_dir && a.config_json == b.config_json && a.sha256 == b.sha256 &&
         a.timeout_ms == b.timeout_ms && breaker(a.breaker) == breaker(b.breaker);
}

// Whether the file the instance runs is still what its path names.
bool fileUnchanged(const Library& lib) { return FileId::of(lib.path()) == lib.file(); }

}  // namespace

uint64_t Registry::lastGeneration(std::string_view name) const {
  uint64_t last = 0;
  for (const auto& in : instances_) {
    last = in->name() == name ? std::max(last, in->generation()) : last;
  }
  for (const auto& r : retiring_) {
    last = r.instance->name() == name ? std::max(last, r.instance->generation()) : last;
  }
  return last;
}

std::shared_ptr<Instance> Registry::Staged::find(std::string_view name) const {
  for (const auto& in : next) {
    if (in->name() == name) {
      return in;
    }
  }
  return nullptr;
}

Registry::Staged Registry::stage(const std::vector<config::Plugin>& running, const std::vector<config::Plugin>& next,
                                 const std::vector<std::string>& search_dirs, HostServices& services,
                                 const std::string& env_prefix, const std::string& fixed) {
  Staged staged;
  // The libraries a new instance may share: the running ones whose file has
  // not changed since they were loaded (a changed one is loaded anew).
  std::map<std::string, LibraryPtr> by_path;
  for (const auto& in : instances_) {
    if (fileUnchanged(in->library())) {
      by_path.emplace(in->library().path(), in->libraryPtr());
    }
  }
  std::vector<const config::Plugin*> fresh_entries;
  std::string faults;
  auto fault = [&faults](const config::Plugin& p, const std::string& what) {
    faults += (faults.empty() ? "" : "\n") + p.origin.describe() + ": plugin \"" + p.name + "\": " + what;
  };
  for (const auto& p : next) {
    const std::shared_ptr<Instance> now = findShared(p.name);
    const auto was =
        std::find_if(running.begin(), running.end(), [&](const config::Plugin& r) { return r.name == p.name; });
    const bool same = now && was != running.end() && sameEntry(*was, p);
    const bool same_file = now && fileUnchanged(now->library());
    if (same && same_file) {
      staged.next.push_back(now);
      continue;
    }
    if (now && p.name == fixed) {
      fault(p, "it is the dead-letter plugin (dead_letter.plugin), which a reload cannot replace: restart evhost");
      continue;
    }
    try {
      auto in =
          std::make_shared<Instance>(p.name, openConfigured(p, search_dirs, by_path), services, env_prefix, *stats_);
      in->setGeneration(lastGeneration(p.name) + 1);
      if (now) {
        if (same) {
          staged.changes.push_back("plugin " + p.name + " replaced (a new build of its file)");
        }
      }
      staged.next.push_back(in);
      staged.fresh.push_back(in);
      fresh_entries.push_back(&p);
    } catch (const LoadError& e) {
      fault(p, e.what());
    }
  }
  if (!faults.empty()) {
    throw LoadError(faults);  // nothing initialised yet: the new instances just go
  }
  // Every new config block before any init(), as at start.
  std::string problems;
  for (size_t i = 0; i < staged.fresh.size(); ++i) {
    for (const std::string& line : checkConfig(staged.fresh[i]->library(), *fresh_entries[i])) {
      problems += (problems.empty() ? "" : "\n") + line;
    }
  }
  if (!problems.empty()) {
    throw LoadError(problems);
  }
  for (size_t i = 0; i < staged.fresh.size(); ++i) {
    if (std::string failed = initConfigured(*staged.fresh[i], *fresh_entries[i]); !failed.empty()) {
      discard(staged);
      throw LoadError(failed);
    }
    logLoaded(*staged.fresh[i]);
  }
  for (const auto& in : instances_) {
    if (std::find(staged.next.begin(), staged.next.end(), in) == staged.next.end()) {
      if (in->name() == fixed) {
        discard(staged);
        throw LoadError("plugins." + in->name() +
                        ": the dead-letter plugin (dead_letter.plugin) cannot be removed by a reload: restart evhost");
      }
      staged.leaving.push_back(in);
    }
  }
  return staged;
}

void Registry::discard(Staged& staged) {
  staged.next.clear();
  staged.leaving.clear();
  // Their init() may have sent commands or posted functions whose
  // callbacks are still owed: they retire as removed instances do, shut
  // down (in reverse init order) once those have run.
  for (auto it = staged.fresh.rbegin(); it != staged.fresh.rend(); ++it) {
    retiring_.push_back(Retiring{std::move(*it), false});
  }
  staged.fresh.clear();
}

void Registry::adopt(Staged staged) {
  for (auto& in : staged.leaving) {
    log::host().info("plugin {} (generation {}) retiring: shut down and unloaded once its last event is done",
                     in->name(), in->generation());
    retiring_.push_back(Retiring{std::move(in), false});
  }
  instances_ = std::move(staged.next);
}

size_t Registry::retireIdle(const std::function<bool(Instance&)>& forget) {
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    Instance& in = *it->instance;
    // Only this list holds it: no runtime routes to it, so no event of
    // theirs -- no delivery, no open call, no retry waiting -- is left.
    if (it->instance.use_count() > 1) {
      ++it;
      continue;
    }
    if (!it->closed) {
      if (!forget(in)) {
        ++it;
        continue;
      }
      in.closeServices();  // what it asks from now on is refused
      it->closed = true;
    }
    if (in.owed() > 0) {
      ++it;  // a reply or a posted function would still enter its code
      continue;
    }
    const std::string name = in.name();
    const uint64_t generation = in.generation();
    const std::string path = in.library().path();
    in.shutdown();
    const bool last = it->instance->libraryPtr().use_count() == 1;
    it = retiring_.erase(it);  // the instance goes, and its library with the last of its instances
    log::host().info("plugin {} (generation {}) retired: shut down{}", name, generation,
                     last ? ", " + path + " unloaded" : "");
  }
  return retiring_.size();
}

std::vector<const Instance*> Registry::retiring() const {
  std::vector<const Instance*> out;
  for (const auto& r : retiring_) {
    out.push_back(r.instance.get());
  }
  return out;
}

}  // namespace evh::plugin
