// The benchmark tools work (not how fast: scripts/bench prints figures): the
// load generator, the bench plugin's counts and JSON report, the reference
// subscriber, and their refusals of bad input -- against a real redis-server.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kLoadgen = std::string(benchBinDir()) + "/evh_loadgen";
const std::string kRefSub = std::string(benchBinDir()) + "/evh_ref_sub";
constexpr const char* kTarget = "bench:bench:events";

std::string benchConfig(uint16_t port, const std::string& transport, int plugins,
                        const std::string& extra_config = "") {
  std::string y = "environment: bench\nredis: {host: 127.0.0.1, port: " + std::to_string(port) + "}\nplugins:\n";
  std::string names;
  for (int i = 1; i <= plugins; ++i) {
    const std::string n = "b" + std::to_string(i);
    y += "  " + n + ": {path: bench, config: {tag: " + n + extra_config + "}}\n";
    names += (i > 1 ? ", " : "") + n;
  }
  y += "channels:\n  bench:events:\n    transport: " + transport +
       "\n    routes: [{events: [PRODUCT_CREATED, BENCH_END], plugins: [" + names + "]}]\n";
  return y;
}

Json lastJsonLine(const std::string& out) {
  const size_t end = out.find_last_not_of('\n');
  const size_t start = out.rfind('\n', end);
  return Json::parse(out.substr(start == std::string::npos ? 0 : start + 1, end + 1));
}

// BLPOPs one result line of the bench plugin (a hang guard of 20 s).
Json benchResult(RedisServer& redis) {
  auto r = redis.command({"BLPOP", "bench:results", "20"});
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    ADD_FAILURE() << "no result from the bench plugin within 20 s";
    return Json::object();
  }
  return Json::parse(std::string(r->element[1]->str, r->element[1]->len));
}

void expectComplete(const Json& res, uint64_t n) {
  EXPECT_EQ(res.at("subscriber"), "evhost");
  EXPECT_EQ(res.at("received").get<uint64_t>(), n);
  EXPECT_EQ(res.at("sent").get<int64_t>(), static_cast<int64_t>(n));
  EXPECT_EQ(res.at("no_timestamp").get<uint64_t>(), 0u);
  EXPECT_GT(res.at("seconds").get<double>(), 0.0);
  EXPECT_GT(res.at("events_per_s").get<double>(), 0.0);
  const Json& lat = res.at("latency_us");
  EXPECT_LE(lat.at("min").get<double>(), lat.at("p50").get<double>());
  EXPECT_LE(lat.at("p50").get<double>(), lat.at("p99").get<double>());
  EXPECT_LE(lat.at("p99").get<double>(), lat.at("p999").get<double>());
  EXPECT_LE(lat.at("p999").get<double>(), lat.at("max").get<double>());
}

TEST(BenchTools, PubSubEveryPluginCountsEveryEventAndReportsOnce) {
  RedisServer redis;
  EvhostProcess evh(benchConfig(redis.port(), "pubsub", 2));
  ASSERT_TRUE(evh.waitForLog("subscribed to")) << evh.log();
  auto [rc, out] = runCommand({kLoadgen, "--port", std::to_string(redis.port()), "--mode", "publish", "--target",
                               kTarget, "--count", "3000", "--batch", "100"});
  ASSERT_EQ(rc, 0) << out;
  const Json gen = lastJsonLine(out);
  EXPECT_EQ(gen.at("sent"), 3000);
  EXPECT_EQ(gen.at("receivers_min"), 1);
  std::set<std::string> tags;
  for (int i = 0; i < 2; ++i) {
    const Json res = benchResult(redis);
    expectComplete(res, 3000);
    tags.insert(res.value("tag", ""));
  }
  EXPECT_EQ(tags, (std::set<std::string>{"b1", "b2"}));
  // A second run in the same process starts from zero.
  std::tie(rc, out) = runCommand(
      {kLoadgen, "--port", std::to_string(redis.port()), "--target", kTarget, "--count", "500", "--rate", "5000"});
  ASSERT_EQ(rc, 0) << out;
  expectComplete(benchResult(redis), 500);
  expectComplete(benchResult(redis), 500);
  evh.signal(SIGTERM);
  EXPECT_EQ(evh.waitExit(), 0);
}

