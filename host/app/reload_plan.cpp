// What a reload may change in place: see reload_plan.h.
#include "app/reload_plan.h"

#include "app/sources.h"

#include <functional>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

namespace evh::app {
namespace {

using config::Config;

// Collects the restart-needing differences, each as "where: key: what".
class Differences {
 public:
  explicit Differences(const Config& next) : file_(next.file) {}

  // `key` names the setting; `at` where `next` sets it (unknown: the file).
  void changed(const config::Origin& at, const std::string& key, const std::string& what = "changed") {
    lines_.push_back(where(at) + ": " + key + ": " + what + " (a reload cannot apply this yet: restart evhost)");
    keys_.push_back(key);
  }
  template <typename T>
  void field(const config::Origin& at, const std::string& key, const T& was, const T& now) {
    if (!(was == now)) {
      changed(at, key);
    }
  }
  std::vector<std::string> take() { return std::move(lines_); }
  // The keys alone, as changed() was told them.
  std::vector<std::string> keys() const { return keys_; }

 private:
  std::string where(const config::Origin& at) const {
    if (at.line > 0) {
      return at.file + ":" + std::to_string(at.line);
    }
    return at.file.empty() ? file_ : at.file;
  }

  std::string file_;
  std::vector<std::string> lines_;
  std::vector<std::string> keys_;
};

auto backoffTuple(const config::Backoff& b) { return std::make_tuple(b.initial_ms, b.max_ms, b.multiplier); }

auto breakerTuple(const config::BreakerPolicy& b) {
  return std::make_tuple(b.threshold, b.open_ms, b.half_open_max_calls, b.max_wait_ms, b.max_waiting);
}

auto retryTuple(const config::RetryPolicy& r) {
  return std::make_tuple(r.max_attempts, r.base_delay_ms, r.multiplier, r.max_delay_ms, r.jitter);
}

void compareRedis(const Config& a, const Config& b, Differences& d) {
  const config::Redis& x = a.redis;
  const config::Redis& y = b.redis;
  const config::Origin at{b.file, 0, "redis"};
  d.field(at, "redis.host", x.host, y.host);
  d.field(at, "redis.port", x.port, y.port);
  d.field(at, "redis.db", x.db, y.db);
  d.field(at, "redis.username", x.username, y.username);
  // Compared, never shown.
  d.field(at, "redis.password", x.password, y.password);
  d.field(at, "redis.connect_timeout_ms", x.connect_timeout_ms, y.connect_timeout_ms);
  d.field(at, "redis.reconnect", backoffTuple(x.reconnect), backoffTuple(y.reconnect));
  d.field(at, "redis.ping_interval_ms", x.ping_interval_ms, y.ping_interval_ms);
  d.field(at, "redis.ping_timeout_ms", x.ping_timeout_ms, y.ping_timeout_ms);
  const auto sentinelTuple = [](const config::Sentinel& s) {
    std::vector<std::pair<std::string, uint16_t>> nodes;
    for (const auto& n : s.nodes) {
      nodes.emplace_back(n.host, n.port);
    }
    const config::Tls& t = s.tls;
    return std::make_tuple(s.master, nodes, s.username, s.password, s.own_tls, t.enabled, t.ca_file, t.ca_dir,
                           t.cert_file, t.key_file, t.server_name, t.min_version, t.verify);
  };
  // Compared, never shown (the sentinels' password).
  d.field(y.sentinel.origin.line > 0 ? y.sentinel.origin : at, "redis.sentinel", sentinelTuple(x.sentinel),
          sentinelTuple(y.sentinel));
  const auto clusterTuple = [](const config::Cluster& c) {
    std::vector<std::pair<std::string, uint16_t>> nodes;
    for (const auto& n : c.nodes) {
      nodes.emplace_back(n.host, n.port);
    }
    return std::make_tuple(nodes, c.refresh_interval_ms);
  };
  d.field(y.cluster.origin.line > 0 ? y.cluster.origin : at, "redis.cluster", clusterTuple(x.cluster),
          clusterTuple(y.cluster));
  const config::Tls& s = x.tls;
  const config::Tls& t = y.tls;
  d.field(
      t.origin, "redis.tls",
      std::make_tuple(s.enabled, s.ca_file, s.ca_dir, s.cert_file, s.key_file, s.server_name, s.min_version, s.verify),
      std::make_tuple(t.enabled, t.ca_file, t.ca_dir, t.cert_file, t.key_file, t.server_name, t.min_version, t.verify));
}

bool samePlugin(const config::Plugin& a, const config::Plugin& b) {
  return a.path == b.path && a.config_dir == b.config_dir && a.config_json == b.config_json && a.sha256 == b.sha256 &&
         a.timeout_ms == b.timeout_ms && breakerTuple(a.breaker) == breakerTuple(b.breaker);
}

// Plugins added, removed, changed or reordered are applied in place
// (app/reload_plugins.h), except the dead-letter plugin's: the dispatcher's
// dead-letter path holds that instance for the life of the process.
void comparePlugins(const Config& a, const Config& b, Differences& d) {
  const std::string& dl = a.dead_letter.plugin;
  if (dl.empty()) {
    return;
  }
  const auto in = [&dl](const Config& c) -> const config::Plugin* {
    for (const auto& p : c.plugins) {
      if (p.name == dl) {
        return &p;
      }
    }
    return nullptr;
  };
  const config::Plugin* was = in(a);
  const config::Plugin* now = in(b);
  if (was == nullptr) {
    return;
  }
  if (now == nullptr) {
    d.changed(config::Origin{b.file, 0, ""}, "plugins." + dl, "removed (the dead-letter plugin)");
  } else if (!samePlugin(*was, *now)) {
    d.changed(now->origin, "plugins." + dl, "changed (the dead-letter plugin)");
  }
}

std::string channelKey(const config::Channel& c) {
  return std::string(c.transport == config::Transport::Stream ? "stream:"
                     : c.pattern                              ? "pattern:"
                                                              : "pubsub:") +
         c.name;
}

void compareRest(const Config& a, const Config& b, Differences& d) {
  const config::Origin file{b.file, 0, ""};
  d.field(file, "environment", a.environment, b.environment);
  const config::Limits& l = a.limits;
  const config::Limits& m = b.limits;
  d.field(file, "limits",
          std::make_tuple(l.max_message_bytes, l.max_in_flight, l.max_json_depth, l.max_dead_letter_bytes),
          std::make_tuple(m.max_message_bytes, m.max_in_flight, m.max_json_depth, m.max_dead_letter_bytes));
  d.field(file, "logging.level", a.logging.level, b.logging.level);
  d.field(file, "logging.format", a.logging.format, b.logging.format);
  d.field(file, "logging.debug_events", a.logging.debug_events, b.logging.debug_events);
  const config::DeadLetter& x = a.dead_letter;
  const config::DeadLetter& y = b.dead_letter;
  d.field(y.origin, "dead_letter", std::make_tuple(x.plugin, x.fallback_file, x.timeout_ms, x.channel),
          std::make_tuple(y.plugin, y.fallback_file, y.timeout_ms, y.channel));
  d.field(file, "workers", a.workers, b.workers);
  d.field(file, "shutdown_timeout_ms", a.shutdown_timeout_ms, b.shutdown_timeout_ms);
  d.field(file, "loop_stall_ms", a.loop_stall_ms, b.loop_stall_ms);
  d.field(file, "state_dir", a.state_dir, b.state_dir);
  const config::Ops& o = a.ops;
  const config::Ops& p = b.ops;
  d.field(p.origin, "ops",
          std::make_tuple(o.enabled, o.host, o.port, o.liveness_timeout_ms, o.pubsub_check_cache_ms,
                          o.pubsub_check_timeout_ms, o.token),
          std::make_tuple(p.enabled, p.host, p.port, p.liveness_timeout_ms, p.pubsub_check_cache_ms,
                          p.pubsub_check_timeout_ms, p.token));
}

bool sameRoutes(const std::vector<config::Route>& a, const std::vector<config::Route>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].events != b[i].events || a[i].plugins != b[i].plugins ||
        retryTuple(a[i].retry) != retryTuple(b[i].retry) || a[i].idempotency_ttl_ms != b[i].idempotency_ttl_ms) {
      return false;
    }
  }
  return true;
}

