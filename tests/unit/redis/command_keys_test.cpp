// Tests of redis/command_keys.h: which argument decides a command's cluster
// slot, from the table, the commands that name their keys in arguments, and
// what a COMMAND reply teaches.
#include "redis/command_keys.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <memory>
#include <string>
#include <vector>

namespace evh::redis {
namespace {

int keyOf(const CommandKeys& keys, const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  return keys.keyIndex(static_cast<int>(argv.size()), ptrs.data(), lens.data());
}

std::unique_ptr<redisReply, void (*)(void*)> parse(const std::string& resp) {
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader(redisReaderCreate(), redisReaderFree);
  EXPECT_EQ(redisReaderFeed(reader.get(), resp.data(), resp.size()), REDIS_OK);
  void* r = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader.get(), &r), REDIS_OK);
  return {static_cast<redisReply*>(r), freeReplyObject};
}

TEST(CommandKeysTest, WhatEvhostSendsIsKnownFromTheStart) {
  const CommandKeys keys;
  EXPECT_EQ(keyOf(keys, {"XACK", "dev:orders", "g", "1-0"}), 1);
  EXPECT_EQ(keyOf(keys, {"set", "k", "v", "NX", "EX", "60"}), 1);
  EXPECT_EQ(keyOf(keys, {"LPUSH", "dev:dlq", "x"}), 1);
  EXPECT_EQ(keyOf(keys, {"XGROUP", "CREATE", "dev:orders", "g", "$"}), 2);
  EXPECT_EQ(keyOf(keys, {"XINFO", "GROUPS", "dev:orders"}), 2);
  EXPECT_EQ(keyOf(keys, {"XGROUP", "HELP"}), CommandKeys::kAnyNode);  // never past argc
  EXPECT_EQ(keyOf(keys, {"PUBLISH", "dev:a", "{}"}), CommandKeys::kAnyNode);
  EXPECT_EQ(keyOf(keys, {"PING"}), CommandKeys::kAnyNode);
  EXPECT_EQ(keyOf(keys, {"GET"}), CommandKeys::kAnyNode);
  EXPECT_EQ(keyOf(keys, {}), CommandKeys::kAnyNode);
}

TEST(CommandKeysTest, ScriptsAndStreamReadsNameTheirKeysInTheirArguments) {
  const CommandKeys keys;
  EXPECT_EQ(keyOf(keys, {"EVALSHA", "abc", "2", "{p}:1", "{p}:2", "arg"}), 3);
  EXPECT_EQ(keyOf(keys, {"eval", "return 1", "0", "arg"}), CommandKeys::kAnyNode);
  EXPECT_EQ(keyOf(keys, {"EVAL", "return 1", "x", "k"}), CommandKeys::kAnyNode);  // numkeys not a number
  EXPECT_EQ(keyOf(keys, {"FCALL", "f", "1"}), CommandKeys::kAnyNode);             // the key is missing
  EXPECT_EQ(keyOf(keys, {"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "dev:s", ">"}), 7);
  EXPECT_EQ(keyOf(keys, {"XREAD", "BLOCK", "0", "streams", "a", "$"}), 4);
  EXPECT_EQ(keyOf(keys, {"XREAD", "STREAMS"}), CommandKeys::kAnyNode);
}

TEST(CommandKeysTest, TheClustersCommandReplyTeachesTheRest) {
  CommandKeys keys;
  EXPECT_EQ(keyOf(keys, {"SINTERCARD", "2", "a", "b"}), CommandKeys::kAnyNode);
  EXPECT_EQ(keyOf(keys, {"GETRANGE", "k", "0", "1"}), CommandKeys::kAnyNode);
  // [name, arity, flags, first, last, step]: GETRANGE's key is argv[1];
  // SINTERCARD's are movable (first 0); XADD's table entry stays.
  const auto reply = parse(
      "*3\r\n"
      "*6\r\n$8\r\ngetrange\r\n:4\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n"
      "*6\r\n$10\r\nsintercard\r\n:-3\r\n*2\r\n+readonly\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n"
      "*6\r\n$4\r\nxadd\r\n:-5\r\n*1\r\n+write\r\n:2\r\n:2\r\n:1\r\n");
  EXPECT_EQ(keys.learn(reply.get()), "");
  EXPECT_EQ(keys.learned(), 1U);
  EXPECT_EQ(keyOf(keys, {"GETRANGE", "k", "0", "1"}), 1);
  EXPECT_EQ(keyOf(keys, {"SINTERCARD", "2", "a", "b"}), CommandKeys::kAnyNode);
  EXPECT_EQ(keyOf(keys, {"XADD", "s", "*", "f", "v"}), 1);
}

TEST(CommandKeysTest, AMalformedCommandReplyIsNamedAndChangesNothing) {
  CommandKeys keys;
  EXPECT_EQ(keys.learn(nullptr), "COMMAND: expected an array of commands");
  auto reply = parse("-ERR unknown command\r\n");
  EXPECT_EQ(keys.learn(reply.get()), "COMMAND: expected an array of commands");
  reply = parse("*2\r\n*6\r\n$3\r\nget\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n:5\r\n");
  EXPECT_EQ(keys.learn(reply.get()), "COMMAND: entry 1 is not [name, arity, flags, first key, last key, step, ...]");
  reply = parse("*1\r\n*6\r\n:1\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n");
  EXPECT_EQ(keys.learn(reply.get()), "COMMAND: entry 0 has no name or no integer first key");
  reply = parse("*1\r\n*6\r\n$8\r\ngetrange\r\n:4\r\n*0\r\n$1\r\n1\r\n:1\r\n:1\r\n");
  EXPECT_EQ(keys.learn(reply.get()), "COMMAND: entry 0 has no name or no integer first key");
  EXPECT_EQ(keys.learned(), 0U);
  EXPECT_EQ(keyOf(keys, {"GETRANGE", "k", "0", "1"}), CommandKeys::kAnyNode);
}

}  // namespace
}  // namespace evh::redis
