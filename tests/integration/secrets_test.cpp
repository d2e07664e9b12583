// The secrets grep test (issue 14): evhost and evhctl against a real
// redis-server -- an ACL user whose password comes from redis.password_file,
// mutual TLS with a client key, a legacy requirepass, a wrong password --
// with every output they have made as loud as it goes (trace logging,
// DEBUG_EVENTS, /status, /metrics, dead-letter entries, evhctl, a crash
// file, --check-config on good and bad configs). No collected text may hold
// a secret: the password, nor any line of the PEM key's base64 body.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/tested_binaries.h"
#include "support/tls_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <random>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

std::string randomHex(size_t n) {
  std::random_device rd;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += "0123456789abcdef"[rd() % 16];
  }
  return out;
}

std::string secretEvent(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type + R"(","timestamp":1,"payload":{"id":"p1"}})";
}

class SecretsTest : public ::testing::Test {
 protected:
  SecretsTest() : tls_port_(freePort()), redis_(certs_.redisArgs(tls_port_, true)) {}

  void SetUp() override {
    password_ = "pw-" + randomHex(24);
    password_file_ = writePrivate("redis.pw", password_ + "\n");
    addSecret("the Redis password", password_);
    addPemKey("the TLS client key", certs_.file("client.key"));
    addSigningKeys();
    auto r = redis_.command({"ACL", "SETUSER", "evh", "on", ">" + password_, "allchannels", "allkeys", "+@all"});
    ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << (r->str ? r->str : "");
  }

  // Every collected text is searched for every secret, whatever the test
  // asserted before.
  void TearDown() override {
    EXPECT_FALSE(collected_.empty()) << "nothing was collected";
    for (const auto& [what, text] : collected_) {
      for (const Secret& s : secrets_) {
        for (const std::string& needle : s.needles) {
          EXPECT_EQ(text.find(needle), std::string::npos)
              << s.name << " appears in " << what << " (\"" << needle << "\"):\n"
              << text;
        }
      }
    }
  }

  // ==== THE SECRETS ==========================================================
  // The signing keys of the signed channel in config() (issue 14 point 2):
  // each key file written here with writePrivate() and its content -- the
  // whole "whsec_..." text and its base64 body -- registered with
  // addSecret(), so that every output collected is searched for it. A new
  // kind of key joins the list the same way.
  void addSigningKeys() {
    auto [code, base64] = runCommand({kOpenssl, "rand", "-base64", "32"});
    ASSERT_EQ(code, 0) << base64;
    base64.erase(base64.find_last_not_of("\r\n") + 1);
    ASSERT_EQ(base64.size(), 44U) << base64;
    signing_key_file_ = writePrivate("signing.key", "whsec_" + base64 + "\n");
    addSecret("the signing key", base64);
    addSecret("the signing key's first half", base64.substr(0, 22));
    addSecret("the signing key's second half", base64.substr(22));
  }

