// redis.cluster against a real 3-master, 3-replica Redis Cluster
// (support/redis_cluster.h): evhost reads streams whose keys live on
// different masters, each from its own master; follows a stream whose slot is
// migrated live and a master killed and replaced by its replica; takes
// classic Pub/Sub on a cluster; and routes what plugins write by key. Every
// entry is handled once, none left pending.
#include "support/cluster_records.h"
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

std::string event(const std::string& id) { return clusterEvent(id); }

void add(RedisCluster& cluster, const std::string& stream, const std::string& id) {
  ReplyPtr r = cluster.commandForKey(stream, {"XADD", stream, "*", "event", event(id)});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->type, REDIS_REPLY_STRING) << replyText(r);
}

long long pending(RedisCluster& cluster, const std::string& stream) {
  ReplyPtr r = cluster.commandForKey(stream, {"XPENDING", stream, "workers"});
  return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_INTEGER
             ? r->element[0]->integer
             : -1;
}

// A config reading `streams` (channel names; keys "test:<name>") and a
// Pub/Sub channel, every event to the recorder plugin pushing to `seen`.
std::string clusterConfig(RedisCluster& cluster, const std::vector<std::string>& streams, const std::string& seen,
                          bool pubsub = false) {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis:\n"
    << "  cluster: {nodes: " << cluster.nodesYaml() << "}\n"
    << "  reconnect: {initial_ms: 100, max_ms: 1000}\n"
    << "  ping_interval_ms: 500\n"
    << "  ping_timeout_ms: 1000\n"
    << "retry: {max_attempts: 1}\n"
    << "plugins:\n  rec: {path: recorder, config: {key: \"" << seen << "\"}}\n"
    << "channels:\n";
  for (const auto& s : streams) {
    y << "  \"" << s << "\":\n    transport: stream\n"
      << "    stream: {group: workers, consumer: c1, block_ms: 200, claim_idle_ms: 1000, claim_interval_ms: 500}\n"
      << "    routes:\n      - events: \"*\"\n        plugins: [rec]\n";
  }
  if (pubsub) {
    y << "  jollyjet:events:product:\n    routes:\n      - events: \"*\"\n        plugins: [rec]\n";
  }
  return y.str();
}

// The value of the series `name` (no labels) in a scrape of `host`'s
// /metrics; -1 when absent.
// Every evhost_cluster_* line of a scrape of `host`'s /metrics (for failure
// messages).
std::string clusterMetrics(const EvhostProcess& host) {
  const HttpResponse r = httpGet(opsUrl(host) + "/metrics");
  std::istringstream in(r.body);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("evhost_cluster_", 0) == 0) {
      out += line + "\n";
    }
  }
  return out;
}

double metric(const EvhostProcess& host, const std::string& name) {
  const HttpResponse r = httpGet(opsUrl(host) + "/metrics");
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) {
      return std::stod(line.substr(name.size() + 1));
    }
  }
  return -1;
}

// A channel name whose stream key ("test:" + name) lives on `master`.
std::string channelOn(RedisCluster& cluster, RedisServer& master, const std::string& prefix) {
  return cluster.keyOn(master, "test:" + prefix).substr(5);
}

TEST(ClusterTest, StreamsOnDifferentMastersAreReadTogetherEachFromItsOwn) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  ASSERT_EQ(masters.size(), 3U);
  std::vector<std::string> names;
  for (RedisServer* m : masters) {
    names.push_back(channelOn(cluster, *m, "orders"));
  }
  const std::string seen = cluster.keyOn(*masters[0], "seen");
  EvhostProcess host(clusterConfig(cluster, names, seen));
  ASSERT_TRUE(host.waitForLog("cluster slot map from")) << host.log();
  ASSERT_TRUE(host.waitForLog("3 master(s)")) << host.log();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(host.waitForLog("stream test:" + names[i] + ": created consumer group workers")) << host.log();
  }
  std::set<std::string> ids;
  for (int n = 0; n < 30; ++n) {
    for (size_t s = 0; s < names.size(); ++s) {
      const std::string id = "e-" + std::to_string(s) + "-" + std::to_string(n);
      add(cluster, "test:" + names[s], id);
      ids.insert(id);
    }
  }
  std::string problem;
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();
  for (const auto& name : names) {
    EXPECT_TRUE(eventually([&] { return pending(cluster, "test:" + name) == 0; })) << name;
  }

  // /status names the topology: the cluster's three masters, one command
  // connection to each, a reading connection per stream.
  const HttpResponse status = httpGet(opsUrl(host) + "/status");
  ASSERT_EQ(status.status, 200) << status.error;
  const nlohmann::json j = nlohmann::json::parse(status.body);
  EXPECT_EQ(j["redis"]["mode"], "cluster");
  EXPECT_EQ(j["redis"]["masters"].size(), 3U);
  EXPECT_TRUE(j["redis"]["slots_complete"].get<bool>());
  EXPECT_GE(j["redis"]["slot_map_version"].get<int>(), 1);
  EXPECT_TRUE(j["ready"].get<bool>()) << j["not_ready"].dump();
}

