// A reload's channels, applied in place (Server::applyChannels): Pub/Sub
// channels and patterns are (P)SUBSCRIBEd and (P)UNSUBSCRIBEd on the running
// subscriber's connection -- never a reconnect, so the other channels miss
// nothing -- and stream readers are started and retired.
//
// What happens to what is in flight when a channel goes:
// - Pub/Sub: the new runtime is in force before the UNSUBSCRIBE is sent.
//   A message Redis sends between the swap and its confirmation finds no
//   channel in the runtime: the pipeline counts it
//   (evhost_messages_unconfigured_total) and logs it at debug level, and it
//   is dropped -- it was published to a channel the operator removed, and
//   Pub/Sub never promised it to anyone. Messages routed before the swap
//   finish under the runtime they were routed by.
// - Streams: the reader stops reading (no XREADGROUP, claim or recovery step
//   from then on), the read already out comes back and its entries are
//   handled under the runtime the channel belonged to (never left pending),
//   every entry it handed over is acked, and only then is it stopped, its
//   consumer deleted from the group when nothing of it is pending, and it
//   is destroyed. The acks' callbacks hold it by raw pointer: it outlives
//   them all (nothing in flight is left when it goes), and each also checks
//   its liveness token.
// - A stream channel whose options change (group, consumer, count, block,
//   claims, max_deliveries, trimming) gets a new reader: the old one drains
//   first as above and the new one starts only then, so that the two never
//   read as the same consumer at once (the consumer name is the process's
//   by default). Meanwhile /readyz says the channel waits for it.
#include "app/server.h"
#include "app/sources.h"
#include "common/log.h"

#include <map>
#include <string>
#include <tuple>
#include <utility>

