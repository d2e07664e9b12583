// The server's side of the ops listener: starting it, what the loop
// answers its requests with (Server::answerOps: only the parts asked for),
// readiness, and the server's own series. GET /status's JSON is
// server_status.cpp's.
#include "app/server.h"

#include "common/log.h"

#include <memory>
#include <string>

namespace evh::app {

void Server::startOps() {
  if (!config_.ops.enabled) {
    log::host().info("ops listener off ({} is \"\")", config_.ops.origin.key);
    return;
  }
  ops::HttpServer::Options options;
  options.host = config_.ops.host;
  options.port = config_.ops.port;
  options.where = config_.ops.origin.describe();
  ops::LoopAccess access;
  access.post = [this](std::function<void()> fn) { return ops_poster_->post(std::move(fn)); };
  access.scrape = [this](ops::Parts parts, ops::LoopAccess::Reply reply) { answerOps(parts, std::move(reply)); };
  access.collect = [this] { return stats_.collect(); };
  options.loop_silent_ms = [watchdog = watchdog_.get()] { return watchdog->silentMs(); };
  options.liveness_timeout_ms = config_.ops.liveness_timeout_ms;
  options.token = config_.ops.token;
  access.reload = [this](ops::ReloadOutcome done) { reload("POST /reload", std::move(done)); };
  ops_ = std::make_unique<ops::HttpServer>(std::move(options), std::move(access), stats_);
  log::host().info("ops listening on {}{}", ops_->url(),
                   config_.ops.token.empty() ? "" : " (POST /reload with the ops token)");
}

ops::Readiness Server::readiness() const {
  ops::Readiness r;
  if (!started_) {
    r.not_ready.push_back("starting: plugins are loading");
    return r;
  }
  if (stopping_) {
    r.not_ready.push_back("draining: evhost is stopping and takes no new events");
    return r;
  }
  if (!commands_->ready()) {
    r.not_ready.push_back("redis command connection (" + commands_->where() + ") is down");
  }
  if (subscriber_) {
    for (auto& why : subscriber_->notLive()) {
      r.not_ready.push_back(std::move(why));
    }
  }
  for (const auto& src : streams_) {
    if (std::string why = src->notLive(); !why.empty()) {
      r.not_ready.push_back(std::move(why));
    }
  }
  // A plugin that says it cannot work (its database is down, say) makes
  // evhost not ready; degraded ones are /status's to show.
  for (const auto& in : registry_.instances()) {
    if (in->health() == EVH_HEALTH_DOWN) {
      const std::string& detail = in->healthDetail();
      r.not_ready.push_back("plugin \"" + in->name() + "\" is down" + (detail.empty() ? "" : ": " + detail));
    }
  }
  return r;
}

void Server::exportOwnStats() {
  own_stats_.computedGauge("evhost_ready", "1 when evhost takes events (GET /readyz says why not)",
                           [this] { return readiness().ready() ? 1.0 : 0.0; });
  reloads_total_ = own_stats_.counter("evhost_reloads_total", "configuration reloads applied (SIGHUP)");
  reload_failures_total_ =
      own_stats_.counter("evhost_reload_failures_total",
                         "configuration reloads refused: the running configuration was kept (the log says why)");
  own_stats_.computedGauge("evhost_config_last_reload_successful", "0 when the last reload failed, 1 otherwise",
                           [this] { return reload_.last_ok ? 1.0 : 0.0; });
  // evhost_plugin_health is each instance's own (plugin/instance.cpp): it
  // goes with the instance when a reload retires it.
}

void Server::answerOps(ops::Parts parts, ops::LoopAccess::Reply reply) {
  // The plugins' health callbacks run once per request, whatever reads
  // their answers (readiness, evhost_plugin_health, /status).
  for (const auto& in : registry_.instances()) {
    in->checkHealth();
  }
  // The parts that wait (the series for Redis's stream figures, the Pub/Sub
  // check for its round trip) run side by side; the answer goes when the
  // last is in.
  struct Join {
    ops::LoopSnapshot snapshot;
    int outstanding = 1;
    ops::LoopAccess::Reply reply;
  };
  auto join = std::make_shared<Join>();
  join->snapshot.has = parts;
  join->reply = std::move(reply);
  auto one_done = [this, join] {
    if (--join->outstanding > 0) {
      return;
    }
    if ((join->snapshot.has & (ops::kReadiness | ops::kStatus)) != 0) {
      join->snapshot.readiness = readiness();
    }
    if ((join->snapshot.has & ops::kStatus) != 0) {
      join->snapshot.status = status();
    }
    join->reply(std::move(join->snapshot));
  };
  if ((parts & ops::kFamilies) != 0) {
    ++join->outstanding;
    scrape(one_done);  // computes the computed gauges; the ops thread then collects (LoopAccess::collect)
  }
  if ((parts & ops::kPubsub) != 0) {
    if (pubsub_check_) {
      ++join->outstanding;
      pubsub_check_->check([join, one_done](const ops::PubsubHealth& health) {
        join->snapshot.pubsub = health;
        one_done();
      });
    } else {
      join->snapshot.pubsub = ops::PubsubHealth{false, R"({"status":"unhealthy","error":"evhost is starting"})"};
    }
  }
  one_done();
}

void Server::scrape(Scraper::Done done) {
  if (!scraper_) {  // not started
    stats_.computeGauges();
    done();
    return;
  }
  scraper_->scrape(std::move(done));
}

}  // namespace evh::app
