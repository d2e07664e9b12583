// TLS to Redis: evhost against a real redis-server with a TLS port and
// client certificates (tls-auth-clients), the certificates made by the
// openssl CLI. Pub/Sub and streams over TLS, a reconnect after Redis
// restarts, and each way a TLS connection can be refused -- with its own
// message, and never a plaintext fallback.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"
#include "support/tls_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kEvent = R"({"eventId":"%s","eventType":"PRODUCT_CREATED","timestamp":1,"payload":{"id":"p1"}})";

std::string tlsEvent(const std::string& id) {
  std::string e = kEvent;
  e.replace(e.find("%s"), 2, id);
  return e;
}

class TlsTest : public ::testing::Test {
 protected:
  TlsTest() : tls_port_(freePort()), redis_(certs_.redisArgs(tls_port_, true)) {}

  // `tls` is the body of redis.tls; `port` where evhost connects.
  std::string config(const std::string& tls, uint16_t port, const std::string& extra_channels = "") const {
    std::ostringstream y;
    y << "environment: test\nredis:\n  host: 127.0.0.1\n  port: " << port
      << "\n  connect_timeout_ms: 1000\n  reconnect: {initial_ms: 50, max_ms: 200}\n  tls:\n"
      << tls << R"(plugins:
  rec: {path: recorder}
channels:
)" << extra_channels
      << R"(  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
  jollyjet:events:orders:
    transport: stream
    stream: {group: g}
    routes:
      - events: "*"
        plugins: [rec]
ops:
  listen: ""
)";
    return y.str();
  }

  std::string mutualTls() const {
    return "    ca_file: " + certs_.file("ca.crt") + "\n    cert_file: " + certs_.file("client.crt") +
           "\n    key_file: " + certs_.file("client.key") + "\n";
  }

  long long seen() { return redis_.command({"LLEN", "seen"})->integer; }

  // The number of clients connected to the TLS port (CLIENT LIST's laddr).
  size_t tlsClients() {
    auto list = redis_.command({"CLIENT", "LIST"});
    const std::string text(list->str, list->len);
    const std::string needle = "laddr=127.0.0.1:" + std::to_string(tls_port_) + " ";
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

  TlsCerts certs_;
  uint16_t tls_port_;
  RedisServer redis_;
};

TEST_F(TlsTest, PubSubAndStreamsOverMutualTls) {
  EvhostProcess host(config(mutualTls(), tls_port_));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  ASSERT_TRUE(host.waitForLog("created consumer group g")) << host.log();
  redis_.command({"PUBLISH", "test:jollyjet:events:product", tlsEvent("tls-1")});
  redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event", tlsEvent("tls-2")});
  ASSERT_TRUE(eventually([&] { return seen() == 2; })) << host.log();
  // Every connection evhost made is on the TLS port.
  EXPECT_EQ(tlsClients(), 3U) << host.log();  // commands, subscriber, the stream's reader
}

// A shard channel over TLS: SSUBSCRIBE's bytes are swapped in before the
// TLS bridge, which sends at once outside an I/O callback, takes them.
TEST_F(TlsTest, ShardedPubSubOverTls) {
  EvhostProcess host(config(mutualTls(), tls_port_,
                            "  jollyjet:events:sharded:\n    sharded: true\n    routes:\n"
                            "      - events: \"*\"\n        plugins: [rec]\n"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  ASSERT_TRUE(eventually([&] {
    return redis_.command({"PUBSUB", "SHARDNUMSUB", "test:jollyjet:events:sharded"})->element[1]->integer == 1;
  })) << host.log();
  EXPECT_EQ(redis_.command({"SPUBLISH", "test:jollyjet:events:sharded", tlsEvent("tls-s1")})->integer, 1);
  redis_.command({"PUBLISH", "test:jollyjet:events:product", tlsEvent("tls-c1")});
  ASSERT_TRUE(eventually([&] { return seen() == 2; })) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("connection lost"))) << host.log();
}

TEST_F(TlsTest, ReconnectsOverTlsAfterRedisRestarts) {
  EvhostProcess host(config(mutualTls(), tls_port_));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  redis_.kill();
  redis_.restart();
  ASSERT_TRUE(eventually([&] { return host.countInLog("subscribed to") >= 2; })) << host.log();
  redis_.command({"PUBLISH", "test:jollyjet:events:product", tlsEvent("after-restart")});
  ASSERT_TRUE(eventually([&] { return seen() == 1; })) << host.log();
}

