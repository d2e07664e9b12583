// ClusterMap: asking a cluster's nodes for the slot map and keeping it
// fresh; SlotAddress: a key's master for a connection. See cluster_map.h.
#include "redis/cluster_map.h"

#include "common/log.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

namespace evh::redis {
namespace {

std::string errorText(const redisReply* r) { return std::string(r->str, std::min<size_t>(r->len, 200)); }

bool unknownSubcommand(const redisReply* r) {
  const std::string text = errorText(r);
  return text.find("nknown subcommand") != std::string::npos || text.find("nknown command") != std::string::npos;
}

}  // namespace

// The node asked for the map: the seeds, then the masters of the last map,
// in turn, moving on whenever the current one fails (down, not a cluster
// node, an answer that is not a map).
class ClusterMap::Rotation final : public AddressProvider {
 public:
  explicit Rotation(std::vector<Address> seeds) : nodes_(std::move(seeds)), seeds_(nodes_.size()) {}
  Address current() override { return nodes_[at_]; }
  void failed(const Address& address, const std::string&) override {
    if (address == nodes_[at_]) {
      at_ = (at_ + 1) % nodes_.size();
    }
  }
  // The seeds stay; the masters of the last map follow them.
  void learn(const std::vector<Address>& masters) {
    const Address now = nodes_[at_];
    nodes_.resize(seeds_);
    for (const Address& m : masters) {
      if (std::find(nodes_.begin(), nodes_.end(), m) == nodes_.end()) {
        nodes_.push_back(m);
      }
    }
    const auto it = std::find(nodes_.begin(), nodes_.end(), now);
    at_ = it == nodes_.end() ? 0 : static_cast<size_t>(it - nodes_.begin());
  }

 private:
  std::vector<Address> nodes_;
  size_t seeds_;
  size_t at_ = 0;
};

ClusterMap::ClusterMap(uv_loop_t* loop, Options options)
    : loop_(loop), options_(std::move(options)), rotation_(std::make_shared<Rotation>(options_.seeds)) {
  options_.endpoint.addresses = nullptr;  // each connection here says where it goes
  options_.endpoint.require_master = false;
  options_.endpoint.db = 0;
  Connection::Handlers h;
  h.on_ready = [this] {
    keys_learned_ = false;  // a new node may be another version: learn again
    asking_ = false;
    ask();
  };
  h.on_lost = [this](const std::string&) { asking_ = false; };
  query_ = std::make_unique<Connection>(loop_, options_.endpoint, "cluster", Connection::Mode::Commands, std::move(h),
                                        rotation_);
  refresh_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  refresh_timer_->data = this;
  soon_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  soon_timer_->data = this;
}

ClusterMap::~ClusterMap() { stop(); }

void ClusterMap::start() {
  if (started_ || stopped_) {
    return;
  }
  started_ = true;
  log::host().info("redis: asking {} cluster node(s) for the slot map", options_.seeds.size());
  query_->start();
  uv_timer_start(
      refresh_timer_.get(), [](uv_timer_t* t) { static_cast<ClusterMap*>(t->data)->ask(); }, options_.refresh_ms,
      options_.refresh_ms);
}

void ClusterMap::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (query_) {
    query_->stop();  // its pending callbacks run now, with NULL replies
  }
  query_.reset();
  refresh_timer_.close();
  soon_timer_.close();
  watchers_.clear();
  refreshes_ok_ = {};
  refreshes_failed_ = {};
  moved_total_ = {};
  stats_.reset();
}

void ClusterMap::exportStats(ops::Registry& stats) {
  stats_ = std::make_unique<ops::Scope>(stats, ops::Labels{});
  stats_->computedGauge("evhost_cluster_slot_map_version", "slot maps loaded from the cluster so far",
                        [this] { return static_cast<double>(map_.version()); });
  stats_->computedGauge("evhost_cluster_masters", "masters owning slots in the slot map in force",
                        [this] { return static_cast<double>(masters_.size()); });
  stats_->computedGauge("evhost_cluster_slots_covered", "slots with an owner in the slot map in force (16384: all)",
                        [this] {
                          size_t n = 0;
                          for (uint32_t s = 0; s < kClusterSlots; ++s) {
                            n += map_.masterFor(static_cast<uint16_t>(s)) != nullptr ? 1 : 0;
                          }
                          return static_cast<double>(n);
                        });
  refreshes_ok_ =
      stats_->counter("evhost_cluster_refreshes_total", "slot map requests by outcome", {{"outcome", "ok"}});
  refreshes_failed_ =
      stats_->counter("evhost_cluster_refreshes_total", "slot map requests by outcome", {{"outcome", "error"}});
  moved_total_ = stats_->counter("evhost_cluster_moved_total", "MOVED redirects followed (a slot had a new master)");
  query_->exportStats(stats);
}

