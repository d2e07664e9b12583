// Signed channels against a real Redis and the real evhost: a message signed
// by Node.js's own crypto.createHmac verifies; every kind of bad signature,
// a stale or future timestamp and a replay are refused before any plugin
// runs, counted and dead-lettered with their reason; a stream entry
// delivered again is not a replay; keys rotate without touching publishers.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/tested_binaries.h"

#include "signature/verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kOldKey = "whsec_b2xkLWtleS1vbGQta2V5LW9sZC1rZXktb2xkLWtleQ==";
constexpr const char* kNewKey = "whsec_bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleQ==";
constexpr const char* kSignedChannel = "test:jollyjet:events:orders";

std::string secretOf(const char* text) {
  std::string secret;
  std::string why;
  signature::decodeSecret(text, secret, why);
  return secret;
}

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string signedEvent(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"ORDER_PLACED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"orderId":"o-1"}})";
}

std::string signedWith(const char* key, const std::string& id, int64_t ts, const std::string& body) {
  return signature::makeFrame(id, ts, signature::signV1(secretOf(key), id, ts, body), body);
}

// The output of a shell command (a hang guard is the test's timeout).
std::string runShell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) {
    return out;
  }
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) {
    out.append(buf, n);
  }
  ::pclose(p);
  return out;
}

class SignatureTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::ofstream(old_key_file_) << kOldKey << "\n";
    ::chmod(old_key_file_.c_str(), 0600);
  }
  void TearDown() override { std::remove(fallback_.c_str()); }
  bool stream() const { return GetParam(); }

  // keys: the YAML list of the channel's keys; transport: the test's.
  std::string config(const std::string& keys, const std::string& answer = "{}") const {
    return configFor(stream(), keys, answer);
  }
  std::string configFor(bool stream, const std::string& keys, const std::string& answer = "{}") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "dead_letter: {fallback_file: " << fallback_ << "}\n"
      << "plugins:\n  rec: {path: recorder, config: {answer: " << answer << "}}\n"
      << "channels:\n  jollyjet:events:orders:\n"
      << (stream ? "    transport: stream\n    stream: {group: workers, consumer: c1, block_ms: 200}\n" : "")
      << "    signature:\n      keys:\n"
      << keys << "    routes: [{plugins: [rec]}]\n";
    return y.str();
  }
  std::string bothKeys() const {
    return "        - {id: old, file: " + old_key_file_ + "}\n        - {id: new, env: EVH_TEST_NEW_KEY}\n";
  }
  static std::vector<std::string> env() { return {std::string("EVH_TEST_NEW_KEY=") + kNewKey}; }

  void send(const std::string& message) {
    if (stream()) {
      redis_.command({"XADD", kSignedChannel, "*", "event", message});
    } else {
      redis_.command({"PUBLISH", kSignedChannel, message});
    }
  }
  bool ready(const EvhostProcess& host) const {
    // A stream keeps what is added before evhost reads it.
    return host.waitForLog(stream() ? "evhost started" : "subscribed to");
  }
  long long handled() { return redis_.command({"LLEN", "seen"})->integer; }
  std::vector<std::string> deadLetters() const { return wholeLines(fallback_); }
  // The value of one series in GET /metrics ("" when absent).
  static std::string metric(const EvhostProcess& host, const std::string& series) {
    const std::string body = httpGet(opsUrl(host) + "/metrics").body;
    const size_t at = body.find("\n" + series + " ");
    if (at == std::string::npos) {
      return "";
    }
    const size_t from = at + series.size() + 2;
    return body.substr(from, body.find('\n', from) - from);
  }

  RedisServer redis_;
  TempDir keys_;
  std::string old_key_file_ = keys_.path() + "/old.key";
  std::string fallback_ = freshTempFile("evh-signature", ".jsonl");
};

