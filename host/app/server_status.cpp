// GET /status: what an operator asks first -- which evhost, since when, on
// which config, and how each connection, channel, plugin and stream is
// doing. Built on the loop (it reads loop state), rendered as JSON; evhctl
// status prints it as tables. Never a secret: addresses are host:port,
// the config is named by path and digest.
#include "app/server.h"

#include "common/clock.h"

#include <evh/plugin.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <cmath>

namespace evh::app {
namespace {

using Json = nlohmann::json;

const char* breakerName(dispatch::CircuitBreaker::State s) {
  switch (s) {
    case dispatch::CircuitBreaker::State::Closed:
      return "closed";
    case dispatch::CircuitBreaker::State::HalfOpen:
      return "half-open";
    case dispatch::CircuitBreaker::State::Open:
      return "open";
  }
  return "unknown";
}

const char* healthName(evh_health h) {
  return h == EVH_HEALTH_OK ? "ok" : h == EVH_HEALTH_DEGRADED ? "degraded" : "down";
}

// NaN (not known yet) as null.
Json number(double v) { return std::isnan(v) ? Json() : Json(v); }

Json connection(const redis::Connection& c) {
  return Json{{"name", c.name()},
              {"address", c.where()},
              {"up", c.ready()},
              {"outages", c.outages()},
              {"last_failure", c.lastFailureKind()}};
}

const char* transportName(const runtime::Channel& ch) {
  return !ch.forward_from.empty()                    ? "pubsub-shared"
         : ch.transport == config::Transport::Stream ? "stream"
         : ch.pattern                                ? "pubsub-pattern"
                                                     : "pubsub";
}

}  // namespace

std::string Server::status() const {
  Json out;
  out["version"] = EVH_VERSION;
  out["abi"] = std::to_string(EVH_ABI_MAJOR) + "." + std::to_string(EVH_ABI_MINOR);
  out["pid"] = static_cast<int64_t>(::getpid());
  out["started_at"] = isoTime(started_ms_);
  out["uptime_seconds"] = static_cast<double>(wallMs() - started_ms_) / 1000.0;
  out["config"] = Json{{"file", config_.file}, {"sha256", config_.file_sha256}, {"environment", config_.environment}};
  // The reloads so far and the last one's outcome: its problems (file:line,
  // key; never a value) when it was refused.
  Json reload{{"succeeded", reload_.succeeded}, {"failed", reload_.failed}, {"generation", reload_.generation}};
  if (reload_.last_ms != 0) {
    reload["last"] = Json{{"at", isoTime(reload_.last_ms)},
                          {"result", reload_.last_ok ? "ok" : "failed"},
                          {"errors", reload_.last_errors},
                          {"changed", reload_.last_changes}};
  }
  out["reload"] = std::move(reload);
  const ops::Readiness r = readiness();
  out["ready"] = r.ready();
  out["not_ready"] = r.not_ready;

  Json conns = Json::array();
  if (commands_) {
    for (const redis::Connection* c : commands_->connections()) {
      conns.push_back(connection(*c));
    }
  }
  if (subscriber_) {
    for (const redis::Connection* c : subscriber_->connections()) {
      conns.push_back(connection(*c));
    }
  }
  for (const auto& src : streams_) {
    conns.push_back(connection(src->connection()));
  }
  out["connections"] = std::move(conns);
  // Where the master is: configured, or as the sentinels say.
  if (sentinel_) {
    const redis::Address m = sentinel_->current();
    Json sentinels = Json::array();
    for (const auto& s : sentinel_->sentinels()) {
      sentinels.push_back(Json{{"address", s.address}, {"following", s.following}});
    }
    out["redis"] = Json{{"mode", "sentinel"},
                        {"master_name", sentinel_->masterName()},
                        {"master", m.host.empty() ? Json(nullptr) : Json(m.describe())},
                        {"master_changes", sentinel_->masterChanges()},
                        {"asking", Json{{"address", sentinel_->askingAt()}, {"up", sentinel_->askingUp()}}},
                        {"sentinels", std::move(sentinels)}};
  } else if (cluster_) {
    // The slot map in force: each master with its slot ranges' count.
    Json masters = Json::array();
    for (const redis::Address& m : cluster_->masters()) {
      masters.push_back(m.describe());
    }
    out["redis"] = Json{{"mode", "cluster"},
                        {"slot_map_version", cluster_->slots().version()},
                        {"slots_complete", cluster_->slots().complete()},
                        {"masters", std::move(masters)},
                        {"asking", Json{{"address", cluster_->askingAt()}, {"up", cluster_->askingUp()}}},
                        {"problem", cluster_->problem().empty() ? Json(nullptr) : Json(cluster_->problem())}};
  } else {
    out["redis"] =
        Json{{"mode", "single"}, {"master", redis::Address{config_.redis.host, config_.redis.port}.describe()}};
  }

  Json channels = Json::array();
  if (pipeline_) {
    for (const auto& ch : pipeline_->runtime().channels()) {
      Json c{{"name", ch.name}, {"transport", transportName(ch)}, {"key", ch.key}};
      if (!ch.forward_from.empty()) {
        c["subscribed"] = ch.forward_from;  // forwarded into `key`, the shared stream
      }
      if (ch.verifier) {
        // Key ids only: the keys themselves never leave the verifier.
        Json ids = Json::array();
        for (size_t k = 0; k < ch.verifier->keyCount(); ++k) {
          ids.push_back(ch.verifier->keyId(k));
        }
        c["signature"] = Json{{"keys", std::move(ids)},
                              {"tolerance_s", ch.verifier->toleranceSeconds()},
                              {"replay_check", ch.replay_check}};
      }
      channels.push_back(std::move(c));
    }
  }
  out["channels"] = std::move(channels);

  Json plugins = Json::array();
  for (const auto& in : registry_.instances()) {
    const plugin::Library& lib = in->library();
    const evh_health health = in->health();
    const std::string& detail = in->healthDetail();
    Json p{{"name", in->name()},
           {"library", lib.name()},
           {"version", lib.version()},
           {"abi", std::to_string(lib.abiMajor()) + "." + std::to_string(lib.abiMinor())},
           {"blocking", lib.blocking()},
           {"own_idempotency", lib.ownIdempotency()},
           {"health", healthName(health)},
           {"health_detail", detail},
           {"generation", in->generation()},
           {"sha256", lib.sha256()}};
    if (dispatcher_ && dispatcher_->knows(in.get())) {
      const dispatch::PluginCounts c = dispatcher_->counters(in.get());
      p["breaker"] = breakerName(c.breaker_state);
      p["calls"] = c.calls;
      p["ok"] = c.ok;
      p["retry"] = c.retry;
      p["reject"] = c.rejected;
      p["timeout"] = c.timeouts;
      p["error"] = c.errors;
      p["dead_lettered"] = c.dead_lettered;
      p["retry_waiting"] = c.retry_waiting;
      p["breaker_waiting"] = c.breaker_waiting;
    }
    plugins.push_back(std::move(p));
  }
  out["plugins"] = std::move(plugins);
  // Instances a reload removed or replaced, still finishing their events
  // (the counters above are the instance name's, both generations').
  Json retiring = Json::array();
  for (const plugin::Instance* in : registry_.retiring()) {
    retiring.push_back(Json{{"name", in->name()},
                            {"generation", in->generation()},
                            {"version", in->library().version()},
                            {"sha256", in->library().sha256()}});
  }
  out["plugins_retiring"] = std::move(retiring);

  Json streams = Json::array();
  for (const auto& src : streams_) {
    const redis::StreamChannel& ch = src->channel();
    streams.push_back(Json{{"channel", ch.logical},
                           {"key", ch.key},
                           {"group", ch.group},
                           {"consumer", ch.consumer},
                           {"in_flight", src->inFlight()},
                           {"pending", number(src->pending())},
                           {"lag", number(src->lag())},
                           {"oldest_pending_age_seconds", number(src->oldestPendingAgeSeconds())}});
  }
  out["streams"] = std::move(streams);
  // Names and texts from Redis or plugins: never let odd bytes break it.
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace evh::app