// window_ms splits the latencies by the window of wall-clock time each event
// was sent in (bench/evhbench/ops_load.py loads the odd ones only): every
// event is in one of the two, and each window's count and p99 are reported.
TEST(BenchTools, WindowsSplitTheLatenciesByWhenTheEventWasSent) {
  RedisServer redis;
  EvhostProcess evh(benchConfig(redis.port(), "pubsub", 1, ", window_ms: 100"));
  ASSERT_TRUE(evh.waitForLog("subscribed to")) << evh.log();
  // 0.5 s of sending: at least four windows of 100 ms.
  auto [rc, out] = runCommand(
      {kLoadgen, "--port", std::to_string(redis.port()), "--target", kTarget, "--count", "5000", "--rate", "10000"});
  ASSERT_EQ(rc, 0) << out;
  const Json res = benchResult(redis);
  expectComplete(res, 5000);
  EXPECT_EQ(res.at("window_ms").get<int>(), 100);
  const Json& even = res.at("windows_us").at("even");
  const Json& odd = res.at("windows_us").at("odd");
  EXPECT_GT(even.at("count").get<uint64_t>(), 0u);
  EXPECT_GT(odd.at("count").get<uint64_t>(), 0u);
  EXPECT_EQ(even.at("count").get<uint64_t>() + odd.at("count").get<uint64_t>(), 5000u);
  for (const Json* w : {&even, &odd}) {
    EXPECT_LE(w->at("p50").get<double>(), w->at("p99").get<double>());
    EXPECT_LE(w->at("p99").get<double>(), w->at("max").get<double>());
    EXPECT_LE(w->at("max").get<double>(), res.at("latency_us").at("max").get<double>());
  }
  // Each window apart, in order: every event is in one, or late (its window
  // closed before it came), and no p99 is above the run's max.
  const Json& per = res.at("per_window");
  EXPECT_EQ(per.at("dropped").get<uint64_t>(), 0u);
  const Json& windows = per.at("windows");
  ASSERT_GE(windows.size(), 4u) << per.dump();
  uint64_t in_windows = 0;
  for (size_t i = 0; i < windows.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(windows[i][0].get<uint64_t>(), windows[i - 1][0].get<uint64_t>()) << per.dump();
    }
    EXPECT_GT(windows[i][1].get<uint64_t>(), 0u);
    EXPECT_LE(windows[i][2].get<double>(), res.at("latency_us").at("max").get<double>());
    in_windows += windows[i][1].get<uint64_t>();
  }
  EXPECT_EQ(in_windows + per.at("late").get<uint64_t>(), 5000u);
  evh.signal(SIGTERM);
  EXPECT_EQ(evh.waitExit(), 0);
  // The log has the same line, whole, after "benchmark run 1: ".
  const std::string log = evh.log();
  const std::string prefix = "benchmark run 1: ";
  const size_t at = log.find(prefix);
  ASSERT_NE(at, std::string::npos) << log;
  const size_t from = at + prefix.size();
  EXPECT_EQ(Json::parse(log.substr(from, log.find('\n', from) - from)), res);
}

TEST(BenchTools, StreamEntriesAreCountedAndAcknowledged) {
  RedisServer redis;
  EvhostProcess evh(benchConfig(redis.port(), "stream", 1));
  ASSERT_TRUE(evh.waitForLog("created consumer group")) << evh.log();
  auto [rc, out] = runCommand({kLoadgen, "--port", std::to_string(redis.port()), "--mode", "xadd", "--target", kTarget,
                               "--count", "5000", "--rate", "50000"});
  ASSERT_EQ(rc, 0) << out;
  expectComplete(benchResult(redis), 5000);
  // Every entry, the sentinel included, is acknowledged (batched XACKs).
  long long pending = -1;
  eventually([&] {
    pending = redis.command({"XPENDING", kTarget, "evhost"})->element[0]->integer;
    return pending == 0;
  });
  EXPECT_EQ(pending, 0);
  evh.signal(SIGTERM);
  EXPECT_EQ(evh.waitExit(), 0);
}