bool sameSignature(const config::Signature& a, const config::Signature& b) {
  if (a.enabled != b.enabled || a.tolerance_s != b.tolerance_s || a.replay_check != b.replay_check ||
      a.keys.size() != b.keys.size()) {
    return false;
  }
  for (size_t i = 0; i < a.keys.size(); ++i) {
    if (a.keys[i].id != b.keys[i].id || a.keys[i].secret != b.keys[i].secret) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<std::string> changesNeedingRestart(const Config& running, const Config& next) {
  Differences d(next);
  comparePlugins(running, next, d);
  compareRest(running, next, d);
  // Under a cluster (before or after) the Redis settings are not applied
  // in place yet: the slot map and every node's connection would be made
  // anew.
  if (running.redis.cluster.enabled() || next.redis.cluster.enabled()) {
    compareRedis(running, next, d);
  }
  return d.take();
}

std::vector<std::string> redisChanges(const Config& running, const Config& next) {
  if (running.redis.cluster.enabled() || next.redis.cluster.enabled()) {
    return {};  // changesNeedingRestart refuses them
  }
  Differences d(next);
  compareRedis(running, next, d);
  return d.keys();
}

std::string describeChanges(const Config& running, const Config& next) {
  std::map<std::string, const config::Channel*> was;
  for (const auto& c : running.channels) {
    was[channelKey(c)] = &c;
  }
  size_t routes = 0;
  size_t signatures = 0;
  size_t added = 0;
  size_t streams = 0;
  size_t shares = 0;
  for (const auto& c : next.channels) {
    const auto it = was.find(channelKey(c));
    if (it == was.end()) {
      ++added;
      continue;
    }
    routes += sameRoutes(it->second->routes, c.routes) ? 0 : 1;
    signatures += sameSignature(it->second->signature, c.signature) ? 0 : 1;
    const config::Share& s = it->second->share;
    const bool read_from_a_stream = c.transport == config::Transport::Stream || (c.share.enabled && s.enabled);
    streams += read_from_a_stream && !sameStreamOptions(it->second->stream, c.stream) ? 1 : 0;
    shares += std::tie(s.enabled, s.stream, s.window_s, s.maxlen) !=
                      std::tie(c.share.enabled, c.share.stream, c.share.window_s, c.share.maxlen)
                  ? 1
                  : 0;
    was.erase(it);
  }
  const size_t removed = was.size();
  std::vector<std::string> parts;
  if (added > 0 || removed > 0) {
    // "the channels (2 added, 1 removed)", as the log line ends: "... changed"
    std::string set = added > 0 ? std::to_string(added) + " added" : "";
    if (removed > 0) {
      set += (added > 0 ? ", " : "") + std::to_string(removed) + " removed";
    }
    parts.push_back("the channels (" + set + ")");
  }
  if (streams > 0) {
    parts.push_back("the reading of " + std::to_string(streams) + " stream channel(s)");
  }
  if (shares > 0) {
    parts.push_back("the sharing (share:) of " + std::to_string(shares) + " Pub/Sub channel(s)");
  }
  std::map<std::string, const config::Plugin*> plugins;
  for (const auto& p : running.plugins) {
    plugins[p.name] = &p;
  }
  for (const auto& p : next.plugins) {
    const auto it = plugins.find(p.name);
    if (it == plugins.end()) {
      parts.push_back("plugin " + p.name + " added");
      continue;
    }
    if (!samePlugin(*it->second, p)) {
      parts.push_back("plugin " + p.name + " replaced");
    }
    plugins.erase(it);
  }
  for (const auto& [name, p] : plugins) {
    parts.push_back("plugin " + name + " removed");
  }
  if (const std::vector<std::string> keys = redisChanges(running, next); !keys.empty()) {
    std::string names;
    for (const auto& k : keys) {
      names += (names.empty() ? "" : ", ") + k;
    }
    parts.push_back("the Redis settings (" + names + ": every connection reconnected)");
  }
  if (routes > 0) {
    parts.push_back("the routes of " + std::to_string(routes) + " channel(s)");
  }
  if (signatures > 0) {
    parts.push_back("the signature settings of " + std::to_string(signatures) + " channel(s)");
  }
  if (parts.empty()) {
    return "nothing";
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  }
  return out;
}

}  // namespace evh::app