TEST_P(SignatureTest, AMessageSignedByNodesCryptoVerifies) {
  EvhostProcess host(config(bothKeys()), {}, env());
  ASSERT_TRUE(ready(host)) << host.log();
  // Node's standard library, not ours, makes the signed message.
  const std::string script = keys_.path() + "/sign.js";
  std::ofstream(script) << "const c = require('crypto');\n"
                           "const key = Buffer.from(process.argv[2].slice('whsec_'.length), 'base64');\n"
                           "const id = 'msg_node_1', ts = Math.floor(Date.now() / 1000), body = process.argv[3];\n"
                           "const sig = c.createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');\n"
                           "process.stdout.write(`webhook-id: ${id}\\nwebhook-timestamp: ${ts}\\n` +\n"
                           "                     `webhook-signature: v1,${sig}\\n\\n${body}`);\n";
  const std::string signed_message = runShell("node " + script + " " + kNewKey + " '" + signedEvent("from-node") + "'");
  ASSERT_THAT(signed_message, HasSubstr("webhook-signature: v1,")) << "node is needed (apt-get install nodejs)";
  send(signed_message);
  ASSERT_TRUE(eventually([&] { return handled() == 1; })) << host.log();
  EXPECT_THAT(redis_.command({"LINDEX", "seen", "0"})->str, HasSubstr("|from-node|"));
  EXPECT_EQ(metric(host, R"(evhost_signature_key_verified_total{channel="jollyjet:events:orders",key="new"})"), "1");
  EXPECT_TRUE(deadLetters().empty());
  // /status names the channel's keys by id, never the keys.
  const std::string status = httpGet(opsUrl(host) + "/status").body;
  EXPECT_THAT(status, HasSubstr(R"("signature":{"keys":["old","new"],"replay_check":true,"tolerance_s":300})"));
  EXPECT_THAT(status, Not(HasSubstr(std::string(kNewKey).substr(6, 12))));
  EXPECT_THAT(status, Not(HasSubstr(std::string(kOldKey).substr(6, 12))));
}

TEST_P(SignatureTest, EachBadSignatureAndAReplayIsRefusedBeforeAnyPluginCountedAndDeadLettered) {
  EvhostProcess host(config(bothKeys()), {}, env());
  ASSERT_TRUE(ready(host)) << host.log();
  const int64_t now = nowSeconds();
  const std::string good = signedWith(kOldKey, "msg_good", now, signedEvent("good"));
  std::string flipped = good;
  flipped[flipped.size() - 5] ^= 1;
  const std::string sig = signature::signV1(secretOf(kOldKey), "msg_x", now, signedEvent("x"));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {flipped, "no_match"},
      {signedWith("whsec_d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=", "msg_x", now, signedEvent("x")), "no_match"},
      {signedEvent("x"), "missing"},
      {signature::makeFrame("msg_x", now, sig.substr(0, sig.size() - 1), signedEvent("x")), "malformed"},
      {signature::makeFrame("msg_x", now, "v1,!" + sig.substr(4), signedEvent("x")), "malformed"},
      {signedWith(kOldKey, "msg_old", now - 360, signedEvent("x")), "stale"},
      {signedWith(kOldKey, "msg_future", now + 360, signedEvent("x")), "future"},
  };
  for (const auto& b : bad) {
    send(b.first);
  }
  send(good);
  ASSERT_TRUE(eventually([&] { return handled() == 1; })) << host.log();
  send(good);  // the replay
  ASSERT_TRUE(eventually([&] { return deadLetters().size() == bad.size() + 1; })) << host.log();
  EXPECT_EQ(handled(), 1) << "only the good message reached the plugin";
  EXPECT_THAT(redis_.command({"LINDEX", "seen", "0"})->str, HasSubstr("|good|"));
  const std::vector<std::string> lines = deadLetters();
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_THAT(lines[i], HasSubstr("\"reason\":\"bad_signature\"")) << i;
    EXPECT_THAT(lines[i], HasSubstr("\"name\":\"" + bad[i].second + "\"")) << i;
  }
  EXPECT_THAT(lines.back(), HasSubstr("\"reason\":\"replayed\""));
  EXPECT_THAT(lines.back(), HasSubstr("webhook-id msg_good was delivered before"));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr(std::string(kOldKey).substr(6))));
  }
  const auto series = [](const char* result) {
    return std::string(R"(evhost_signature_checks_total{channel="jollyjet:events:orders",result=")") + result + "\"}";
  };
  EXPECT_TRUE(eventually([&] { return metric(host, series("replayed")) == "1"; })) << host.log();
  EXPECT_EQ(metric(host, series("no_match")), "2");
  EXPECT_EQ(metric(host, series("malformed")), "2");
  EXPECT_EQ(metric(host, series("missing")), "1");
  EXPECT_EQ(metric(host, series("stale")), "1");
  EXPECT_EQ(metric(host, series("future")), "1");
  EXPECT_EQ(metric(host, series("verified")), "1");
  EXPECT_EQ(metric(host, R"(evhost_ingest_refused_total{reason="bad_signature"})"), "7");
  EXPECT_EQ(metric(host, R"(evhost_ingest_refused_total{reason="replayed"})"), "1");
  EXPECT_TRUE(host.waitForLog("reason=bad_signature")) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr(std::string(kOldKey).substr(6))));
  if (stream()) {
    ASSERT_TRUE(eventually([&] {
      auto r = redis_.command({"XPENDING", kSignedChannel, "workers"});
      return r->elements > 0 && r->element[0]->integer == 0;
    })) << "refused entries are acknowledged once dead-lettered\n"
        << host.log();
  }
}

