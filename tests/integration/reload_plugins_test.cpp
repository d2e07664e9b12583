// Plugins changed by a reload, with the real evhost: an added plugin is
// loaded and initialised before the swap, a removed one shut down once and
// unloaded only when nothing of it is pending, a changed one replaced by a
// new instance initialised before the old retires, a new build renamed over
// the file loaded anew, and a new plugin whose init fails refuses the whole
// reload. The probe plugin (tests/plugins/reload_probe.c) records which
// build and tag handled each event, and logs its init and shutdown.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <hiredis/hiredis.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string probeEvent(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"c-)" + id +
         R"(","payload":{}})";
}

std::string readProbeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> probeLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

class ReloadPluginsTest : public ::testing::Test {
 protected:
  ReloadPluginsTest() {
    char tmpl[] = "/tmp/evh-reload-plugins-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    EXPECT_NE(made, nullptr);
    dir_ = made != nullptr ? made : "/tmp";
    install(1);
  }
  ~ReloadPluginsTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string probePath() const { return dir_ + "/probe.so"; }
  std::string probeLog() const { return dir_ + "/probe.log"; }
  // Puts build `version` of the probe at probePath() the way a deployment
  // does: copied beside it, then renamed over it (atomic).
  void install(int version) {
    const std::string tmp = probePath() + ".new";
    fs::copy_file(std::string(testPluginDir()) + "/reload_probe_v" + std::to_string(version) + ".so", tmp,
                  fs::copy_options::overwrite_existing);
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                             fs::perms::others_exec);
    fs::rename(tmp, probePath());
  }
  // The probe entry, as a line under plugins:.
  std::string probe(const std::string& tag, const std::string& more = "") const {
    return "  p: {path: " + probePath() + ", config: {tag: " + tag + ", key: probe:events, log: " + probeLog() + more +
           "}}\n";
  }
  // Plugin a (recorder) always; `extra` more plugin lines; the channel
  // routes to `to`.
  std::string config(const std::string& extra, const std::string& to) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "plugins:\n"
      << "  a: {path: recorder, config: {key: seen_a, tag: a}}\n"
      << extra << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << "      - events: \"*\"\n"
      << "        plugins: [" << to << "]\n";
    return y.str();
  }
  static void reload(EvhostProcess& host, const std::string& yaml, size_t nth) {
    std::ofstream(host.configPath(), std::ios::trunc) << yaml;
    host.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] {
      return host.countInLog("configuration reloaded from") + host.countInLog("reload failed") >= nth;
    })) << host.log();
  }
  void publish(const std::string& id) { redis_.command({"PUBLISH", "test:jollyjet:events:product", probeEvent(id)}); }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  std::vector<std::string> records() {
    const auto list = redis_.command({"LRANGE", "probe:events", "0", "-1"});
    std::vector<std::string> out;
    for (size_t i = 0; i < list->elements; ++i) {
      out.emplace_back(list->element[i]->str, list->element[i]->len);
    }
    return out;
  }
  // How many of the process's mappings are of a file whose path starts
  // with `path` (a replaced one reads "<path> (deleted)").
  static size_t mapped(const EvhostProcess& host, const std::string& path) {
    size_t n = 0;
    for (const std::string& l : probeLines(readProbeFile("/proc/" + std::to_string(host.pid()) + "/maps"))) {
      n += l.find(path) != std::string::npos ? 1 : 0;
    }
    return n;
  }
  static nlohmann::json status(const EvhostProcess& host) {
    return nlohmann::json::parse(httpGet(opsUrl(host) + "/status").body);
  }

  RedisServer redis_;
  std::string dir_;
};

