// How a reload that cannot be applied ends, with the real evhost: one asked
// for while evhost stops, or under way when it begins stopping, is "not
// run" (503, evhctl exit 3, counted neither as applied nor as failed); a
// FIFO at the config path is refused naming it, without holding libuv's
// thread pool (evhost still stops at once); and a value that came from the
// environment is masked wherever a reload's errors are shown.
#include "support/ops_fixture.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr const char* kSecret = "s3cr3t-from-the-environment-7d41";

std::string outcomeEvent(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","payload":{}})";
}

class ReloadOutcomesTest : public OpsFixture {
 protected:
  // One channel, routed to a recorder; `limits` is the limits section's
  // text (a value of it may be broken on purpose).
  std::string routes(const std::string& limits = "{max_in_flight: 100}") const {
    return config("limits: " + limits +
                  "\n"
                  "shutdown_timeout_ms: 10000\n"
                  "plugins:\n"
                  "  a: {path: recorder, config: {key: seen_a}}\n"
                  "  slow: {path: scripted_serial}\n"
                  "channels:\n"
                  "  orders:\n"
                  "    routes: [{events: \"*\", plugins: [a, slow]}]\n");
  }
  static void rewrite(const EvhostProcess& host, const std::string& yaml) {
    std::ofstream(host.configPath(), std::ios::trunc) << yaml;
  }
  static Json status(const std::string& url) { return Json::parse(httpGet(url + "/status").body); }
};

// Asked for while evhost drains: 503 with {"result": "not run", "reason"},
// evhctl exits 3 saying so, and /status and the metrics count nothing.
TEST_F(ReloadOutcomesTest, AReloadAskedForWhileStoppingIsNotRun) {
  EvhostProcess host(routes());
  const std::string url = urlOf(host);
  ASSERT_EQ(getUntilStatus(url + "/readyz", 200).status, 200) << host.log();
  redis_.command({"PUBLISH", "test:orders", outcomeEvent("s1", "SLEEP_3000")});
  ASSERT_TRUE(eventually([&] {
    return httpGet(url + "/metrics").body.find("\nevhost_events_in_flight 1\n") != std::string::npos;
  })) << host.log();
  host.signal(SIGTERM);
  ASSERT_EQ(getUntilStatus(url + "/readyz", 503).status, 503) << host.log();

  const HttpResponse r = httpRequest("POST", url + "/reload");
  ASSERT_EQ(r.status, 503) << r.body << host.log();
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.retry_after, "");  // stopping: asking again will not help
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["result"], "not run");
  EXPECT_EQ(j["reason"], "evhost is stopping");
  EXPECT_EQ(j["generation"], 1);

  const auto [code, out] = runCommand({evhctlBin(), "reload", "--url", url});
  EXPECT_EQ(code, 3) << out;
  EXPECT_THAT(out, HasSubstr("evhctl reload: not run: evhost is stopping; evhost keeps its running configuration"));

  const Json s = status(url);
  EXPECT_EQ(s["reload"]["succeeded"], 0);
  EXPECT_EQ(s["reload"]["failed"], 0);
  EXPECT_FALSE(s["reload"].contains("last"));
  const std::string metrics = httpGet(url + "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("\nevhost_reload_failures_total 0\n"));
  EXPECT_THAT(metrics, HasSubstr("\nevhost_config_last_reload_successful 1\n"));
  EXPECT_EQ(host.waitExit(), 0) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("reload asked for by POST /reload not run: evhost is stopping"));
  EXPECT_THAT(host.log(), Not(HasSubstr("reload failed")));
}

