// The immutable runtime: everything built from one Config that events are
// routed by -- channel identities, route tables, policies -- in one graph
// that in-flight events share by reference. A reload (issue 16) builds a new
// graph beside the old one and swaps it in; each event keeps the graph it
// was routed by until it is finished, and the old graph goes when its last
// event does (as nginx does with its cycle).
#pragma once

#include "config/config.h"
#include "plugin/instance.h"
#include "route/table.h"
#include "signature/verifier.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace evh::runtime {

// A channel's identity for the life of the process, across reloads: sources
// tag what they read with it, and the runtime in force at that moment says
// what it means. Never an index into the config, which a reload reorders.
using ChannelId = uint32_t;

// Hands out channel ids by (transport, pattern, name): a channel kept across
// a reload keeps its id, a new one gets a new id. THREAD: loop.
class ChannelIds {
 public:
  ChannelId of(const config::Channel& channel);

 private:
  std::unordered_map<std::string, ChannelId> ids_;
  ChannelId next_ = 0;
};

// One configured channel as the runtime sees it.
struct Channel {
  ChannelId id = 0;
  std::string name;  // logical, without the environment prefix
  std::string key;   // what is subscribed or read: prefix + name
  bool pattern = false;
  bool sharded = false;  // sharded Pub/Sub: SSUBSCRIBE; SPUBLISH publishes to it
  config::Transport transport = config::Transport::PubSub;
  config::StreamOptions stream;  // transport: stream
  // A shared Pub/Sub channel (config `share:`): what is subscribed, prefix +
  // name; every message is forwarded into `key`, the shared stream, which
  // is read as a stream channel (transport is Stream). Empty otherwise.
  std::string forward_from;
  uint32_t share_window_s = 0;
  uint64_t share_maxlen = 0;
  route::Table routes;
  // Signed channels only: verifies each message before it is decoded
  // (ingest/signed_stage.h). Its keyed HMAC contexts are reused for every
  // message: THREAD: loop only.
  std::shared_ptr<signature::Verifier> verifier;
  bool replay_check = false;  // each webhook-id delivered once (seen ids in Redis)
};

class Runtime {
 public:
  // Builds the graph for `config`. find(name) resolves a plugin instance
  // name (the registry's); `generation` numbers the graphs of a process.
  // THREAD: loop (ids are the loop's).
  // With `stats`, each (plugin, routed event type) gets its series there,
  // held as long as this runtime (in-flight events keep it).
  static std::shared_ptr<const Runtime> build(const config::Config& config, const route::Table::Find& find,
                                              ChannelIds& ids, uint64_t generation, ops::Registry* stats = nullptr);
  // The same, holding every plugin instance its routes name: an instance a
  // reload removed or replaced lives while a runtime that routes to it does
  // -- hence while any event routed by it is unfinished (the dispatcher
  // keeps each event's runtime) -- and is retired only then
  // (plugin::Registry::retireIdle).
  using SharedFind = std::function<std::shared_ptr<plugin::Instance>(const std::string& name)>;
  static std::shared_ptr<const Runtime> build(const config::Config& config, const SharedFind& find, ChannelIds& ids,
                                              uint64_t generation, ops::Registry* stats = nullptr);

  // The channel with this id, or nullptr when this runtime has none (a
  // source of a retired runtime still reading, say).
  const Channel* channel(ChannelId id) const noexcept { return id < by_id_.size() ? by_id_[id] : nullptr; }
  const std::vector<Channel>& channels() const noexcept { return channels_; }
  const std::string& prefix() const noexcept { return prefix_; }
  const config::Limits& limits() const noexcept { return limits_; }
  uint64_t generation() const noexcept { return generation_; }

 private:
  Runtime() = default;

  std::vector<Channel> channels_;  // config order
  std::vector<const Channel*> by_id_;
  std::string prefix_;
  config::Limits limits_;
  uint64_t generation_ = 0;
  // The series targets point at, by "plugin\0type"; the scope last, so
  // that it is released after the handles.
  std::unique_ptr<ops::Scope> stats_;
  std::map<std::string, std::unique_ptr<route::TypeSeries>> series_;
  std::vector<std::shared_ptr<plugin::Instance>> plugins_;  // what the routes point at (the owning build)
};

using RuntimePtr = std::shared_ptr<const Runtime>;

}  // namespace evh::runtime