TEST(ClusterTest, AStreamAndAPluginsKeyFollowTheirSlotsMigratedLiveAndEachEntryIsHandledOnce) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  RedisServer& from = *masters[0];
  RedisServer& to = *masters[1];
  const std::string name = channelOn(cluster, from, "orders");
  const std::string stream = "test:" + name;
  // The recorder's list lives on the same master, in another slot: the
  // plugin's commands meet a migration too.
  const std::string seen = cluster.keyOn(from, "seen");
  const uint16_t stream_slot = cluster.keySlot(stream);
  const uint16_t seen_slot = cluster.keySlot(seen);
  ASSERT_NE(stream_slot, seen_slot);
  EvhostProcess host(clusterConfig(cluster, {name}, seen));
  ASSERT_TRUE(host.waitForLog("stream " + stream + ": created consumer group workers")) << host.log();
  std::set<std::string> ids;
  auto addSome = [&](const std::string& tag) {
    for (int n = 0; n < 20; ++n) {
      const std::string id = tag + "-" + std::to_string(n);
      add(cluster, stream, id);
      ids.insert(id);
    }
  };
  addSome("before");
  std::string problem;
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();

  // The plugin's list moves: while its slot is half-migrated the source
  // answers -ASK for it, and evhost's router sends ASKING + LPUSH to the
  // target.
  cluster.beginMigration(seen_slot, from, to);
  ASSERT_EQ(cluster.moveKeys(seen_slot, from, to), 1U);
  addSome("list-asked");
  const auto asked = [&] { return metric(host, "evhost_cluster_ask_total") >= 20; };
  ASSERT_TRUE(eventually(asked)) << host.log();
  cluster.finishMigration(seen_slot, from, to);
  addSome("list-moved");  // now MOVED, once, then the map says so
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); }, std::chrono::seconds(30)))
      << problem << "\n"
      << host.log();

  // The stream moves: entries added before its key moved are read on the
  // source; after the hand-over the reader follows the MOVED.
  cluster.beginMigration(stream_slot, from, to);
  addSome("stream-migrating");  // still on `from`: the key has not moved
  ASSERT_EQ(cluster.moveKeys(stream_slot, from, to), 1U);
  cluster.finishMigration(stream_slot, from, to);
  addSome("stream-moved");
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); }, std::chrono::seconds(30)))
      << problem << "\n"
      << host.log();
  EXPECT_TRUE(eventually([&] { return pending(cluster, stream) == 0; }));
  ASSERT_EQ(&cluster.masterForKey(stream), &to);
  ASSERT_EQ(&cluster.masterForKey(seen), &to);
  EXPECT_TRUE(recordedOnce(cluster, seen, ids, &problem)) << problem;
  // evhost learnt of the moves from a redirect -- the list's first LPUSH
  // after its hand-over meets a MOVED -- and the refresh that follows it,
  // not from its 30 s timer (the test takes a few seconds). (A scrape is
  // cached for 100 ms: asked until it says.)
  EXPECT_TRUE(eventually([&] { return metric(host, "evhost_cluster_moved_total") >= 1; }))
      << "slots " << stream_slot << " and " << seen_slot << "\n"
      << clusterMetrics(host) << host.log();
}

