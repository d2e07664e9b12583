// GET /status and evhctl status; readiness through a plugin's health and a
// Redis outage; and every series docs/ops' dashboard and alerting rules name
// exists in a scrape of a deployment that uses every part.
#include "support/ops_fixture.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string statusEvent(const std::string& id, const std::string& type = "ORDER_PLACED") {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","payload":{}})";
}

class OpsStatusTest : public OpsFixture {
 protected:
  // Once evhost is ready (subscribed and reading: a message published
  // before would be lost), one event through Pub/Sub and one through the
  // stream, both handled by the recorder "a".
  void handleOneOfEach(const EvhostProcess& host, const std::string& url) {
    ASSERT_EQ(getUntilStatus(url + "/readyz", 200).status, 200) << host.log();
    redis_.command({"PUBLISH", "test:orders", statusEvent("o1")});
    redis_.command({"XADD", "test:jobs", "*", "event", statusEvent("j1")});
    ASSERT_TRUE(eventually([&] { return redis_.command({"LLEN", "seen"})->integer == 2; })) << host.log();
  }
};

constexpr const char* kDeployment = R"(
plugins:
  a: {path: recorder, config: {tag: a, publish_to: "notices"}}
  health: {path: ok_c, config: {mode: health_degraded}}
  dlq: {path: dlq, config: {flush_interval_ms: 50}}
dead_letter: {plugin: dlq}
channels:
  orders:
    routes: [{events: [ORDER_PLACED], plugins: [a, health]}, {events: "*", plugins: [health]}]
  jobs:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 200}
    routes: [{events: "*", plugins: [a]}]
)";

TEST_F(OpsStatusTest, StatusShowsTheDeploymentAndEvhctlPrintsIt) {
  EvhostProcess host(config(kDeployment));
  const std::string url = urlOf(host);
  ASSERT_NO_FATAL_FAILURE(handleOneOfEach(host, url));

  // A snapshot may be 100 ms old: until it shows both events handled.
  const HttpResponse r = getUntil(url + "/status", [](const HttpResponse& x) {
    return x.status == 200 && x.body.find("\"ready\":true") != std::string::npos &&
           x.body.find("\"ok\":2") != std::string::npos;
  });
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_EQ(r.content_type, "application/json");
  const Json s = Json::parse(r.body);
  EXPECT_EQ(s["version"], EVH_VERSION);
  EXPECT_EQ(s["pid"], host.pid());
  EXPECT_EQ(s["config"]["file"], host.configPath());
  EXPECT_EQ(s["config"]["environment"], "test");
  // The digest of the file as evhost read it.
  auto [rc, sum] = runCommand({"/usr/bin/sha256sum", host.configPath()});
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(s["config"]["sha256"], sum.substr(0, 64));
  EXPECT_GE(s["uptime_seconds"].get<double>(), 0.0);
  std::set<std::string> conns;
  for (const auto& c : s["connections"]) {
    conns.insert(c["name"].get<std::string>());
    EXPECT_EQ(c["up"], true) << c;
    EXPECT_EQ(c["address"], "127.0.0.1:" + std::to_string(redis_.port()));
  }
  EXPECT_EQ(conns, (std::set<std::string>{"commands", "subscriber", "stream test:jobs"}));
  const Json* a = nullptr;
  const Json* health = nullptr;
  for (const auto& p : s["plugins"]) {
    a = p["name"] == "a" ? &p : a;
    health = p["name"] == "health" ? &p : health;
  }
  ASSERT_NE(a, nullptr);
  ASSERT_NE(health, nullptr);
  EXPECT_EQ((*a)["library"], "recorder");
  EXPECT_EQ((*a)["breaker"], "closed");
  EXPECT_EQ((*a)["calls"], 2);
  EXPECT_EQ((*a)["ok"], 2);
  EXPECT_EQ((*health)["health"], "degraded");
  EXPECT_EQ((*health)["health_detail"], "ok_c was told to be degraded");
  ASSERT_EQ(s["streams"].size(), 1U);
  EXPECT_EQ(s["streams"][0]["group"], "workers");
  EXPECT_EQ(s["streams"][0]["key"], "test:jobs");
  ASSERT_EQ(s["channels"].size(), 2U);

  auto [code, out] = runCommand({evhctlBin(), "status", "--url", url});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("evhost " EVH_VERSION));
  EXPECT_THAT(out, HasSubstr("\nready\n"));
  EXPECT_THAT(out, HasSubstr("CONNECTION"));
  EXPECT_THAT(out, HasSubstr("stream test:jobs"));
  EXPECT_THAT(out, HasSubstr("health: ok_c was told to be degraded"));
  EXPECT_THAT(out, HasSubstr("workers"));
  auto [jcode, json] = runCommand({evhctlBin(), "status", "--url", url, "--json"});
  EXPECT_EQ(jcode, 0) << json;
  EXPECT_TRUE(Json::parse(json, nullptr, false).is_object()) << json;
  // Nobody listening: a clear failure, exit 1.
  auto [gone, why] = runCommand({evhctlBin(), "status", "--url", "http://127.0.0.1:1"});
  EXPECT_EQ(gone, 1);
  EXPECT_THAT(why, HasSubstr("no answer from http://127.0.0.1:1/status"));
}

