// A Redis Cluster's live changes for tests (redis_cluster.h): slot
// migrations the documented way, and a master's death and its replica's
// promotion.
#include "support/redis_cluster.h"

#include <stdexcept>

namespace evh::test {
namespace {

// Throws unless `r` is +OK.
void expectOk(const ReplyPtr& r, const std::string& what) {
  if (!r || r->type != REDIS_REPLY_STATUS || replyText(r) != "OK") {
    throw std::runtime_error(what + ": " + replyText(r));
  }
}

}  // namespace

void RedisCluster::beginMigration(uint16_t slot, RedisServer& from, RedisServer& to) {
  const std::string s = std::to_string(slot);
  expectOk(command(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", id(from)}), "SETSLOT " + s + " IMPORTING");
  expectOk(command(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", id(to)}), "SETSLOT " + s + " MIGRATING");
}

size_t RedisCluster::moveKeys(uint16_t slot, RedisServer& from, RedisServer& to, const std::vector<std::string>& keys) {
  size_t moved = 0;
  auto migrate = [&](const std::vector<std::string>& batch) {
    std::vector<std::string> argv = {"MIGRATE", "127.0.0.1", std::to_string(to.port()), "", "0", "5000", "KEYS"};
    argv.insert(argv.end(), batch.begin(), batch.end());
    expectOk(command(from, argv), "MIGRATE of slot " + std::to_string(slot));
    moved += batch.size();
  };
  if (!keys.empty()) {
    migrate(keys);
    return moved;
  }
  for (;;) {
    ReplyPtr r = command(from, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100"});
    if (!r || r->type != REDIS_REPLY_ARRAY) {
      throw std::runtime_error("CLUSTER GETKEYSINSLOT: " + replyText(r));
    }
    if (r->elements == 0) {
      return moved;
    }
    std::vector<std::string> batch;
    for (size_t i = 0; i < r->elements; ++i) {
      batch.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    migrate(batch);
  }
}

void RedisCluster::finishMigration(uint16_t slot, RedisServer& from, RedisServer& to) {
  // The target first, so that it owns the slot before the source stops
  // redirecting there; then the source; then every other master.
  const std::string s = std::to_string(slot);
  const std::vector<RedisServer*> all = masters();
  std::vector<RedisServer*> order = {&to, &from};
  for (RedisServer* m : all) {
    if (m != &to && m != &from) {
      order.push_back(m);
    }
  }
  for (RedisServer* m : order) {
    expectOk(command(*m, {"CLUSTER", "SETSLOT", s, "NODE", id(to)}),
             "SETSLOT " + s + " NODE on " + std::to_string(m->port()));
  }
  waitStableOrThrow(false, std::chrono::seconds(30), "the nodes never agreed on slot " + s + "'s new owner");
}

void RedisCluster::migrateSlot(uint16_t slot, RedisServer& from, RedisServer& to) {
  beginMigration(slot, from, to);
  moveKeys(slot, from, to);
  finishMigration(slot, from, to);
}

void RedisCluster::killMaster(RedisServer& master) {
  replica_of_killed_[master.port()] = replicaOf(master).port();
  master.kill();
}

RedisServer& RedisCluster::waitForFailover(const RedisServer& old, std::chrono::milliseconds timeout) {
  const auto it = replica_of_killed_.find(old.port());
  if (it == replica_of_killed_.end()) {
    throw std::runtime_error("waitForFailover: node " + std::to_string(old.port()) + " was not killed by killMaster");
  }
  RedisServer& promoted = byPort(it->second);
  const bool done = eventually(
      [&] {
        if (!stable(false)) {
          return false;
        }
        for (const NodeLine& l : view()) {
          if (l.port == promoted.port() && l.isMaster() && !l.slots.empty()) {
            return true;
          }
        }
        why_ = "node " + std::to_string(promoted.port()) + " owns no slots yet";
        return false;
      },
      timeout);
  if (!done) {
    throw std::runtime_error("no failover from node " + std::to_string(old.port()) + ": " + why_);
  }
  return promoted;
}

}  // namespace evh::test