Address ClusterMap::filled(const Address& a) const {
  if (!a.host.empty()) {
    return a;
  }
  return Address{answered_by_, a.port};
}

Address ClusterMap::ownerOf(uint16_t slot) const {
  const SlotMap::Node* node = map_.masterFor(slot);
  return node == nullptr ? Address{} : filled(node->address);
}

void ClusterMap::cacheMasters() {
  masters_ = map_.masters();
  for (Address& a : masters_) {
    a = filled(a);
  }
}

uint64_t ClusterMap::watch(std::function<void()> changed) {
  watchers_.emplace_back(++last_watch_, std::move(changed));
  return last_watch_;
}

void ClusterMap::unwatch(uint64_t id) {
  for (auto it = watchers_.begin(); it != watchers_.end(); ++it) {
    if (it->first == id) {
      watchers_.erase(it);
      return;
    }
  }
}

void ClusterMap::notify() {
  // By id: a watcher may unwatch (itself or another) from its call.
  std::vector<uint64_t> ids;
  ids.reserve(watchers_.size());
  for (const auto& w : watchers_) {
    ids.push_back(w.first);
  }
  for (uint64_t id : ids) {
    for (const auto& w : watchers_) {
      if (w.first == id) {
        const std::function<void()> fn = w.second;
        fn();
        break;
      }
    }
  }
}

void ClusterMap::moved(uint16_t slot, const Address& to) {
  if (stopped_) {
    return;
  }
  const uint64_t now = uv_now(loop_);
  const Address was = ownerOf(slot);
  if (const auto it = last_moves_.find(slot);
      it != last_moves_.end() && it->second.from == to && now - it->second.at_ms < kFlapMs) {
    refreshSoon("slot " + std::to_string(slot) + " moved back to " + to.describe());
    return;
  }
  last_moves_[slot] = LastMove{was, now};
  map_.moved(slot, to);
  cacheMasters();
  moved_total_.inc();
  notify();
  refreshSoon("slot " + std::to_string(slot) + " moved to " + to.describe());
}

void ClusterMap::refreshSoon(const std::string& why) {
  if (stopped_ || !started_) {
    return;
  }
  const uint64_t now = uv_now(loop_);
  if (now - last_ask_ms_ >= kMinRefreshMs) {
    log::host().debug("redis: asking for the cluster's slot map again: {}", why);
    ask();
    return;
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(soon_timer_.get())) == 0) {
    uv_timer_start(
        soon_timer_.get(), [](uv_timer_t* t) { static_cast<ClusterMap*>(t->data)->ask(); },
        kMinRefreshMs - (now - last_ask_ms_), 0);
  }
}

void ClusterMap::ask() {
  if (stopped_ || !query_) {
    return;
  }
  if (asking_) {
    ask_again_ = true;
    return;
  }
  if (!query_->ready()) {
    return;  // its on_ready asks
  }
  last_ask_ms_ = uv_now(loop_);
  if (!keys_learned_) {
    // Pipelined in front of the map: the commands' keys, for routing
    // without a redirect. A refusal (an ACL without +command) only costs
    // those redirects.
    keys_learned_ = true;
    const char* argv[] = {"COMMAND"};
    const size_t lens[] = {7};
    query_->command(
        1, argv, lens,
        [](redisAsyncContext*, void* r, void* privdata) {
          auto* self = static_cast<ClusterMap*>(privdata);
          const auto* reply = static_cast<const redisReply*>(r);
          if (reply == nullptr || self->stopped_) {
            return;
          }
          if (const std::string problem = self->keys_.learn(reply); !problem.empty()) {
            log::host().warn(
                "redis: cannot learn the commands' keys from cluster node {} ({}): commands not known "
                "to evhost go to any node and follow its redirect",
                self->query_->where(), problem);
          }
        },
        this);
  }
  const char* argv[] = {"CLUSTER", use_slots_ ? "SLOTS" : "SHARDS"};
  const size_t lens[] = {7, use_slots_ ? size_t{5} : size_t{6}};
  asking_ = query_->command(
      2, argv, lens,
      [](redisAsyncContext*, void* r, void* privdata) {
        auto* self = static_cast<ClusterMap*>(privdata);
        const auto* reply = static_cast<const redisReply*>(r);
        self->asking_ = false;
        if (reply == nullptr || self->stopped_) {
          return;  // the connection went; its next on_ready asks again
        }
        if (self->use_slots_) {
          self->onSlots(reply);
        } else {
          self->onShards(reply);
        }
      },
      this);
}

