// A stderr nobody reads never stalls evhost: with its stdout and stderr on a
// pipe that is full (the test does not read it), every event published is
// still handled; the log lines that did not fit are dropped and counted,
// said in one line once the pipe is read again, and the last lines of a
// graceful stop are all there.
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

// evhost with stdout and stderr on a pipe whose reading end the test holds
// and reads only after read() is called.
class PipedEvhost {
 public:
  explicit PipedEvhost(const std::string& yaml) {
    char tmpl[] = "/tmp/evh-pipe-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    dir_ = tmpl;
    const std::string config = dir_ + "/evhost.yaml";
    std::ofstream(config) << yaml;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    fcntl(fds[0], F_SETPIPE_SZ, 4096);  // the smallest pipe: full after a few dozen lines
    pid_ = fork();
    if (pid_ < 0) {
      throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      if (chdir(dir_.c_str()) != 0) {
        _exit(126);
      }
      execl(evhostBin(), evhostBin(), "--config", config.c_str(), "--plugin-dir", testPluginDir(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    read_fd_ = fds[0];
  }
  ~PipedEvhost() {
    if (exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    read();
    if (reader_.joinable()) {
      reader_.join();
    }
    close(read_fd_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PipedEvhost(const PipedEvhost&) = delete;
  PipedEvhost& operator=(const PipedEvhost&) = delete;

  // From now on, a thread reads the pipe (to its end).
  void read() {
    if (reader_.joinable()) {
      return;
    }
    reader_ = std::thread([this] {
      char buf[65536];
      for (;;) {
        const ssize_t n = ::read(read_fd_, buf, sizeof buf);
        if (n <= 0) {
          return;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        text_.append(buf, static_cast<size_t>(n));
      }
    });
  }
  std::string log() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  // The exit code (128 + signal when killed), or -1 within the hang guard.
  int waitExit() {
    eventually([&] {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) != pid_) {
        return false;
      }
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    });
    return exit_code_;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int read_fd_ = -1;
  int exit_code_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::string text_;
};

std::string logEvent(int i) {
  return R"({"eventId":"e)" + std::to_string(i) +
         R"(","eventType":"LOG_50","timestamp":"2024-01-15T10:30:00.000Z","payload":{}})";
}

TEST(LogOutputTest, AStderrNobodyReadsNeverStallsEventHandling) {
  RedisServer redis;
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << redis.port() << "}\n"
    << R"(plugins:
  noisy: {path: scripted}
  rec: {path: recorder, config: {key: seen}}
channels:
  jollyjet:events:product:
    routes:
      - events: [LOG_50]
        plugins: [noisy, rec]
)";
  PipedEvhost host(y.str());
  // Subscribed (its log cannot tell: nobody reads it yet).
  ASSERT_TRUE(eventually([&] {
    auto r = redis.command({"PUBSUB", "NUMSUB", "test:jollyjet:events:product"});
    return r->elements == 2 && r->element[1]->integer == 1;
  }));
  // 400 events, 50 plugin lines each: 20,000 lines (about 2.5 MB) into a
  // 4 KiB pipe that nobody reads.
  constexpr int kEvents = 400;
  for (int i = 0; i < kEvents; ++i) {
    redis.command({"PUBLISH", "test:jollyjet:events:product", logEvent(i)});
  }
  ASSERT_TRUE(eventually([&] {
    return redis.command({"LLEN", "seen"})->integer == kEvents;
  })) << "events not handled while stderr was full: "
      << redis.command({"LLEN", "seen"})->integer;

  // The pipe is read again: the drops are said (and counted).
  host.read();
  ASSERT_TRUE(eventually([&] { return host.log().find("log line(s) dropped") != std::string::npos; }))
      << host.log().substr(0, 4000);
  host.signal(SIGTERM);
  ASSERT_EQ(host.waitExit(), 0);
  ASSERT_TRUE(eventually([&] { return host.log().find("evhost stopped") != std::string::npos; }));
  const std::string log = host.log();
  // Every plugin line is either written or counted as dropped.
  size_t written = 0;
  for (size_t p = log.find(" for event e"); p != std::string::npos; p = log.find(" for event e", p + 1)) {
    ++written;
  }
  size_t dropped = 0;
  const std::regex said("([0-9]+) log line\\(s\\) dropped");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), said); it != std::sregex_iterator(); ++it) {
    dropped += std::stoul((*it)[1]);
  }
  EXPECT_LT(written, 50U * kEvents) << "nothing was dropped: the test did not fill the pipe";
  EXPECT_GE(written + dropped, 50U * kEvents) << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
  // Host lines dropped too, if any, are few (startup's went out before the pipe filled).
  EXPECT_LE(written + dropped, 50U * kEvents + 20);
  // The last lines of the stop were written, in order.
  EXPECT_LT(log.find("signal 15 received: stopping"), log.find("evhost stopped"));
  EXPECT_EQ(log.rfind('\n'), log.size() - 1);
  EXPECT_THAT(log.substr(log.rfind('\n', log.size() - 2) + 1), HasSubstr("evhost stopped"))
      << log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
  for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
    EXPECT_EQ(log.find(marker), std::string::npos) << log;
  }
}

}  // namespace
}  // namespace evh::test
