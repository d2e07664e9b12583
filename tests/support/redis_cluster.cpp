// Six redis-server processes made a Redis Cluster by redis-cli, for tests
// (its live changes -- migrations, failovers: redis_cluster_moves.cpp).
#include "support/redis_cluster.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

namespace evh::test {
namespace {

// Runs `argv` with its stdout and stderr captured; kills it at `timeout`
// (redis-cli --cluster create waits for the nodes to meet without a bound).
// Returns the exit status (-1: killed) and the output, colours removed.
int runTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, std::string& output) {
  int fds[2];
  if (pipe(fds) != 0) {
    throw std::runtime_error("pipe failed");
  }
  const pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  const auto until = std::chrono::steady_clock::now() + timeout;
  bool killed = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  std::string plain;  // without the ANSI colour sequences redis-cli adds
  for (size_t i = 0; i < output.size(); ++i) {
    if (output[i] == '\x1b') {
      i = output.find('m', i);
      if (i == std::string::npos) {
        break;
      }
    } else {
      plain += output[i];
    }
  }
  output = plain;
  return killed ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string field(const std::string& info, const std::string& name) {
  const size_t at = info.find(name + ":");
  if (at == std::string::npos) {
    return "";
  }
  const size_t from = at + name.size() + 1;
  return info.substr(from, info.find_first_of("\r\n", from) - from);
}

}  // namespace

std::string replyText(const ReplyPtr& r) {
  if (!r) {
    return "(no reply)";
  }
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string(r->str, r->len);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_INTEGER:
      return "(integer) " + std::to_string(r->integer);
    default:
      return "(array of " + std::to_string(r->elements) + ")";
  }
}

