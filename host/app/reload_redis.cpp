// A reload that changes the Redis settings (Server::applyRedis): every
// connection -- the commands' (plugins' commands, acks, dead letters,
// idempotency marks), the subscriber, each stream reader, a retiring one
// too -- is told the new endpoint and reconnects at once, without backoff
// (redis::Connection::reconfigure). What that costs is what any reconnect
// costs: requests waiting for a reply get none (their callers retry, as on a
// lost connection), the subscriber subscribes again and logs the gap, a
// stream reader reads its consumer's pending entries again. A reload that
// changes no redis.* key reaches none of this: every connection, the Pub/Sub
// one included, is kept.
//
// Under Sentinel the provider is made anew whenever a redis.* key changed
// (the sentinels, their credentials or TLS may be what changed): the old one
// stops, and goes with the last connection that held it. The TLS contexts
// were built off the loop, with the file's read (server_reload.cpp).
#include "app/server.h"
#include "app/sources.h"
#include "common/log.h"

#include <string>
#include <utility>
#include <vector>

namespace evh::app {

void Server::applyRedis(const std::vector<std::string>& keys, const RedisTls& tls) {
  std::string names;
  for (const auto& k : keys) {
    names += (names.empty() ? "" : ", ") + k;
  }
  redis::Endpoint next = endpointOf(config_, tls);
  if (sentinel_) {
    sentinel_->stop();  // its connections and timer; the Redis connections let it go below
    sentinel_.reset();
  }
  if (config_.redis.sentinel.enabled()) {
    sentinel_ = sentinelOf(&loop_, config_, next, tls);
    sentinel_->exportStats(stats_);  // the same series: a failover counter carries on
    next.addresses = sentinel_;
    sentinel_->start();
  }
  endpoint_ = std::move(next);
  size_t connections = 1;
  commands_->reconfigure(endpoint_);
  if (subscriber_) {
    subscriber_->reconfigure(endpoint_);
    ++connections;
  }
  for (auto& src : streams_) {
    src->reconfigure(endpoint_);
    ++connections;
  }
  for (auto& r : retiring_streams_) {
    r.source->reconfigure(endpoint_);
    ++connections;
  }
  const std::string to = config_.redis.sentinel.enabled()
                             ? "master " + config_.redis.sentinel.master + " (sentinel)"
                             : config_.redis.host + ":" + std::to_string(config_.redis.port);
  log::host().warn("reload: the Redis settings changed ({}): {} connection(s) reconnect to {} now", names, connections,
                   to);
}

}  // namespace evh::app
