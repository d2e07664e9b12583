// ClusterRouter: commands to the master owning their key, redirects
// followed. See cluster_router.h.
#include "redis/cluster_router.h"

#include "common/log.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <string_view>
#include <utility>

namespace evh::redis {
namespace {

// A master's fixed address; its failures make the map be asked for again
// (a dead master is what a failover replaces).
class NodeAddress final : public AddressProvider {
 public:
  NodeAddress(std::shared_ptr<ClusterMap> map, Address address) : map_(std::move(map)), address_(std::move(address)) {}
  Address current() override { return address_; }
  void failed(const Address& address, const std::string& why) override {
    map_->refreshSoon("cluster node " + address.describe() + " failed: " + why);
  }

 private:
  std::shared_ptr<ClusterMap> map_;
  Address address_;
};

bool startsWith(const redisReply* r, std::string_view prefix) {
  return r->len >= prefix.size() && std::string_view(r->str, prefix.size()) == prefix;
}

}  // namespace

struct ClusterRouter::Node {
  Address address;
  std::unique_ptr<Connection> conn;
};

struct ClusterRouter::Request {
  ClusterRouter* router = nullptr;
  std::string args;  // every argument, back to back
  std::vector<size_t> lens;
  bool has_slot = false;
  uint16_t slot = 0;
  ReplyFn fn;
  int redirects = 0;
  uint64_t deadline_ms = 0;  // while waiting: when to give up (0: not waiting yet)
  Address sent_to;           // the node the command last went to
  Address ask_to;            // an ASK's target: the next try goes there, after ASKING

  void pointers(std::vector<const char*>& out) const {
    out.clear();
    const char* p = args.data();
    for (size_t n : lens) {
      out.push_back(p);
      p += n;
    }
  }
};

ClusterRouter::ClusterRouter(uv_loop_t* loop, Endpoint endpoint, std::shared_ptr<ClusterMap> map,
                             std::function<void()> on_ready)
    : loop_(loop), endpoint_(std::move(endpoint)), map_(std::move(map)), on_ready_(std::move(on_ready)) {
  endpoint_.require_master = false;
  endpoint_.db = 0;
  retry_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  retry_timer_->data = this;
  prune_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  prune_timer_->data = this;
}

ClusterRouter::~ClusterRouter() { stop(); }

void ClusterRouter::start() {
  if (started_ || stopping_) {
    return;
  }
  started_ = true;
  watch_id_ = map_->watch([this] { onMapChanged(); });
  onMapChanged();  // a map known already
}

void ClusterRouter::stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  map_->unwatch(watch_id_);
  std::deque<std::unique_ptr<Request>> waiting;
  waiting.swap(waiting_);
  for (auto& req : waiting) {
    finish(std::move(req), EVH_ERR_CANCELLED, nullptr);
  }
  for (auto& [_, node] : nodes_) {
    node->conn->stop();  // sent commands' callbacks run now: cancelled
  }
  nodes_.clear();
  retry_timer_.close();
  prune_timer_.close();
  asked_total_ = {};
  tryagain_total_ = {};
  scope_.reset();
}

void ClusterRouter::reconfigure(Endpoint endpoint) {
  endpoint_ = std::move(endpoint);
  endpoint_.require_master = false;
  endpoint_.db = 0;
  for (auto& [_, node] : nodes_) {
    Endpoint e = endpoint_;
    e.host = node->address.host;
    e.port = node->address.port;
    e.addresses = std::make_shared<NodeAddress>(map_, node->address);
    node->conn->reconfigure(std::move(e));
  }
}

void ClusterRouter::exportStats(ops::Registry& stats) {
  stats_ = &stats;
  scope_ = std::make_unique<ops::Scope>(stats);
  asked_total_ = scope_->counter("evhost_cluster_ask_total", "ASK redirects followed (a key of a slot being migrated)");
  tryagain_total_ = scope_->counter("evhost_cluster_tryagain_total",
                                    "TRYAGAIN answers (a multi-key command met a slot being migrated): tried again");
  for (auto& [_, node] : nodes_) {
    node->conn->exportStats(stats);
  }
}

bool ClusterRouter::readyFor(std::string_view key) const {
  if (!map_->known()) {
    return false;
  }
  const auto it = nodes_.find(map_->ownerOf(keySlot(key)).describe());
  return it != nodes_.end() && it->second->conn->ready();
}

bool ClusterRouter::anyUp() const {
  return std::any_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n.second->conn->ready(); });
}