TEST_F(TlsTest, TlsWithAnAclUser) {
  auto r = redis_.command({"ACL", "SETUSER", "evh", "on", ">s3cret", "allchannels", "allkeys", "+@all"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS);
  // As the ACL user: AUTH goes through TLS.
  EvhostProcess as_user([&] {
    std::string y = config(mutualTls(), tls_port_);
    y.replace(y.find("  connect_timeout_ms"), 0, "  username: evh\n  password: s3cret\n");
    return y;
  }());
  ASSERT_TRUE(as_user.waitForLog("subscribed to")) << as_user.log();
  auto clients = redis_.command({"CLIENT", "LIST"});
  EXPECT_THAT(std::string(clients->str, clients->len), HasSubstr("user=evh")) << as_user.log();
}

// --check-config reads the TLS files as evhost would at start: a key that
// is not the certificate's is found before any deployment.
TEST_F(TlsTest, CheckConfigLoadsTheTlsFiles) {
  const std::string good = certs_.dir() + "/good.yaml";
  std::ofstream(good) << config(mutualTls(), tls_port_);
  auto [code, out] = runCommand({evhostBin(), "--check-config", good, "--plugin-dir", testPluginDir()});
  EXPECT_EQ(code, 0) << out;
  const std::string bad = certs_.dir() + "/bad.yaml";
  std::string y = config(mutualTls(), tls_port_);
  y.replace(y.find("client.key"), std::string("client.key").size(), "server.key");
  std::ofstream(bad) << y;
  std::tie(code, out) = runCommand({evhostBin(), "--check-config", bad, "--plugin-dir", testPluginDir()});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr(bad + ":7: redis.tls.key_file " + certs_.file("server.key") +
                             ": does not match the certificate in " + certs_.file("client.crt")))
      << out;
}

// A stream at max_in_flight -- its reader waiting for capacity behind a
// slow plugin -- when Redis drops every TLS connection evhost has (CLIENT
// KILL): evhost sees each end and reconnects; the commands it had sent
// (the plugin's RPUSHes, the XACKs) all get their callbacks, an error that
// is retried -- a command dropped without one would leave its handler
// pending for ever, and the stream stuck at capacity -- and in the end every
// entry is handled and acked. (Regression test for 2ee797b.)
TEST_F(TlsTest, AStreamAtCapacityOutlivesItsTlsConnectionsBeingKilled) {
  std::ostringstream y;
  y << "environment: test\nredis:\n  host: 127.0.0.1\n  port: " << tls_port_
    << "\n  connect_timeout_ms: 1000\n  reconnect: {initial_ms: 50, max_ms: 200}\n  tls:\n"
    << mutualTls() << R"(retry: {max_attempts: 20, base_delay_ms: 50, max_delay_ms: 200}
limits: {max_in_flight: 2}
plugins:
  slow: {path: slow_recorder, config: {key: seen, sleep_ms: 150}}
channels:
  jollyjet:events:orders:
    transport: stream
    stream: {group: g, consumer: c1, block_ms: 200}
    routes:
      - events: "*"
        plugins: [slow]
ops:
  listen: ""
)";
  EvhostProcess host(y.str());
  ASSERT_TRUE(host.waitForLog("created consumer group g")) << host.log();
  constexpr int kEntries = 30;
  for (int i = 0; i < kEntries; ++i) {
    redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event", tlsEvent("e" + std::to_string(i))});
  }
  const auto pending = [&] {
    auto r = redis_.command({"XPENDING", "test:jollyjet:events:orders", "g"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  };
  // At capacity: two entries taken, the rest waiting in Redis.
  ASSERT_TRUE(eventually([&] { return seen() >= 2 && pending() == 2; })) << host.log();
  ASSERT_LT(seen(), kEntries - 5);
  const size_t lost_before = host.countInLog("connection lost");
  auto killed = redis_.command({"CLIENT", "KILL", "LADDR", "127.0.0.1:" + std::to_string(tls_port_)});
  ASSERT_EQ(killed->type, REDIS_REPLY_INTEGER);
  ASSERT_GE(killed->integer, 2);  // the commands' connection and the stream's reader
  ASSERT_TRUE(eventually([&] { return host.countInLog("connection lost") >= lost_before + 2; })) << host.log();

  // Every entry handled (at least once: an ack lost with its connection is
  // taken again) and acked.
  std::set<std::string> ids;
  ASSERT_TRUE(eventually([&] {
    ids.clear();
    auto list = redis_.command({"LRANGE", "seen", "0", "-1"});
    for (size_t i = 0; i < list->elements; ++i) {
      const std::string record(list->element[i]->str, list->element[i]->len);
      const size_t second = record.find('|', record.find('|') + 1);
      ids.insert(record.substr(second + 1, record.find('|', second + 1) - second - 1));
    }
    return ids.size() == static_cast<size_t>(kEntries) && pending() == 0;
  })) << "handled "
      << ids.size() << ", pending " << pending() << "\n"
      << host.log();
  EXPECT_TRUE(host.running());
  EXPECT_GE(tlsClients(), 2U) << host.log();  // connected again
}

// Each refusal: its own words in the log, no connection up, nothing over
// plaintext, evhost still running and retrying.
struct Refusal {
  const char* name;
  const char* expected;  // in the log
};

class TlsRefusalTest : public TlsTest, public ::testing::WithParamInterface<Refusal> {
 protected:
  std::string tlsFor(const std::string& name) const {
    if (name == "UnknownCa") {
      return "    ca_file: " + certs_.file("other-ca.crt") + "\n    cert_file: " + certs_.file("client.crt") +
             "\n    key_file: " + certs_.file("client.key") + "\n";
    }
    if (name == "WrongHostName") {
      return mutualTls() + "    server_name: redis.example.com\n";
    }
    if (name == "NoClientCertificate") {
      return "    ca_file: " + certs_.file("ca.crt") + "\n";
    }
    return mutualTls();  // PlaintextServer: the right settings, the wrong port
  }
};

TEST_P(TlsRefusalTest, IsNamedAndNeverFallsBackToPlaintext) {
  const Refusal& c = GetParam();
  const bool plaintext = std::string(c.name) == "PlaintextServer";
  EvhostProcess host(config(tlsFor(c.name), plaintext ? redis_.port() : tls_port_));
  ASSERT_TRUE(host.waitForLog(c.expected, std::chrono::seconds(5))) << host.log();
  // Retried, quietly: still refused, nothing subscribed, still running.
  ASSERT_TRUE(eventually([&] { return host.countInLog("retrying with backoff") >= 1; })) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("subscribed to"))) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("): connected"))) << host.log();
  EXPECT_TRUE(host.running()) << host.log();
  redis_.command({"PUBLISH", "test:jollyjet:events:product", tlsEvent("never")});
  EXPECT_EQ(seen(), 0);
}