ReplyPtr RedisCluster::command(const RedisServer& node, const std::vector<std::string>& argv) {
  // A bound on each call: a guard against a hang, never a measure.
  const timeval bound{5, 0};
  RedisConn c(redisConnectWithTimeout("127.0.0.1", node.port(), bound));
  if (!c || c->err != 0 || redisSetTimeout(c.get(), bound) != REDIS_OK) {
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

RedisCluster::RedisCluster(std::chrono::milliseconds timeout) {
  // Failover quickly (a node is failed 1 s after it stops answering), and
  // always: a replica's data is never "too old" to take over here, and no
  // replica wanders off to another master. A replica's first sync starts at
  // once (the diskless sync's default delay of 5 s, waiting for more
  // replicas to share the transfer, was most of the start-up time), and its
  // offset moves every second (see stable()).
  const std::vector<std::string> extra = {"--cluster-node-timeout",
                                          "1000",
                                          "--cluster-replica-validity-factor",
                                          "0",
                                          "--cluster-allow-replica-migration",
                                          "no",
                                          "--repl-diskless-sync-delay",
                                          "0",
                                          "--repl-ping-replica-period",
                                          "1"};
  for (size_t i = 0; i < kNodes; ++i) {
    nodes_.push_back(std::make_unique<RedisServer>(RedisServer::ClusterNode{}, extra));
    const std::string myid = replyText(command(*nodes_.back(), {"CLUSTER", "MYID"}));
    if (myid.size() != 40) {
      throw std::runtime_error("CLUSTER MYID answered \"" + myid + "\"");
    }
    ids_[nodes_.back()->port()] = myid;
  }
  create(timeout);
  waitStableOrThrow(true, timeout, "the cluster never came up");
}

void RedisCluster::create(std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {"redis-cli", "--cluster", "create"};
  for (const auto& n : nodes_) {
    argv.push_back("127.0.0.1:" + std::to_string(n->port()));
  }
  argv.insert(argv.end(), {"--cluster-replicas", "1", "--cluster-yes"});
  std::string output;
  const int status = runTool(argv, timeout, output);
  if (status != 0) {
    throw std::runtime_error(
        "redis-cli --cluster create " +
        (status < 0 ? std::string("was killed after the timeout") : "exited with " + std::to_string(status)) + ":\n" +
        output);
  }
}

RedisServer& RedisCluster::byPort(uint16_t port) {
  for (auto& n : nodes_) {
    if (n->port() == port) {
      return *n;
    }
  }
  throw std::runtime_error("no cluster node on port " + std::to_string(port));
}

RedisServer& RedisCluster::byId(const std::string& id) {
  for (const auto& [port, node_id] : ids_) {
    if (node_id == id) {
      return byPort(port);
    }
  }
  throw std::runtime_error("no cluster node with id " + id);
}

const std::string& RedisCluster::id(const RedisServer& node) const { return ids_.at(node.port()); }

bool RedisCluster::NodeLine::isMaster() const { return ("," + flags + ",").find(",master,") != std::string::npos; }

std::vector<RedisCluster::NodeLine> RedisCluster::clusterNodes(const RedisServer& node) {
  // <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv>
  // <config-epoch> <link-state> <slot> ... (a slot being moved is written
  // [slot->-id] or [slot-<-id]: not an owner, skipped).
  std::vector<NodeLine> out;
  std::istringstream lines(replyText(command(node, {"CLUSTER", "NODES"})));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    NodeLine n;
    std::string address, ping, pong, epoch, slot;
    if (!(words >> n.id >> address >> n.flags >> n.master >> ping >> pong >> epoch >> n.link)) {
      continue;
    }
    const size_t colon = address.find(':');
    n.port = static_cast<uint16_t>(std::stoi(address.substr(colon + 1)));
    while (words >> slot) {
      if (slot[0] != '[') {
        const size_t dash = slot.find('-');
        const int first = std::stoi(slot.substr(0, dash));
        n.slots.emplace_back(first, dash == std::string::npos ? first : std::stoi(slot.substr(dash + 1)));
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<RedisCluster::NodeLine> RedisCluster::view() {
  for (const auto& n : nodes_) {
    if (n->running()) {
      std::vector<NodeLine> lines = clusterNodes(*n);
      if (!lines.empty()) {
        return lines;
      }
    }
  }
  throw std::runtime_error("no cluster node answers CLUSTER NODES");
}

bool RedisCluster::stable(bool with_replicas) {
  std::set<uint16_t> running;
  for (const auto& n : nodes_) {
    if (n->running()) {
      running.insert(n->port());
    }
  }
  std::string first;  // the agreed view: one "id role master slots" line per running node
  for (const auto& n : nodes_) {
    if (!n->running()) {
      continue;
    }
    const std::string info = replyText(command(*n, {"CLUSTER", "INFO"}));
    if (field(info, "cluster_state") != "ok") {
      why_ = "node " + std::to_string(n->port()) + " says cluster_state:" + field(info, "cluster_state");
      return false;
    }
    std::vector<std::string> seen;
    for (const NodeLine& l : clusterNodes(*n)) {
      if (running.count(l.port) == 0) {
        continue;
      }
      if (l.flags.find("fail") != std::string::npos || l.flags.find("handshake") != std::string::npos ||
          l.flags.find("noaddr") != std::string::npos || l.link != "connected") {
        why_ =
            "node " + std::to_string(n->port()) + " sees " + std::to_string(l.port) + " as " + l.flags + " " + l.link;
        return false;
      }
      std::string s = l.id + (l.isMaster() ? " master " : " replica ") + l.master;
      for (const auto& [a, b] : l.slots) {
        s += " " + std::to_string(a) + "-" + std::to_string(b);
      }
      seen.push_back(s);
    }
    std::sort(seen.begin(), seen.end());
    std::string joined;
    for (const auto& s : seen) {
      joined += s + "\n";
    }
    if (seen.size() != running.size()) {
      why_ = "node " + std::to_string(n->port()) + " knows " + std::to_string(seen.size()) + " of the " +
             std::to_string(running.size()) + " running nodes:\n" + joined;
      return false;
    }
    if (first.empty()) {
      first = joined;
    } else if (joined != first) {
      why_ = "node " + std::to_string(n->port()) + " sees\n" + joined + "where another sees\n" + first;
      return false;
    }
    if (with_replicas) {
      const std::string replication = replyText(command(*n, {"INFO", "replication"}));
      if (field(replication, "role") == "slave" && field(replication, "master_link_status") != "up") {
        why_ = "replica " + std::to_string(n->port()) + " is not linked up with its master yet";
        return false;
      }
      // Redis 7.0 leaves a replica out of CLUSTER SLOTS (and says
      // "loading" of it in CLUSTER SHARDS) until it has heard of a
      // replication offset above 0 from it: the masters' pings every second
      // move the offsets (--repl-ping-replica-period 1).
      ReplyPtr slots = command(*n, {"CLUSTER", "SLOTS"});
      for (size_t i = 0; slots && slots->type == REDIS_REPLY_ARRAY && i < slots->elements; ++i) {
        if (slots->element[i]->type != REDIS_REPLY_ARRAY || slots->element[i]->elements < 4) {
          why_ = "node " + std::to_string(n->port()) + " lists no replica for a range in CLUSTER SLOTS yet";
          return false;
        }
      }
    }
  }
  if (with_replicas) {
    size_t masters = 0;
    for (const NodeLine& l : view()) {
      masters += l.isMaster() && !l.slots.empty() ? 1 : 0;
      if (!l.isMaster() && l.master == "-") {
        why_ = "node " + std::to_string(l.port) + " replicates nobody yet";
        return false;
      }
    }
    if (masters != kMasters) {
      why_ = std::to_string(masters) + " masters own slots, not " + std::to_string(kMasters);
      return false;
    }
  }
  return true;
}

bool RedisCluster::waitStable(std::chrono::milliseconds timeout) {
  return eventually([&] { return stable(false); }, timeout);
}

void RedisCluster::waitStableOrThrow(bool with_replicas, std::chrono::milliseconds timeout, const std::string& what) {
  if (!eventually([&] { return stable(with_replicas); }, timeout)) {
    throw std::runtime_error(what + ": " + why_);
  }
}

std::vector<RedisServer*> RedisCluster::masters() {
  std::vector<std::pair<int, RedisServer*>> owners;
  for (const NodeLine& l : view()) {
    if (l.isMaster() && !l.slots.empty() && l.flags.find("fail") == std::string::npos) {
      owners.emplace_back(std::min_element(l.slots.begin(), l.slots.end())->first, &byPort(l.port));
    }
  }
  std::sort(owners.begin(), owners.end());
  std::vector<RedisServer*> out;
  for (const auto& o : owners) {
    out.push_back(o.second);
  }
  return out;
}

std::string RedisCluster::nodesYaml(Which which) {
  std::vector<RedisServer*> listed;
  if (which == Which::Masters) {
    listed = masters();
  } else {
    for (const auto& n : nodes_) {
      if (n->running()) {
        listed.push_back(n.get());
      }
    }
  }
  std::string out = "[";
  for (size_t i = 0; i < listed.size(); ++i) {
    out += (i == 0 ? "" : ", ") + std::string("127.0.0.1:") + std::to_string(listed[i]->port());
  }
  return out + "]";
}

uint16_t RedisCluster::keySlot(const std::string& key) {
  for (const auto& n : nodes_) {
    if (n->running()) {
      ReplyPtr r = command(*n, {"CLUSTER", "KEYSLOT", key});
      if (r && r->type == REDIS_REPLY_INTEGER) {
        return static_cast<uint16_t>(r->integer);
      }
    }
  }
  throw std::runtime_error("no cluster node answers CLUSTER KEYSLOT");
}

RedisServer& RedisCluster::masterForSlot(uint16_t slot) {
  for (const NodeLine& l : view()) {
    for (const auto& [first, last] : l.slots) {
      if (l.isMaster() && first <= slot && slot <= last) {
        return byPort(l.port);
      }
    }
  }
  throw std::runtime_error("no master owns slot " + std::to_string(slot));
}

RedisServer& RedisCluster::replicaOf(const RedisServer& master) {
  for (const NodeLine& l : view()) {
    if (!l.isMaster() && l.master == id(master)) {
      return byPort(l.port);
    }
  }
  throw std::runtime_error("node " + std::to_string(master.port()) + " has no replica");
}

std::string RedisCluster::keyOn(const RedisServer& master, const std::string& prefix) {
  for (int i = 0; i < 10000; ++i) {
    const std::string key = prefix + ":" + std::to_string(i);
    if (&masterForKey(key) == &master) {
      return key;
    }
  }
  throw std::runtime_error("no key " + prefix + ":N lands on node " + std::to_string(master.port()));
}

}  // namespace evh::test
