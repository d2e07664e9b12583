// formatCommand against hiredis's own formatter, byte for byte: the library
// stays the definition of the request form (resp_command.h says why evhost
// formats it itself).
#include "redis/resp_command.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <random>
#include <string>
#include <vector>

namespace evh::redis {
namespace {

std::string byHiredis(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  sds cmd = nullptr;
  const long long n = redisFormatSdsCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
  std::string out(cmd, static_cast<size_t>(n));
  redisFreeSdsCommand(cmd);
  return out;
}

std::string ours(const std::vector<std::string>& args, std::string out = {}) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  const size_t len = formatCommand(out, static_cast<int>(args.size()), argv.data(), lens.data());
  // The NUL hiredis relies on (it reads the command's name with strchr).
  EXPECT_GT(out.size(), len);
  EXPECT_EQ(out[len], '\0');
  out.resize(len);
  return out;
}

TEST(RespCommand, IsTheRequestFormHiredisWrites) {
  EXPECT_EQ(ours({"PING"}), "*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(ours({"SET", "k", ""}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  EXPECT_EQ(ours({"SET", "k", ""}), byHiredis({"SET", "k", ""}));
  // Binary-safe: NUL bytes, CR and LF inside an argument.
  const std::vector<std::string> binary = {"SET", std::string("a\0b", 3), "x\r\ny"};
  EXPECT_EQ(ours(binary), byHiredis(binary));
}

TEST(RespCommand, MatchesHiredisOnRandomCommandsOfEverySize) {
  std::mt19937 rng(20261207);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> args(1 + rng() % (round < 290 ? 40 : 3000));
    for (auto& a : args) {
      // Lengths across digit boundaries: 0, 9/10, 99/100, up to 100,000.
      const size_t len = (args.size() <= 40 && rng() % 8 == 0) ? rng() % 100001 : rng() % 120;
      a.resize(len);
      for (auto& c : a) {
        c = static_cast<char>(rng() & 0xff);
      }
    }
    ASSERT_EQ(ours(args), byHiredis(args)) << "round " << round;
  }
}

TEST(RespCommand, ReplacesWhatTheBufferHeld) {
  std::string buffer = ours({"SET", "a-long-key-name", std::string(500, 'v')});
  EXPECT_EQ(ours({"PING"}, buffer), "*1\r\n$4\r\nPING\r\n");
}

}  // namespace
}  // namespace evh::redis
