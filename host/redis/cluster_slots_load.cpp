// SlotMap::loadShards and loadSlots (cluster_slots.h): CLUSTER SHARDS and
// CLUSTER SLOTS replies read as hostile input -- every type, count and range
// checked before use, every refusal saying what and where.
#include "redis/cluster_slots.h"

#include <hiredis/hiredis.h>

namespace evh::redis {
namespace {

bool isText(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
         (r->str != nullptr || r->len == 0);
}

std::string_view text(const redisReply* r) {
  return r->len == 0 ? std::string_view() : std::string_view(r->str, r->len);
}

const redisReply* element(const redisReply* array, size_t i) {
  return array->type == REDIS_REPLY_ARRAY && i < array->elements && array->element != nullptr ? array->element[i]
                                                                                              : nullptr;
}

// A flat key/value array, RESP2's stand-in for a map. Later keys than the
// ones we know are ignored (Redis adds fields: "hostname" came in 7.0).
class Fields {
 public:
  // False, with `what`, unless `r` is an array of an even count with text
  // keys.
  bool read(const redisReply* r, std::string& what) {
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY) {
      what = "not an array";
      return false;
    }
    if (r->elements % 2 != 0) {
      what = "an odd number of elements (" + std::to_string(r->elements) + "), not key/value pairs";
      return false;
    }
    for (size_t i = 0; i < r->elements; i += 2) {
      if (!isText(element(r, i))) {
        what = "element " + std::to_string(i) + " is not a key";
        return false;
      }
    }
    r_ = r;
    return true;
  }
  // The value of the first `key`, or nullptr.
  const redisReply* get(std::string_view key) const {
    for (size_t i = 0; i < r_->elements; i += 2) {
      if (text(r_->element[i]) == key) {
        return r_->element[i + 1];
      }
    }
    return nullptr;
  }

 private:
  const redisReply* r_ = nullptr;
};

bool readPort(const redisReply* r, const char* name, uint16_t& out, std::string& what) {
  if (r == nullptr || r->type != REDIS_REPLY_INTEGER) {
    what = std::string(name) + " is not an integer";
    return false;
  }
  if (r->integer <= 0 || r->integer > 65535) {
    what = std::string(name) + " " + std::to_string(r->integer) + " is out of range (1 to 65535)";
    return false;
  }
  out = static_cast<uint16_t>(r->integer);
  return true;
}

bool readSlot(const redisReply* r, const char* name, uint16_t& out, std::string& what) {
  if (r == nullptr || r->type != REDIS_REPLY_INTEGER) {
    what = std::string(name) + " is not an integer";
    return false;
  }
  if (r->integer < 0 || r->integer >= kClusterSlots) {
    what = std::string(name) + " " + std::to_string(r->integer) + " is out of range (0 to 16383)";
    return false;
  }
  out = static_cast<uint16_t>(r->integer);
  return true;
}

// The host to dial from a node's preferred endpoint (nullptr: none given)
// and its ip (nullptr: none given). An empty or null endpoint is
// unknown-endpoint: the host stays "" for the caller to fill in. "?" means a
// hostname was preferred but none announced: the ip is the one way left.
bool chooseHost(const redisReply* endpoint, const redisReply* ip, std::string& host, std::string& what) {
  if (ip != nullptr && !isText(ip)) {
    what = "ip is not a string";
    return false;
  }
  if (endpoint != nullptr && endpoint->type != REDIS_REPLY_NIL && !isText(endpoint)) {
    what = "endpoint is not a string";
    return false;
  }
  if (endpoint != nullptr && (endpoint->type == REDIS_REPLY_NIL || text(endpoint) != "?")) {
    host = endpoint->type == REDIS_REPLY_NIL ? std::string() : std::string(text(endpoint));
    return true;
  }
  if (ip == nullptr || text(ip).empty() || text(ip) == "?") {
    what = endpoint != nullptr ? "endpoint is \"?\" (no hostname announced) and no ip is given" : "no endpoint or ip";
    return false;
  }
  host = std::string(text(ip));
  return true;
}

// A map under construction: committed only once the whole reply is read.
struct Building {
  std::vector<SlotMap::Node> nodes;
  std::vector<uint16_t> owner = std::vector<uint16_t>(kClusterSlots, 0xFFFF);