bool ClusterRouter::ready() const {
  if (!map_->known()) {
    return false;
  }
  const std::vector<Address>& masters = map_->masters();
  if (masters.empty()) {
    return false;
  }
  return std::all_of(masters.begin(), masters.end(), [this](const Address& a) {
    const auto it = nodes_.find(a.describe());
    return it != nodes_.end() && it->second->conn->ready();
  });
}

std::vector<const Connection*> ClusterRouter::connections() const {
  std::vector<const Connection*> out;
  for (const auto& [_, node] : nodes_) {
    out.push_back(node->conn.get());
  }
  std::sort(out.begin(), out.end(), [](const Connection* a, const Connection* b) { return a->name() < b->name(); });
  return out;
}

ClusterRouter::Node& ClusterRouter::nodeFor(const Address& address) {
  const std::string name = address.describe();
  auto it = nodes_.find(name);
  if (it != nodes_.end()) {
    return *it->second;
  }
  auto node = std::make_unique<Node>();
  node->address = address;
  Endpoint e = endpoint_;
  e.host = address.host;
  e.port = address.port;
  e.addresses = std::make_shared<NodeAddress>(map_, address);
  Connection::Handlers h;
  h.on_ready = [this] {
    if (!waiting_.empty()) {
      onRetryTick();  // what waited for this node goes now
    }
    if (ready() && on_ready_) {
      on_ready_();
    }
  };
  node->conn =
      std::make_unique<Connection>(loop_, std::move(e), "cluster " + name, Connection::Mode::Commands, std::move(h));
  if (stats_ != nullptr) {
    node->conn->exportStats(*stats_);
  }
  node->conn->start();
  return *nodes_.emplace(name, std::move(node)).first->second;
}

Address ClusterRouter::routeOf(const Request& req) const {
  if (req.has_slot) {
    return map_->ownerOf(req.slot);
  }
  // No key: any master, one whose connection is up if there is one.
  const std::vector<Address>& masters = map_->masters();
  for (const Address& a : masters) {
    const auto it = nodes_.find(a.describe());
    if (it != nodes_.end() && it->second->conn->ready()) {
      return a;
    }
  }
  return masters.empty() ? Address{} : masters.front();
}

bool ClusterRouter::send(int argc, const char* const* argv, const size_t* lens, ReplyFn fn) {
  if (stopping_ || !started_ || argc <= 0 || !map_->known()) {
    return false;
  }
  auto req = std::make_unique<Request>();
  req->router = this;
  size_t total = 0;
  for (int i = 0; i < argc; ++i) {
    total += lens[i];
  }
  req->args.reserve(total);
  req->lens.reserve(static_cast<size_t>(argc));
  for (int i = 0; i < argc; ++i) {
    req->args.append(argv[i], lens[i]);
    req->lens.push_back(lens[i]);
  }
  const int key = map_->keys().keyIndex(argc, argv, lens);
  if (key >= 0) {
    req->has_slot = true;
    req->slot = keySlot(std::string_view(argv[key], lens[key]));
  }
  const Address to = routeOf(*req);
  if (to.host.empty()) {
    return false;
  }
  Node& node = nodeFor(to);
  req->fn = std::move(fn);
  ++pending_;
  if (!node.conn->ready() || !dispatch(req, node, false)) {
    later(std::move(req));  // a master just named (a failover): its connection is coming
  }
  return true;
}

bool ClusterRouter::dispatch(std::unique_ptr<Request>& req, Node& node, bool asking) {
  if (asking) {
    const char* argv[] = {"ASKING"};
    const size_t lens[] = {6};
    // Its +OK is dropped; the command right behind it on the same
    // connection is the one the target then takes.
    if (!node.conn->command(
            1, argv, lens, [](redisAsyncContext*, void*, void*) {}, nullptr)) {
      return false;
    }
  }
  std::vector<const char*> ptrs;
  req->pointers(ptrs);
  if (!node.conn->command(static_cast<int>(ptrs.size()), ptrs.data(), req->lens.data(), &ClusterRouter::onReply,
                          req.get())) {
    return false;
  }
  req->sent_to = node.address;
  req.release();  // hiredis's until onReply
  return true;
}

void ClusterRouter::onReply(redisAsyncContext* /*ac*/, void* reply, void* privdata) {
  std::unique_ptr<Request> req(static_cast<Request*>(privdata));
  ClusterRouter* self = req->router;
  self->handle(std::move(req), static_cast<const redisReply*>(reply));
}

