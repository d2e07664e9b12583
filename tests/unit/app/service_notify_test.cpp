// The service manager's notifications: the status line's text, and what
// ServiceNotify sends to a NOTIFY_SOCKET (a socket of the test's own) and
// when -- READY=1 once, RELOADING=1 / READY=1 around a reload, STOPPING=1,
// WATCHDOG=1 at half WATCHDOG_USEC -- and that it does nothing without one.
#include "app/service_notify.h"
#include "support/notify_socket.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <uv.h>

#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace evh::app {
namespace {

using test::NotifySocket;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

ops::Readiness notReady(std::vector<std::string> why) { return ops::Readiness{std::move(why)}; }

StatusFigures figures() { return StatusFigures{3, 1, 1234, 5, 2}; }

TEST(StatusLineTest, SaysThePhaseThenTheFigures) {
  EXPECT_EQ(statusLine(ServicePhase::Running, {}, figures()),
            "ready: 3 channels, 1 plugin, 1234 handled, 5 dead-lettered, 2 in flight");
  EXPECT_EQ(statusLine(ServicePhase::Running, {}, StatusFigures{1, 2, 0, 0, 0}),
            "ready: 1 channel, 2 plugins, 0 handled, 0 dead-lettered, 0 in flight");
  EXPECT_EQ(statusLine(ServicePhase::Stopping, notReady({"draining"}), figures()),
            "stopping: 3 channels, 1 plugin, 1234 handled, 5 dead-lettered, 2 in flight");
  EXPECT_EQ(statusLine(ServicePhase::Reloading, {}, figures()),
            "reloading: 3 channels, 1 plugin, 1234 handled, 5 dead-lettered, 2 in flight");
}

TEST(StatusLineTest, NamesTheFirstReasonNotToBeReadyAndHowManyMore) {
  EXPECT_EQ(statusLine(ServicePhase::Starting, notReady({"subscription to test:orders not confirmed yet"}), figures()),
            "starting (subscription to test:orders not confirmed yet): 3 channels, 1 plugin, 1234 handled, 5 "
            "dead-lettered, 2 in flight");
  EXPECT_EQ(statusLine(ServicePhase::Running, notReady({"redis command connection (127.0.0.1:6379) is down", "b", "c"}),
                       figures()),
            "not ready (redis command connection (127.0.0.1:6379) is down (and 2 more)): 3 channels, 1 plugin, 1234 "
            "handled, 5 dead-lettered, 2 in flight");
}

TEST(StatusLineTest, IsOneBoundedLineWhateverTheReasonSays) {
  const std::string line =
      statusLine(ServicePhase::Running, notReady({"plugin \"a\" is down: line one\nline two\r\x7f"}), figures());
  EXPECT_EQ(line.find_first_of("\n\r\x7f"), std::string::npos) << line;
  EXPECT_THAT(line, StartsWith("not ready (plugin \"a\" is down: line one line two  ): "));

  // A long reason is cut (the figures stay), and never inside a UTF-8 character.
  std::string long_reason;
  for (int i = 0; i < 200; ++i) {
    long_reason += "\xc3\xa9";  // é, two bytes
  }
  const std::string cut = statusLine(ServicePhase::Running, notReady({long_reason}), figures());
  EXPECT_LE(cut.size(), kMaxStatusBytes);
  EXPECT_THAT(cut, HasSubstr("): 3 channels"));
  const size_t open = cut.find('(') + 1;
  const size_t close = cut.find(')');
  EXPECT_EQ((close - open) % 2, 0U) << "a character cut in half: " << cut;

  // systemd ignores a status that is not UTF-8: malformed bytes (a lone
  // continuation byte, an overlong '/', a surrogate, past U+10FFFF, a
  // truncated character) become '?', well-formed ones stay.
  EXPECT_EQ(statusLine(ServicePhase::Running,
                       notReady({"a\x80"
                                 "b \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 \xe2\x82\xac \xf0\x9f\x98\x80"}),
                       StatusFigures{}),
            "not ready (a?b ?? ??? ???? ?? \xe2\x82\xac \xf0\x9f\x98\x80): 0 channels, 0 plugins, 0 handled, 0 "
            "dead-lettered, 0 in flight");

  const std::string whole = statusLine(ServicePhase::Running, notReady({long_reason, long_reason}),
                                       StatusFigures{~size_t{0}, ~size_t{0}, ~uint64_t{0}, ~uint64_t{0}, ~size_t{0}});
  EXPECT_LE(whole.size(), kMaxStatusBytes);
}

TEST(NotifyMessageTest, CarryTheirStatusLine) {
  EXPECT_EQ(readyMessage("ready: x"), "READY=1\nSTATUS=ready: x");
  EXPECT_EQ(stoppingMessage("stopping: x"), "STOPPING=1\nSTATUS=stopping: x");
  EXPECT_EQ(reloadingMessage(123456789, "reloading: x"), "RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading: x");
}

class ServiceNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &alive_), 0);
  }
  void TearDown() override {
    notify_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&alive_), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }

  // Built after the environment is set (before any thread of its own).
  void make(ServiceNotify::Options options = {}) {
    ServiceNotify::Hooks hooks;
    hooks.readiness = [this] { return ready_ ? ops::Readiness{} : notReady({"subscription not confirmed yet"}); };
    hooks.figures = [this] { return StatusFigures{2, 1, handled_, 0, 0}; };
    notify_ = std::make_unique<ServiceNotify>(&loop_, std::move(hooks), options);
  }

  // Turns the loop for `ms` milliseconds. ServiceNotify's timers are
  // unreferenced (in evhost the loop lives for its connections), so a
  // timer of the test's keeps the loop alive meanwhile.
  void runFor(int ms) {
    uv_timer_start(
        &alive_, [](uv_timer_t*) {}, 3600 * 1000, 0);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    uv_timer_stop(&alive_);
  }

  uv_loop_t loop_{};
  uv_timer_t alive_{};
  bool ready_ = false;
  uint64_t handled_ = 0;
  std::unique_ptr<ServiceNotify> notify_;
};

