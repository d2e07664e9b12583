// Server::reload (SIGHUP): re-read the configuration file off the loop,
// check it, and swap in a new runtime when only what a reload can change
// changed (app/reload_plan.h). Any error keeps the running configuration,
// names every problem with file:line, and counts a failure; /status shows
// the last reload's result.
#include "app/reload_plan.h"
#include "app/server.h"
#include "common/clock.h"
#include "common/log.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <utility>

namespace evh::app {
namespace {

// One reload's file read, on libuv's thread pool (the loop does no file
// I/O): the YAML, ${VAR}s, secret files and signing keys.
struct ReadJob {
  uv_work_t req{};
  Server* server = nullptr;
  std::string file;
  config::LoadResult loaded;
};

}  // namespace

void Server::reload(const std::string& source, ReloadDone done) {
  if (!started_ || stopping_) {
    const std::string why = stopping_ ? "evhost is stopping" : "evhost is starting";
    log::host().warn("reload asked for by {} while {}: ignored", source, stopping_ ? "stopping" : "starting");
    if (done) {
      done(false, nlohmann::json{{"result", "not run"}, {"errors", {why}}}.dump());
    }
    return;
  }
  if (reload_.reading) {
    reload_.again = true;  // the file may have changed again since the read began
    if (done) {
      reload_.waiting_next.push_back(std::move(done));
    }
    log::host().info("reload asked for by {} while one is under way: another follows it", source);
    return;
  }
  if (done) {
    reload_.waiting.push_back(std::move(done));
  }
  reload_.reading = true;
  if (notify_) {
    notify_->reloading();
  }
  log::host().info("reloading the configuration from {} ({})", config_.file, source);
  auto job = std::make_unique<ReadJob>();
  job->req.data = job.get();
  job->server = this;
  job->file = config_.file;
  const int rc = uv_queue_work(
      &loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<ReadJob*>(req->data);
        j->loaded = config::loadFile(j->file);
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<ReadJob> j(static_cast<ReadJob*>(req->data));
        if (status == UV_ECANCELED) {
          j->loaded.config.reset();
          j->loaded.errors = {"reload cancelled: evhost is stopping"};
        }
        j->server->finishReload(std::move(j->loaded));
      });
  if (rc != 0) {
    reload_.reading = false;
    config::LoadResult failed;
    failed.errors = {std::string("cannot read the configuration off the loop: ") + uv_strerror(rc)};
    finishReload(std::move(failed));
    return;
  }
  job.release();  // the after-work callback owns it
}

void Server::finishReload(config::LoadResult loaded) {
  reload_.reading = false;
  std::vector<std::string> errors = std::move(loaded.errors);
  std::string changes;
  if (errors.empty() && loaded.config) {
    config::Config next = std::move(*loaded.config);
    if (options_.overrides) {
      options_.overrides(next);  // --ops-listen, --log-level, DEBUG_EVENTS: as at start
    }
    errors = changesNeedingRestart(config_, next);
    if (errors.empty() && !stopping_) {
      // New plugin instances are loaded and initialised before the swap.
      errors = plugin_reload_->prepare(config_, next);
    }
    if (errors.empty() && !stopping_) {
      changes = describeChanges(config_, next);
      if (const std::string more = plugin_reload_->changes(); !more.empty()) {
        changes = changes == "nothing" ? more : changes + ", " + more;
      }
      try {
        const uint64_t generation = reload_.generation + 1;
        auto runtime = runtime::Runtime::build(
            next, [this](const std::string& name) { return plugin_reload_->find(name); }, channel_ids_, generation,
            &stats_);
        plugin_reload_->commit(next);  // before the swap: the dispatcher knows the new instances
        pipeline_->use(std::move(runtime));
        config_ = std::move(next);
        reload_.generation = generation;
      } catch (const std::exception& e) {
        plugin_reload_->abandon();
        errors.push_back(std::string("the new routes cannot be built: ") + e.what());
      }
    } else if (stopping_) {
      errors.push_back("evhost began stopping during the reload");
    }
  } else if (errors.empty()) {
    errors.push_back("the configuration could not be read");
  }
  reload_.last_ms = wallMs();
  reload_.last_ok = errors.empty();
  reload_.last_errors = errors;
  reload_.last_changes = changes;
  if (errors.empty()) {
    ++reload_.succeeded;
    reloads_total_.inc();
    log::host().info("configuration reloaded from {} (sha256 {}): {} changed; events from now on take the new routes",
                     config_.file, config_.file_sha256, changes);
  } else {
    ++reload_.failed;
    reload_failures_total_.inc();
    for (const auto& e : errors) {
      log::host().error("reload: {}", e);
    }
    log::host().error("reload failed ({} problem(s)): the running configuration is kept", errors.size());
  }
  if (notify_ && !stopping_) {
    notify_->reloaded();  // (a stop under way has sent STOPPING=1 instead)
  }
  const std::string json = reloadJson();
  for (ReloadDone& d : std::exchange(reload_.waiting, {})) {
    d(errors.empty(), json);
  }
  if (reload_.again) {
    reload_.again = false;
    std::vector<ReloadDone> next = std::exchange(reload_.waiting_next, {});
    reload("a request made during the last reload");
    for (ReloadDone& d : next) {
      if (reload_.reading) {
        reload_.waiting.push_back(std::move(d));
      } else {
        d(false, nlohmann::json{{"result", "not run"}, {"errors", {"evhost is stopping"}}}.dump());
      }
    }
  }
}

std::string Server::reloadJson() const {
  nlohmann::json out{{"result", reload_.last_ok ? "ok" : "failed"},
                     {"generation", reload_.generation},
                     {"changed", reload_.last_changes},
                     {"errors", reload_.last_errors}};
  return out.dump();
}

}  // namespace evh::app