TEST_F(OpsStatusTest, APluginThatIsDownMakesEvhostNotReady) {
  EvhostProcess host(config(R"(
plugins:
  db: {path: ok_c, config: {mode: health_down}}
channels:
  orders:
    routes: [{events: "*", plugins: [db]}]
)"));
  const std::string url = urlOf(host);
  const HttpResponse r =
      getUntil(url + "/readyz", [](const HttpResponse& x) { return x.body.find("is down") != std::string::npos; });
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("plugin \\\"db\\\" is down: ok_c was told to be down"));
  const HttpResponse m = httpGet(url + "/metrics");
  EXPECT_THAT(m.body, HasSubstr("\nevhost_ready 0\n"));
  EXPECT_THAT(m.body, HasSubstr("\nevhost_plugin_health{plugin=\"db\"} 2\n"));
}

TEST_F(OpsStatusTest, ReadinessFollowsARedisOutage) {
  EvhostProcess host(config(R"(
plugins:
  a: {path: recorder}
channels:
  orders:
    routes: [{events: "*", plugins: [a]}]
)"));
  const std::string url = urlOf(host);
  auto status = [&](int want) {
    return getUntil(url + "/readyz", [want](const HttpResponse& x) { return x.status == want; });
  };
  EXPECT_EQ(status(200).status, 200);
  redis_.kill();
  const HttpResponse down = status(503);
  EXPECT_EQ(down.status, 503);
  EXPECT_THAT(down.body, HasSubstr("is down"));
  redis_.restart();
  EXPECT_EQ(status(200).status, 200) << host.log();
  // And the metric says so too.
  EXPECT_THAT(httpGet(url + "/metrics").body, HasSubstr("\nevhost_ready 1\n"));
}

// Every evhost_* / process_* series the dashboard and the alerting rules
// name is in a scrape of a deployment that uses every part.
TEST_F(OpsStatusTest, EverySeriesTheDashboardAndTheAlertsNameExists) {
  EvhostProcess host(config(kDeployment));
  const std::string url = urlOf(host);
  ASSERT_NO_FATAL_FAILURE(handleOneOfEach(host, url));
  const HttpResponse m = getUntil(url + "/metrics", [](const HttpResponse& x) {
    return x.body.find("evhost_publish_total") != std::string::npos &&
           x.body.find("evhost_plugin_dlq_list_length") != std::string::npos;
  });
  std::set<std::string> families;
  std::istringstream lines(m.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      families.insert(line.substr(7, line.find(' ', 7) - 7));
    }
  }
  for (const char* file : {"/docs/ops/grafana-evhost.json", "/docs/ops/alerts.yml"}) {
    std::ifstream in(std::string(EVH_SOURCE_DIR) + file);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(text.empty()) << file;
    const std::regex name(R"(\b(evhost|process)_[a-z_]+)");
    size_t named = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator(); ++it) {
      std::string series = it->str();
      if (series == "evhost_overview") {
        continue;  // the dashboard's uid
      }
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (families.count(series) == 0 && series.size() > s.size() &&
            series.compare(series.size() - s.size(), s.size(), s) == 0) {
          series.resize(series.size() - s.size());
        }
      }
      ++named;
      EXPECT_EQ(families.count(series), 1U) << file << " names " << it->str() << ", which no scrape has";
    }
    EXPECT_GT(named, 10U) << file;
  }
}

}  // namespace
}  // namespace evh::test
