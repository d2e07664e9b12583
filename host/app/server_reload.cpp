// Server::reload (SIGHUP): re-read the configuration file off the loop,
// check it, and swap in a new runtime when only what a reload can change
// changed (app/reload_plan.h). Any error keeps the running configuration,
// names every problem with file:line (values from the environment masked),
// and counts a failure; /status shows the last reload's result. A reload
// evhost cannot run (starting, stopping -- also when it began stopping
// during the read) is "not run": neither counted as applied nor as failed.
#include "app/reload_plan.h"
#include "app/server.h"
#include "common/clock.h"
#include "common/log.h"
#include "config/mask.h"

#include <openssl/crypto.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <utility>

namespace evh::app {
namespace {

// One reload's file read, on libuv's thread pool (the loop does no file
// I/O): the YAML, ${VAR}s, secret files and signing keys.
// When the file's redis settings differ from the running ones (`running`, a
// copy), their TLS contexts are built there too: the files they read.
struct ReadJob {
  uv_work_t req{};
  Server* server = nullptr;
  std::string file;
  config::Config running;
  config::LoadResult loaded;
  RedisTls tls;
};

// A reload that was neither applied nor refused: evhost is starting or
// stopping, or the file could not be read off the loop.
std::string notRunJson(const std::string& why, uint64_t generation) {
  return nlohmann::json{{"result", "not run"}, {"reason", why}, {"generation", generation}}.dump();
}

}  // namespace

std::string Server::reload(const std::string& source, ReloadDone done) {
  if (!started_ || stopping_) {
    const std::string why = stopping_ ? "evhost is stopping" : "evhost is starting";
    log::host().warn("reload asked for by {} not run: {}", source, why);
    if (done) {
      done(stopping_ ? ops::ReloadResult::NotRun : ops::ReloadResult::NotRunYet, notRunJson(why, reload_.generation));
    }
    return why;
  }
  if (reload_.reading) {
    reload_.again = true;  // the file may have changed again since the read began
    if (done) {
      reload_.waiting_next.push_back(std::move(done));
    }
    log::host().info("reload asked for by {} while one is under way: another follows it", source);
    return {};
  }
  log::host().info("reloading the configuration from {} ({})", config_.file, source);
  auto job = std::make_unique<ReadJob>();
  job->req.data = job.get();
  job->server = this;
  job->file = config_.file;
  job->running = config_;
  const int rc = uv_queue_work(
      &loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<ReadJob*>(req->data);
        j->loaded = config::loadFile(j->file);
        if (j->loaded.config && j->loaded.errors.empty() && !redisChanges(j->running, *j->loaded.config).empty()) {
          try {
            j->tls = redisTlsOf(*j->loaded.config);
          } catch (const std::exception& e) {
            j->loaded.errors.push_back(e.what());  // names the key and the file
          }
          // OpenSSL keeps an error queue per thread, freed only when the
          // thread ends -- and libuv's pool threads never do before exit:
          // without this, each reload that read TLS files leaves its queue
          // (LeakSanitizer reports it). The next use makes a new one.
          OPENSSL_thread_stop();
        }
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<ReadJob> j(static_cast<ReadJob*>(req->data));
        if (status == UV_ECANCELED) {
          j->loaded.config.reset();
          j->loaded.errors = {"the read of the configuration was cancelled"};
        }
        j->server->finishReload(std::move(j->loaded), std::move(j->tls));
      });
  if (rc != 0) {
    // Nothing was read: neither applied nor refused.
    const std::string why = std::string("the configuration cannot be read off the loop: ") + uv_strerror(rc);
    log::host().error("reload asked for by {} not run: {}", source, why);
    if (done) {
      done(ops::ReloadResult::NotRun, notRunJson(why, reload_.generation));
    }
    return why;
  }
  job.release();  // the after-work callback owns it
  reload_.reading = true;
  if (done) {
    reload_.waiting.push_back(std::move(done));
  }
  if (notify_) {
    notify_->reloading();
  }
  return {};
}

void Server::finishReload(config::LoadResult loaded, RedisTls tls) {
  reload_.reading = false;
  if (stopping_) {
    // Neither applied nor refused (nor counted): evhost is going, and with
    // it the configuration the reload would have changed.
    const std::string why = "evhost began stopping during the reload";
    log::host().warn("reload not run: {}; the running configuration is kept", why);
    const std::string json = notRunJson(why, reload_.generation);
    for (ReloadDone& d : std::exchange(reload_.waiting, {})) {
      d(ops::ReloadResult::NotRun, json);
    }
    reload_.again = false;
    for (ReloadDone& d : std::exchange(reload_.waiting_next, {})) {
      d(ops::ReloadResult::NotRun, notRunJson("evhost is stopping", reload_.generation));
    }
    return;  // no READY=1: STOPPING=1 stands
  }
  std::vector<std::string> errors = std::move(loaded.errors);
  std::string changes;
  if (errors.empty() && loaded.config) {
    config::Config next = std::move(*loaded.config);
    if (options_.overrides) {
      options_.overrides(next);  // --ops-listen, --log-level, DEBUG_EVENTS: as at start
    }
    errors = changesNeedingRestart(config_, next);
    if (errors.empty()) {
      // New plugin instances are loaded and initialised before the swap.
      errors = plugin_reload_->prepare(config_, next);
    }
    if (errors.empty()) {
      changes = describeChanges(config_, next);
      const std::vector<std::string> redis_keys = redisChanges(config_, next);
      if (const std::string more = plugin_reload_->changes(); !more.empty()) {
        changes = changes == "nothing" ? more : changes + ", " + more;
      }
      try {
        const uint64_t generation = reload_.generation + 1;
        auto runtime = runtime::Runtime::build(
            next, [this](const std::string& name) { return plugin_reload_->find(name); }, channel_ids_, generation,
            &stats_);
        runtime::RuntimePtr was = pipeline_->current();
        plugin_reload_->commit(next);  // before the swap: the dispatcher knows the new instances
        pipeline_->use(runtime);
        config_ = std::move(next);
        reload_.generation = generation;
        if (!redis_keys.empty()) {
          applyRedis(redis_keys, tls);  // app/reload_redis.cpp: before new streams' readers are made
        }
        applyChannels(was, *runtime);  // app/reload_channels.cpp (logs its own failures)
      } catch (const std::exception& e) {
        plugin_reload_->abandon();
        errors.push_back(std::string("the new routes cannot be built: ") + e.what());
      }
    }
  } else if (errors.empty()) {
    errors.push_back("the configuration could not be read");
  }
  // What came from ${VAR}s may be a secret, and a problem may quote it (a
  // bad value is shown expanded): masked before the log and GET /status.
  for (std::string& e : errors) {
    e = config::maskValues(std::move(e), loaded.from_environment);
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
  if (notify_) {
    notify_->reloaded();
  }
  const std::string json = reloadJson();
  const ops::ReloadResult result = errors.empty() ? ops::ReloadResult::Applied : ops::ReloadResult::Refused;
  for (ReloadDone& d : std::exchange(reload_.waiting, {})) {
    d(result, json);
  }
  if (reload_.again) {
    reload_.again = false;
    std::vector<ReloadDone> next = std::exchange(reload_.waiting_next, {});
    const std::string why_not = reload("a request made during the last reload");
    for (ReloadDone& d : next) {
      if (why_not.empty()) {
        reload_.waiting.push_back(std::move(d));
      } else {
        d(ops::ReloadResult::NotRun, notRunJson(why_not, reload_.generation));
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
