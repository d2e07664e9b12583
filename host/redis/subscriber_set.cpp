// The main subscriber and a cluster's shard subscribers (see subscriber_set.h).
#include "redis/subscriber_set.h"

#include "common/log.h"
#include "redis/cluster_slots.h"

#include <utility>

namespace evh::redis {

SubscriberSet::SubscriberSet(uv_loop_t* loop, Endpoint main, ShardEndpoint shard_endpoint,
                             std::vector<Subscription> subs, Subscriber::Sink sink, ops::Registry& stats)
    : loop_(loop), shard_endpoint_(std::move(shard_endpoint)), sink_(std::move(sink)), stats_(stats) {
  std::vector<Subscription> classic;
  std::map<uint16_t, std::vector<Subscription>> by_slot;
  for (auto& s : subs) {
    if (s.sharded && shard_endpoint_) {
      by_slot[keySlot(s.redis)].push_back(std::move(s));
    } else {
      classic.push_back(std::move(s));
    }
  }
  main_ = makeSubscriber(std::move(main), std::move(classic), "subscriber");
  for (auto& [slot, list] : by_slot) {
    const std::string name = "subscriber slot " + std::to_string(slot);
    shards_.emplace(slot, makeSubscriber(shard_endpoint_(slot), std::move(list), name));
  }
}

SubscriberSet::~SubscriberSet() = default;

std::unique_ptr<Subscriber> SubscriberSet::makeSubscriber(Endpoint endpoint, std::vector<Subscription> subs,
                                                          std::string name) {
  auto sub = std::make_unique<Subscriber>(loop_, std::move(endpoint), std::move(subs), sink_, stats_, std::move(name));
  sub->onOversize([this](std::string_view head, uint64_t held) {
    if (on_oversize_) {
      on_oversize_(head, held);
    }
  });
  return sub;
}

void SubscriberSet::start() {
  started_ = true;
  main_->start();
  for (auto& [slot, sub] : shards_) {
    sub->start();
  }
}

void SubscriberSet::stop() {
  started_ = false;
  main_->stop();
  for (auto& [slot, sub] : shards_) {
    sub->stop();
  }
}

Subscriber* SubscriberSet::shardFor(const Subscription& sub, bool make) {
  if (!sub.sharded || !shard_endpoint_) {
    return nullptr;
  }
  const uint16_t slot = keySlot(sub.redis);
  auto it = shards_.find(slot);
  if (it == shards_.end() && make) {
    const std::string name = "subscriber slot " + std::to_string(slot);
    it = shards_.emplace(slot, makeSubscriber(shard_endpoint_(slot), {}, name)).first;
    if (paused_) {
      it->second->pauseReading();
    }
    if (started_) {
      it->second->start();
    }
  }
  return it == shards_.end() ? nullptr : it->second.get();
}

void SubscriberSet::add(Subscription sub) {
  if (Subscriber* shard = shardFor(sub, true)) {
    shard->add(std::move(sub));
  } else {
    main_->add(std::move(sub));
  }
}

bool SubscriberSet::remove(bool pattern, const std::string& redis) {
  if (main_->remove(pattern, redis)) {
    return true;
  }
  if (pattern || !shard_endpoint_) {
    return false;
  }
  const auto it = shards_.find(keySlot(redis));
  if (it == shards_.end() || !it->second->remove(false, redis)) {
    return false;
  }
  if (it->second->subscriptions().empty()) {
    // Its last shard channel: the connection goes (and its SUNSUBSCRIBE
    // with it; hiredis calls back with NULL as it frees the context).
    log::host().info("redis {}: no shard channel left in its slot; closing it", it->second->connection().name());
    shards_.erase(it);
  }
  return true;
}

void SubscriberSet::onOversize(std::function<void(std::string_view head, uint64_t held)> fn) {
  on_oversize_ = std::move(fn);
}

void SubscriberSet::pauseReading() {
  paused_ = true;
  main_->pauseReading();
  for (auto& [slot, sub] : shards_) {
    sub->pauseReading();
  }
}

void SubscriberSet::resumeReading() {
  paused_ = false;
  main_->resumeReading();
  for (auto& [slot, sub] : shards_) {
    sub->resumeReading();
  }
}

std::vector<const Connection*> SubscriberSet::connections() const {
  std::vector<const Connection*> out{&main_->connection()};
  for (const auto& [slot, sub] : shards_) {
    out.push_back(&sub->connection());
  }
  return out;
}

std::vector<Subscription> SubscriberSet::subscriptions() const {
  std::vector<Subscription> out = main_->subscriptions();
  for (const auto& [slot, sub] : shards_) {
    for (auto& s : sub->subscriptions()) {
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::vector<std::string> SubscriberSet::notLive(bool with_check) const {
  std::vector<std::string> out = main_->notLive(with_check);
  for (const auto& [slot, sub] : shards_) {
    for (auto& why : sub->notLive(with_check)) {
      out.push_back(std::move(why));
    }
  }
  return out;
}

size_t SubscriberSet::retiring() const noexcept {
  size_t n = main_->retiring();
  for (const auto& [slot, sub] : shards_) {
    n += sub->retiring();
  }
  return n;
}

}  // namespace evh::redis
