// A plugin binary built against ABI 1.0 (tests/abi/v1_0/abi10_recorder.so,
// committed as built, never rebuilt from a newer header) loads and runs in
// today's evhost: its handler records through the 1.0 host API, completes
// PENDING calls, and its rejections are dead-lettered.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/temp_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

std::string event(const std::string& type, const std::string& id) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2026-12-02T10:30:00.000Z","payload":{}})";
}

TEST(Abi10ArtifactTest, APluginBinaryBuiltAgainstAbi10LoadsAndHandlesEvents) {
  RedisServer redis;
  const std::string fallback = freshTempFile("evh-abi10", ".jsonl");
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << redis.port() << "}\n"
    << "retry: {max_attempts: 1}\n"
    << "dead_letter: {fallback_file: " << fallback << "}\n"
    << "plugins:\n  old: {path: " << EVH_SOURCE_DIR << "/tests/abi/v1_0/abi10_recorder.so}\n"
    << "channels:\n  jollyjet:events:orders:\n    routes: [{plugins: [old]}]\n";
  EvhostProcess host(y.str());
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("plugin old loaded: abi10_recorder 1.0.0 (ABI 1.0, inline)"));
  // It has no ABI note (built before it existed): trusted, and checked from its descriptor after dlopen.
  const std::string artifact = std::string(EVH_SOURCE_DIR) + "/tests/abi/v1_0/abi10_recorder.so";
  auto [rc, sum] = runCommand({"/usr/bin/sha256sum", artifact});
  ASSERT_EQ(rc, 0) << sum;
  EXPECT_THAT(host.log(), HasSubstr("from " + artifact + " sha256 " + sum.substr(0, 64)));
  ASSERT_TRUE(host.waitForLog("abi10_recorder: posted to the loop")) << host.log();
  redis.command({"PUBLISH", "test:jollyjet:events:orders", event("ORDER_PLACED", "e-1")});
  redis.command({"PUBLISH", "test:jollyjet:events:orders", event("REJECT", "e-2")});
  ASSERT_TRUE(eventually([&] { return redis.command({"LLEN", "test:abi10:seen"})->integer == 1; })) << host.log();
  auto seen = redis.command({"LINDEX", "test:abi10:seen", "0"});
  EXPECT_EQ(std::string(seen->str, seen->len), "ORDER_PLACED|e-1|1");
  ASSERT_TRUE(eventually([&] {
    std::ifstream in(fallback);
    std::string line;
    return std::getline(in, line) && !in.eof() && line.find("abi10_recorder rejects REJECT") != std::string::npos;
  })) << host.log();
  std::remove(fallback.c_str());
}

}  // namespace
}  // namespace evh::test