// evhctl over TLS: publish to a stream (read back over the plaintext port),
// and a refused certificate named with evhost's words.
TEST_F(TlsTest, EvhctlPublishesOverTls) {
  const std::string path = certs_.dir() + "/evhctl.yaml";
  std::ofstream(path) << config(mutualTls(), tls_port_);
  auto [code, out] =
      runCommand({evhctlBin(), "publish", "--config", path, "--stream", "--channel", "jollyjet:events:orders", "--type",
                  "ORDER_PLACED", "--id", "tls-cli-1", "--payload", R"({"n":1})"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("added to test:jollyjet:events:orders: ")) << out;
  EXPECT_EQ(redis_.command({"XLEN", "test:jollyjet:events:orders"})->integer, 1);

  const std::string wrong = certs_.dir() + "/evhctl-wrong-ca.yaml";
  std::string y = config(mutualTls(), tls_port_);
  y.replace(y.find("/ca.crt"), std::string("/ca.crt").size(), "/other-ca.crt");
  std::ofstream(wrong) << y;
  std::tie(code, out) = runCommand({evhctlBin(), "publish", "--config", wrong, "--stream", "--channel",
                                    "jollyjet:events:orders", "--type", "ORDER_PLACED", "--payload", "{}"});
  EXPECT_NE(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("TLS handshake failed: unknown CA")) << out;
  EXPECT_EQ(redis_.command({"XLEN", "test:jollyjet:events:orders"})->integer, 1);
}

// A server whose certificate expired: refused as such.
TEST_F(TlsTest, AnExpiredCertificateIsRefusedAsExpired) {
  const uint16_t port = freePort();
  RedisServer expired(certs_.redisArgs(port, true, "expired.crt"));
  EvhostProcess host(config(mutualTls(), port));
  ASSERT_TRUE(host.waitForLog("TLS handshake failed: expired: Redis's certificate has expired")) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("subscribed to"))) << host.log();
  EXPECT_TRUE(host.running()) << host.log();
}

INSTANTIATE_TEST_SUITE_P(Tls, TlsRefusalTest,
                         ::testing::Values(Refusal{"UnknownCa", "TLS handshake failed: unknown CA"},
                                           Refusal{"WrongHostName", "TLS handshake failed: wrong host name"},
                                           Refusal{"NoClientCertificate", "it requires a client certificate"},
                                           Refusal{"PlaintextServer",
                                                   "no answer to the TLS hello: is this a plaintext Redis port?"}),
                         [](const ::testing::TestParamInfo<Refusal>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace evh::test