void ClusterRouter::handle(std::unique_ptr<Request> req, const redisReply* reply) {
  if (reply == nullptr) {
    // The connection went (or stop()): whether the node ran the command is
    // unknown, so it is not sent again -- as on a single node.
    finish(std::move(req), stopping_ ? EVH_ERR_CANCELLED : EVH_ERR_UNAVAILABLE, nullptr);
    return;
  }
  if (reply->type != REDIS_REPLY_ERROR || stopping_) {
    finish(std::move(req), EVH_OK, reply);
    return;
  }
  if (startsWith(reply, "TRYAGAIN")) {
    tryagain_total_.inc();
    later(std::move(req));
    return;
  }
  std::optional<Redirect> redirect = parseRedirect(std::string_view(reply->str, reply->len));
  if (!redirect || ++req->redirects > kMaxRedirects) {
    finish(std::move(req), EVH_OK, reply);  // the caller's error (the last redirect, after too many)
    return;
  }
  if (redirect->to.host.empty()) {
    redirect->to.host = req->sent_to.host;  // the node does not know its own address
  }
  if (redirect->kind == Redirect::Moved) {
    req->ask_to = Address{};
    map_->moved(redirect->slot, redirect->to);
  } else {
    asked_total_.inc();
    req->ask_to = redirect->to;
  }
  Node& node = nodeFor(redirect->to);
  if (!node.conn->ready() || !dispatch(req, node, redirect->kind == Redirect::Ask)) {
    later(std::move(req));
  }
}

void ClusterRouter::later(std::unique_ptr<Request> req) {
  const uint64_t now = uv_now(loop_);
  if (req->deadline_ms == 0) {
    req->deadline_ms = now + endpoint_.connect_timeout_ms;
  }
  if (stopping_) {
    finish(std::move(req), EVH_ERR_CANCELLED, nullptr);
    return;
  }
  if (now >= req->deadline_ms) {
    finish(std::move(req), EVH_ERR_UNAVAILABLE, nullptr);
    return;
  }
  waiting_.push_back(std::move(req));
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(retry_timer_.get())) == 0) {
    uv_timer_start(
        retry_timer_.get(), [](uv_timer_t* t) { static_cast<ClusterRouter*>(t->data)->onRetryTick(); }, kRetryTickMs,
        kRetryTickMs);
  }
}

void ClusterRouter::onRetryTick() {
  std::deque<std::unique_ptr<Request>> waiting;
  waiting.swap(waiting_);
  for (auto& req : waiting) {
    const bool asking = !req->ask_to.host.empty();
    const Address to = asking ? req->ask_to : routeOf(*req);
    if (!to.host.empty()) {
      Node& node = nodeFor(to);
      if (node.conn->ready() && dispatch(req, node, asking)) {
        continue;
      }
    }
    later(std::move(req));
  }
  if (waiting_.empty()) {
    uv_timer_stop(retry_timer_.get());
  }
}

void ClusterRouter::onMapChanged() {
  if (stopping_) {
    return;
  }
  for (const Address& a : map_->masters()) {
    nodeFor(a);  // connected before the first command needs it
  }
  // Off this callback: a MOVED patches the map from inside a node's reply.
  uv_timer_start(
      prune_timer_.get(), [](uv_timer_t* t) { static_cast<ClusterRouter*>(t->data)->prune(); }, 0, 0);
}

void ClusterRouter::prune() {
  // A node no map names any more, whose connection is down (a master that
  // failed over, a node removed) and that no waiting command is for: its
  // connection goes. One that is up stays (a master whose slots all moved
  // away answers MOVED to what it had; an ASK's target may own nothing yet).
  const std::vector<Address>& masters = map_->masters();
  std::vector<Address> wanted;
  for (const auto& req : waiting_) {
    wanted.push_back(req->ask_to.host.empty() ? routeOf(*req) : req->ask_to);
  }
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    const Address& a = it->second->address;
    const bool named = std::find(masters.begin(), masters.end(), a) != masters.end() ||
                       std::find(wanted.begin(), wanted.end(), a) != wanted.end();
    if (!named && !it->second->conn->ready()) {
      log::host().info("redis: cluster node {} is no longer a master in the slot map: its connection closes",
                       it->first);
      it->second->conn->stop();
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
}

void ClusterRouter::finish(std::unique_ptr<Request> req, evh_status status, const redisReply* reply) {
  --pending_;
  const ReplyFn fn = std::move(req->fn);
  req.reset();
  fn(status, reply);
}

}  // namespace evh::redis