namespace evh::app {
namespace {

using PubSubKey = std::pair<bool, std::string>;  // (pattern, what is subscribed)

// What `rt` subscribes (a shared channel: its name, not its stream).
std::map<PubSubKey, redis::Subscription> pubsubOf(const runtime::Runtime& rt) {
  std::map<PubSubKey, redis::Subscription> out;
  for (const auto& ch : rt.channels()) {
    if (std::optional<redis::Subscription> s = subscriptionOf(ch)) {
      PubSubKey key{s->pattern, s->redis};
      out.emplace(std::move(key), std::move(*s));
    }
  }
  return out;
}

}  // namespace

void Server::applyChannels(const runtime::RuntimePtr& was, const runtime::Runtime& now) {
  try {
    applyChannelsOrThrow(was, now);
  } catch (const std::exception& e) {
    // The new runtime is in force already: what failed is named, and
    // /readyz shows the channel that is not read.
    log::host().error("reload: the channels could not all be applied: {}", e.what());
  }
}

void Server::applyChannelsOrThrow(const runtime::RuntimePtr& was, const runtime::Runtime& now) {
  // Pub/Sub: what the subscriber subscribes is what `now` has.
  const auto before = pubsubOf(*was);
  const auto after = pubsubOf(now);
  std::vector<redis::Subscription> added;
  for (const auto& [key, sub] : after) {
    const auto was_there = before.find(key);
    if (was_there == before.end()) {
      added.push_back(sub);
    } else if (was_there->second.sharded != sub.sharded && subscriber_) {
      // Between classic and sharded Pub/Sub: unsubscribed one way, subscribed
      // the other (messages published meanwhile the old way are lost).
      log::host().info("reload: channel {} is now {}: subscribing anew", key.second,
                       sub.sharded ? "sharded (SSUBSCRIBE)" : "classic (SUBSCRIBE)");
      subscriber_->remove(key.first, key.second);
      added.push_back(sub);
    }
  }
  for (const auto& [key, ch] : before) {
    if (after.count(key) == 0 && subscriber_) {
      log::host().info("reload: {}{} removed: unsubscribing", key.first ? "pattern " : "channel ", key.second);
      subscriber_->remove(key.first, key.second);
    }
  }
  services_->setShardedChannels(shardedChannelsOf(now));
  if (pubsub_peers_) {
    pubsub_peers_->use(unsharedSubscriptionsOf(now));  // and looks again at once (shared channels: not a mistake)
  }
  if (!added.empty() && !subscriber_) {
    // The first Pub/Sub channel: a subscriber of its own (nothing else was
    // subscribed, so nothing can be missed while it connects).
    makeSubscriber(std::move(added));
  } else {
    for (auto& sub : added) {
      log::host().info("reload: {}{} added: subscribing", sub.pattern ? "pattern " : "channel ", sub.redis);
      subscriber_->add(std::move(sub));
    }
  }

  // Streams: a reader per stream channel of `now`, read as `now` says.
  for (size_t i = streams_.size(); i-- > 0;) {
    const runtime::Channel* old_ch = was->channel(streams_[i]->channel().channel_id);
    const runtime::Channel* new_ch = now.channel(streams_[i]->channel().channel_id);
    if (new_ch == nullptr || new_ch->transport != config::Transport::Stream || old_ch == nullptr ||
        old_ch->key != new_ch->key || !sameStreamOptions(old_ch->stream, new_ch->stream)) {
      log::host().info("reload: stream {} {}: its reader finishes what it has, then goes", streams_[i]->channel().key,
                       new_ch == nullptr ? "removed" : "read differently");
      retireStream(i, was);
    }
  }
  for (const auto& ch : now.channels()) {
    if (ch.transport != config::Transport::Stream) {
      continue;
    }
    bool read = false;
    for (const auto& src : streams_) {
      read = read || src->channel().channel_id == ch.id;
    }
    if (!read) {
      addStream(ch);
    }
  }
}

void Server::addStream(const runtime::Channel& ch) {
  const runtime::ChannelId id = ch.id;
  // Acks hold the source by raw pointer; the token says whether it is still
  // there (it outlives what it has in flight, so it always is).
  auto ackOf = [](redis::StreamSource* src, const std::string& entry) {
    return [src, alive = src->liveness(), entry] {
      if (!alive.expired()) {
        src->ack(entry);
      }
    };
  };
  streams_.push_back(std::make_unique<redis::StreamSource>(
      &loop_, endpointForKey(endpoint_, cluster_, ch.key), streamChannelOf(ch, config_.limits, processConsumerName()),
      *commands_,
      [this, ackOf](const redis::StreamChannel& c, const std::string& entry, const std::string_view* field,
                    bool redelivered) {
        runtime::RuntimePtr under;
        if (redis::StreamSource* src = sourceOf(c, &under)) {
          pipeline_->streamEntry(c.channel_id, entry, field, redelivered, ackOf(src, entry), under);
        }
      },
      [this, id] {
        const runtime::Channel* now = pipeline_->runtime().channel(id);
        return now == nullptr ? size_t{0} : admission_->streamCapacity(now->routes);
      },
      [this, ackOf](const redis::StreamChannel& c, const std::string& entry, const char* reason, const std::string& why,
                    const std::string* field) {
        runtime::RuntimePtr under;
        if (redis::StreamSource* src = sourceOf(c, &under)) {
          pipeline_->streamRefused(c.channel_id, entry, reason, why, field, ackOf(src, entry), under);
        }
      },
      stats_));
  const redis::StreamChannel& sc = streams_.back()->channel();
  for (const auto& r : retiring_streams_) {
    if (r.source->channel().key == sc.key) {
      log::host().info("stream {}: group {}, consumer {}: starts once its previous reader has finished", sc.key,
                       sc.group, sc.consumer);
      return;  // startWaitingStreams()
    }
  }
  log::host().info("stream {}: group {}, consumer {}", sc.key, sc.group, sc.consumer);
  streams_.back()->start();
}

void Server::retireStream(size_t index, runtime::RuntimePtr under) {
  std::unique_ptr<redis::StreamSource> src = std::move(streams_[index]);
  streams_.erase(streams_.begin() + static_cast<std::ptrdiff_t>(index));
  redis::StreamSource* raw = src.get();
  retiring_streams_.push_back(RetiringStream{std::move(src), std::move(under)});
  // Destroys it (from its last callback: nothing uses it after this) and
  // starts a reader that waited for it.
  auto forget = [this, raw] {
    for (auto it = retiring_streams_.begin(); it != retiring_streams_.end(); ++it) {
      if (it->source.get() == raw) {
        log::host().info("stream {}: reader retired", raw->channel().key);
        retiring_streams_.erase(it);
        break;
      }
    }
    if (!stopping_) {
      startWaitingStreams();
    }
  };
  raw->drain([this, raw, forget] {
    if (stopping_) {
      return;  // the stop retires it with the others
    }
    if (!raw->started()) {
      forget();  // never read (it waited for a reader before it): nothing of its own in Redis
      return;
    }
    raw->retire(forget);  // its consumer leaves the group when nothing of it is pending
  });
}

void Server::startWaitingStreams() {
  for (auto& src : streams_) {
    if (src->started()) {
      continue;
    }
    bool waits = false;
    for (const auto& r : retiring_streams_) {
      waits = waits || r.source->channel().key == src->channel().key;
    }
    if (!waits) {
      const redis::StreamChannel& sc = src->channel();
      log::host().info("stream {}: group {}, consumer {} (its previous reader has finished)", sc.key, sc.group,
                       sc.consumer);
      src->start();
    }
  }
}

}  // namespace evh::app
