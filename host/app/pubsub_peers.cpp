// Presence per Pub/Sub channel in Redis, and the warning when another evhost
// consumes the same one.
#include "app/pubsub_peers.h"

#include "common/clock.h"
#include "common/log.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <stdexcept>

namespace evh::app {

std::string pubsubPresenceKey(std::string_view prefix, bool pattern, std::string_view name) {
  // A family of its own for patterns: a pattern and a channel of the same
  // text are different subscriptions.
  std::string key(prefix);
  key += pattern ? "evh:pubsub-pattern-consumers:" : "evh:pubsub-consumers:";
  key += name;
  return key;
}

std::optional<uint64_t> parsePresenceExpiry(std::string_view value) {
  if (value.empty() || value.size() > 20) {
    return std::nullopt;
  }
  uint64_t ms = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return std::nullopt;  // a sign, a space, a fraction, out of range
  }
  return ms;
}

Presence presenceOf(const std::vector<std::pair<std::string, std::string>>& fields, std::string_view self,
                    uint64_t now_ms) {
  Presence p;
  for (const auto& [name, value] : fields) {
    if (name == self) {
      continue;
    }
    const std::optional<uint64_t> until = parsePresenceExpiry(value);
    // Not a time: nothing evhost wrote, and nothing that says anyone is
    // there. It goes with the expired ones rather than sit in the hash.
    if (until && *until > now_ms) {
      p.live.push_back(name);
    } else {
      p.expired.push_back(name);
    }
  }
  return p;
}

PubsubPeers::PubsubPeers(uv_loop_t* loop, redis::CommandClient& commands, ops::Registry& stats, Options options)
    : loop_(loop), commands_(commands), registry_(stats), options_(std::move(options)) {
  timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  if (!timer_) {
    throw std::runtime_error("pub/sub peers: cannot make its timer");
  }
  timer_->data = this;
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<PubsubPeers*>(t->data)->refresh(); }, options_.interval_ms,
      options_.interval_ms);
  // Each time the connection is up: at start (the first refresh), and after
  // a reconnect (Redis may have restarted without the hashes).
  ready_watch_ = commands_.watchReady([this] { refresh(); });
}

PubsubPeers::~PubsubPeers() {
  *alive_ = false;
  commands_.unwatchReady(ready_watch_);
}

std::string PubsubPeers::describe(const Key& key) { return (key.first ? "pattern " : "channel ") + key.second; }

void PubsubPeers::use(const std::vector<redis::Subscription>& subs) {
  if (left_) {
    return;
  }
  std::map<Key, Channel> next;
  for (const auto& sub : subs) {
    if (sub.check) {
      continue;  // evhost's own check channel: one instance's alone
    }
    Key key{sub.pattern, sub.redis};
    if (auto it = channels_.find(key); it != channels_.end()) {
      next.emplace(key, std::move(it->second));
      channels_.erase(it);
      continue;
    }
    Channel ch;
    ch.hash = pubsubPresenceKey(options_.prefix, sub.pattern, sub.logical);
    ch.stats = std::make_unique<ops::Scope>(registry_, ops::Labels{{"channel", sub.logical}});
    ch.peers = ch.stats->gauge("evhost_pubsub_peers",
                               "other evhost instances seen consuming this Pub/Sub channel (or pattern): each "
                               "handles every event published there too");
    next.emplace(std::move(key), std::move(ch));
  }
  // What is left is no longer consumed here: the others need not count
  // this instance any more (best effort; its presence expires anyway).
  for (const auto& [key, ch] : channels_) {
    commands_.send({"HDEL", ch.hash, options_.self}, [](evh_status, const redisReply*) {});
  }
  channels_ = std::move(next);
  refresh();
}

void PubsubPeers::leave() {
  if (left_) {
    return;
  }
  left_ = true;
  uv_timer_stop(timer_.get());
  for (const auto& [key, ch] : channels_) {
    // Not connected: nothing to do; the presence expires by itself.
    commands_.send({"HDEL", ch.hash, options_.self}, [](evh_status, const redisReply*) {});
  }
  channels_.clear();  // and their series
}

