// Other evhost instances on the same Pub/Sub channel: every instance
// subscribed to a channel handles every message published there, so two
// instances handle each event twice (a plugin that publishes a notification
// publishes it twice). Pub/Sub itself cannot tell; this says so, at start and
// whenever it changes.
//
// Each instance announces itself in one Redis hash per Pub/Sub channel (and
// per pattern, keyed by the pattern's text): `<prefix>evh:pubsub-consumers:
// <channel>` (`<prefix>evh:pubsub-pattern-consumers:<pattern>` for a
// pattern), field = its name (`<hostname>-<pid>`), value = the wall-clock ms
// until which the announcement holds (now + 3 refresh intervals). Every
// interval, and each time the command connection is up (again) or a reload
// sets the channels: HSET its own field, PEXPIRE the hash (3 intervals: it
// goes when every instance has), HGETALL; each other field whose time has
// not passed is a live peer -- warned of once per (channel, peer), counted in
// evhost_pubsub_peers{channel} -- and each whose time has passed (an
// instance killed without a goodbye) is deleted (HDEL). A clean stop deletes
// its own fields (leave()). A channel and a pattern matching it are not
// compared: only the same channel, or the same pattern.
//
// Commands go over the host's command connection, never blocking; a refused
// command (an ACL without HSET on the hash) is logged once until a refresh
// goes through, and tried again only at the next interval.
#pragma once

#include "loop/uv_handle.h"
#include "ops/stats.h"
#include "redis/command_client.h"
#include "redis/subscriber.h"

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evh::app {

// The presence hash of a Pub/Sub channel (`pattern`: a pattern) whose name
// in the config is `name`, under the environment prefix `prefix` ("dev:").
std::string pubsubPresenceKey(std::string_view prefix, bool pattern, std::string_view name);

// A presence value: the ms since the epoch until which it holds. nullopt for
// anything but 1 to 20 decimal digits that fit in 64 bits.
std::optional<uint64_t> parsePresenceExpiry(std::string_view value);

// A presence hash read at `now_ms` (HGETALL's field/value pairs), seen by the
// instance `self`: the other instances whose presence holds (value > now),
// and the fields to delete -- expired, or not a time at all. `self`'s own
// field is in neither.
struct Presence {
  std::vector<std::string> live;
  std::vector<std::string> expired;
};
Presence presenceOf(const std::vector<std::pair<std::string, std::string>>& fields, std::string_view self,
                    uint64_t now_ms);

class PubsubPeers {
 public:
  struct Options {
    std::string prefix;  // the environment prefix ("dev:")
    std::string self;    // this instance's name: processConsumerName()
    uint32_t interval_ms = 10000;
  };

  // Starts its timer and watches the command connection (refreshing each
  // time it is up). Announces nothing before use(). THREAD: loop, like every
  // member.
  PubsubPeers(uv_loop_t* loop, redis::CommandClient& commands, ops::Registry& stats, Options options);
  ~PubsubPeers();
  PubsubPeers(const PubsubPeers&) = delete;
  PubsubPeers& operator=(const PubsubPeers&) = delete;

  // The Pub/Sub channels and patterns this instance consumes from now on
  // (at start; at each reload). A channel no longer among them has this
  // instance's field deleted and its series removed; then every channel is
  // refreshed at once when the command connection is up (a reload looks
  // again).
  void use(const std::vector<redis::Subscription>& subs);
  // A clean stop: stops refreshing and deletes this instance's field from
  // every hash (best effort: the replies are not waited for, but they are
  // outstanding commands a graceful stop flushes). Idempotent.
  void leave();

 private:
  using Key = std::pair<bool, std::string>;  // (pattern, what is subscribed)
  struct Channel {
    std::string hash;              // the presence hash
    std::set<std::string> warned;  // peers warned of, still live when last read
    std::unique_ptr<ops::Scope> stats;
    ops::Gauge peers;  // evhost_pubsub_peers{channel}
  };
  // One refresh of every channel: its outcome is known once each of its
  // replies is in.
  struct Round {
    size_t waiting = 0;
    bool failed = false;
  };

  void refresh();
  void send(const std::shared_ptr<Round>& round, std::vector<std::string> argv, const Key& key, bool fields);
  void onReply(const std::shared_ptr<Round>& round, const std::vector<std::string>& argv, const Key& key, bool fields,
               evh_status status, const redisReply* reply);
  void onFields(const std::shared_ptr<Round>& round, const Key& key, Channel& ch, const redisReply* reply);
  void failed(const std::string& command, const std::string& why);
  static std::string describe(const Key& key);

  uv_loop_t* loop_;
  redis::CommandClient& commands_;
  ops::Registry& registry_;
  Options options_;
  UvHandle<uv_timer_t> timer_;
  uint64_t ready_watch_ = 0;
  bool left_ = false;
  std::map<Key, Channel> channels_;
  // Failures logged since the last refresh that went through: each error
  // text logged once, naming the first command that got it.
  std::set<std::string> logged_failures_;
  // Replies may come after this object is gone (its owner goes before the
  // command connection): their callbacks check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evh::app
