// The Pub/Sub subscribers: the main one (classic channels, evhost's own
// check channel) and, under a cluster, a shard subscriber per slot of shard
// channels (redis/subscriber_set.h); where each message goes.
#include "app/server.h"

#include "app/sources.h"

namespace evh::app {

void Server::makeSubscriber(std::vector<redis::Subscription> subs) {
  subs.push_back(
      redis::Subscription{PubsubCheck::kChannel, pubsub_check_->channel(), false, PubsubCheck::kChannelId, true});
  pubsub_check_->roundTrip(true);
  // Under a cluster classic Pub/Sub reaches every node: the subscriber
  // stays on one master (the prefix's slot's) and follows it; a shard
  // channel is read from its slot's master.
  redis::SubscriberSet::ShardEndpoint shard_endpoint;
  if (cluster_) {
    shard_endpoint = [this](uint16_t slot) {
      redis::Endpoint e = endpoint_;
      e.addresses = std::make_shared<redis::SlotAddress>(cluster_, slot);
      return e;
    };
  }
  subscriber_ = std::make_unique<redis::SubscriberSet>(
      &loop_, endpointForKey(endpoint_, cluster_, config_.prefix()), std::move(shard_endpoint), std::move(subs),
      [this](const redis::Subscription& sub, std::string_view channel, std::string_view payload) {
        if (sub.check) {
          pubsub_check_->onMessage(payload);
          return;
        }
        // A shared channel's message goes into its stream (read as any
        // other); the runtime in force says whether the channel is shared.
        if (const runtime::Channel* ch = pipeline_->runtime().channel(sub.channel_id);
            ch != nullptr && !ch->forward_from.empty()) {
          share_->forward(*ch, channel, payload);
          return;
        }
        pipeline_->pubsub(sub.channel_id, channel, payload);
      },
      stats_);
  subscriber_->onOversize([this](std::string_view head, uint64_t held) { pipeline_->cutOff(head, held); });
  subscriber_->start();
}

}  // namespace evh::app
