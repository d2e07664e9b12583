// The Async output's stderr sink: lines wait in its buffer while more are
// queued behind them, and go out in one write when the queue is empty, when
// a line is warn or above, or on flush.
#include "common/log_batched_sink.h"
#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace evh::log {
namespace {

// fd 2 replaced by a non-blocking pipe for the test's duration.
class StderrCapture {
 public:
  StderrCapture() {
    EXPECT_EQ(::pipe2(fds_, O_NONBLOCK), 0);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fds_[1], STDERR_FILENO);
  }
  ~StderrCapture() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string take() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds_[0], buf, sizeof buf)) > 0;) {
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fds_[2] = {-1, -1};
  int saved_ = -1;
};

TEST(BatchedStderrSinkTest, LinesWaitWhileMoreAreQueuedAndGoOutTogether) {
  StderrCapture err;
  auto sink = std::make_shared<BatchedStderrSink>();
  sink->set_formatter(makeFormatter(Format::Text));
  size_t backlog = 5;
  sink->setBacklog([&backlog] { return backlog; });
  spdlog::logger logger("t", sink);
  logger.set_level(spdlog::level::info);

  logger.info("one");
  logger.info("two");
  EXPECT_EQ(err.take(), "");  // more lines queued behind them: held
  backlog = 0;
  logger.info("three");  // the last of the burst: all three at once
  const std::string burst = err.take();
  EXPECT_NE(burst.find("one\n"), std::string::npos) << burst;
  EXPECT_LT(burst.find("one\n"), burst.find("two\n"));
  EXPECT_LT(burst.find("two\n"), burst.find("three\n"));

  backlog = 5;
  logger.info("held");
  logger.warn("urgent");  // warn and above are written at once, with what waited
  const std::string urgent = err.take();
  EXPECT_NE(urgent.find("held\n"), std::string::npos) << urgent;
  EXPECT_NE(urgent.find("urgent\n"), std::string::npos) << urgent;

  logger.info("flushed");
  EXPECT_EQ(err.take(), "");
  logger.flush();
  EXPECT_NE(err.take().find("flushed\n"), std::string::npos);
}

// drain() returns only once the lines logged before it are on stderr: its
// marker flushes what the sink holds. Here the probe always says more lines
// are queued, as when the marker is queued right behind the last line.
TEST(BatchedStderrSinkTest, ADrainedLineIsOnStderrNotHeldInTheBuffer) {
  StderrCapture err;
  auto sink = std::make_shared<BatchedStderrSink>();
  sink->set_formatter(makeFormatter(Format::Text));
  sink->setBacklog([] { return size_t{1}; });
  AsyncOutput out(sink, 64);
  auto logger = out.makeLogger("t");
  logger->info("evhost stopped");
  ASSERT_TRUE(out.drain(std::chrono::seconds(10)));
  EXPECT_NE(err.take().find("evhost stopped\n"), std::string::npos);
}

TEST(BatchedStderrSinkTest, WhatIsHeldIsWrittenWhenTheSinkGoes) {
  StderrCapture err;
  {
    auto sink = std::make_shared<BatchedStderrSink>();
    sink->set_formatter(makeFormatter(Format::Text));
    sink->setBacklog([] { return size_t{1}; });
    spdlog::logger logger("t", sink);
    logger.info("last words");
    EXPECT_EQ(err.take(), "");
  }
  EXPECT_NE(err.take().find("last words\n"), std::string::npos);
}

TEST(BatchedStderrSinkTest, WithoutABacklogProbeEveryLineIsWrittenAtOnce) {
  StderrCapture err;
  auto sink = std::make_shared<BatchedStderrSink>();
  sink->set_formatter(makeFormatter(Format::Text));
  spdlog::logger logger("t", sink);
  logger.info("alone");
  EXPECT_NE(err.take().find("alone\n"), std::string::npos);
}

}  // namespace
}  // namespace evh::log