// A graceful stop in the middle of a stream at full speed: every entry a
// plugin handled is acknowledged -- acks batched, pipelined ahead of a read
// on the connection the stop closes, or still on their way -- and what stays
// pending is only what Redis delivered in a read the stop cut off, which
// no plugin saw (it is delivered again: at least once).
TEST(BenchTools, AGracefulStopUnderLoadAcknowledgesEverythingHandled) {
  RedisServer redis;
  EvhostProcess evh("environment: bench\nredis: {host: 127.0.0.1, port: " + std::to_string(redis.port()) +
                    "}\n"
                    "plugins:\n  rec: {path: recorder, config: {key: seen}}\n"
                    "channels:\n  bench:events:\n    transport: stream\n    stream: {consumer: c1, count: 100}\n"
                    "    routes: [{plugins: [rec]}]\n");
  ASSERT_TRUE(evh.waitForLog("created consumer group")) << evh.log();
  auto [rc, out] = runCommand({kLoadgen, "--port", std::to_string(redis.port()), "--mode", "xadd", "--target", kTarget,
                               "--count", "20000", "--batch", "100"});
  ASSERT_EQ(rc, 0) << out;
  evh.signal(SIGTERM);  // while it still works through the stream
  EXPECT_EQ(evh.waitExit(), 0) << evh.log();

  std::set<std::string> handled;  // eventIds the plugin recorded
  auto seen = redis.command({"LRANGE", "seen", "0", "-1"});
  for (size_t i = 0; i < seen->elements; ++i) {
    const std::string rec(seen->element[i]->str, seen->element[i]->len);
    const size_t a = rec.find('|');
    const size_t b = rec.find('|', a + 1);
    const size_t c = rec.find('|', b + 1);
    handled.insert(rec.substr(b + 1, c - b - 1));
  }
  EXPECT_GT(handled.size(), 0u);
  auto pending = redis.command({"XPENDING", kTarget, "evhost", "-", "+", "1000"});
  EXPECT_LE(pending->elements, 100u) << "more than one read's worth left pending";
  for (size_t i = 0; i < pending->elements; ++i) {
    const std::string id = pending->element[i]->element[0]->str;
    auto entry = redis.command({"XRANGE", kTarget, id, id});
    ASSERT_EQ(entry->elements, 1u);
    const Json ev = Json::parse(std::string(entry->element[0]->element[1]->element[1]->str));
    EXPECT_EQ(handled.count(ev.at("eventId").get<std::string>()), 0u)
        << "entry " << id << " was handled but is still pending";
  }
}

// The same with an inline plugin, whose acks go out pipelined ahead of the
// next read: what stays pending is at most the one read the stop cut off --
// the last entries delivered, all of them after everything acknowledged.
TEST(BenchTools, AGracefulStopLeavesAtMostTheLastReadPending) {
  RedisServer redis;
  EvhostProcess evh("environment: bench\nredis: {host: 127.0.0.1, port: " + std::to_string(redis.port()) +
                    "}\n"
                    "plugins:\n  b: {path: bench}\n"
                    "channels:\n  bench:events:\n    transport: stream\n    stream: {consumer: c1, count: 100}\n"
                    "    routes: [{plugins: [b]}]\n");
  ASSERT_TRUE(evh.waitForLog("created consumer group")) << evh.log();
  auto [rc, out] = runCommand({kLoadgen, "--port", std::to_string(redis.port()), "--mode", "xadd", "--target", kTarget,
                               "--count", "50000", "--batch", "100"});
  ASSERT_EQ(rc, 0) << out;
  evh.signal(SIGTERM);
  EXPECT_EQ(evh.waitExit(), 0) << evh.log();
  auto pending = redis.command({"XPENDING", kTarget, "evhost", "-", "+", "1000"});
  EXPECT_LE(pending->elements, 100u);
  if (pending->elements > 0) {
    auto groups = redis.command({"XINFO", "GROUPS", kTarget});
    const std::string last_delivered = groups->element[0]->element[7]->str;  // last-delivered-id
    const std::string first_pending = pending->element[0]->element[0]->str;
    auto span = redis.command({"XRANGE", kTarget, first_pending, last_delivered});
    EXPECT_EQ(span->elements, pending->elements) << "an acknowledged-looking gap: some handled entry is pending";
  }
}

