// The Async output's stderr: lines formatted into one buffer and written
// together. Why: written one by one (spdlog's stderr sink: fwrite and
// fflush per line, stderr unbuffered), a handler that logs each event costs
// the writer thread a write(2) per event -- 20,000 a second on the JollyJet
// pipeline. Here the buffer is written when the queue behind the line is
// empty (so nothing waits in it while the writer sleeps), when it holds
// 64 KiB, or after a line at warn or above; one write(2) per burst.
//
// After a write that emptied the queue the writer lingers (kLinger) before
// it takes the next line, when the one before also did and less than kBusy
// ago (lines come fast). Why: a writer that sleeps on the empty queue is
// woken by every line logged next -- a futex wake, and a context switch
// for each, on the thread that logs (the loop), at 20,000 lines a second.
// Lines logged while it lingers are queued without waking anyone, and it
// takes them all at once: one wake-up and one write(2) per linger at most.
// A line reaches stderr at most kLinger later than it would have; a line
// now and then (no load: what tests mostly see) is not delayed at all.
#pragma once

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <functional>
#include <thread>
#include <utility>

namespace evh::log {

// THREAD: the writer thread alone (base_sink's null mutex): an AsyncOutput's
// single writer is its only caller. log::drain()'s marker flushes it first,
// so a drained line is on stderr, not held here.
class BatchedStderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  static constexpr size_t kBatchBytes = 64 * 1024;
  static constexpr std::chrono::microseconds kLinger{500};
  static constexpr std::chrono::milliseconds kBusy{2};

  // What is still held goes out (after the writer thread has been joined).
  ~BatchedStderrSink() override { flush_(); }

  // `backlog` tells how many lines still wait in the queue (AsyncOutput::
  // queued); until it is set every line is written at once.
  void setBacklog(std::function<size_t()> backlog) { backlog_ = std::move(backlog); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    formatter_->format(msg, buffer_);
    if (msg.level >= spdlog::level::warn || buffer_.size() >= kBatchBytes || !backlog_) {
      flush_();
    } else if (backlog_() == 0) {
      flush_();
      // Only while lines come fast (the last write emptied the queue less
      // than kBusy ago): a line now and then goes out at once, as before.
      const auto now = std::chrono::steady_clock::now();
      const bool busy = now - last_emptied_ < kBusy;
      last_emptied_ = now;
      if (busy) {
        std::this_thread::sleep_for(kLinger);  // the writer thread's, never the caller's
      }
    }
  }

  // Writes the buffer whole (a short write goes on from where it stopped);
  // on an error the lines are dropped: there is nowhere else to say so.
  void flush_() override {
    const char* p = buffer_.data();
    size_t left = buffer_.size();
    while (left > 0) {
      const ssize_t n = ::write(STDERR_FILENO, p, left);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    buffer_.clear();
  }

 private:
  spdlog::memory_buf_t buffer_;
  std::function<size_t()> backlog_;
  std::chrono::steady_clock::time_point last_emptied_{};
};

}  // namespace evh::log
