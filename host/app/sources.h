// What the Redis side is built from: the endpoint from the config's redis
// section, and the subscriptions and stream readers from a runtime's channels.
#pragma once

#include "config/config.h"
#include "redis/cluster_map.h"
#include "redis/endpoint.h"
#include "redis/sentinel.h"
#include "redis/stream_source.h"
#include "redis/subscriber.h"
#include "redis/tls_context.h"
#include "runtime/runtime.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace evh::app {

// redis.tls's OpenSSL context, its files read now. Throws redis::TlsError
// naming the key and the file (also for --check-config).
std::shared_ptr<const redis::TlsContext> tlsContextOf(const config::Tls& tls);

// The TLS contexts the Redis side needs, their files read now: redis.tls's
// and the sentinels' own (redis.sentinel.tls), each null when off. Throws
// redis::TlsError naming the key and the file. THREAD: any (main before the
// loop runs; libuv's thread pool at a reload -- never the loop).
struct RedisTls {
  std::shared_ptr<const redis::TlsContext> redis;
  std::shared_ptr<const redis::TlsContext> sentinels;
};
RedisTls redisTlsOf(const config::Config& config);

// Every connection's endpoint; replies are bounded in proportion to
// limits.max_message_bytes. With redis.tls on, `tls.redis` and a new
// bridge's local socket. THREAD: any.
redis::Endpoint endpointOf(const config::Config& config, const RedisTls& tls);

// redis.sentinel's provider, not started: how it reaches the sentinels
// (their credentials and TLS: their own `tls:` -- `tls.sentinels` --, else
// `master`'s, the endpoint of every other connection) and what it asks for.
std::shared_ptr<redis::SentinelAddress> sentinelOf(uv_loop_t* loop, const config::Config& config,
                                                   const redis::Endpoint& master, const RedisTls& tls);

// redis.cluster's slot map, not started: its seeds, asked with every
// connection's credentials and TLS (`endpoint`).
std::shared_ptr<redis::ClusterMap> clusterOf(uv_loop_t* loop, const config::Config& config,
                                             const redis::Endpoint& endpoint);
// The endpoint of a connection that reads `key` (a stream, the subscriber):
// under a cluster it goes to the master of the key's slot, and follows it;
// otherwise `endpoint` as it is.
redis::Endpoint endpointForKey(const redis::Endpoint& endpoint, const std::shared_ptr<redis::ClusterMap>& cluster,
                               const std::string& key);

// What `ch` subscribes: a Pub/Sub channel's name or pattern, a shared one's
// name (forward_from; its messages go into its stream); none for a stream.
std::optional<redis::Subscription> subscriptionOf(const runtime::Channel& ch);
// The Pub/Sub channels of `rt`, one subscription each.
std::vector<redis::Subscription> subscriptionsOf(const runtime::Runtime& rt);
// The same but for shared channels (`share:`): the ones where another
// evhost consuming the channel too is a mistake (app::PubsubPeers).
std::vector<redis::Subscription> unsharedSubscriptionsOf(const runtime::Runtime& rt);

// The channels (prefixed) the runtime marks sharded: a plugin's publish()
// to one sends SPUBLISH.
std::set<std::string, std::less<>> shardedChannelsOf(const runtime::Runtime& rt);

// How a stream channel is read. `default_consumer` names this process in the
// group when the channel names no consumer ("<hostname>-<pid>").
redis::StreamChannel streamChannelOf(const runtime::Channel& ch, const config::Limits& limits,
                                     const std::string& default_consumer);

// Whether two stream channels are read the same way (group, consumer,
// count, block, claims, max_deliveries, trimming): a reload that changes
// any of them replaces the channel's reader.
bool sameStreamOptions(const config::StreamOptions& a, const config::StreamOptions& b);

// "<hostname>-<pid>".
std::string processConsumerName();

}  // namespace evh::app