TEST(ClusterTest, AKilledMastersStreamIsReadFromItsPromotedReplica) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  RedisServer& doomed = *masters[0];
  const std::string name = channelOn(cluster, doomed, "orders");
  const std::string stream = "test:" + name;
  const std::string seen = cluster.keyOn(*masters[1], "seen");
  EvhostProcess host(clusterConfig(cluster, {name}, seen));
  ASSERT_TRUE(host.waitForLog("stream " + stream + ": created consumer group workers")) << host.log();
  std::set<std::string> ids;
  for (int n = 0; n < 20; ++n) {
    add(cluster, stream, "before-" + std::to_string(n));
    ids.insert("before-" + std::to_string(n));
  }
  std::string problem;
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();
  // The acks reached the replica before the kill: what Redis acknowledged
  // and replicated survives (WAIT), as under Sentinel.
  ASSERT_TRUE(eventually([&] { return pending(cluster, stream) == 0; }));
  ReplyPtr waited = RedisCluster::command(doomed, {"WAIT", "1", "5000"});
  ASSERT_TRUE(waited && waited->type == REDIS_REPLY_INTEGER && waited->integer == 1);

  cluster.killMaster(doomed);
  RedisServer& promoted = cluster.waitForFailover(doomed);
  ASSERT_EQ(&cluster.masterForKey(stream), &promoted);
  for (int n = 0; n < 20; ++n) {
    add(cluster, stream, "after-" + std::to_string(n));
    ids.insert("after-" + std::to_string(n));
  }
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); }, std::chrono::seconds(30)))
      << problem << "\n"
      << host.log();
  EXPECT_TRUE(eventually([&] { return pending(cluster, stream) == 0; }));
  // The map in force names the promoted replica, not the dead master.
  const nlohmann::json status = nlohmann::json::parse(httpGet(opsUrl(host) + "/status").body);
  const std::string now = "127.0.0.1:" + std::to_string(promoted.port());
  const std::string dead = "127.0.0.1:" + std::to_string(doomed.port());
  EXPECT_THAT(status["redis"]["masters"].dump(), HasSubstr(now));
  EXPECT_THAT(status["redis"]["masters"].dump(), ::testing::Not(HasSubstr(dead)));
}

TEST(ClusterTest, ClassicPubSubReachesTheSubscriberFromAnyNode) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  const std::string seen = cluster.keyOn(*masters[0], "seen");
  EvhostProcess host(clusterConfig(cluster, {}, seen, true));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  std::set<std::string> ids;
  // Published on every master in turn: classic Pub/Sub crosses the
  // cluster's bus to the node evhost listens on.
  for (int n = 0; n < 30; ++n) {
    const std::string id = "p-" + std::to_string(n);
    ReplyPtr r = RedisCluster::command(*masters[static_cast<size_t>(n) % masters.size()],
                                       {"PUBLISH", "test:jollyjet:events:product", event(id)});
    ASSERT_TRUE(r);
    ids.insert(id);
  }
  std::string problem;
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();
}

TEST(ClusterTest, EvhctlReadsTheDeadLetterListWhereverItsSlotIs) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  // evhctl is given one node, not the one owning the list: it follows the
  // redirect.
  const std::string dlq = "test:jollyjet:events:dlq";
  RedisServer& owner = cluster.masterForKey(dlq);
  RedisServer* other = masters[0] == &owner ? masters[1] : masters[0];
  const std::string entry =
      R"({"id":"dlq-1","reason":"exhausted","eventId":"evt-1","eventType":"PRODUCT_CREATED","channel":)"
      R"("jollyjet:events:product","redisChannel":"test:jollyjet:events:product","plugin":"product","error":)"
      R"({"name":"exhausted","message":"redis down"},"attempts":3,"retryCount":2,"timestamp":)"
      R"("2026-11-26T18:00:03.010Z","originalEvent":{"eventId":"evt-1","eventType":"PRODUCT_CREATED",)"
      R"("timestamp":"2026-11-26T18:00:00.000Z","payload":{"id":"p-1"}}})";
  ASSERT_EQ(cluster.commandForKey(dlq, {"LPUSH", dlq, entry})->type, REDIS_REPLY_INTEGER);
  const std::string path = ::testing::TempDir() + "/evhctl-cluster-" + std::to_string(other->port()) + ".yaml";
  {
    std::ofstream out(path);
    out << "environment: test\n"
        << "redis:\n  cluster: {nodes: [127.0.0.1:" << other->port() << "]}\n"
        << "plugins:\n  dlq: {path: dlq, config: {key: \"jollyjet:events:dlq\"}}\n"
        << "dead_letter: {plugin: dlq}\n";
  }
  const auto [code, out] = runCommand({evhctlBin(), "dlq", "--config", path, "list"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("evt-1")) << out;
  EXPECT_THAT(out, HasSubstr("exhausted")) << out;
  std::remove(path.c_str());
}

}  // namespace
}  // namespace evh::test