  // Gives slots first..last to nodes[node]; false, with `what`, when one of
  // them has an owner already (two shards claiming it).
  bool assign(uint16_t first, uint16_t last, size_t node, std::string& what) {
    for (uint32_t s = first; s <= last; ++s) {
      if (owner[s] != 0xFFFF) {
        what = "slot " + std::to_string(s) + " is claimed twice";
        return false;
      }
      owner[s] = static_cast<uint16_t>(node);
    }
    return true;
  }
};

// A load names at most one master per slot's worth (a real cluster has a
// few hundred at most), so that indices fit in a uint16_t beside the
// MOVED-made nodes (SlotMap::moved) and 0xFFFF still means no owner.
constexpr size_t kMaxNodes = kClusterSlots;

// One node of a CLUSTER SHARDS shard; `role` is set to "master" or "replica".
bool shardNode(const redisReply* r, SlotMap::Transport transport, SlotMap::Replica& node, std::string& role,
               std::string& what) {
  Fields fields;
  if (!fields.read(r, what)) {
    return false;
  }
  const redisReply* id = fields.get("id");
  if (id == nullptr || !isText(id) || text(id).empty()) {
    what = id == nullptr ? "no id" : !isText(id) ? "id is not a string" : "id is empty";
    return false;
  }
  node.id = std::string(text(id));
  const redisReply* role_r = fields.get("role");
  if (role_r == nullptr || !isText(role_r) || (text(role_r) != "master" && text(role_r) != "replica")) {
    what = role_r == nullptr ? "no role" : "role is not \"master\" or \"replica\"";
    return false;
  }
  role = std::string(text(role_r));
  // A cluster with tls-cluster yes gives "tls-port", and "port" too when
  // the node also listens in plain text; without it, only "port".
  const redisReply* port = fields.get("port");
  const redisReply* tls_port = fields.get("tls-port");
  if (transport == SlotMap::Transport::Tls && tls_port != nullptr) {
    if (!readPort(tls_port, "tls-port", node.address.port, what)) {
      return false;
    }
  } else if (port != nullptr) {
    if (!readPort(port, "port", node.address.port, what)) {
      return false;
    }
  } else {
    what = tls_port != nullptr ? "no port, only a tls-port (the cluster wants TLS)" : "no port";
    return false;
  }
  if (!chooseHost(fields.get("endpoint"), fields.get("ip"), node.address.host, what)) {
    return false;
  }
  const redisReply* health = fields.get("health");
  if (health != nullptr && !isText(health)) {
    what = "health is not a string";
    return false;
  }
  node.health = health != nullptr ? std::string(text(health)) : std::string();
  return true;
}

// One shard of CLUSTER SHARDS into `b`.
bool shard(const redisReply* r, SlotMap::Transport transport, Building& b, std::string& what) {
  Fields fields;
  if (!fields.read(r, what)) {
    return false;
  }
  const redisReply* slots = fields.get("slots");
  const redisReply* nodes = fields.get("nodes");
  if (slots == nullptr || slots->type != REDIS_REPLY_ARRAY) {
    what = slots == nullptr ? "no slots" : "slots is not an array";
    return false;
  }
  if (slots->elements % 2 != 0) {
    what = "slots has an odd number of elements (" + std::to_string(slots->elements) + "), not start/end pairs";
    return false;
  }
  if (nodes == nullptr || nodes->type != REDIS_REPLY_ARRAY) {
    what = nodes == nullptr ? "no nodes" : "nodes is not an array";
    return false;
  }
  SlotMap::Node master;
  std::vector<SlotMap::Replica> replicas;
  for (size_t j = 0; j < nodes->elements; ++j) {
    SlotMap::Replica node;
    std::string role;
    if (!shardNode(element(nodes, j), transport, node, role, what)) {
      what = "node " + std::to_string(j) + ": " + what;
      return false;
    }
    if (role == "replica") {
      replicas.push_back(std::move(node));
    } else if (master.id.empty()) {
      master.id = std::move(node.id);
      master.address = std::move(node.address);
    } else {
      what = "node " + std::to_string(j) + ": a second master";
      return false;
    }
  }
  if (master.id.empty()) {
    if (slots->elements > 0) {
      what = "slots but no master";
      return false;
    }
    return true;  // replicas of nobody: nothing to route to
  }
  if (b.nodes.size() >= kMaxNodes) {
    what = "more than 16384 masters";
    return false;
  }
  master.replicas = std::move(replicas);
  b.nodes.push_back(std::move(master));
  for (size_t k = 0; k < slots->elements; k += 2) {
    uint16_t first = 0;
    uint16_t last = 0;
    if (!readSlot(element(slots, k), "slot range start", first, what) ||
        !readSlot(element(slots, k + 1), "slot range end", last, what)) {
      what = "slots: " + what;
      return false;
    }
    if (first > last) {
      what = "slots: range " + std::to_string(first) + "-" + std::to_string(last) + " ends before it starts";
      return false;
    }
    if (!b.assign(first, last, b.nodes.size() - 1, what)) {
      return false;
    }
  }
  return true;
}

// One node of a CLUSTER SLOTS range: [endpoint, port, id?, metadata?].
bool slotsNode(const redisReply* r, SlotMap::Replica& node, std::string& what) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
    what = "not an array of at least an endpoint and a port";
    return false;
  }
  if (!readPort(element(r, 1), "port", node.address.port, what)) {
    return false;
  }
  const redisReply* id = element(r, 2);
  if (id != nullptr && !isText(id)) {
    what = "id is not a string";
    return false;
  }
  node.id = id != nullptr ? std::string(text(id)) : std::string();
  const redisReply* ip = nullptr;
  if (const redisReply* metadata = element(r, 3); metadata != nullptr) {
    Fields fields;
    if (!fields.read(metadata, what)) {
      what = "metadata: " + what;
      return false;
    }
    ip = fields.get("ip");
  }
  return chooseHost(element(r, 0), ip, node.address.host, what);
}

