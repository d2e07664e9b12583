// What a reload may change in place, and what needs a restart today.
//
// A reload swaps in a new runtime graph (runtime/runtime.h): the routes of
// every channel (event types, plugins, retry policy, idempotency), the
// channels' signature settings (keys, tolerance, replay check), the plugins
// -- added, removed, changed or reordered (app/reload_plugins.h), except the
// dead-letter plugin -- and the set of channels itself: Pub/Sub channels and
// patterns are subscribed and unsubscribed on the running connection, stream
// readers started, retired once their entries are acked, or replaced when
// how a stream is read changes (app/reload_channels.cpp) -- and the Redis
// settings: every connection reconnects with the new ones
// (app/reload_redis.cpp). Everything else built once at start -- the
// dead-letter set-up and its plugin, limits, logging, workers, the ops
// listener -- is compared, and each difference is named; a reload that would
// change any of them is refused and the running configuration kept.
#pragma once

#include "config/config.h"

#include <string>
#include <vector>

namespace evh::app {

// One line per difference between `running` and `next` that a reload cannot
// apply, each naming the key and where `next` sets it ("file:line: key"),
// never a value (a password, a key). Empty: `next` can be swapped in.
// THREAD: any (pure).
std::vector<std::string> changesNeedingRestart(const config::Config& running, const config::Config& next);

// What a reload applying `next` over `running` changes, for the log line:
// "the channels (2 added, 1 removed), plugin a added, plugin b replaced,
// the routes of 2 channel(s) and the signature settings of 1 channel(s)", or
// "nothing". (A plugin whose file alone changed is named by
// app/reload_plugins.h.)
std::string describeChanges(const config::Config& running, const config::Config& next);

// The redis.* keys that differ ("redis.host", "redis.password", "redis.tls",
// "redis.sentinel", ...: names, never values). A reload that changes any of
// them reconnects every Redis connection with the new settings
// (Server::applyRedis); one that changes none keeps them all, the Pub/Sub
// subscription included. Under redis.cluster (before or after the reload)
// none: changesNeedingRestart names them instead.
std::vector<std::string> redisChanges(const config::Config& running, const config::Config& next);

}  // namespace evh::app