TEST_P(SignatureTest, KeysRotateWithoutTouchingPublishers) {
  const int64_t now = nowSeconds();
  {
    EvhostProcess host(config(bothKeys()), {}, env());
    ASSERT_TRUE(ready(host)) << host.log();
    send(signedWith(kOldKey, "msg_r1", now, signedEvent("r1")));  // a publisher not yet moved
    send(signedWith(kNewKey, "msg_r2", now, signedEvent("r2")));  // one moved
    ASSERT_TRUE(eventually([&] { return handled() == 2; })) << host.log();
    const auto key = [](const char* id) {
      return std::string(R"(evhost_signature_key_verified_total{channel="jollyjet:events:orders",key=")") + id + "\"}";
    };
    EXPECT_EQ(metric(host, key("old")), "1");
    EXPECT_EQ(metric(host, key("new")), "1");
  }
  // The old key removed once its count stopped growing.
  EvhostProcess host(config("        - {id: new, env: EVH_TEST_NEW_KEY}\n"), {}, env());
  ASSERT_TRUE(ready(host)) << host.log();
  send(signedWith(kOldKey, "msg_r3", now, signedEvent("r3")));
  send(signedWith(kNewKey, "msg_r4", now, signedEvent("r4")));
  ASSERT_TRUE(eventually([&] { return handled() == 3 && deadLetters().size() == 1; })) << host.log();
  EXPECT_THAT(deadLetters()[0], HasSubstr("\"name\":\"no_match\""));
  EXPECT_THAT(redis_.command({"LINDEX", "seen", "2"})->str, HasSubstr("|r4|"));
}

// The same rotation by reloading evhost (SIGHUP) instead of restarting it:
// each key's series follows its key, whatever its place in the list.
TEST_P(SignatureTest, KeysRotateByReloadWithoutARestart) {
  const int64_t now = nowSeconds();
  const std::string old_only = "        - {id: old, file: " + old_key_file_ + "}\n";
  EvhostProcess host(config(old_only), {}, env());
  ASSERT_TRUE(ready(host)) << host.log();
  send(signedWith(kOldKey, "msg_q1", now, signedEvent("q1")));
  ASSERT_TRUE(eventually([&] { return handled() == 1; })) << host.log();
  const auto key = [](const char* id) {
    return std::string(R"(evhost_signature_key_verified_total{channel="jollyjet:events:orders",key=")") + id + "\"}";
  };
  const auto reload = [&](const std::string& keys, size_t nth) {
    std::ofstream(host.configPath(), std::ios::trunc) << config(keys);
    host.signal(SIGHUP);
    return eventually([&] { return host.countInLog("configuration reloaded from") == nth; });
  };
  // The new key added beside the old one.
  ASSERT_TRUE(reload(bothKeys(), 1)) << host.log();
  send(signedWith(kNewKey, "msg_q2", now, signedEvent("q2")));
  ASSERT_TRUE(eventually([&] { return handled() == 2; })) << host.log();
  // The old one removed: the new key is now the first (and only) one.
  ASSERT_TRUE(reload("        - {id: new, env: EVH_TEST_NEW_KEY}\n", 2)) << host.log();
  send(signedWith(kOldKey, "msg_q3", now, signedEvent("q3")));
  send(signedWith(kNewKey, "msg_q4", now, signedEvent("q4")));
  ASSERT_TRUE(eventually([&] { return handled() == 3 && deadLetters().size() == 1; })) << host.log();
  EXPECT_THAT(deadLetters()[0], HasSubstr("\"name\":\"no_match\""));
  EXPECT_THAT(redis_.command({"LINDEX", "seen", "2"})->str, HasSubstr("|q4|"));
  ASSERT_TRUE(eventually([&] { return metric(host, key("new")) == "2"; })) << metric(host, key("new"));
  EXPECT_EQ(metric(host, key("old")), "1");
}