// A reload whose read is under way when SIGTERM comes is not run either:
// not a failure. (The file is made large enough that its read and check
// take a while; the test asserts the read had begun.)
TEST_F(ReloadOutcomesTest, AReloadUnderWayWhenEvhostBeginsStoppingIsNotRun) {
  EvhostProcess host(routes());
  ASSERT_TRUE(host.waitForLog("evhost started")) << host.log();
  {
    std::ofstream out(host.configPath(), std::ios::trunc);
    out << routes();
    const std::string comment = "# " + std::string(1000, 'x') + "\n";
    for (int i = 0; i < 8000; ++i) {  // 8 MB of comments: a second or more to read and check
      out << comment;
    }
  }
  host.signal(SIGHUP);
  ASSERT_TRUE(host.waitForLog("reloading the configuration from")) << host.log();
  host.signal(SIGTERM);
  const auto begun = std::chrono::steady_clock::now();
  EXPECT_EQ(host.waitExit(), 0) << host.log();
  EXPECT_LT(std::chrono::steady_clock::now() - begun, std::chrono::seconds(20));
  EXPECT_THAT(host.log(), HasSubstr("reload not run: evhost began stopping during the reload; the running "
                                    "configuration is kept"));
  EXPECT_THAT(host.log(), Not(HasSubstr("reload failed")));
  EXPECT_THAT(host.log(), Not(HasSubstr("configuration reloaded from")));
}

// A FIFO at the config path: refused as not a regular file, naming the
// path, at once -- no reader blocked on it holds the thread pool -- and
// evhost stops promptly on SIGTERM.
TEST_F(ReloadOutcomesTest, AFifoAtTheConfigPathIsRefusedAndEvhostStillStops) {
  EvhostProcess host(routes());
  const std::string url = urlOf(host);
  ASSERT_TRUE(host.waitForLog("evhost started")) << host.log();
  ASSERT_EQ(::unlink(host.configPath().c_str()), 0);
  ASSERT_EQ(::mkfifo(host.configPath().c_str(), 0600), 0);

  const HttpResponse r = httpRequest("POST", url + "/reload");
  ASSERT_EQ(r.status, 422) << r.body << host.log();
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["result"], "failed");
  ASSERT_EQ(j["errors"].size(), 1u) << r.body;
  EXPECT_EQ(j["errors"][0], host.configPath() + ": cannot read config file: it is a FIFO, not a regular file");
  EXPECT_TRUE(host.waitForLog("reload: " + host.configPath() + ": cannot read config file: it is a FIFO"))
      << host.log();
  // SIGHUP's reload too, and the thread pool is free for it.
  host.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return host.countInLog("reload failed") == 2; })) << host.log();

  host.signal(SIGTERM);
  const auto begun = std::chrono::steady_clock::now();
  EXPECT_EQ(host.waitExit(std::chrono::seconds(10)), 0) << host.log();
  EXPECT_LT(std::chrono::steady_clock::now() - begun, std::chrono::seconds(5));
}

// A ${VAR} whose value a reload's error quotes (a bad integer is shown
// expanded): GET /status, POST /reload's answer and the log show "***",
// never the value.
TEST_F(ReloadOutcomesTest, ValuesFromTheEnvironmentAreMaskedInReloadErrors) {
  EvhostProcess host(routes(), {}, {std::string("EVH_TEST_RELOAD_SECRET=") + kSecret});
  const std::string url = urlOf(host);
  ASSERT_TRUE(host.waitForLog("evhost started")) << host.log();
  rewrite(host, routes("{max_in_flight: \"${EVH_TEST_RELOAD_SECRET}\"}"));

  const HttpResponse r = httpRequest("POST", url + "/reload");
  ASSERT_EQ(r.status, 422) << r.body << host.log();
  EXPECT_THAT(r.body, Not(HasSubstr(kSecret)));
  const Json j = Json::parse(r.body);
  ASSERT_EQ(j["errors"].size(), 1u) << r.body;
  EXPECT_THAT(j["errors"][0].get<std::string>(),
              HasSubstr("limits.max_in_flight: expected an integer in 1..4294967295, got \"***\" (from "
                        "\"${EVH_TEST_RELOAD_SECRET}\")"));
  EXPECT_THAT(httpGet(url + "/status").body, Not(HasSubstr(kSecret)));
  const Json s = status(url);
  EXPECT_EQ(s["reload"]["last"]["errors"], j["errors"]);
  EXPECT_TRUE(host.waitForLog("got \"***\" (from \"${EVH_TEST_RELOAD_SECRET}\")")) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr(kSecret)));
}

}  // namespace
}  // namespace evh::test
