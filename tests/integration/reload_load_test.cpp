// Hot reload under load (issue 16, "Done when"), with the real evhost and a
// real redis-server: a producer thread of the test sends at a steady rate --
// XADD at 20,000 entries a second, or PUBLISH at 5,000 -- while the test
// reloads again and again through POST /reload: routes changed, plugins
// added and removed, a plugin's config changed (a new instance), and (the
// stream) the plugin's file replaced by a new build renamed over it. Every
// event must be handled exactly once, by exactly one instance, and nothing
// dead-lettered; the Pub/Sub connection is never dropped (no "pubsub gap").
//
// The plugins are reload_probe builds (tests/plugins/reload_probe.c): each
// handled event is one "eventId|tag|v<build>" line in probe:events, so the
// records say which instance (its tag, from its config) and which build
// handled it. The achieved rates and the counts are printed (figures, not
// assertions): the time bounds below only guard against hangs.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/paced_producer.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/tested_binaries.h"

#include <hiredis/hiredis.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::Not;

// The rates asked of the producer. Under AddressSanitizer evhost runs
// several times slower, and on 2 cores it shares the machine with the
// producer and redis-server: there the stream's rate is divided by 4 and
// Pub/Sub's by 2, so that evhost keeps up (a Pub/Sub backlog past
// limits.max_in_flight would be dead-lettered as overloaded -- shedding,
// which is not what this test is about).
const int kStreamRate = testedAsan() ? 20000 / 4 : 20000;
const int kPubSubRate = testedAsan() ? 5000 / 2 : 5000;
constexpr auto kStreamSeconds = std::chrono::seconds(7);
constexpr auto kPubSubSeconds = std::chrono::seconds(6);
// Guards against hangs only.
constexpr auto kDrainGuard = std::chrono::seconds(60);
constexpr auto kReloadGuard = std::chrono::seconds(30);

constexpr const char* kStream = "test:jollyjet:events:orders";
constexpr const char* kPubSub = "test:jollyjet:events:product";
constexpr const char* kGroup = "workers";
constexpr const char* kRecords = "probe:events";

// Half the events are of each type, so that a route may split them.
std::string event(const std::string& id, size_t i) {
  return R"({"eventId":")" + id + R"(","eventType":")" + (i % 2 == 0 ? "ORDER_PLACED" : "ORDER_PAID") +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"c-)" + id + R"(","payload":{}})";
}

// One state of the configuration: the plugin lines and the routes.
struct Shape {
  std::string plugins;
  std::string routes;
};