bool sameNode(const std::string& id, const Address& address, const std::string& other_id,
              const Address& other_address) {
  return !id.empty() || !other_id.empty() ? id == other_id : address == other_address;
}

// One range of CLUSTER SLOTS into `b`: a master seen in an earlier range is
// the same node (by id, or by address when there is none).
bool slotsRange(const redisReply* r, Building& b, std::string& what) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
    what = "not an array of at least a start, an end and a master";
    return false;
  }
  uint16_t first = 0;
  uint16_t last = 0;
  if (!readSlot(element(r, 0), "start", first, what) || !readSlot(element(r, 1), "end", last, what)) {
    return false;
  }
  if (first > last) {
    what = "range " + std::to_string(first) + "-" + std::to_string(last) + " ends before it starts";
    return false;
  }
  SlotMap::Replica master;
  if (!slotsNode(element(r, 2), master, what)) {
    what = "master: " + what;
    return false;
  }
  size_t index = 0;
  while (index < b.nodes.size() && !sameNode(master.id, master.address, b.nodes[index].id, b.nodes[index].address)) {
    ++index;
  }
  if (index == b.nodes.size()) {
    if (b.nodes.size() >= kMaxNodes) {
      what = "more than 16384 masters";
      return false;
    }
    b.nodes.push_back(SlotMap::Node{master.id, master.address, {}});
  }
  SlotMap::Node& owner = b.nodes[index];
  for (size_t k = 3; k < r->elements; ++k) {
    SlotMap::Replica replica;
    if (!slotsNode(element(r, k), replica, what)) {
      what = "replica " + std::to_string(k - 3) + ": " + what;
      return false;
    }
    bool known = false;
    for (const auto& seen : owner.replicas) {
      known = known || sameNode(replica.id, replica.address, seen.id, seen.address);
    }
    if (!known) {
      owner.replicas.push_back(std::move(replica));
    }
  }
  return b.assign(first, last, index, what);
}

// The reply as a whole: an array, or an error reply worth quoting.
bool topLevel(const redisReply* reply, std::string& what) {
  if (reply == nullptr) {
    what = "no reply";
    return false;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    what = "error reply: " + (reply->str != nullptr ? std::string(reply->str, reply->len) : std::string());
    return false;
  }
  if (reply->type != REDIS_REPLY_ARRAY) {
    what = "not an array";
    return false;
  }
  return true;
}

}  // namespace

bool SlotMap::loadShards(const redisReply* reply, std::string& error, Transport transport) {
  std::string what;
  Building b;
  if (!topLevel(reply, what)) {
    error = "CLUSTER SHARDS: " + what;
    return false;
  }
  for (size_t i = 0; i < reply->elements; ++i) {
    if (!shard(element(reply, i), transport, b, what)) {
      error = "CLUSTER SHARDS: shard " + std::to_string(i) + ": " + what;
      return false;
    }
  }
  nodes_ = std::move(b.nodes);
  owner_ = std::move(b.owner);
  named_ = nodes_.size();
  ++version_;
  return true;
}

bool SlotMap::loadSlots(const redisReply* reply, std::string& error) {
  std::string what;
  Building b;
  if (!topLevel(reply, what)) {
    error = "CLUSTER SLOTS: " + what;
    return false;
  }
  for (size_t i = 0; i < reply->elements; ++i) {
    if (!slotsRange(element(reply, i), b, what)) {
      error = "CLUSTER SLOTS: range " + std::to_string(i) + ": " + what;
      return false;
    }
  }
  nodes_ = std::move(b.nodes);
  owner_ = std::move(b.owner);
  named_ = nodes_.size();
  ++version_;
  return true;
}

}  // namespace evh::redis
