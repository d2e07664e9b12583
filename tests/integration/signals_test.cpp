// Signals and the real evhost: SIGHUP reloads (reload_test.cpp) and does not stop it, and a plugin that
// crashes (SIGSEGV, SIGABRT, SIGFPE, SIGILL; inline on the loop, blocking on
// a worker, in a posted function) is named on stderr -- plugin, instance,
// event -- before the signal ends the process with its own status.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string signalEvent(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"corr-)" + id +
         R"(","payload":{"card":"4111-secret"}})";
}

class SignalsTest : public ::testing::Test {
 protected:
  std::string config(const std::string& plugins, const std::string& routes) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << "plugins:\n"
      << plugins << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << routes;
    return y.str();
  }
  void publish(const std::string& message) { redis_.command({"PUBLISH", "test:jollyjet:events:product", message}); }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }

  RedisServer redis_;
};

// SIGPIPE is ignored process-wide: with stdout and stderr on a pipe whose
// reading end is gone (a log shipper that died), every log line's write
// fails with EPIPE rather than killing evhost by SIGPIPE at the first line;
// it subscribes, handles events and stops cleanly on SIGTERM.
TEST_F(SignalsTest, AClosedStderrPipeDoesNotKillEvhost) {
  const std::string path = freshTempFile("evh-sigpipe", ".yaml");
  std::ofstream(path) << config("  rec: {path: recorder, config: {key: seen}}\n",
                                "      - events: \"*\"\n        plugins: [rec]\n");
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[0]);  // nobody will ever read it
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execl(evhostBin(), evhostBin(), "--config", path.c_str(), "--plugin-dir", testPluginDir(), "--ops-listen", "",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  int status = 0;
  bool ended = false;  // by itself, before the SIGTERM
  // Published until evhost has subscribed (its log cannot say so here).
  const bool handled = eventually([&] {
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) {
      publish(signalEvent("e1", "PRODUCT_CREATED"));
    }
    return ended || llen("seen") > 0;
  });
  if (!ended) {
    ::kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
  }
  std::remove(path.c_str());
  ASSERT_FALSE(ended) << "evhost ended by itself: "
                      << (WIFSIGNALED(status) ? std::string(strsignal(WTERMSIG(status)))
                                              : "exit " + std::to_string(WEXITSTATUS(status)));
  EXPECT_TRUE(handled);
  ASSERT_TRUE(WIFEXITED(status)) << strsignal(WTERMSIG(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(SignalsTest, SighupReloadsAndEvhostCarriesOn) {
  EvhostProcess host(
      config("  rec: {path: recorder, config: {key: seen}}\n", "      - events: \"*\"\n        plugins: [rec]\n"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(signalEvent("before", "PRODUCT_CREATED"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 1; })) << host.log();
  host.signal(SIGHUP);
  ASSERT_TRUE(host.waitForLog("SIGHUP received: reloading the configuration")) << host.log();
  ASSERT_TRUE(host.waitForLog("nothing changed")) << host.log();
  host.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return host.countInLog("configuration reloaded from") == 2; })) << host.log();
  EXPECT_TRUE(host.running()) << host.log();
  publish(signalEvent("after", "PRODUCT_CREATED"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 2; })) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("stopping")));
  // The destructor's SIGTERM still stops it gracefully, with exit code 0.
}

// The crash file is created by a crash only: a run that ends well leaves
// none in the state folder.
TEST_F(SignalsTest, ARunWithoutACrashLeavesNoCrashFile) {
  const TempDir state;
  {
    EvhostProcess host(
        config("  rec: {path: recorder, config: {key: seen}}\n", "      - events: \"*\"\n        plugins: [rec]\n"), {},
        {"EVH_STATE_DIR=" + state.path()});
    ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
    host.signal(SIGTERM);
    const auto code = host.waitExit();
    ASSERT_TRUE(code.has_value()) << host.log();
    EXPECT_EQ(*code, 0) << host.log();
    EXPECT_THAT(host.log(), Not(HasSubstr("crash file"))) << host.log();
  }
  EXPECT_NE(::access((state.path() + "/evhost-crash.log").c_str(), F_OK), 0);
}

