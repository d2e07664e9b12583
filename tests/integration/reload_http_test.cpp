// POST /reload on the ops listener and `evhctl reload`: the outcome comes
// back in the answer (200 applied, 422 refused with every problem named),
// only POST is taken, a configured ops token is required (401 without, 403
// with a wrong one, never echoed), and evhctl says clearly what happened --
// also when the listener is off or not there.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "ops-token-4f9a1c2e7b";

class ReloadHttpTest : public ::testing::Test {
 protected:
  // `to`: the plugin the channel routes to; `ops`: the ops section's
  // extra keys.
  std::string config(const std::string& to, const std::string& ops = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "ops: {listen: \"127.0.0.1:0\"" << ops << "}\n"
      << "plugins:\n"
      << "  a: {path: recorder, config: {key: seen_a}}\n"
      << "  b: {path: recorder, config: {key: seen_b}}\n"
      << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << "      - plugins: [" << to << "]\n";
    return y.str();
  }
  std::string tokenFile() {
    const std::string path = dir_.path() + "/ops.token";
    std::ofstream(path) << kToken << "\n";
    ::chmod(path.c_str(), 0600);
    return path;
  }
  static void rewrite(const EvhostProcess& host, const std::string& yaml) {
    std::ofstream(host.configPath(), std::ios::trunc) << yaml;
  }

  RedisServer redis_;
  TempDir dir_;
};

TEST_F(ReloadHttpTest, PostReloadAnswersWithTheOutcome) {
  EvhostProcess host(config("a"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  const std::string url = opsUrl(host) + "/reload";

  rewrite(host, config("b"));
  HttpResponse r = httpRequest("POST", url);
  ASSERT_EQ(r.status, 200) << r.body << host.log();
  EXPECT_EQ(r.content_type, "application/json");
  nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["result"], "ok");
  EXPECT_EQ(j["generation"], 2);
  EXPECT_EQ(j["changed"], "the routes of 1 channel(s)");
  EXPECT_TRUE(host.waitForLog("(POST /reload)")) << host.log();

  rewrite(host, config("nosuch"));
  r = httpRequest("POST", url);
  ASSERT_EQ(r.status, 422) << r.body;
  j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["result"], "failed");
  EXPECT_EQ(j["generation"], 2);
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_THAT(j["errors"][0].get<std::string>(), HasSubstr("undefined plugin \"nosuch\""));

  // Only POST.
  r = httpGet(url);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "POST");
  // The other endpoints still take GET only.
  EXPECT_EQ(httpRequest("POST", opsUrl(host) + "/status").status, 405);
}

TEST_F(ReloadHttpTest, AConfiguredTokenIsRequiredAndNeverEchoed) {
  EvhostProcess host(config("a", ", token_file: " + tokenFile()));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  const std::string url = opsUrl(host) + "/reload";
  EXPECT_THAT(host.log(), HasSubstr("(POST /reload with the ops token)"));

  HttpResponse r = httpRequest("POST", url);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_THAT(r.body, HasSubstr("Authorization: Bearer"));
  r = httpRequest("POST", url, {"Authorization: Bearer wrong-token"});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(r.body, Not(HasSubstr("wrong-token")));
  r = httpRequest("POST", url, {"Authorization: Basic b3BzOnRva2Vu"});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(host.countInLog("reloading the configuration"), 0u) << host.log();

  r = httpRequest("POST", url, {std::string("Authorization: Bearer ") + kToken});
  EXPECT_EQ(r.status, 200) << r.body;
  // The token is in no log line and no answer.
  EXPECT_THAT(host.log(), Not(HasSubstr(kToken)));
  EXPECT_THAT(httpGet(opsUrl(host) + "/status").body, Not(HasSubstr(kToken)));
}

TEST_F(ReloadHttpTest, EvhctlReloadSendsTheTokenAndSaysWhatHappened) {
  const std::string token = ", token_file: " + tokenFile();
  EvhostProcess host(config("a", token));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  // The listener took a free port, so the URL is given (and the token with
  // it; with --config evhctl reads ops.token_file itself).
  const std::string base = opsUrl(host);

  rewrite(host, config("b", token));
  auto [code, out] = runCommand({evhctlBin(), "reload", "--url", base, "--token-file", tokenFile()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("reloaded (generation 2): the routes of 1 channel(s) changed"));

  rewrite(host, config("nosuch", token));
  std::tie(code, out) = runCommand({evhctlBin(), "reload", "--url", base, "--token-file", tokenFile()});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("refused; evhost keeps its running configuration"));
  EXPECT_THAT(out, HasSubstr("undefined plugin \"nosuch\""));

  std::tie(code, out) = runCommand({evhctlBin(), "reload", "--url", base});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("refused the request (HTTP 401)"));

  std::tie(code, out) = runCommand({evhctlBin(), "reload", "--url", "http://127.0.0.1:1"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("evhctl reload: no answer from http://127.0.0.1:1/reload"));
  EXPECT_THAT(out, HasSubstr("(is evhost running?)"));
}

TEST_F(ReloadHttpTest, EvhctlReloadSaysWhenTheListenerIsOff) {
  const std::string path = dir_.path() + "/off.yaml";
  std::ofstream(path) << "redis: {host: 127.0.0.1, port: " << redis_.port()
                      << "}\nops: {listen: \"\"}\nplugins: {a: {path: recorder}}\n"
                         "channels: {c: {routes: [{plugins: [a]}]}}\n";
  auto [code, out] = runCommand({evhctlBin(), "reload", "--config", path});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("turns the ops listener off (ops.listen: \"\"); give --url"));
}

}  // namespace
}  // namespace evh::test