class ReloadLoadTest : public ::testing::Test {
 protected:
  // Puts build `version` of reload_probe at dir_/<file> the way a deployment
  // does: copied beside it, then renamed over it (atomic).
  void install(const std::string& file, int version) {
    const std::string path = dir_.path() + "/" + file;
    const std::string tmp = path + ".new";
    fs::copy_file(std::string(testPluginDir()) + "/reload_probe_v" + std::to_string(version) + ".so", tmp,
                  fs::copy_options::overwrite_existing);
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                             fs::perms::others_exec);
    fs::rename(tmp, path);
  }
  // A plugin line: instance `name`, reload_probe at dir_/<file>, its records
  // tagged `tag`.
  std::string probe(const std::string& name, const std::string& file, const std::string& tag) const {
    return "  " + name + ": {path: " + dir_.path() + "/" + file + ", config: {tag: " + tag + ", key: " + kRecords +
           "}}\n";
  }
  // Routes: every event to `plugin`, or one type to each of two.
  static std::string all(const std::string& plugin, const std::string& more = "") {
    return "      - events: \"*\"\n        plugins: [" + plugin + "]\n" + more;
  }
  static std::string split(const std::string& placed, const std::string& paid) {
    return "      - events: [ORDER_PLACED]\n        plugins: [" + placed +
           "]\n"
           "      - events: [ORDER_PAID]\n        plugins: [" +
           paid + "]\n";
  }
  // The whole file: the channel (its transport in `channel`) and `s`. The
  // Redis settings, the dead-letter file and the ops listener never change.
  std::string config(const std::string& channel, const Shape& s) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "ops: {listen: \"127.0.0.1:0\"}\n"
      << "dead_letter: {fallback_file: " << deadFile() << "}\n"
      << "plugins:\n"
      << s.plugins << "channels:\n"
      << channel << "    routes:\n"
      << s.routes;
    return y.str();
  }
  static std::string streamChannel() {
    return std::string("  jollyjet:events:orders:\n") + "    transport: stream\n" + "    stream: {group: " + kGroup +
           ", consumer: c1, block_ms: 200}\n";
  }
  static std::string pubsubChannel() { return "  jollyjet:events:product:\n"; }
  std::string deadFile() const { return dir_.path() + "/dead.jsonl"; }

  // Rewrites the file and POSTs /reload; the answer must say it was applied.
  // Returns what it said changed.
  static std::string reload(const EvhostProcess& host, const std::string& url, const std::string& yaml) {
    std::ofstream(host.configPath(), std::ios::trunc) << yaml;
    const HttpResponse r = httpRequest("POST", url + "/reload", {}, kReloadGuard);
    EXPECT_EQ(r.status, 200) << r.error << r.body;
    if (r.status != 200) {
      return "";
    }
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_EQ(j.value("result", ""), "ok") << r.body;
    return j.value("changed", "");
  }
  // Reloads into each of `steps` in turn while the producer runs: the first
  // at `first`, then every `every` -- and never sooner than 300 ms after the
  // previous one was answered, so that each setup handles events for a
  // while even when a reload takes long. `before(i)` runs just before step
  // i's file is written (a new build installed).
  static void reloadThrough(const EvhostProcess& host, const std::string& url, const std::vector<std::string>& steps,
                            Clock::time_point first, std::chrono::milliseconds every,
                            const std::function<void(size_t)>& before) {
    Clock::time_point next = first;
    for (size_t i = 0; i < steps.size(); ++i) {
      std::this_thread::sleep_until(next);
      before(i);
      const auto t0 = Clock::now();
      const std::string changed = reload(host, url, steps[i]);
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
      std::cout << "[ reload " << (i + 1) << " ] " << took.count() << " ms: " << changed << "\n";
      next = std::max(next + every, Clock::now() + std::chrono::milliseconds(300));
    }
  }

  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  std::vector<std::string> records() {
    const auto list = redis_.command({"LRANGE", kRecords, "0", "-1"});
    std::vector<std::string> out;
    for (size_t i = 0; i < list->elements; ++i) {
      out.emplace_back(list->element[i]->str, list->element[i]->len);
    }
    return out;
  }
  // Every record "eventId|tag|vN": how many each instance ("tag|vN")
  // handled, and every event id handled more than once, or not one of
  // <prefix>0 .. <prefix><total - 1>, or missing.
  struct Tally {
    std::map<std::string, size_t> by_instance;
    std::vector<std::string> twice;
    std::vector<std::string> unknown;
    std::vector<size_t> missing;
  };
  Tally tally(const std::string& prefix, size_t total) {
    Tally t;
    std::vector<int> seen(total, 0);
    for (const std::string& r : records()) {
      const size_t bar = r.find('|');
      const std::string id = r.substr(0, bar);
      ++t.by_instance[bar == std::string::npos ? "?" : r.substr(bar + 1)];
      size_t n = 0;
      bool ours = id.size() > prefix.size() && id.compare(0, prefix.size(), prefix) == 0;
      try {
        n = ours ? std::stoul(id.substr(prefix.size())) : 0;
      } catch (const std::exception&) {
        ours = false;
      }
      if (!ours || n >= total) {
        t.unknown.push_back(r);
      } else if (++seen[n] == 2) {
        t.twice.push_back(id);
      }
    }
    for (size_t i = 0; i < total; ++i) {
      if (seen[i] == 0) {
        t.missing.push_back(i);
      }
    }
    return t;
  }
  static std::string counts(const std::map<std::string, size_t>& by_instance) {
    std::string out;
    for (const auto& [instance, n] : by_instance) {
      out += (out.empty() ? "" : ", ") + instance + ": " + std::to_string(n);
    }
    return out;
  }
  template <class T>
  static std::string firstFew(const std::vector<T>& v) {
    std::ostringstream out;
    for (size_t i = 0; i < v.size() && i < 10; ++i) {
      out << (i == 0 ? "" : ", ") << v[i];
    }
    return out.str() + (v.size() > 10 ? ", ..." : "");
  }
  // The sum of every series of `name` in /metrics; -1 when there is none.
  static double metricSum(const std::string& metrics, const std::string& name) {
    double sum = -1;
    std::istringstream in(metrics);
    for (std::string line; std::getline(in, line);) {
      if (line.compare(0, name.size(), name) == 0 && line.size() > name.size() &&
          (line[name.size()] == '{' || line[name.size()] == ' ')) {
        sum = (sum < 0 ? 0 : sum) + std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return sum;
  }
  // The ids of the Redis clients subscribed to something.
  std::vector<std::string> subscriberIds() {
    const auto r = redis_.command({"CLIENT", "LIST", "TYPE", "pubsub"});
    std::vector<std::string> ids;
    std::istringstream in(std::string(r->str, r->len));
    for (std::string line; std::getline(in, line);) {
      if (line.compare(0, 3, "id=") == 0) {
        ids.push_back(line.substr(3, line.find(' ') - 3));
      }
    }
    return ids;
  }
  static nlohmann::json status(const std::string& url) { return nlohmann::json::parse(httpGet(url + "/status").body); }
  static std::string tail(const std::string& text, size_t n = 6000) {
    return text.size() <= n ? text : "..." + text.substr(text.size() - n);
  }
  // Nothing dead-lettered: the fallback file (the only sink) is empty, and
  // evhost counted no dead-letter entry.
  void expectNothingDeadLettered(const std::string& metrics) {
    EXPECT_EQ(readFile(deadFile()), "");
    EXPECT_EQ(metricSum(metrics, "evhost_dead_letters_total"), 0) << metrics;
  }
  // `n` reloads applied, none refused (/status and /metrics).
  static void expectReloads(const std::string& url, const std::string& metrics, int n) {
    const nlohmann::json s = status(url);
    EXPECT_EQ(s["reload"]["succeeded"], n) << s.dump();
    EXPECT_EQ(s["reload"]["failed"], 0) << s.dump();
    EXPECT_EQ(s["reload"]["generation"], n + 1) << s.dump();
    EXPECT_EQ(metricSum(metrics, "evhost_reloads_total"), n) << metrics;
    EXPECT_EQ(metricSum(metrics, "evhost_reload_failures_total"), 0) << metrics;
  }
  // A graceful stop: exit 0, and (in the sanitizer build) nothing reported.
  static void stopCleanly(EvhostProcess& host) {
    host.signal(SIGTERM);
    EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << tail(host.log());
    EXPECT_THAT(host.log(), Not(HasSubstr("Sanitizer")));
  }

  RedisServer redis_;
  TempDir dir_;
};

TEST_F(ReloadLoadTest, StreamAtTwentyThousandASecondThroughTenReloads) {
  install("probe.so", 1);
  install("probe_q.so", 1);
  install("probe_r.so", 2);
  const std::string p1 = probe("p", "probe.so", "p1");
  const std::string p2 = probe("p", "probe.so", "p2");
  const std::string p3 = probe("p", "probe.so", "p3");
  const std::string q = probe("q", "probe_q.so", "q1");
  const std::string r = probe("r", "probe_r.so", "r1");
  const auto file = [&](const Shape& s) { return config(streamChannel(), s); };
  // Each step; the build of probe.so installed before it, if any.
  const std::vector<std::pair<Shape, int>> steps = {
      {{p1, all("p")}, 2},             // 1: p's file replaced by a new build (v1 -> v2)
      {{p1 + q, split("p", "q")}, 0},  // 2: q added; the routes split the types between p and q
      {{p2 + q, split("p", "q")}, 0},  // 3: p's config changed: a new instance
      {{p2 + q, split("p", "q")}, 1},  // 4: p's file replaced (v2 -> v1)
      {{p2 + q, all("q")}, 0},         // 5: routes: everything to q
      {{p2, all("p")}, 0},             // 6: q removed (with entries in flight), everything to p
      {{p2 + r, split("r", "p")}, 0},  // 7: r added (a v2 build) and routed to
      {{p2 + r, split("r", "p")}, 2},  // 8: p's file replaced (v1 -> v2)
      {{p3, all("p", "        retry: {max_attempts: 5}\n")}, 0},  // 9: p's config changed, r removed, routes
      {{p3, all("p", "        retry: {max_attempts: 5}\n")}, 1},  // 10: p's file replaced (v2 -> v1)
  };
  // The instances that handle events at some point ("tag|vN").
  const std::set<std::string> expected = {"p1|v1", "p1|v2", "q1|v1", "p2|v2", "p2|v1", "r1|v2", "p3|v2", "p3|v1"};

  EvhostProcess host(file({p1, all("p")}));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  const std::string url = opsUrl(host);
  ASSERT_FALSE(url.empty()) << host.log();

  const size_t total = static_cast<size_t>(kStreamRate) * kStreamSeconds.count();
  const auto started = Clock::now();
  PacedProducer producer(
      redis_.port(), kStreamRate, total,
      [](size_t i) {
        return std::vector<std::string>{"XADD", kStream, "*", "event", event("s" + std::to_string(i), i)};
      },
      [](const redisReply& reply) { return reply.type == REDIS_REPLY_STRING; });
  std::vector<std::string> yaml;
  for (const auto& step : steps) {
    yaml.push_back(file(step.first));
  }
  reloadThrough(host, url, yaml, started + std::chrono::milliseconds(400), std::chrono::milliseconds(600),
                [&](size_t i) {
                  if (steps[i].second != 0) {
                    install("probe.so", steps[i].second);
                  }
                });
  producer.join();
  ASSERT_EQ(producer.error(), "");
  ASSERT_EQ(producer.sent(), total);
  EXPECT_EQ(producer.refused(), 0u);

  // Every entry handled and acknowledged (a hang guard).
  const bool drained = eventually(
      [&] {
        return llen(kRecords) >= static_cast<long long>(total) &&
               redis_.command({"XPENDING", kStream, kGroup})->element[0]->integer == 0;
      },
      kDrainGuard);
  const double handled_s = std::chrono::duration<double>(Clock::now() - producer.started()).count();
  ASSERT_TRUE(drained) << llen(kRecords) << " of " << total << " handled\n" << tail(host.log());
  // Anything handled twice would show up now.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  const Tally t = tally("s", total);
  std::cout << "[ stream ] produced " << producer.sent() << " entries in " << producer.seconds() << " s ("
            << static_cast<long long>(producer.rate()) << "/s, asked " << kStreamRate << "/s); all handled "
            << handled_s << " s after the first (" << static_cast<long long>(static_cast<double>(total) / handled_s)
            << "/s)\n"
            << "[ stream ] handled by instance (tag|build): " << counts(t.by_instance) << "\n";
  RecordProperty("produced_per_second", static_cast<int>(producer.rate()));
  RecordProperty("handled_per_second", static_cast<int>(static_cast<double>(total) / handled_s));
  RecordProperty("handled_by_instance", counts(t.by_instance));

  EXPECT_TRUE(t.twice.empty()) << t.twice.size() << " handled twice: " << firstFew(t.twice);
  EXPECT_TRUE(t.missing.empty()) << t.missing.size() << " never handled: s" << firstFew(t.missing);
  EXPECT_TRUE(t.unknown.empty()) << firstFew(t.unknown);
  EXPECT_EQ(llen(kRecords), static_cast<long long>(total));
  for (const auto& [instance, n] : t.by_instance) {
    EXPECT_EQ(expected.count(instance), 1u) << "an unexpected instance: " << instance;
  }
  for (const std::string& instance : expected) {
    EXPECT_GT(t.by_instance.count(instance) != 0 ? t.by_instance.at(instance) : 0, 0u)
        << instance << " handled nothing";
  }
  EXPECT_EQ(redis_.command({"XPENDING", kStream, kGroup})->element[0]->integer, 0);
  EXPECT_TRUE(eventually([&] { return host.countInLog("plugin p replaced (a new build of its file)") >= 4; }))
      << tail(host.log());
  EXPECT_EQ(host.countInLog("plugin p replaced (a new build of its file)"), 4u) << tail(host.log());
  EXPECT_TRUE(host.waitForLog("plugin q added")) << tail(host.log());
  EXPECT_EQ(host.countInLog("plugin q added"), 1u);
  EXPECT_TRUE(host.waitForLog("plugin q removed")) << tail(host.log());
  EXPECT_EQ(host.countInLog("plugin q removed"), 1u);
  EXPECT_TRUE(host.waitForLog("plugin r added")) << tail(host.log());
  EXPECT_EQ(host.countInLog("plugin r added"), 1u);
  EXPECT_TRUE(host.waitForLog("plugin r removed")) << tail(host.log());
  EXPECT_EQ(host.countInLog("plugin r removed"), 1u);
  EXPECT_THAT(host.log(), Not(HasSubstr("reload failed")));
  // No Redis setting changed: every connection was kept.
  EXPECT_THAT(host.log(), Not(HasSubstr("connection lost")));

  const std::string metrics = httpGet(url + "/metrics").body;
  expectNothingDeadLettered(metrics);
  expectReloads(url, metrics, 10);
  stopCleanly(host);
  EXPECT_EQ(redis_.command({"XPENDING", kStream, kGroup})->element[0]->integer, 0);
  EXPECT_EQ(llen(kRecords), static_cast<long long>(total));
}

TEST_F(ReloadLoadTest, PubSubAtFiveThousandASecondLosesNothingThroughReloads) {
  install("probe.so", 1);
  install("probe_q.so", 1);
  install("probe_r.so", 2);
  const auto p = [&](int n) { return probe("p", "probe.so", "p" + std::to_string(n)); };
  const std::string q = probe("q", "probe_q.so", "q1");
  const std::string r = probe("r", "probe_r.so", "r1");
  const auto file = [&](const Shape& s) { return config(pubsubChannel(), s); };
  // None of them touches the Redis settings.
  const std::vector<Shape> steps = {
      {p(1) + q, split("p", "q")},                             // 1: q added, the routes split the types
      {p(2) + q, split("p", "q")},                             // 2: p's config changed: a new instance
      {p(2) + q, all("q")},                                    // 3: routes: everything to q
      {p(2), all("p")},                                        // 4: q removed, everything to p
      {p(2) + r, split("r", "p")},                             // 5: r added and routed to
      {p(3) + r, split("r", "p")},                             // 6: p's config changed
      {p(3), all("p")},                                        // 7: r removed, routes
      {p(4), all("p", "        retry: {max_attempts: 5}\n")},  // 8: p's config and its route's retry changed
  };
  const std::set<std::string> expected = {"p1|v1", "q1|v1", "p2|v1", "r1|v2", "p3|v1", "p4|v1"};

  EvhostProcess host(file({p(1), all("p")}));
  ASSERT_TRUE(host.waitForLog("subscribed to " + std::string(kPubSub))) << host.log();
  const std::string url = opsUrl(host);
  ASSERT_FALSE(url.empty()) << host.log();
  const std::vector<std::string> subscriber = subscriberIds();
  ASSERT_EQ(subscriber.size(), 1u);

  const size_t total = static_cast<size_t>(kPubSubRate) * kPubSubSeconds.count();
  const auto started = Clock::now();
  // Each PUBLISH must reach one subscriber: evhost's, never between two
  // connections.
  PacedProducer producer(
      redis_.port(), kPubSubRate, total,
      [](size_t i) {
        return std::vector<std::string>{"PUBLISH", kPubSub, event("m" + std::to_string(i), i)};
      },
      [](const redisReply& reply) { return reply.type == REDIS_REPLY_INTEGER && reply.integer == 1; });
  std::vector<std::string> yaml;
  for (const auto& s : steps) {
    yaml.push_back(file(s));
  }
  reloadThrough(host, url, yaml, started + std::chrono::milliseconds(400), std::chrono::milliseconds(600),
                [](size_t) {});
  producer.join();
  ASSERT_EQ(producer.error(), "");
  ASSERT_EQ(producer.sent(), total);
  EXPECT_EQ(producer.refused(), 0u) << "PUBLISHes that reached no subscriber";

  const bool drained = eventually([&] { return llen(kRecords) >= static_cast<long long>(total); }, kDrainGuard);
  const double handled_s = std::chrono::duration<double>(Clock::now() - producer.started()).count();
  ASSERT_TRUE(drained) << llen(kRecords) << " of " << total << " handled\n" << tail(host.log());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  const Tally t = tally("m", total);
  std::cout << "[ pubsub ] published " << producer.sent() << " messages in " << producer.seconds() << " s ("
            << static_cast<long long>(producer.rate()) << "/s, asked " << kPubSubRate << "/s); all handled "
            << handled_s << " s after the first\n"
            << "[ pubsub ] handled by instance (tag|build): " << counts(t.by_instance) << "\n";
  RecordProperty("published_per_second", static_cast<int>(producer.rate()));
  RecordProperty("handled_by_instance", counts(t.by_instance));

  EXPECT_TRUE(t.twice.empty()) << t.twice.size() << " handled twice: " << firstFew(t.twice);
  EXPECT_TRUE(t.missing.empty()) << t.missing.size() << " never handled (gaps): m" << firstFew(t.missing);
  EXPECT_TRUE(t.unknown.empty()) << firstFew(t.unknown);
  EXPECT_EQ(llen(kRecords), static_cast<long long>(total));
  for (const auto& [instance, n] : t.by_instance) {
    EXPECT_EQ(expected.count(instance), 1u) << "an unexpected instance: " << instance;
  }
  for (const std::string& instance : expected) {
    EXPECT_GT(t.by_instance.count(instance) != 0 ? t.by_instance.at(instance) : 0, 0u)
        << instance << " handled nothing";
  }

  // The subscriber's connection was kept all along.
  EXPECT_EQ(subscriberIds(), subscriber);
  EXPECT_THAT(host.log(), Not(HasSubstr("pubsub gap")));
  EXPECT_THAT(host.log(), Not(HasSubstr("connection lost")));
  EXPECT_THAT(host.log(), Not(HasSubstr("connected again")));
  EXPECT_THAT(host.log(), Not(HasSubstr("reload failed")));
  const std::string metrics = httpGet(url + "/metrics").body;
  EXPECT_EQ(metricSum(metrics, "evhost_pubsub_gaps_total"), 0) << metrics;
  EXPECT_THAT(metrics, HasSubstr("evhost_redis_outages_total{connection=\"subscriber\"} 0"));
  expectNothingDeadLettered(metrics);
  expectReloads(url, metrics, 8);
  stopCleanly(host);
}

}  // namespace
}  // namespace evh::test