TEST_P(SignatureTest, EvhctlPublishSignsWithAPrivateKeyFile) {
  EvhostProcess host(config(bothKeys()), {}, env());
  ASSERT_TRUE(ready(host)) << host.log();
  // (Without EVH_TEST_NEW_KEY: evhctl does not read the channels' keys.)
  const std::string evhctl = std::string(evhctlBin()) + " publish -c " + host.configPath() +
                             (stream() ? " --stream" : "") + " --type ORDER_PLACED ";
  const std::string out = runShell(evhctl + "--id evt-signed --sign " + old_key_file_ + " --payload '{}' 2>&1");
  EXPECT_THAT(out, Not(HasSubstr("warning"))) << out;
  ASSERT_TRUE(eventually([&] { return handled() == 1; })) << out << host.log();
  EXPECT_THAT(redis_.command({"LINDEX", "seen", "0"})->str, HasSubstr("|evt-signed|"));
  // Unsigned to a signed channel: sent, with a warning, and refused.
  EXPECT_THAT(runShell(evhctl + "--payload '{}' 2>&1"), HasSubstr("add --sign KEYFILE"));
  ASSERT_TRUE(eventually([&] { return deadLetters().size() == 1; })) << host.log();
  EXPECT_THAT(deadLetters()[0], HasSubstr("\"name\":\"missing\""));
  // A key file others may read is refused, with the fix, and nothing is sent.
  const std::string open_key = keys_.path() + "/open.key";
  std::ofstream(open_key) << kOldKey << "\n";
  ::chmod(open_key.c_str(), 0644);
  const std::string refused = runShell(evhctl + "--sign " + open_key + " --payload '{}' 2>&1; echo \"exit=$?\"");
  EXPECT_THAT(refused, HasSubstr("--sign: " + open_key + " is accessible by group or others"));
  EXPECT_THAT(refused, HasSubstr("chmod 600 " + open_key));
  EXPECT_THAT(refused, HasSubstr("exit=1"));
  EXPECT_THAT(refused, Not(HasSubstr(std::string(kOldKey).substr(6, 12))));
}

INSTANTIATE_TEST_SUITE_P(PubSubAndStream, SignatureTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Stream" : "PubSub"; });

// A stream entry delivered again (evhost killed before its ack) carries the
// same webhook-id under the same entry id: a redelivery, handled, not a replay.
class SignedChannelTest : public SignatureTest {};

TEST_F(SignedChannelTest, AStreamEntryDeliveredAgainIsNotAReplay) {
  const std::string keys = "        - {id: old, file: " + old_key_file_ + "}\n";
  {
    EvhostProcess host(configFor(true, keys, "{ORDER_PLACED: die}"));
    ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
    redis_.command(
        {"XADD", kSignedChannel, "*", "event", signedWith(kOldKey, "msg_once", nowSeconds(), signedEvent("once"))});
    ASSERT_TRUE(host.waitExit().has_value()) << "the recorder kills evhost\n" << host.log();
  }
  // Its id was claimed by the first delivery, with the entry's id.
  auto claimed = redis_.command({"GET", "test:evh:seen:jollyjet:events:orders:msg_once"});
  ASSERT_EQ(claimed->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(claimed->str),
            redis_.command({"XRANGE", kSignedChannel, "-", "+"})->element[0]->element[0]->str);
  // Kept only while the timestamp could pass: tolerance (300 s) + 5 s.
  const long long ttl = redis_.command({"PTTL", "test:evh:seen:jollyjet:events:orders:msg_once"})->integer;
  EXPECT_GT(ttl, 280000);
  EXPECT_LE(ttl, 305000);
  EvhostProcess host(configFor(true, keys));
  ASSERT_TRUE(eventually([&] { return handled() == 1; })) << host.log();
  EXPECT_TRUE(deadLetters().empty()) << deadLetters()[0];
}

// Two instances subscribed to one signed Pub/Sub channel both receive each
// message: the first to claim its id handles it, the other counts it as
// handled elsewhere -- neither dead-letters it.
TEST_F(SignedChannelTest, TwoInstancesOnASignedPubSubChannelHandleEachMessageOnce) {
  const std::string keys = "        - {id: old, file: " + old_key_file_ + "}\n";
  EvhostProcess a(configFor(false, keys));
  EvhostProcess b(configFor(false, keys));
  ASSERT_TRUE(a.waitForLog("subscribed to")) << a.log();
  ASSERT_TRUE(b.waitForLog("subscribed to")) << b.log();
  for (int i = 0; i < 10; ++i) {
    const std::string id = "msg_" + std::to_string(i);
    EXPECT_EQ(
        redis_.command({"PUBLISH", kSignedChannel, signedWith(kOldKey, id, nowSeconds(), signedEvent(id))})->integer,
        2);
  }
  ASSERT_TRUE(eventually([&] { return handled() == 10; })) << a.log() << b.log();
  const auto elsewhere = [](const EvhostProcess& h) {
    const std::string v =
        metric(h, R"(evhost_signature_checks_total{channel="jollyjet:events:orders",result="handled_elsewhere"})");
    return v.empty() ? -1 : std::stoi(v);
  };
  ASSERT_TRUE(eventually([&] { return elsewhere(a) + elsewhere(b) == 10; })) << a.log() << b.log();
  EXPECT_EQ(handled(), 10);
  EXPECT_TRUE(deadLetters().empty());
}

}  // namespace
}  // namespace evh::test