struct Crash {
  const char* name;        // the test's
  const char* event_type;  // scripted's behaviour
  const char* library;     // scripted (inline) or scripted_serial (blocking, on a worker)
  int signum;
  const char* signame;
  const char* line;  // what the fatal-signal line says after "... (instance \"crashy\")"
};

class CrashTest : public SignalsTest, public ::testing::WithParamInterface<Crash> {};

TEST_P(CrashTest, TheCrashIsNamedAndTheSignalEndsEvhost) {
  const Crash& c = GetParam();
  const TempDir state;
  EvhostProcess host(
      config(std::string("  crashy: {path: ") + c.library + "}\n  rec: {path: recorder, config: {key: seen}}\n",
             std::string("      - events: [") + c.event_type +
                 "]\n        plugins: [crashy]\n      - events: [PRODUCT_CREATED]\n        plugins: [rec]\n"),
      {}, {"EVH_STATE_DIR=" + state.path()});
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(signalEvent("ok-1", "PRODUCT_CREATED"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 1; })) << host.log();
  publish(signalEvent("e-crash-1", c.event_type));
  const auto code = host.waitExit();
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 128 + c.signum) << host.log();
  const std::string log = host.log();
  const std::string expected = std::string("evhost: fatal signal ") + c.signame + " in plugin \"" + c.library +
                               "\" (instance \"crashy\")" + c.line;
  EXPECT_THAT(log, HasSubstr(expected)) << log;
  // What the plugin logged just before it crashed was written before the
  // line that names the crash (the writer thread was given the time).
  const size_t said = log.find(std::string("crashing on purpose: ") + c.event_type);
  const size_t named = log.find("evhost: fatal signal");
  ASSERT_NE(said, std::string::npos) << log;
  ASSERT_NE(named, std::string::npos) << log;
  EXPECT_LT(said, named) << log;
  EXPECT_THAT(log, Not(HasSubstr("4111-secret")));
  // A backtrace follows on stderr, its symbols in the crash file.
  const std::string crash_file = state.path() + "/evhost-crash.log";
  EXPECT_THAT(log, HasSubstr("\nevhost: backtrace: 0x")) << log;
  EXPECT_THAT(log, HasSubstr("(modules and symbols in " + crash_file + ")\n")) << log;
  // The crash file: who and when, the same line, every frame with its
  // module -- the crashing plugin's among them.
  const std::string report = readFile(crash_file);
  EXPECT_THAT(report, HasSubstr("evhost crash: pid " + std::to_string(host.pid()) + ", unix time ")) << report;
  EXPECT_THAT(report, HasSubstr(expected)) << report;
  EXPECT_THAT(report, HasSubstr("backtrace (innermost first):\n")) << report;
  EXPECT_THAT(report, HasSubstr(std::string("/") + c.library + ".so(")) << report;
  EXPECT_THAT(report, Not(HasSubstr("4111-secret")));
}

INSTANTIATE_TEST_SUITE_P(
    Signals, CrashTest,
    ::testing::Values(
        Crash{"InlineSegv", "CRASH_SEGV", "scripted", SIGSEGV, "SIGSEGV",
              " while handling event e-crash-1 (type CRASH_SEGV, channel jollyjet:events:product); fault address "
              "0x10\n"},
        Crash{"BlockingSegv", "CRASH_SEGV", "scripted_serial", SIGSEGV, "SIGSEGV",
              " while handling event e-crash-1 (type CRASH_SEGV, channel jollyjet:events:product); fault address "
              "0x10\n"},
        Crash{"InlineAbort", "CRASH_ABORT", "scripted", SIGABRT, "SIGABRT",
              " while handling event e-crash-1 (type CRASH_ABORT, channel jollyjet:events:product)\n"},
        Crash{"BlockingFpe", "CRASH_FPE", "scripted_serial", SIGFPE, "SIGFPE",
              " while handling event e-crash-1 (type CRASH_FPE, channel jollyjet:events:product); at instruction 0x"},
        Crash{"InlineIll", "CRASH_ILL", "scripted", SIGILL, "SIGILL",
              " while handling event e-crash-1 (type CRASH_ILL, channel jollyjet:events:product); at instruction 0x"},
        Crash{"PostedFunction", "CRASH_IN_POST", "scripted", SIGSEGV, "SIGSEGV",
              " while running its posted function; fault address 0x10\n"}),
    [](const ::testing::TestParamInfo<Crash>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace evh::test
