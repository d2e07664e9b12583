// redis.tls in the YAML: its keys, relative file paths, rediss:// URLs, and
// each refusal with its file:line and key.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

#include "config/config.h"
#include "support/temp_file.h"

namespace evh::config {
namespace {

LoadResult loadTls(const std::string& yaml) {
  return loadString(yaml, "/etc/evhost/cfg.yaml", [](const std::string&) { return std::nullopt; });
}

std::string firstError(const LoadResult& r) { return r.errors.empty() ? std::string("(none)") : r.errors.front(); }

TEST(LoaderTlsTest, OffUnlessAsked) {
  const LoadResult r = loadTls("redis:\n  host: h\n");
  ASSERT_TRUE(r.config) << firstError(r);
  EXPECT_FALSE(r.config->redis.tls.enabled);
}

TEST(LoaderTlsTest, ATlsMapTurnsItOnWithItsKeys) {
  // The key file must exist and be private to its owner (checked at load).
  const test::TempDir dir;
  const std::string key = dir.path() + "/client.key";
  std::ofstream(key) << "key\n";
  ::chmod(key.c_str(), 0600);
  const LoadResult r = loadTls(R"(redis:
  host: redis.internal
  tls:
    ca_file: certs/ca.pem
    cert_file: client.pem
    key_file: )" + key + R"(
    server_name: redis.example.com
    min_version: "1.3"
)");
  ASSERT_TRUE(r.config) << firstError(r);
  const Tls& tls = r.config->redis.tls;
  EXPECT_TRUE(tls.enabled);
  EXPECT_TRUE(tls.verify);
  // Relative paths are the config file's folder's.
  EXPECT_EQ(tls.ca_file, "/etc/evhost/certs/ca.pem");
  EXPECT_EQ(tls.cert_file, "/etc/evhost/client.pem");
  EXPECT_EQ(tls.key_file, key);
  EXPECT_EQ(tls.server_name, "redis.example.com");
  EXPECT_EQ(tls.min_version, "1.3");
  EXPECT_EQ(tls.origin.describe(), "/etc/evhost/cfg.yaml:3: redis.tls");
}

TEST(LoaderTlsTest, EnabledFalseAndVerifyFalse) {
  LoadResult r = loadTls("redis:\n  tls: {enabled: false}\n");
  ASSERT_TRUE(r.config) << firstError(r);
  EXPECT_FALSE(r.config->redis.tls.enabled);
  r = loadTls("redis:\n  tls: {verify: false}\n");
  ASSERT_TRUE(r.config) << firstError(r);
  EXPECT_TRUE(r.config->redis.tls.enabled);
  EXPECT_FALSE(r.config->redis.tls.verify);
}

TEST(LoaderTlsTest, RedissUrlTurnsItOn) {
  const LoadResult r = loadTls("redis:\n  url: rediss://:pw@cache:6380\n  tls: {ca_file: /ca.pem}\n");
  ASSERT_TRUE(r.config) << firstError(r);
  EXPECT_TRUE(r.config->redis.tls.enabled);
  EXPECT_EQ(r.config->redis.tls.ca_file, "/ca.pem");
  EXPECT_EQ(r.config->redis.port, 6380);
}

TEST(LoaderTlsTest, Refusals) {
  EXPECT_EQ(firstError(loadTls("redis:\n  tls: {min_version: \"1.1\"}\n")),
            "/etc/evhost/cfg.yaml:2: redis.tls.min_version: must be \"1.2\" or \"1.3\", got \"1.1\"");
  EXPECT_EQ(firstError(loadTls("redis:\n  tls:\n    cert_file: c.pem\n")),
            "/etc/evhost/cfg.yaml:3: redis.tls.cert_file: needs key_file too (the client certificate's private key)");
  EXPECT_EQ(firstError(loadTls("redis:\n  tls:\n    key_file: c.key\n")),
            "/etc/evhost/cfg.yaml:3: redis.tls.key_file: needs cert_file too (the certificate for this private key)");
  const std::string unknown = firstError(loadTls("redis:\n  tls:\n    ca: x\n"));
  EXPECT_NE(unknown.find("redis.tls.ca"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("unknown key"), std::string::npos) << unknown;
}

}  // namespace
}  // namespace evh::config