TEST_F(ReloadPluginsTest, AnAddedPluginIsLoadedAndARemovedOneShutDownOnceAndUnloaded) {
  EvhostProcess host(config("", "a"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  EXPECT_EQ(mapped(host, probePath()), 0u);

  reload(host, config(probe("t1"), "a, p"), 1);
  ASSERT_THAT(host.log(), HasSubstr("plugin p added")) << host.log();
  publish("e1");
  ASSERT_TRUE(eventually([&] { return llen("probe:events") == 1 && llen("seen_a") == 1; })) << host.log();
  EXPECT_THAT(records(), ElementsAre("e1|t1|v1"));
  EXPECT_GT(mapped(host, probePath()), 0u);
  const std::string health = "\nevhost_plugin_health{plugin=\"p\"} 0\n";
  EXPECT_THAT(httpGet(opsUrl(host) + "/metrics").body, HasSubstr(health));

  reload(host, config("", "a"), 2);
  ASSERT_THAT(host.log(), HasSubstr("plugin p removed")) << host.log();
  ASSERT_TRUE(host.waitForLog("plugin p (generation 1) retired: shut down, " + probePath() + " unloaded"))
      << host.log();
  EXPECT_THAT(probeLines(readProbeFile(probeLog())), ElementsAre("init t1 v1", "shutdown t1 v1"));
  EXPECT_EQ(mapped(host, probePath()), 0u);
  // Its series went with it (a scrape no longer reads the instance).
  EXPECT_TRUE(eventually([&] { return httpGet(opsUrl(host) + "/metrics").body.find(health) == std::string::npos; }));
  publish("e2");
  ASSERT_TRUE(eventually([&] { return llen("seen_a") == 2; })) << host.log();
  EXPECT_EQ(llen("probe:events"), 1);

  host.signal(SIGTERM);
  ASSERT_EQ(host.waitExit(), 0) << host.log();
  EXPECT_THAT(probeLines(readProbeFile(probeLog())),
              ElementsAre("init t1 v1", "shutdown t1 v1"));  // not shut down again
  EXPECT_THAT(host.log(), Not(HasSubstr("ERROR: AddressSanitizer")));
}

// Events published throughout a config change are each handled once, by
// the old instance or the new one; the new one was initialised before the
// old one shut down.
TEST_F(ReloadPluginsTest, AChangedConfigGetsANewInstanceAndEveryEventIsHandledOnce) {
  EvhostProcess host(config(probe("t1"), "p"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  std::thread publisher([&, port = redis_.port()] {
    redisContext* c = redisConnect("127.0.0.1", port);
    while (c != nullptr && c->err == 0 && !done.load()) {
      const std::string body = probeEvent("e" + std::to_string(sent.load()));
      auto* r = static_cast<redisReply*>(
          redisCommand(c, "PUBLISH %s %b", "test:jollyjet:events:product", body.data(), body.size()));
      if (r == nullptr) {
        break;
      }
      freeReplyObject(r);
      sent.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    redisFree(c);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  reload(host, config(probe("t2"), "p"), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  done = true;
  publisher.join();
  ASSERT_THAT(host.log(), HasSubstr("plugin p replaced")) << host.log();
  ASSERT_THAT(host.log(), Not(HasSubstr("reload failed"))) << host.log();
  const long long total = sent.load();
  ASSERT_TRUE(eventually([&] { return llen("probe:events") >= total; })) << host.log();
  std::set<std::string> ids;
  std::map<std::string, int> by_tag;
  for (const std::string& r : records()) {
    const size_t bar = r.find('|');
    EXPECT_TRUE(ids.insert(r.substr(0, bar)).second) << "twice: " << r;
    ++by_tag[r.substr(bar + 1)];
  }
  EXPECT_EQ(static_cast<long long>(ids.size()), total);
  EXPECT_GT(by_tag["t1|v1"], 0);
  EXPECT_GT(by_tag["t2|v1"], 0);
  ASSERT_TRUE(host.waitForLog("plugin p (generation 1) retired")) << host.log();
  EXPECT_THAT(probeLines(readProbeFile(probeLog())), ElementsAre("init t1 v1", "init t2 v1", "shutdown t1 v1"));
  // The file did not change: the new instance shares the loaded library.
  EXPECT_THAT(host.log(), Not(HasSubstr(probePath() + " unloaded")));
  EXPECT_GT(mapped(host, probePath()), 0u);
  EXPECT_EQ(status(host)["plugins"][1]["generation"], 2);
}

TEST_F(ReloadPluginsTest, ANewBuildRenamedOverTheFileIsLoadedAnew) {
  EvhostProcess host(config(probe("t1"), "p"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish("e1");
  ASSERT_TRUE(eventually([&] { return llen("probe:events") == 1; })) << host.log();

  install(2);  // the config stays as it is
  reload(host, readProbeFile(host.configPath()), 1);
  ASSERT_THAT(host.log(), HasSubstr("plugin p replaced (a new build of its file)")) << host.log();
  publish("e2");
  ASSERT_TRUE(eventually([&] { return llen("probe:events") == 2; })) << host.log();
  EXPECT_THAT(records(), ElementsAre("e1|t1|v1", "e2|t1|v2"));
  ASSERT_TRUE(host.waitForLog("plugin p (generation 1) retired: shut down")) << host.log();
  EXPECT_THAT(probeLines(readProbeFile(probeLog())), ElementsAre("init t1 v1", "init t1 v2", "shutdown t1 v1"));
  // The old build is gone from the process ("(deleted)": the file renamed over).
  EXPECT_TRUE(eventually([&] {
    for (const std::string& l : probeLines(readProbeFile("/proc/" + std::to_string(host.pid()) + "/maps"))) {
      if (l.find("(deleted)") != std::string::npos && l.find(probePath()) != std::string::npos) {
        return false;
      }
    }
    return true;
  })) << readProbeFile("/proc/" + std::to_string(host.pid()) + "/maps");
  const nlohmann::json p = status(host)["plugins"][1];
  EXPECT_EQ(p["name"], "p");
  EXPECT_EQ(p["version"], "1.0.2");
  EXPECT_EQ(p["generation"], 2);
}

// A call answered PENDING keeps its instance -- and its code -- until it is
// completed, even after a reload removed the plugin (run under ASan too).
TEST_F(ReloadPluginsTest, ARemovedPluginWithACallPendingIsUnloadedOnlyOnceItCompletes) {
  EvhostProcess host(config(probe("t1", ", pending_ms: 1500"), "p"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish("e1");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(llen("probe:events"), 0);  // the call is open

  reload(host, config("", "a"), 1);
  ASSERT_THAT(host.log(), HasSubstr("plugin p removed")) << host.log();
  ASSERT_THAT(host.log(), Not(HasSubstr("retired"))) << host.log();
  ASSERT_TRUE(eventually([&] { return !status(host)["plugins_retiring"].empty(); })) << host.log();
  EXPECT_EQ(status(host)["plugins_retiring"][0]["name"], "p");
  EXPECT_GT(mapped(host, probePath()), 0u);

  ASSERT_TRUE(host.waitForLog("plugin p (generation 1) retired: shut down, " + probePath() + " unloaded"))
      << host.log();
  EXPECT_EQ(llen("probe:events"), 1);  // completed before it was shut down
  EXPECT_THAT(probeLines(readProbeFile(probeLog())), ElementsAre("init t1 v1", "shutdown t1 v1"));
  EXPECT_EQ(mapped(host, probePath()), 0u);
  EXPECT_TRUE(status(host)["plugins_retiring"].empty());
  host.signal(SIGTERM);
  ASSERT_EQ(host.waitExit(), 0) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("ERROR: AddressSanitizer")));
}

TEST_F(ReloadPluginsTest, ANewPluginWhoseInitFailsRefusesTheReload) {
  EvhostProcess host(config("", "a"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  reload(host, config(probe("t1", ", fail_init: true"), "a, p"), 1);
  ASSERT_THAT(host.log(), HasSubstr("reload failed")) << host.log();
  // The plugin's line (5) and its own words.
  EXPECT_THAT(host.log(), HasSubstr(host.configPath() + ":5: plugins.p: plugin \"p\""));
  EXPECT_THAT(host.log(), HasSubstr("reload_probe t1 was told to fail its init"));
  // Loaded for the attempt, and unloaded (as a removed plugin is).
  EXPECT_TRUE(eventually([&] { return mapped(host, probePath()) == 0; })) << host.log();
  EXPECT_TRUE(eventually([&] { return readProbeFile(probeLog()).empty(); }));  // its init never went through
  publish("e1");
  ASSERT_TRUE(eventually([&] { return llen("seen_a") == 1; })) << host.log();
  EXPECT_EQ(llen("probe:events"), 0);
  nlohmann::json s;
  ASSERT_TRUE(eventually([&] {
    s = status(host);
    return s["reload"]["last"]["result"] == "failed";
  })) << host.log();
  EXPECT_EQ(s["reload"]["generation"], 1);
  ASSERT_FALSE(s["reload"]["last"]["errors"].empty());
  EXPECT_THAT(s["reload"]["last"]["errors"][0].get<std::string>(), HasSubstr("plugin \"p\""));
  EXPECT_EQ(s["plugins"].size(), 1u);
}

}  // namespace
}  // namespace evh::test
