// The Pub/Sub subscribers of one evhost: one for classic channels and
// patterns -- and for shard channels too when Redis is one node (or
// Sentinel's master) -- and, under a cluster, one per slot that holds shard
// channels, on that slot's master (its endpoint's SlotAddress follows the
// slot). Classic Pub/Sub reaches every node of a cluster, so one connection
// serves it; a shard channel's messages come only from its slot's master.
//
// It offers what one Subscriber does, over all of them: a reload adds and
// removes subscriptions (a shard subscriber is made for a slot's first
// shard channel and goes with its last), readiness and /status see every
// connection, backpressure pauses them all. THREAD: loop.
#pragma once

#include "redis/subscriber.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace evh::redis {

class SubscriberSet {
 public:
  // The endpoint of the shard subscriber of `slot` (a cluster's slot
  // address); empty: no cluster, every subscription goes to the main one.
  using ShardEndpoint = std::function<Endpoint(uint16_t slot)>;

  SubscriberSet(uv_loop_t* loop, Endpoint main, ShardEndpoint shard_endpoint, std::vector<Subscription> subs,
                Subscriber::Sink sink, ops::Registry& stats);
  ~SubscriberSet();
  SubscriberSet(const SubscriberSet&) = delete;
  SubscriberSet& operator=(const SubscriberSet&) = delete;

  void start();
  void stop();
  // As Subscriber::add / remove, on the subscriber the subscription is for.
  void add(Subscription sub);
  bool remove(bool pattern, const std::string& redis);
  // The main subscriber's Redis settings changed (no cluster: a reload
  // refuses redis.* changes under one).
  void reconfigure(Endpoint endpoint) { main_->reconfigure(std::move(endpoint)); }
  void onOversize(std::function<void(std::string_view head, uint64_t held)> fn);

  void pauseReading();
  void resumeReading();
  bool readingPaused() const noexcept { return main_->readingPaused(); }

  // The main connection first, then each shard subscriber's by slot.
  std::vector<const Connection*> connections() const;
  std::vector<Subscription> subscriptions() const;
  std::vector<std::string> notLive(bool with_check = false) const;
  size_t retiring() const noexcept;
  // Shard subscribers (connections beside the main one). For tests.
  size_t shardSubscribers() const noexcept { return shards_.size(); }

 private:
  // Where `sub` goes: nullptr for the main subscriber, else its slot's
  // shard subscriber (made when `make`).
  Subscriber* shardFor(const Subscription& sub, bool make);
  std::unique_ptr<Subscriber> makeSubscriber(Endpoint endpoint, std::vector<Subscription> subs, std::string name);

  uv_loop_t* loop_;
  ShardEndpoint shard_endpoint_;
  Subscriber::Sink sink_;
  ops::Registry& stats_;
  std::function<void(std::string_view head, uint64_t held)> on_oversize_;
  bool started_ = false;
  bool paused_ = false;
  std::unique_ptr<Subscriber> main_;
  std::map<uint16_t, std::unique_ptr<Subscriber>> shards_;
};

}  // namespace evh::redis