  // A secret, and the fragments of it that must never appear.
  struct Secret {
    std::string name;
    std::vector<std::string> needles;
  };
  void addSecret(const std::string& name, const std::string& value) { secrets_.push_back({name, {value}}); }
  // A PEM private key: each line of its base64 body, and each half of a line
  // (so a key cut at another line length is caught too).
  void addPemKey(const std::string& name, const std::string& path) {
    Secret s{name, {}};
    std::istringstream in(readFile(path));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("-----", 0) == 0 || line.size() < 32) {
        continue;
      }
      s.needles.push_back(line);
      s.needles.push_back(line.substr(0, line.size() / 2));
      s.needles.push_back(line.substr(line.size() / 2));
    }
    ASSERT_GT(s.needles.size(), 20U) << "no PEM body in " << path;
    secrets_.push_back(std::move(s));
  }
  // ===========================================================================

  void collect(const std::string& what, const std::string& text) { collected_.emplace_back(what, text); }
  std::pair<int, std::string> run(const std::string& what, const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env = {}) {
    auto result = runCommand(argv, env);
    collect(what, result.second);
    return result;
  }
  void collectHttp(const std::string& base) {
    for (const char* path : {"/status", "/metrics", "/healthz", "/readyz", "/health/pubsub"}) {
      const HttpResponse r = httpGet(base + path);
      collect(std::string("GET ") + path, r.body + r.error);
    }
  }

  std::string writePrivate(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }

  std::string tls() const {
    return "  tls:\n    ca_file: " + certs_.file("ca.crt") + "\n    cert_file: " + certs_.file("client.crt") +
           "\n    key_file: " + certs_.file("client.key") + "\n";
  }
  std::string aclUser() const { return "  username: evh\n  password_file: " + password_file_ + "\n"; }

  // The deployment, as loud as it goes. `redis` is the body of redis: after
  // host and port; `logging` the logging map.
  std::string config(const std::string& redis, uint16_t port,
                     const std::string& logging = "{level: trace, format: text, debug_events: true}") const {
    std::ostringstream y;
    y << "environment: test\nredis:\n  host: 127.0.0.1\n  port: " << port << "\n"
      << redis << "  connect_timeout_ms: 1000\n  reconnect: {initial_ms: 50, max_ms: 200}\n"
      << "logging: " << logging << "\nretry: {max_attempts: 1}\n"
      << "plugins:\n"
      << "  rec: {path: recorder, config: {key: seen, answer: {PRODUCT_DELETED: reject, SECRET_CRASH: segv}}}\n"
      << "  dlq: {path: dlq, config: {key: \"jollyjet:events:dlq\", spool_file: " << dir_.path() << "/spool.jsonl}}\n"
      << R"(channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
  jollyjet:events:orders:
    transport: stream
    stream: {group: g}
    routes:
      - events: "*"
        plugins: [rec]
)"
      << "  jollyjet:events:signed:\n    signature: {keys: [{id: k1, file: " << signing_key_file_
      << "}]}\n    routes:\n      - events: \"*\"\n        plugins: [rec]\n"
      << "dead_letter: {plugin: dlq, fallback_file: " << dir_.path() << "/fallback.jsonl}\n";
    return y.str();
  }

  std::vector<std::string> list(const std::string& key) {
    std::vector<std::string> out;
    ReplyPtr r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; r && i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }

  TempDir dir_;
  TlsCerts certs_;
  uint16_t tls_port_;
  RedisServer redis_;
  std::string password_;
  std::string password_file_;
  std::string signing_key_file_;
  std::vector<Secret> secrets_;
  std::vector<std::pair<std::string, std::string>> collected_;
};

TEST_F(SecretsTest, AclUserWithPasswordFileOverMutualTls) {
  const TempDir state;
  EvhostProcess host(config(aclUser() + tls(), tls_port_), {}, {"DEBUG_EVENTS=true", "EVH_STATE_DIR=" + state.path()});
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  ASSERT_TRUE(host.waitForLog("created consumer group g")) << host.log();
  auto clients = redis_.command({"CLIENT", "LIST"});
  EXPECT_THAT(std::string(clients->str, clients->len), HasSubstr("user=evh")) << host.log();

  // Handled, dead-lettered as rejected, dead-lettered as invalid.
  redis_.command({"PUBLISH", "test:jollyjet:events:product", secretEvent("ok-1", "PRODUCT_CREATED")});
  redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event", secretEvent("ok-2", "PRODUCT_CREATED")});
  redis_.command({"PUBLISH", "test:jollyjet:events:product", secretEvent("rej-1", "PRODUCT_DELETED")});
  redis_.command({"PUBLISH", "test:jollyjet:events:product", "{not json"});
  redis_.command({"PUBLISH", "test:jollyjet:events:signed", secretEvent("unsigned-1", "PRODUCT_CREATED")});
  ASSERT_TRUE(eventually([&] { return list("test:jollyjet:events:dlq").size() == 3; })) << host.log();
  for (const std::string& entry : list("test:jollyjet:events:dlq")) {
    collect("a dead-letter entry", entry);
  }
  for (const std::string& record : list("seen")) {
    collect("a recorded event", record);
  }

  const std::string url = opsUrl(host);
  ASSERT_FALSE(url.empty()) << host.log();
  collectHttp(url);
  auto [code, out] = run("evhctl status", {evhctlBin(), "status", "--url", url});
  EXPECT_EQ(code, 0) << out;
  run("evhctl status --json", {evhctlBin(), "status", "--url", url, "--json"});

  // evhctl reads the same config: password_file, the ACL user, mutual TLS.
  const std::string cfg = host.configPath();
  std::tie(code, out) = run("evhctl dlq list", {evhctlBin(), "dlq", "--config", cfg, "list"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("rej-1"));
  EXPECT_THAT(out, HasSubstr("invalid"));
  EXPECT_THAT(out, HasSubstr("bad_signature"));
  std::tie(code, out) = run("evhctl dlq show", {evhctlBin(), "dlq", "--config", cfg, "show", "rej-1"});
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) = run("evhctl publish", {evhctlBin(), "publish", "--config", cfg, "--type", "PRODUCT_CREATED",
                                               "--id", "ok-3", "--payload", R"({"id":"p3"})"});
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) =
      run("evhctl publish --sign",
          {evhctlBin(), "publish", "--config", cfg, "--channel", "jollyjet:events:signed", "--sign", signing_key_file_,
           "--type", "PRODUCT_CREATED", "--id", "signed-1", "--payload", R"({"id":"p4"})"});
  EXPECT_EQ(code, 0) << out;
  // ok-1, ok-2, ok-3, signed-1
  ASSERT_TRUE(eventually([&] { return list("seen").size() == 4; })) << host.log();

  // Last, a crash in the plugin: the fatal-signal line and the crash file.
  redis_.command({"PUBLISH", "test:jollyjet:events:product", secretEvent("boom-1", "SECRET_CRASH")});
  const auto exit_code = host.waitExit();
  ASSERT_TRUE(exit_code.has_value()) << host.log();
  EXPECT_EQ(*exit_code, 128 + SIGSEGV) << host.log();
  const std::string crash = readFile(state.path() + "/evhost-crash.log");
  EXPECT_THAT(crash, HasSubstr("boom-1"));
  collect("the crash file", crash);
  collect("the spool file", readFile(dir_.path() + "/spool.jsonl"));
  collect("the fallback file", readFile(dir_.path() + "/fallback.jsonl"));
  const std::string log = host.log();
  EXPECT_THAT(log, HasSubstr("ok-1"));  // DEBUG_EVENTS traced the events
  collect("evhost's log", log);
}

