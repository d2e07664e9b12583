// evhost processes sharing one consumer group: load sharing, exactly once, a redis-server (AOF) restart mid-run.
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

constexpr const char* kScaleStream = "test:jollyjet:events:orders";
constexpr const char* kGroup = "workers";
// Guards against hangs only (ctest gives each test 180 s); the runs take a
// few seconds.
constexpr auto kHangGuard = std::chrono::seconds(100);
constexpr auto kStartGuard = std::chrono::seconds(30);

std::string event(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"ORDER_PLACED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"orderId":")" + id +
         R"("}})";
}

// A stream entry id "ms-seq", ordered as Redis orders them.
std::pair<uint64_t, uint64_t> entryOrder(const std::string& id) {
  size_t dash = id.find('-');
  return {std::stoull(id.substr(0, dash)), std::stoull(id.substr(dash + 1))};
}

// tag and eventId of one recorder record (tag|eventType|eventId|...).
std::pair<std::string, std::string> tagAndId(const std::string& record) {
  size_t a = record.find('|');
  size_t b = record.find('|', a + 1);
  size_t c = record.find('|', b + 1);
  return {record.substr(0, a), record.substr(b + 1, c - b - 1)};
}

std::string tail(const std::string& text, size_t n = 4000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

ReplyPtr run(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
  if (!r) {
    throw std::runtime_error("redis connection error");
  }
  return r;
}

using Hosts = std::vector<std::unique_ptr<EvhostProcess>>;

class StreamScaleTest : public ::testing::Test {
 protected:
  void startRedis(std::vector<std::string> extra = {}) { redis_ = std::make_unique<RedisServer>(std::move(extra)); }

  // One instance: consumer `consumer` of group workers, and `plugin`
  // (recorder or slow_recorder, with more of its config in `options`, e.g.
  // ", sleep_ms: 2") tagging its records with `tag`, so that instances can be
  // told apart. `extra`: more top-level YAML.
  std::string config(const std::string& consumer, const std::string& tag, const std::string& plugin,
                     const std::string& options, const std::string& extra) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_->port()
      << ", reconnect: {initial_ms: 50, max_ms: 500}, ping_interval_ms: 500, ping_timeout_ms: 1000}\n"
      << extra << "dead_letter: {fallback_file: dead.jsonl}\n"
      << "plugins:\n  rec: {path: " << plugin << ", config: {key: seen, tag: " << tag << options << "}}\n"
      << "channels:\n"
      << "  jollyjet:events:orders:\n"
      << "    transport: stream\n"
      << "    stream: {group: " << kGroup << ", consumer: " << consumer << ", block_ms: 200}\n"
      << "    routes:\n"
      << "      - events: \"*\"\n"
      << "        plugins: [rec]\n";
    return y.str();
  }

  Hosts startHosts(size_t n, const std::string& plugin, const std::string& options, const std::string& extra) {
    Hosts hosts;
    for (size_t i = 1; i <= n; ++i) {
      hosts.push_back(std::make_unique<EvhostProcess>(
          config("c" + std::to_string(i), "i" + std::to_string(i), plugin, options, extra)));
    }
    return hosts;
  }

  static std::string logs(const Hosts& hosts) {
    std::string out;
    for (size_t i = 0; i < hosts.size(); ++i) {
      out += "---- instance " + std::to_string(i + 1) + " ----\n" + tail(hosts[i]->log()) + "\n";
    }
    return out;
  }

  // Consumers in the group that have read at least once.
  size_t consumers() {
    ReplyPtr r = redis_->command({"XINFO", "CONSUMERS", kScaleStream, kGroup});
    return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
  }

  long long pending() {
    ReplyPtr r = redis_->command({"XPENDING", kScaleStream, kGroup});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }

  // Up and done loading its data set.
  bool loaded() {
    try {
      ReplyPtr r = redis_->command({"INFO", "persistence"});
      return r->type == REDIS_REPLY_STRING && std::string(r->str, r->len).find("\nloading:0") != std::string::npos;
    } catch (const std::exception&) {
      return false;
    }
  }

  long long llen(const std::string& key) { return redis_->command({"LLEN", key})->integer; }

  std::vector<std::string> records() {
    std::vector<std::string> out;
    ReplyPtr r = redis_->command({"LRANGE", "seen", "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }

  // XADDs one entry per event id (pipelined, in chunks); returns entry id -> event id.
  std::map<std::string, std::string> xadd(size_t from, size_t to) {
    std::map<std::string, std::string> out;
    RedisConn c = redis_->connect();
    constexpr size_t kChunk = 200;
    for (size_t start = from; start < to; start += kChunk) {
      size_t end = std::min(to, start + kChunk);
      std::vector<std::string> messages;
      for (size_t i = start; i < end; ++i) {
        messages.push_back(event("ev-" + std::to_string(i)));
        const char* argv[] = {"XADD", kScaleStream, "*", "event", messages.back().c_str()};
        size_t lens[] = {4, std::strlen(kScaleStream), 1, 5, messages.back().size()};
        redisAppendCommandArgv(c.get(), 5, argv, lens);
      }
      for (size_t i = start; i < end; ++i) {
        void* raw = nullptr;
        if (redisGetReply(c.get(), &raw) != REDIS_OK || raw == nullptr) {
          ADD_FAILURE() << "XADD: connection error";
          return out;
        }
        ReplyPtr r(static_cast<redisReply*>(raw));
        if (r->type != REDIS_REPLY_STRING) {
          ADD_FAILURE() << "XADD failed: " << (r->str != nullptr ? r->str : "?");
          continue;
        }
        out.emplace(std::string(r->str, r->len), "ev-" + std::to_string(i));
      }
    }
    return out;
  }

  // Two, then three instances: each takes a clear share, together every
  // event exactly once, nothing left pending.
  void shareTheLoad(size_t instances, size_t events, const std::string& plugin, const std::string& options,
                    const std::string& extra) {
    Hosts hosts = startHosts(instances, plugin, options, extra);
    ASSERT_TRUE(eventually([&] { return consumers() == instances; }, kStartGuard))
        << consumers() << " consumers reading\n"
        << logs(hosts);
    auto entries = xadd(0, events);
    ASSERT_EQ(entries.size(), events);
    ASSERT_TRUE(
        eventually([&] { return llen("seen") >= static_cast<long long>(events) && pending() == 0; }, kHangGuard))
        << llen("seen") << " records, " << pending() << " pending\n"
        << logs(hosts);
    // Anything handled twice would show up now.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));

    std::map<std::string, size_t> per_instance;
    std::map<std::string, size_t> per_event;
    for (const auto& rec : records()) {
      auto [tag, id] = tagAndId(rec);
      ++per_instance[tag];
      ++per_event[id];
    }
    size_t total = 0;
    std::string shares;
    for (const auto& [tag, n] : per_instance) {
      total += n;
      shares += " " + tag + "=" + std::to_string(n);
    }
    std::printf("[   info   ] %zu instances, %zu events:%s\n", instances, events, shares.c_str());
    EXPECT_EQ(total, events) << "records in all:" << shares;
    EXPECT_EQ(per_event.size(), events) << "distinct events handled";
    for (const auto& [id, n] : per_event) {
      EXPECT_EQ(n, 1U) << id << " handled " << n << " times";
      EXPECT_EQ(id.rfind("ev-", 0), 0U) << id;
    }
    EXPECT_EQ(per_instance.size(), instances) << "instances that handled anything:" << shares;
    for (const auto& [tag, n] : per_instance) {
      EXPECT_GE(n * 5, events) << "instance " << tag << " handled less than 20 %:" << shares;
    }
    EXPECT_EQ(pending(), 0);
    for (size_t i = 0; i < hosts.size(); ++i) {
      EXPECT_FALSE(std::filesystem::exists(hosts[i]->dir() + "/dead.jsonl"))
          << "instance " << i + 1 << " dead-lettered events";
    }
  }

  std::unique_ptr<RedisServer> redis_;
};

// Instances that are busy: each handles one event at a time (a blocking
// plugin, max_concurrency 1, 1 ms per event) and takes at most 20 entries
// ahead, so what each one takes follows what it gets done -- the load is
// shared by capacity, not by who happened to be reading when a burst came.
const std::string kBusyWorkers = "limits: {max_in_flight: 20}\n";

TEST_F(StreamScaleTest, TwoInstancesInOneGroupShareTheLoadAndHandleEveryEventOnce) {
  startRedis();
  shareTheLoad(2, 2000, "slow_recorder", ", sleep_ms: 1", kBusyWorkers);
}

TEST_F(StreamScaleTest, ThreeInstancesInOneGroupShareTheLoadAndHandleEveryEventOnce) {
  startRedis();
  shareTheLoad(3, 2000, "slow_recorder", ", sleep_ms: 1", kBusyWorkers);
}

// What a snapshot of Redis says about acknowledged entries: every entry
// delivered to the group (id <= last-delivered-id) and no longer pending was
// acknowledged, so its event must have been recorded -- the recorder writes
// its record before it completes the call, and evhost acks only after that.
// Read in that order (group, then pending list, then records), an entry acked
// at any time before the pending list was read has its record in the list.
class AckAudit {
 public:
  explicit AckAudit(const std::map<std::string, std::string>& entries) : entries_(entries) {}

  // False when Redis could not be asked (e.g. it is down).
  bool check(const RedisServer& redis) {
    try {
      RedisConn c = redis.connect();
      redisSetTimeout(c.get(), timeval{5, 0});
      ReplyPtr groups = run(c.get(), {"XINFO", "GROUPS", kScaleStream});
      std::string last_delivered;
      for (size_t g = 0; groups->type == REDIS_REPLY_ARRAY && g < groups->elements; ++g) {
        const redisReply* info = groups->element[g];
        std::map<std::string, std::string> fields;
        for (size_t f = 0; f + 1 < info->elements; f += 2) {
          if (info->element[f + 1]->type == REDIS_REPLY_STRING) {
            fields[info->element[f]->str] = info->element[f + 1]->str;
          }
        }
        if (fields["name"] == kGroup) {
          last_delivered = fields["last-delivered-id"];
        }
      }
      if (last_delivered.empty()) {
        return false;
      }
      ReplyPtr pel = run(c.get(), {"XPENDING", kScaleStream, kGroup, "-", "+", "1000000"});
      std::set<std::string> pending;
      for (size_t i = 0; pel->type == REDIS_REPLY_ARRAY && i < pel->elements; ++i) {
        pending.insert(pel->element[i]->element[0]->str);
      }
      ReplyPtr recs = run(c.get(), {"LRANGE", "seen", "0", "-1"});
      std::set<std::string> handled;
      for (size_t i = 0; recs->type == REDIS_REPLY_ARRAY && i < recs->elements; ++i) {
        handled.insert(tagAndId(std::string(recs->element[i]->str, recs->element[i]->len)).second);
      }
      ++snapshots_;
      auto limit = entryOrder(last_delivered);
      for (const auto& [entry, id] : entries_) {
        if (entryOrder(entry) <= limit && pending.count(entry) == 0 && handled.count(id) == 0) {
          violations_.emplace(entry, id + " (snapshot " + std::to_string(snapshots_) + ", " +
                                         std::to_string(pending.size()) + " pending, " +
                                         std::to_string(handled.size()) + " handled)");
        }
      }
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  size_t snapshots() const { return snapshots_; }
  // entry id -> what was seen when it was found acknowledged but not handled.
  const std::map<std::string, std::string>& violations() const { return violations_; }

 private:
  const std::map<std::string, std::string>& entries_;
  size_t snapshots_ = 0;
  std::map<std::string, std::string> violations_;
};

TEST_F(StreamScaleTest, RedisRestartedMidRunLosesNothingAndAcksNothingUnhandled) {
  // Every write fsynced before the reply: what a client saw succeed survives.
  startRedis({"--appendonly", "yes", "--appendfsync", "always"});
  // Retries and breaker generous enough to ride out the outage: an event
  // that failed for good would be dead-lettered and acked by design, which
  // is not what this test is about (and is checked to not happen).
  const std::string extra =
      "retry: {max_attempts: 200, base_delay_ms: 50, max_delay_ms: 500}\n"
      "circuit_breaker: {threshold: 1000000}\n";
  Hosts hosts = startHosts(2, "slow_recorder", ", sleep_ms: 2", extra);
  ASSERT_TRUE(eventually([&] { return consumers() == 2; }, kStartGuard)) << logs(hosts);

  std::map<std::string, std::string> entries = xadd(0, 2000);
  ASSERT_EQ(entries.size(), 2000U);
  AckAudit audit(entries);
  // Restart once a good part is handled and much is still in flight.
  ASSERT_TRUE(eventually(
      [&] {
        audit.check(*redis_);
        return llen("seen") >= 600;
      },
      kStartGuard))
      << logs(hosts);
  const long long handled_at_stop = llen("seen");
  const long long pending_at_stop = pending();
  redis_->stop();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  redis_->restart();
  // restart() returns at the first reply; the AOF may still be loading.
  ASSERT_TRUE(eventually([&] { return loaded(); }, kStartGuard)) << "redis-server still loading its AOF";
  const long long handled_after_restart = llen("seen");
  const long long pending_after_restart = pending();
  std::printf("[   info   ] at the stop: %lld records, %lld pending; after the restart: %lld records, %lld pending\n",
              handled_at_stop, pending_at_stop, handled_after_restart, pending_after_restart);
  EXPECT_GE(handled_after_restart, handled_at_stop) << "records lost in the restart (AOF)";

  // More events after the restart, into the same stream.
  for (auto& e : xadd(2000, 3000)) {
    entries.insert(e);
  }
  ASSERT_EQ(entries.size(), 3000U);
  std::set<std::string> missing;
  auto settled = [&] {
    audit.check(*redis_);
    std::set<std::string> seen;
    for (const auto& rec : records()) {
      seen.insert(tagAndId(rec).second);
    }
    missing.clear();
    for (const auto& [entry, id] : entries) {
      if (seen.count(id) == 0) {
        missing.insert(id + " (" + entry + ")");
      }
    }
    return missing.empty() && pending() == 0;
  };
  bool done = eventually(settled, kHangGuard);
  std::string missing_text;
  for (const auto& m : missing) {
    if (missing_text.size() < 2000) {
      missing_text += " " + m;
    }
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " events never handled:" << missing_text << "\n" << logs(hosts);
  EXPECT_TRUE(done) << "still pending after " << kHangGuard.count() << " s: " << pending() << "\n" << logs(hosts);
  EXPECT_EQ(pending(), 0);

  std::string violations;
  for (const auto& [entry, what] : audit.violations()) {
    if (violations.size() < 2000) {
      violations += "\n  entry " + entry + ": event " + what;
    }
  }
  EXPECT_GT(audit.snapshots(), 10U);
  EXPECT_TRUE(audit.violations().empty())
      << audit.violations().size() << " entries acknowledged without a record:" << violations;

  size_t total = records().size();
  std::printf("[   info   ] %zu records for 3000 events (%zu duplicates: at least once), %zu snapshots audited\n",
              total, total - 3000 + missing.size(), audit.snapshots());
  for (size_t i = 0; i < hosts.size(); ++i) {
    EXPECT_FALSE(std::filesystem::exists(hosts[i]->dir() + "/dead.jsonl"))
        << "instance " << i + 1 << " dead-lettered events\n"
        << logs(hosts);
  }
}

// The connection XACKs go through (evhost's command connection) drops and is
// slow to come back, while the stream connection stays up: a handler that
// needs no Redis finishes in that window, so its XACK cannot be sent. The
// entry must not stay pending for ever: the acknowledgement is kept and sent
// once the command connection is back.
TEST_F(StreamScaleTest, AnAckLostWhileOnlyTheCommandConnectionIsDownIsRecovered) {
  startRedis();
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << redis_->port()
    << ", reconnect: {initial_ms: 8000, max_ms: 8000, multiplier: 1.0}}\n"
    << "dead_letter: {fallback_file: dead.jsonl}\n"
    << "plugins:\n  s: {path: scripted_serial, config: {answer: SLEEP_1500}}\n"
    << "channels:\n"
    << "  jollyjet:events:orders:\n"
    << "    transport: stream\n"
    << "    stream: {group: workers, consumer: c1, block_ms: 200, claim_idle_ms: 2000, claim_interval_ms: 500}\n"
    << "    routes: [{plugins: [s]}]\n";
  EvhostProcess host(y.str());
  ASSERT_TRUE(eventually([&] { return consumers() == 1; }, kStartGuard)) << host.log();
  ASSERT_EQ(xadd(0, 1).size(), 1U);
  ASSERT_TRUE(eventually([&] { return pending() == 1; })) << host.log();

  // Every client but the blocked reader and this test: the command connection.
  const long long me = redis_->command({"CLIENT", "ID"})->integer;
  ReplyPtr list = redis_->command({"CLIENT", "LIST"});
  std::istringstream lines(std::string(list->str, list->len));
  size_t killed = 0;
  for (std::string line; std::getline(lines, line);) {
    long long id = std::stoll(line.substr(3, line.find(' ') - 3));
    if (id != me && line.find(" cmd=xreadgroup ") == std::string::npos) {
      redis_->command({"CLIENT", "KILL", "ID", std::to_string(id)});
      ++killed;
    }
  }
  ASSERT_EQ(killed, 1U) << std::string(list->str, list->len);
  ASSERT_TRUE(host.waitForLog("command connection down: acknowledgements wait for it")) << host.log();
  const auto lost_at = std::chrono::steady_clock::now();

  EXPECT_TRUE(eventually([&] { return pending() == 0; }, kStartGuard))
      << "the entry whose XACK could not be sent is still pending\n"
      << host.log();
  std::printf(
      "[   info   ] acknowledged %lld ms after its XACK was lost\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - lost_at).count()));
  EXPECT_FALSE(std::filesystem::exists(host.dir() + "/dead.jsonl")) << host.log();
}

}  // namespace
}  // namespace evh::test