TEST_F(ServiceNotifyTest, DoesNothingWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "100000", 1);
  make();
  EXPECT_FALSE(notify_->enabled());
  EXPECT_EQ(notify_->watchdogPeriodMs(), 0U);
  notify_->start();
  ready_ = true;
  notify_->reloading();
  notify_->reloaded();
  notify_->stopping();
  // No timer of its own: a loop with nothing else to do ends at once.
  EXPECT_EQ(uv_run(&loop_, UV_RUN_DEFAULT), 0);
}

TEST_F(ServiceNotifyTest, SaysReadyOnceWhenReadinessFirstHoldsThenReloadingAndStopping) {
  NotifySocket sock;
  ::setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
  make(ServiceNotify::Options{10, 10, 50});
  ASSERT_TRUE(notify_->enabled());
  EXPECT_EQ(notify_->watchdogPeriodMs(), 0U);  // no WATCHDOG_USEC
  notify_->start();
  runFor(100);
  // Not ready yet: a status line saying why, and no READY=1.
  ASSERT_TRUE(sock.waitFor("STATUS=").has_value());
  EXPECT_EQ(sock.messages().front().text,
            "STATUS=starting (subscription not confirmed yet): 2 channels, 1 plugin, 0 handled, 0 dead-lettered, 0 "
            "in flight");
  EXPECT_TRUE(sock.with("READY=1").empty());

  ready_ = true;
  runFor(50);
  const auto ready = sock.waitFor("READY=1");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(sock.messages()[*ready].text,
            "READY=1\nSTATUS=ready: 2 channels, 1 plugin, 0 handled, 0 dead-lettered, 0 in flight");
  EXPECT_EQ(notify_->phase(), ServicePhase::Running);

  // Readiness lost and back: status lines, never READY=1 again.
  ready_ = false;
  runFor(30);
  // (Waited for: a status line still queued would be replaced by the next.)
  ASSERT_TRUE(sock.waitFor("STATUS=not ready (subscription not confirmed yet): 2 channels, 1 plugin, 0 handled, 0 "
                           "dead-lettered, 0 in flight")
                  .has_value());
  ready_ = true;
  handled_ = 7;
  runFor(100);
  ASSERT_TRUE(sock.waitFor("STATUS=ready: 2 channels, 1 plugin, 7 handled, 0 dead-lettered, 0 in flight").has_value());
  EXPECT_EQ(sock.with("READY=1").size(), 1U);
  EXPECT_EQ(sock.with("STATUS=not ready (").size(), 1U);

  // A reload: RELOADING=1 with the monotonic clock now, then READY=1.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t before = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  const size_t from = sock.size();
  notify_->reloading();
  const auto reloading = sock.waitFor("RELOADING=1", std::chrono::seconds(5), from);
  ASSERT_TRUE(reloading.has_value());
  const NotifySocket::Message m = sock.messages()[*reloading];
  EXPECT_THAT(m.text, MatchesRegex("RELOADING=1\nMONOTONIC_USEC=[0-9]+\nSTATUS=reloading: 2 channels, .*"));
  const uint64_t usec = std::stoull(m.value("MONOTONIC_USEC"));
  EXPECT_GE(usec, before);
  EXPECT_LT(usec - before, 5000000U);
  notify_->reloaded();
  ASSERT_TRUE(sock.waitFor("READY=1", std::chrono::seconds(5), *reloading + 1).has_value());
  EXPECT_EQ(sock.with("READY=1").size(), 2U);

  notify_->stopping();
  const auto stopping = sock.waitFor("STOPPING=1");
  ASSERT_TRUE(stopping.has_value());
  EXPECT_EQ(sock.messages()[*stopping].value("STATUS"),
            "stopping: 2 channels, 1 plugin, 7 handled, 0 dead-lettered, 0 in flight");
  notify_->stopping();  // once
  runFor(30);
  EXPECT_EQ(sock.with("STOPPING=1").size(), 1U);
  EXPECT_TRUE(sock.with("WATCHDOG=1").empty());
}

