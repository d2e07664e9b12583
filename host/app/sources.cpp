// Copying the config and the runtime into what the Redis side reads.
#include "app/sources.h"

#include "redis/bridge_listener.h"
#include "redis/tls_context.h"

#include <unistd.h>
#include <algorithm>
#include <tuple>

namespace evh::app {

std::shared_ptr<const redis::TlsContext> tlsContextOf(const config::Tls& tls) {
  redis::TlsOptions o;
  o.enabled = true;
  o.ca_file = tls.ca_file;
  o.ca_dir = tls.ca_dir;
  o.cert_file = tls.cert_file;
  o.key_file = tls.key_file;
  o.server_name = tls.server_name;
  o.min_version = tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  o.verify = tls.verify;
  o.where = tls.origin.describe();
  return std::make_shared<const redis::TlsContext>(std::move(o));
}

RedisTls redisTlsOf(const config::Config& config) {
  const config::Redis& r = config.redis;
  RedisTls t;
  if (r.tls.enabled) {
    t.redis = tlsContextOf(r.tls);
  }
  if (r.sentinel.enabled() && r.sentinel.own_tls && r.sentinel.tls.enabled) {
    t.sentinels = tlsContextOf(r.sentinel.tls);
  }
  return t;
}

redis::Endpoint endpointOf(const config::Config& config, const RedisTls& tls) {
  const config::Redis& r = config.redis;
  redis::Endpoint e;
  e.host = r.host;
  e.port = r.port;
  e.db = r.db;
  e.username = r.username;
  e.password = r.password;
  e.connect_timeout_ms = r.connect_timeout_ms;
  e.backoff_initial_ms = r.reconnect.initial_ms;
  e.backoff_max_ms = r.reconnect.max_ms;
  e.backoff_multiplier = r.reconnect.multiplier;
  e.ping_interval_ms = r.ping_interval_ms;
  e.ping_timeout_ms = r.ping_timeout_ms;
  e.max_message_bytes = config.limits.max_message_bytes;
  if (r.tls.enabled) {
    e.tls = tls.redis;
    e.bridge = std::make_shared<const redis::BridgeListener>();
  }
  e.require_master = r.sentinel.enabled();
  return e;
}

std::shared_ptr<redis::SentinelAddress> sentinelOf(uv_loop_t* loop, const config::Config& config,
                                                   const redis::Endpoint& master, const RedisTls& tls) {
  const config::Sentinel& s = config.redis.sentinel;
  redis::SentinelAddress::Options o;
  o.master = s.master;
  for (const auto& n : s.nodes) {
    o.nodes.push_back(redis::Address{n.host, n.port});
  }
  o.endpoint = master;  // timeouts, backoff, bounds
  o.endpoint.username = s.username;
  o.endpoint.password = s.password;
  o.endpoint.db = 0;
  o.endpoint.addresses = nullptr;
  o.endpoint.require_master = false;
  if (s.own_tls) {
    o.endpoint.tls = s.tls.enabled ? tls.sentinels : nullptr;
    o.endpoint.bridge =
        s.tls.enabled ? (master.bridge ? master.bridge : std::make_shared<const redis::BridgeListener>()) : nullptr;
  }
  return std::make_shared<redis::SentinelAddress>(loop, std::move(o));
}

std::shared_ptr<redis::ClusterMap> clusterOf(uv_loop_t* loop, const config::Config& config,
                                             const redis::Endpoint& endpoint) {
  redis::ClusterMap::Options o;
  for (const auto& n : config.redis.cluster.nodes) {
    o.seeds.push_back(redis::Address{n.host, n.port});
  }
  o.endpoint = endpoint;
  o.refresh_ms = config.redis.cluster.refresh_interval_ms;
  return std::make_shared<redis::ClusterMap>(loop, std::move(o));
}

redis::Endpoint endpointForKey(const redis::Endpoint& endpoint, const std::shared_ptr<redis::ClusterMap>& cluster,
                               const std::string& key) {
  redis::Endpoint e = endpoint;
  if (cluster) {
    e.addresses = std::make_shared<redis::SlotAddress>(cluster, redis::keySlot(key));
  }
  return e;
}

std::optional<redis::Subscription> subscriptionOf(const runtime::Channel& ch) {
  if (!ch.forward_from.empty()) {
    return redis::Subscription{ch.name, ch.forward_from, false, ch.id};
  }
  if (ch.transport == config::Transport::PubSub) {
    redis::Subscription s{ch.name, ch.key, ch.pattern, ch.id};
    s.sharded = ch.sharded;
    return s;
  }
  return std::nullopt;
}

std::vector<redis::Subscription> subscriptionsOf(const runtime::Runtime& rt) {
  std::vector<redis::Subscription> subs;
  for (const auto& ch : rt.channels()) {
    if (std::optional<redis::Subscription> s = subscriptionOf(ch)) {
      subs.push_back(std::move(*s));
    }
  }
  return subs;
}

std::vector<redis::Subscription> unsharedSubscriptionsOf(const runtime::Runtime& rt) {
  std::vector<redis::Subscription> subs;
  for (const auto& ch : rt.channels()) {
    if (ch.transport == config::Transport::PubSub) {
      subs.push_back(redis::Subscription{ch.name, ch.key, ch.pattern, ch.id});
    }
  }
  return subs;
}

std::set<std::string, std::less<>> shardedChannelsOf(const runtime::Runtime& rt) {
  std::set<std::string, std::less<>> out;
  for (const auto& ch : rt.channels()) {
    if (ch.sharded && ch.transport == config::Transport::PubSub) {
      out.insert(ch.key);
    }
  }
  return out;
}

redis::StreamChannel streamChannelOf(const runtime::Channel& ch, const config::Limits& limits,
                                     const std::string& default_consumer) {
  const config::StreamOptions& so = ch.stream;
  redis::StreamChannel sc;
  sc.logical = ch.name;
  sc.key = ch.key;
  sc.channel_id = ch.id;
  sc.group = so.group;
  sc.consumer = so.consumer.empty() ? default_consumer : so.consumer;
  sc.count = so.count;
  // Under backpressure a few large reads, and reading always resumes: at
  // most count and at most half of max_in_flight.
  sc.min_room = static_cast<uint32_t>(
      std::min<uint64_t>(sc.count, std::max<uint64_t>(1, static_cast<uint64_t>(limits.max_in_flight) / 2)));
  sc.block_ms = so.block_ms;
  sc.from_beginning = so.from_beginning;
  sc.claim_idle_ms = so.claim_idle_ms;
  sc.claim_interval_ms = so.claim_interval_ms;
  sc.max_deliveries = so.max_deliveries;
  sc.trim_maxlen = so.trim_maxlen;
  sc.trim_max_age_ms = so.trim_max_age_ms;
  sc.trim_interval_ms = so.trim_interval_ms;
  return sc;
}

bool sameStreamOptions(const config::StreamOptions& a, const config::StreamOptions& b) {
  auto tie = [](const config::StreamOptions& s) {
    return std::make_tuple(s.group, s.consumer, s.count, s.block_ms, s.from_beginning, s.claim_idle_ms,
                           s.claim_interval_ms, s.max_deliveries, s.trim_maxlen, s.trim_max_age_ms, s.trim_interval_ms);
  };
  return tie(a) == tie(b);
}

std::string processConsumerName() {
  char host_name[256] = "evhost";
  gethostname(host_name, sizeof(host_name) - 1);
  return std::string(host_name) + "-" + std::to_string(getpid());
}

}  // namespace evh::app
