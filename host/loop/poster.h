// Runs functions on the loop thread, posted from any thread (uv_async).
#pragma once

#include "loop/uv_handle.h"

#include <functional>
#include <mutex>
#include <vector>

namespace evh {

class Poster {
 public:
  // Fails (throws std::runtime_error) only if uv_async_init fails.
  explicit Poster(uv_loop_t* loop);
  ~Poster();
  Poster(const Poster&) = delete;
  Poster& operator=(const Poster&) = delete;

  // Queues fn to run once on the loop thread. Returns false once close()
  // has begun, and then fn will never run. THREAD: any.
  bool post(std::function<void()> fn);

  // Runs everything queued, on the calling (loop) thread, until the queue
  // is empty (functions posted while draining run too). For shutdown; in
  // normal running the loop takes one batch per wake-up.
  void drain();

  // Stops accepting: post() returns false from now on; what is queued
  // still runs at the next drain. THREAD: loop.
  void refuse();

  // Stops accepting, runs what is queued, closes the handle. THREAD: loop.
  void close();

 private:
  static void onAsync(uv_async_t* h);
  bool runBatch();
  void drainUntilEmpty();

  UvHandle<uv_async_t> async_;
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
  bool closed_ = false;
};

}  // namespace evh