TEST_F(ServiceNotifyTest, PingsTheWatchdogAtHalfItsIntervalWhileTheLoopTurns) {
  NotifySocket sock;
  ::setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "60000", 1);  // pings every 30 ms
  make();
  EXPECT_EQ(notify_->watchdogPeriodMs(), 30U);
  notify_->start();
  runFor(320);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // what was queued is sent
  const size_t turning = sock.with("WATCHDOG=1").size();
  EXPECT_GE(turning, 6U);
  EXPECT_LE(turning, 11U);
  // A loop that does not turn does not ping.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sock.with("WATCHDOG=1").size(), turning);
  runFor(100);
  EXPECT_GT(sock.with("WATCHDOG=1").size(), turning);
  // Closed: no more.
  notify_->close();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const size_t closed = sock.with("WATCHDOG=1").size();
  runFor(100);
  EXPECT_EQ(sock.with("WATCHDOG=1").size(), closed);
}

TEST_F(ServiceNotifyTest, AWatchdogMeantForAnotherProcessOrMalformedIsNotPinged) {
  NotifySocket sock;
  ::setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "60000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  make();
  EXPECT_TRUE(notify_->enabled());
  EXPECT_EQ(notify_->watchdogPeriodMs(), 0U);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  notify_.reset();
  make();
  EXPECT_EQ(notify_->watchdogPeriodMs(), 30U);
  // Nonsense is no watchdog (and a warning), not a crash or a ping storm.
  ::setenv("WATCHDOG_USEC", "soon", 1);
  notify_.reset();
  make();
  EXPECT_TRUE(notify_->enabled());
  EXPECT_EQ(notify_->watchdogPeriodMs(), 0U);
}

}  // namespace
}  // namespace evh::app