void ClusterMap::onShards(const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR && unknownSubcommand(reply)) {
    use_slots_ = true;  // Redis before 7.0
    ask();
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    failedToLoad("CLUSTER SHARDS: " + errorText(reply));
    return;
  }
  std::string error;
  const auto transport = options_.endpoint.tls ? SlotMap::Transport::Tls : SlotMap::Transport::Plain;
  if (!map_.loadShards(reply, error, transport)) {
    failedToLoad(error);
    return;
  }
  loaded("CLUSTER SHARDS");
}

void ClusterMap::onSlots(const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR) {
    failedToLoad("CLUSTER SLOTS: " + errorText(reply));
    return;
  }
  std::string error;
  if (!map_.loadSlots(reply, error)) {
    failedToLoad(error);
    return;
  }
  loaded("CLUSTER SLOTS");
}

void ClusterMap::loaded(const std::string& how) {
  refreshes_ok_.inc();
  const std::string from = query_->where();
  answered_by_ = query_->address().host;
  cacheMasters();
  last_moves_.clear();
  const std::vector<Address> now = masters_;
  rotation_->learn(now);
  if (!last_problem_.empty() || now != logged_masters_) {
    logged_masters_ = now;
    std::string list;
    for (const Address& a : now) {
      list += (list.empty() ? "" : ", ") + a.describe();
    }
    log::host().info("redis: cluster slot map from {} ({}): {} master(s): {}{}", from, how, now.size(), list,
                     map_.complete() ? "" : "; some slots have no master (the cluster is not ok)");
  }
  last_problem_.clear();
  notify();
  if (ask_again_) {
    ask_again_ = false;
    ask();
  }
}

void ClusterMap::failedToLoad(const std::string& problem) {
  refreshes_failed_.inc();
  ask_again_ = false;  // the next node's on_ready asks
  if (problem != last_problem_) {
    log::host().error("redis: cluster node {} gave no slot map ({}); asking the next node", query_->where(), problem);
    last_problem_ = problem;
  }
  query_->reconnect("gave no slot map: " + problem);  // the next node
}

SlotAddress::SlotAddress(std::shared_ptr<ClusterMap> map, uint16_t slot)
    : map_(std::move(map)), slot_(slot), last_(map_->ownerOf(slot)) {
  watch_id_ = map_->watch([this] {
    const Address now = map_->ownerOf(slot_);
    if (now != last_ && !now.host.empty()) {
      last_ = now;
      notifyChanged();  // the connection moves at once
    }
  });
}

SlotAddress::~SlotAddress() { map_->unwatch(watch_id_); }

Address SlotAddress::current() {
  last_ = map_->ownerOf(slot_);
  return last_;
}

void SlotAddress::failed(const Address& address, const std::string& why) {
  map_->refreshSoon("slot " + std::to_string(slot_) + "'s master " + address.describe() + " failed: " + why);
}

bool SlotAddress::redirected(std::string_view error, const Address& at) {
  std::optional<Redirect> r = parseRedirect(error);
  if (!r) {
    return false;
  }
  if (r->kind == Redirect::Moved) {
    if (r->to.host.empty()) {
      r->to.host = at.host;  // the node does not know its own address
    }
    if (r->to != at) {
      map_->moved(r->slot, r->to);
    }
  }
  return true;
}

std::string SlotAddress::waitingFor() const {
  const std::string problem = map_->problem();
  return "the cluster's slot map names no master for slot " + std::to_string(slot_) +
         (problem.empty() ? std::string() : " (" + problem + ")");
}

}  // namespace evh::redis