TEST(BenchTools, ReferenceSubscriberCountsWhatTheLoadGeneratorSent) {
  RedisServer redis;
  for (const std::string mode : {"subscribe", "stream"}) {
    SCOPED_TRACE(mode);
    const std::string ready = redis.dir() + "/ready-" + mode;
    const std::string cmd = kRefSub + " --port " + std::to_string(redis.port()) + " --mode " + mode + " --target " +
                            kTarget + " --timeout 30 --ready-file " + ready;
    FILE* sub = popen(cmd.c_str(), "r");
    ASSERT_NE(sub, nullptr);
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(ready); })) << "evh_ref_sub never got ready";
    auto [rc, out] = runCommand({kLoadgen, "--port", std::to_string(redis.port()), "--mode",
                                 mode == "subscribe" ? "publish" : "xadd", "--target", kTarget, "--count", "4000"});
    EXPECT_EQ(rc, 0) << out;
    std::string line;
    char buf[4096];
    while (fgets(buf, sizeof buf, sub) != nullptr) {
      line += buf;
    }
    EXPECT_EQ(pclose(sub), 0) << line;
    const Json res = lastJsonLine(line);
    EXPECT_EQ(res.at("subscriber"), "reference");
    EXPECT_EQ(res.at("received"), 4000);
    EXPECT_EQ(res.at("sent"), 4000);
  }
}

// evhost's behaviour under a flood it must shed, with the bench tools as the
// load: a Pub/Sub burst into a slow blocking plugin. Every event is either
// handled or dead-lettered (overloaded), and when dead letters pile up
// faster than the fallback file takes them, evhost stops reading (Redis,
// here without an output-buffer limit, holds the rest) instead of growing.
TEST(BenchTools, APubSubFloodIntoASlowPluginIsShedWithABoundedBacklog) {
  RedisServer redis({"--client-output-buffer-limit", "pubsub 0 0 0"});
  // slow_recorder: blocking, one call at a time, 1 ms each; it records what
  // it handled in the list "seen" (the sentinel is not routed).
  EvhostProcess evh("environment: bench\nredis: {host: 127.0.0.1, port: " + std::to_string(redis.port()) +
                    "}\n"
                    "plugins:\n  slow: {path: slow_recorder, config: {sleep_ms: 1}}\n"
                    "channels:\n  bench:events:\n    routes: [{events: [PRODUCT_CREATED], plugins: [slow]}]\n"
                    "limits: {max_in_flight: 100, max_dead_letter_bytes: 65536}\n");
  ASSERT_TRUE(evh.waitForLog("subscribed to")) << evh.log();
  constexpr int64_t kEvents = 20000;
  auto [rc, out] = runCommand(
      {kLoadgen, "--port", std::to_string(redis.port()), "--target", kTarget, "--count", std::to_string(kEvents)});
  ASSERT_EQ(rc, 0) << out;
  // Every event ends up handled or dead-lettered (overloaded), nothing else.
  const std::string dl_path = evh.dir() + "/evhost-dead-letter.jsonl";
  int64_t handled = 0;
  int64_t overloaded = 0;
  int64_t other = 0;
  eventually(
      [&] {
        handled = redis.command({"LLEN", "seen"})->integer;
        overloaded = other = 0;
        // Whole lines only: the fallback writer's thread may be half way
        // through the last one.
        std::ifstream dl(dl_path);
        std::string all((std::istreambuf_iterator<char>(dl)), std::istreambuf_iterator<char>());
        all.erase(all.rfind('\n') == std::string::npos ? 0 : all.rfind('\n') + 1);
        std::istringstream complete(all);
        for (std::string line; std::getline(complete, line);) {
          (Json::parse(line).at("reason") == "overloaded" ? overloaded : other) += 1;
        }
        return handled + overloaded + other >= kEvents;
      },
      std::chrono::seconds(120));
  EXPECT_EQ(other, 0);
  EXPECT_EQ(handled + overloaded, kEvents) << "handled " << handled << ", dead-lettered " << overloaded;
  EXPECT_GT(handled, 0);
  EXPECT_GT(overloaded, 0);  // a flood: the plugin could not take it all
  EXPECT_TRUE(evh.waitForLog("reading paused until half of them are")) << evh.log();
  EXPECT_TRUE(evh.waitForLog("reading resumed after")) << evh.log();
  EXPECT_THAT(evh.log(), ::testing::Not(HasSubstr("connection lost")));
  evh.signal(SIGTERM);
  EXPECT_EQ(evh.waitExit(), 0);
}