TEST_F(SecretsTest, WrongPasswordIsRefusedWithoutShowingEither) {
  const std::string wrong = "wrong-" + randomHex(24);
  addSecret("the wrong password", wrong);
  password_file_ = writePrivate("wrong.pw", wrong);
  EvhostProcess host(config(aclUser() + tls(), tls_port_, "{level: trace, format: json, debug_events: true}"), {},
                     {"DEBUG_EVENTS=true"});
  ASSERT_TRUE(host.waitForLog("AUTH failed: WRONGPASS")) << host.log();
  const std::string url = opsUrl(host);
  ASSERT_FALSE(url.empty()) << host.log();
  collectHttp(url);
  run("evhctl status", {evhctlBin(), "status", "--url", url});
  auto [code, out] = run("evhctl dlq list", {evhctlBin(), "dlq", "--config", host.configPath(), "list"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("WRONGPASS"));
  collect("evhost's log", host.log());
}

// Redis echoes the arguments of a command it does not know: with AUTH
// renamed away, its refusal would hold the password.
TEST_F(SecretsTest, ARedisEchoingTheAuthArgumentsDoesNotLeakThePassword) {
  RedisServer renamed({"--rename-command", "AUTH", ""});
  EvhostProcess host(config(aclUser(), renamed.port()), {}, {"DEBUG_EVENTS=true"});
  ASSERT_TRUE(host.waitForLog("AUTH failed: ERR unknown command")) << host.log();
  auto [code, out] = run("evhctl dlq list", {evhctlBin(), "dlq", "--config", host.configPath(), "list"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("AUTH failed: ERR unknown command"));
  collect("evhost's log", host.log());
}

TEST_F(SecretsTest, LegacyRequirepassWithPasswordFile) {
  // The default user's password (requirepass); the test's own connection is
  // already authenticated.
  redis_.command({"CONFIG", "SET", "requirepass", password_});
  EvhostProcess host(config("  password_file: " + password_file_ + "\n", redis_.port()), {}, {"DEBUG_EVENTS=true"});
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  redis_.command({"PUBLISH", "test:jollyjet:events:product", secretEvent("legacy-1", "PRODUCT_CREATED")});
  ASSERT_TRUE(eventually([&] { return list("seen").size() == 1; })) << host.log();
  collectHttp(opsUrl(host));
  auto [code, out] = run("evhctl dlq list", {evhctlBin(), "dlq", "--config", host.configPath(), "list"});
  EXPECT_EQ(code, 0) << out;
  // The shutdown's lines too.
  host.signal(SIGTERM);
  const auto exit_code = host.waitExit();
  ASSERT_TRUE(exit_code.has_value()) << host.log();
  EXPECT_EQ(*exit_code, 0) << host.log();
  collect("evhost's log", host.log());
}

// --check-config (and evhctl, which loads the same way) on a good config and
// on configs with mistakes next to the secrets.
TEST_F(SecretsTest, CheckConfigOutputHoldsNoSecret) {
  const auto check = [&](const std::string& name, const std::string& yaml, const std::string& expected,
                         const std::vector<std::string>& env = {}) {
    const std::string path = writePrivate(name + ".yaml", yaml, 0644);
    auto [code, out] =
        run("--check-config " + name, {evhostBin(), "--check-config", path, "--plugin-dir", testPluginDir()}, env);
    EXPECT_EQ(code, expected == "ok" ? 0 : 1) << name << ": " << out;
    EXPECT_THAT(out, HasSubstr(expected)) << name;
    run("evhctl dlq list, " + name, {evhctlBin(), "dlq", "--config", path, "list"}, env);
  };
  check("good", config(aclUser() + tls(), tls_port_), "ok");
  const std::string pw = password_;
  const std::string head = "redis:\n  host: 127.0.0.1\n";
  check("url-bad-port", "redis:\n  url: \"redis://evh:" + pw + "@127.0.0.1:notaport\"\n",
        "redis.url: invalid URL: invalid port");
  check("url-without-host", "redis:\n  url: \"redis://evh:" + pw + "\"\n", "redis.url: invalid URL: invalid port");
  check("url-bad-db", "redis:\n  url: \"redis://127.0.0.1:6379/" + pw + "\"\n", "invalid database");
  check("url-bad-scheme", "redis:\n  url: \"" + pw + ":x://h\"\n", "unsupported scheme");
  check("url-and-file",
        "redis:\n  url: \"redis://evh:" + pw + "@127.0.0.1\"\n  password_file: " + password_file_ + "\n",
        "cannot be combined with redis.url");
  check("password-and-file", head + "  password: " + pw + "\n  password_file: " + password_file_ + "\n",
        "redis.password_file: cannot be combined with redis.password");
  check("malformed-reference", head + "  password: \"" + pw + "${X\"\n", "not shown");
  check("neighbours", head + "  port: [1]\n  username: {a: b}\n  password: " + pw + "\n  connect_timeout_ms: soon\n",
        "redis.connect_timeout_ms: expected an integer");
  check("typo", head + "  pasword: " + pw + "\n", "redis.pasword: unknown key");
  check("duplicate", head + "  password: " + pw + "\n  password: " + pw + "\n", "duplicate key");
  check("yaml-syntax", head + "  password: " + pw + ": x\n", "YAML syntax error: illegal map value");
  check("yaml-escape", head + "  password: \"" + pw + "\\q" + pw + "\"\n", "YAML syntax error: unknown escape");
  check("from-env", head + "  password: ${REDIS_PASSWORD}\n  port: \"${REDIS_PORT}\"\n", "redis.port: expected",
        {"REDIS_PASSWORD=" + pw, "REDIS_PORT=seventy"});
  const std::string open_pw = writePrivate("open.pw", pw, 0644);
  check("password-file-0644", head + "  password_file: " + open_pw + "\n", "chmod 600 " + open_pw);
  const std::string open_key = writePrivate("open.key", readFile(certs_.file("client.key")), 0644);
  std::string key_0644 = config(aclUser() + tls(), tls_port_);
  key_0644.replace(key_0644.find(certs_.file("client.key")), certs_.file("client.key").size(), open_key);
  check("key-file-0644", key_0644, "redis.tls.key_file: " + open_key + " is accessible by group or others");
  const std::string wrong_key = writePrivate("wrong.key", readFile(certs_.file("server.key")));
  addPemKey("the server's key, given as the client's", wrong_key);
  std::string mismatched = config(aclUser() + tls(), tls_port_);
  mismatched.replace(mismatched.find(certs_.file("client.key")), certs_.file("client.key").size(), wrong_key);
  check("key-mismatch", mismatched, "does not match the certificate");
  // A key behind a passphrase: refused with the fix, never a prompt.
  const std::string encrypted = dir_.path() + "/encrypted.key";
  ASSERT_EQ(runCommand({kOpenssl, "pkey", "-in", certs_.file("client.key"), "-out", encrypted, "-aes256", "-passout",
                        "pass:" + randomHex(16)})
                .first,
            0);
  ::chmod(encrypted.c_str(), 0600);
  std::string passphrase = config(aclUser() + tls(), tls_port_);
  passphrase.replace(passphrase.find(certs_.file("client.key")), certs_.file("client.key").size(), encrypted);
  check("key-with-passphrase", passphrase, "the private key is protected by a passphrase");
}

}  // namespace
}  // namespace evh::test