void PubsubPeers::refresh() {
  if (left_ || channels_.empty() || !commands_.ready()) {
    return;  // the connection's next on_ready refreshes
  }
  const uint64_t hold_ms = uint64_t{3} * options_.interval_ms;
  const std::string until = std::to_string(wallMs() + hold_ms);
  auto round = std::make_shared<Round>();
  for (const auto& [key, ch] : channels_) {
    // One connection, so in order: this instance's field is in the hash
    // HGETALL reads (and is skipped there).
    send(round, {"HSET", ch.hash, options_.self, until}, key, false);
    send(round, {"PEXPIRE", ch.hash, std::to_string(hold_ms)}, key, false);
    send(round, {"HGETALL", ch.hash}, key, true);
  }
}

void PubsubPeers::send(const std::shared_ptr<Round>& round, std::vector<std::string> argv, const Key& key,
                       bool fields) {
  auto shared_argv = std::make_shared<std::vector<std::string>>(std::move(argv));
  const bool sent = commands_.send(*shared_argv, [this, alive = std::weak_ptr<bool>(alive_), round, shared_argv, key,
                                                  fields](evh_status status, const redisReply* reply) {
    if (const auto a = alive.lock(); a && *a) {
      onReply(round, *shared_argv, key, fields, status, reply);
    }
  });
  if (sent) {
    ++round->waiting;
  } else {
    round->failed = true;  // the connection just went: on_ready refreshes again
  }
}

void PubsubPeers::onReply(const std::shared_ptr<Round>& round, const std::vector<std::string>& argv, const Key& key,
                          bool fields, evh_status status, const redisReply* reply) {
  // Before any new command of the round (an HDEL onFields sends) counts in.
  --round->waiting;
  if (status == EVH_ERR_CANCELLED || left_) {
    return;  // stopping
  }
  if (status != EVH_OK || reply == nullptr) {
    round->failed = true;  // the connection dropped: it logs that, and on_ready refreshes
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    round->failed = true;
    failed(argv[0] + " " + argv[1], std::string(reply->str, reply->len));
  } else if (fields) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
      round->failed = true;
      failed(argv[0] + " " + argv[1], "unexpected reply type " + std::to_string(reply->type));
    } else if (auto it = channels_.find(key); it != channels_.end() && !left_) {
      onFields(round, key, it->second, reply);
    }
  }
  if (round->waiting == 0 && !round->failed && !logged_failures_.empty()) {
    log::host().info("pub/sub peers: Redis answers every presence command again");
    logged_failures_.clear();
  }
}

void PubsubPeers::onFields(const std::shared_ptr<Round>& round, const Key& key, Channel& ch, const redisReply* reply) {
  std::vector<std::pair<std::string, std::string>> fields;
  fields.reserve(reply->elements / 2);
  for (size_t i = 0; i + 1 < reply->elements; i += 2) {
    const redisReply* f = reply->element[i];
    const redisReply* v = reply->element[i + 1];
    if (f == nullptr || v == nullptr || f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
      continue;  // not what a hash holds
    }
    fields.emplace_back(std::string(f->str, f->len), std::string(v->str, v->len));
  }
  Presence p = presenceOf(fields, options_.self, wallMs());
  std::set<std::string> live(p.live.begin(), p.live.end());
  for (const auto& peer : live) {
    if (ch.warned.insert(peer).second) {
      log::host().warn(
          "{}: another evhost ({}) consumes it too: each instance handles every event published there; give the "
          "channel `share:` to share them (docs/config.md)",
          describe(key), peer);
    }
  }
  for (auto it = ch.warned.begin(); it != ch.warned.end();) {
    if (live.count(*it) == 0) {
      log::host().info("{}: evhost {} no longer consumes it", describe(key), *it);
      it = ch.warned.erase(it);
    } else {
      ++it;
    }
  }
  ch.peers.set(static_cast<int64_t>(live.size()));
  for (const auto& gone : p.expired) {
    // An instance that went without its goodbye (killed, or its HDEL lost).
    // Another instance may delete the same field: HDEL of nothing is 0.
    send(round, {"HDEL", ch.hash, gone}, key, false);
  }
}

void PubsubPeers::failed(const std::string& command, const std::string& why) {
  // By the error alone: an ACL without the hashes refuses HSET, PEXPIRE and
  // HGETALL of every channel alike, which is one thing to say.
  if (!logged_failures_.insert(why).second) {
    return;
  }
  log::host().warn(
      "pub/sub peers: {} failed: {}: other evhost instances on this instance's Pub/Sub channels cannot be seen (tried "
      "again every {} ms; logged once until it works)",
      command, why, options_.interval_ms);
}

}  // namespace evh::app