// The same brake on a stream: a read of 1,000 undecodable entries makes more
// dead-letter bytes than the limit at once; reading pauses, resumes, and in
// the end every entry is dead-lettered (invalid) and acknowledged.
TEST(BenchTools, AStreamOfGarbagePausesForItsDeadLettersAndLosesNothing) {
  RedisServer redis;
  EvhostProcess evh("environment: bench\nredis: {host: 127.0.0.1, port: " + std::to_string(redis.port()) +
                    "}\n"
                    "plugins:\n  b: {path: bench}\n"
                    "channels:\n  bench:events:\n    transport: stream\n    stream: {count: 1000}\n"
                    "    routes: [{plugins: [b]}]\n"
                    "limits: {max_dead_letter_bytes: 65536}\n");
  ASSERT_TRUE(evh.waitForLog("created consumer group")) << evh.log();
  constexpr int kEntries = 5000;
  {
    RedisConn c = redis.connect();
    const std::string garbage(200, 'x');
    for (int i = 0; i < kEntries; ++i) {
      redisAppendCommand(c.get(), "XADD %s * event %s", kTarget, ("not json " + garbage).c_str());
    }
    for (int i = 0; i < kEntries; ++i) {
      void* r = nullptr;
      ASSERT_EQ(redisGetReply(c.get(), &r), REDIS_OK);
      freeReplyObject(r);
    }
  }
  long long pending = -1;
  long long lines = 0;
  eventually(
      [&] {
        auto info = redis.command({"XINFO", "GROUPS", kTarget});
        // [name, evhost, consumers, n, pending, n, last-delivered-id, id, ...]
        pending = info->element[0]->element[5]->integer;
        lines = 0;
        // Whole lines only: the writer thread may be half way through the
        // last one.
        std::ifstream dl(evh.dir() + "/evhost-dead-letter.jsonl");
        std::stringstream text;
        text << dl.rdbuf();
        std::string all = text.str();
        all.erase(all.rfind('\n') == std::string::npos ? 0 : all.rfind('\n') + 1);
        std::istringstream complete(all);
        for (std::string line; std::getline(complete, line);) {
          EXPECT_EQ(Json::parse(line).at("reason"), "invalid");
          ++lines;
        }
        return lines == kEntries && pending == 0;
      },
      std::chrono::seconds(60));
  EXPECT_EQ(lines, kEntries);
  EXPECT_EQ(pending, 0);
  EXPECT_TRUE(evh.waitForLog("reading paused until half of them are")) << evh.log();
  EXPECT_TRUE(evh.waitForLog("reading resumed after")) << evh.log();
  evh.signal(SIGTERM);
  EXPECT_EQ(evh.waitExit(), 0);
}

TEST(BenchTools, BadInputIsRefusedWithAMessageNamingIt) {
  RedisServer redis;
  {
    EvhostProcess evh(benchConfig(redis.port(), "pubsub", 1, ", nope: 1"));
    const auto code = evh.waitExit(std::chrono::seconds(20));
    ASSERT_TRUE(code.has_value());
    EXPECT_NE(*code, 0);
    EXPECT_THAT(evh.log(), HasSubstr("unknown config key \"nope\""));
  }
  {
    EvhostProcess evh(benchConfig(redis.port(), "pubsub", 1, ", window_ms: 60001"));
    const auto code = evh.waitExit(std::chrono::seconds(20));
    ASSERT_TRUE(code.has_value());
    EXPECT_NE(*code, 0);
    EXPECT_THAT(evh.log(), HasSubstr("config key \"window_ms\" must be an integer from 0 to 60000"));
  }
  auto [rc, out] = runCommand({kLoadgen, "--target", kTarget, "--port", "70000"});
  EXPECT_EQ(rc, 2);
  EXPECT_THAT(out, HasSubstr("--port"));
  std::tie(rc, out) = runCommand({kLoadgen, "--target", kTarget, "--mode", "sideways"});
  EXPECT_EQ(rc, 2);
  EXPECT_THAT(out, HasSubstr("--mode"));
  std::tie(rc, out) = runCommand({kRefSub, "--port", std::to_string(redis.port())});
  EXPECT_EQ(rc, 2);
  EXPECT_THAT(out, HasSubstr("--target"));
  // Nobody listens on port 1: a clear message, not a hang.
  std::tie(rc, out) = runCommand({kLoadgen, "--target", kTarget, "--port", "1", "--count", "10"});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("127.0.0.1:1"));
}

}  // namespace
}  // namespace evh::test
