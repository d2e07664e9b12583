// A master, a replica and redis-sentinel processes on free loopback ports.
#include "support/sentinel_set.h"

#include "support/tls_certs.h"

#include <stdexcept>
#include <string>
#include <thread>

namespace evh::test {
namespace {

std::string text(const ReplyPtr& r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
             ? std::string(r->str, r->len)
             : std::string();
}

// A fresh connection per question: a cached one may point at a node just
// killed, and RedisServer::command throws then.
ReplyPtr ask(const RedisServer& server, const std::vector<std::string>& argv) {
  RedisConn c(redisConnect("127.0.0.1", server.port()));
  if (!c || c->err != 0) {
    return nullptr;
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(
      static_cast<redisReply*>(redisCommandArgv(c.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data())));
}

bool isMaster(const RedisServer& server) {
  ReplyPtr r = ask(server, {"ROLE"});
  return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
         std::string(r->element[0]->str, r->element[0]->len) == "master";
}

}  // namespace

SentinelSet::SentinelSet(size_t sentinels) {
  Options o;
  o.sentinels = sentinels;
  start(o);
}

SentinelSet::SentinelSet(const Options& options) { start(options); }

void SentinelSet::start(const Options& options) {
  const TlsCerts* certs = options.tls;
  const size_t sentinels = options.sentinels;
  // With TLS: a TLS port beside the plaintext one, and "tls-replication":
  // a replica links to its master, and a sentinel to every node and to the
  // other sentinels, over TLS -- each then announces its TLS port.
  std::vector<uint16_t> tls_ports;
  auto withTls = [&](std::vector<std::string> args) {
    if (certs != nullptr) {
      tls_ports.push_back(freePort());
      std::vector<std::string> more = certs->redisArgs(tls_ports.back(), false);
      more.insert(more.end(), {"--tls-replication", "yes"});
      args.insert(args.end(), more.begin(), more.end());
    }
    return args;
  };
  auto made = [&](std::unique_ptr<RedisServer> server) -> std::unique_ptr<RedisServer> {
    if (certs != nullptr) {
      tls_ports_[server.get()] = tls_ports.back();
    }
    return server;
  };
  nodes_.push_back(made(std::make_unique<RedisServer>(withTls({}))));
  const std::string master_port = std::to_string(certs != nullptr ? tls_ports_[nodes_[0].get()] : nodes_[0]->port());
  nodes_.push_back(made(std::make_unique<RedisServer>(withTls({"--replicaof", "127.0.0.1", master_port}))));
  if (!eventually([&] {
        return text(ask(*nodes_[1], {"INFO", "replication"})).find("master_link_status:up") != std::string::npos;
      })) {
    throw std::runtime_error("the replica never linked up with its master");
  }
  const size_t quorum = sentinels >= 2 ? 2 : 1;
  const std::string conf = std::string("sentinel monitor ") + kMaster + " 127.0.0.1 " + master_port + " " +
                           std::to_string(quorum) + "\n" + "sentinel down-after-milliseconds " + kMaster + " 1000\n" +
                           "sentinel failover-timeout " + kMaster + " 10000\n" + "sentinel parallel-syncs " + kMaster +
                           " 1\n" + options.sentinel_conf;
  for (size_t i = 0; i < sentinels; ++i) {
    sentinels_.push_back(made(std::make_unique<RedisServer>(withTls({"--sentinel"}), conf)));
  }
  // A failover needs the replica known to every sentinel (their INFO of the
  // master) and, on a kill, the sentinels known to each other (hello
  // messages every 2 s) for the quorum.
  const bool ready = eventually(
      [&] {
        for (const auto& s : sentinels_) {
          ReplyPtr replicas = ask(*s, {"SENTINEL", "REPLICAS", kMaster});
          ReplyPtr others = ask(*s, {"SENTINEL", "SENTINELS", kMaster});
          if (!replicas || replicas->type != REDIS_REPLY_ARRAY || replicas->elements < 1 || !others ||
              others->type != REDIS_REPLY_ARRAY || others->elements + 1 < sentinels_.size()) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(30));
  if (!ready) {
    throw std::runtime_error("the sentinels never learnt of the replica and each other");
  }
}

std::string SentinelSet::nodesYaml() const {
  std::string out = "[";
  for (size_t i = 0; i < sentinels_.size(); ++i) {
    const uint16_t port = tls_ports_.empty() ? sentinels_[i]->port() : tlsPort(*sentinels_[i]);
    out += (i == 0 ? "" : ", ") + std::string("127.0.0.1:") + std::to_string(port);
  }
  return out + "]";
}

uint16_t SentinelSet::tlsPort(const RedisServer& server) const {
  auto it = tls_ports_.find(&server);
  return it == tls_ports_.end() ? 0 : it->second;
}

uint16_t SentinelSet::masterPort() {
  for (const auto& s : sentinels_) {
    if (!s->running()) {
      continue;
    }
    ReplyPtr r = ask(*s, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", kMaster});
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
      return static_cast<uint16_t>(std::stoi(std::string(r->element[1]->str, r->element[1]->len)));
    }
  }
  return 0;
}

RedisServer& SentinelSet::byPort(uint16_t port) {
  for (auto& n : nodes_) {
    if (n->port() == port || tlsPort(*n) == port) {
      return *n;
    }
  }
  throw std::runtime_error("no node on port " + std::to_string(port));
}

RedisServer& SentinelSet::master() { return byPort(masterPort()); }

RedisServer& SentinelSet::replicaOf() {
  const uint16_t m = masterPort();
  return nodes_[0]->port() == m || tlsPort(*nodes_[0]) == m ? *nodes_[1] : *nodes_[0];
}

RedisServer& SentinelSet::failover(std::chrono::milliseconds timeout) {
  const uint16_t old = masterPort();
  bool asked = false;
  eventually(
      [&] {
        ReplyPtr r = ask(*sentinels_[0], {"SENTINEL", "FAILOVER", kMaster});
        asked = r && r->type == REDIS_REPLY_STATUS;
        return asked;
      },
      timeout);
  if (!asked) {
    throw std::runtime_error("SENTINEL FAILOVER was refused");
  }
  return waitForNewMaster(old, timeout);
}

RedisServer& SentinelSet::waitForNewMaster(uint16_t old_port, std::chrono::milliseconds timeout) {
  uint16_t now = 0;
  const bool moved = eventually(
      [&] {
        now = masterPort();
        return now != 0 && now != old_port && isMaster(byPort(now));
      },
      timeout);
  if (!moved) {
    throw std::runtime_error("the sentinels never named a new master");
  }
  return byPort(now);
}

bool SentinelSet::waitReplicated(std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        ReplyPtr r = ask(master(), {"WAIT", "1", "100"});
        return r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
      },
      timeout);
}

}  // namespace evh::test
