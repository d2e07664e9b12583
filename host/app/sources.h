// What the Redis side is built from: the endpoint from the config's redis
// section, and the subscriptions and stream readers from a runtime's channels.
#pragma once

#include "config/config.h"
#include "redis/endpoint.h"
#include "redis/sentinel.h"
#include "redis/stream_source.h"
#include "redis/subscriber.h"
#include "redis/tls_context.h"
#include "runtime/runtime.h"

#include <string>
#include <vector>

namespace evh::app {

// redis.tls's OpenSSL context, its files read now. Throws redis::TlsError
// naming the key and the file (also for --check-config).
std::shared_ptr<const redis::TlsContext> tlsContextOf(const config::Tls& tls);

// Every connection's endpoint; replies are bounded in proportion to
// limits.max_message_bytes.
// With redis.tls on, the TLS context (its files read now) and the bridge's
// local socket: throws std::runtime_error naming the key and the file.
// THREAD: main, before the loop runs.
redis::Endpoint endpointOf(const config::Config& config);

// redis.sentinel's provider, not started: how it reaches the sentinels
// (their credentials and TLS: their own `tls:`, else `master`'s, the
// endpoint of every other connection) and what it asks for. Throws
// std::runtime_error naming the key and the file when the sentinels' own
// TLS files cannot be read. THREAD: main, before the loop runs.
std::shared_ptr<redis::SentinelAddress> sentinelOf(uv_loop_t* loop, const config::Config& config,
                                                   const redis::Endpoint& master);

// The Pub/Sub channels of `rt`, one subscription each.
std::vector<redis::Subscription> subscriptionsOf(const runtime::Runtime& rt);

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
