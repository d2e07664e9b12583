// Runs functions on the loop thread, posted from any thread: a queue under a
// mutex, and an eventfd the loop polls.
//
// Why not uv_async_t: libuv 1.44 (Debian 12's) has the loop spin, then
// sched_yield, while any thread is between the two steps of uv_async_send
// -- and every async handle of the loop is checked at every wake-up. A
// producer preempted there (the ops listener's thread runs 10 nice levels
// down, so it is preempted by the very loop its write wakes) held the loop
// in that spin: 22 % of the loop's samples during a /metrics scrape every
// 100 ms, and with that thread under SCHED_IDLE a p99 of 2 ms at 50,000
// events/s (docs/benchmarks/issue13-scrape-p99.md, "Issue 13: the loop spinning on a scrape").
// An eventfd has no such protocol: a
// producer preempted between its push and its write to the eventfd delays
// the posts of the same Poster (hence a Poster of its own for a thread that
// runs at a low priority), and the loop never spins or sleeps for it -- it
// only takes the queue's mutex, which a producer holds for a push_back.
#pragma once

#include "loop/uv_handle.h"

#include <atomic>
#include <functional>
#include <mutex>
#include <vector>

namespace evh {

class Poster {
 public:
  // Throws std::runtime_error when the eventfd or its poll handle cannot be
  // made (out of file descriptors, say).
  explicit Poster(uv_loop_t* loop);
  ~Poster();
  Poster(const Poster&) = delete;
  Poster& operator=(const Poster&) = delete;

  // Queues fn to run once on the loop thread. Returns false once close()
  // has begun, and then fn will never run. Never blocks but on the queue's
  // mutex, held only to push or to take the queue. THREAD: any. It may race
  // close(), but every call must have returned before the destructor runs:
  // it still writes to the eventfd after fn is queued (and so may run).
  bool post(std::function<void()> fn);

  // Runs everything queued, on the calling (loop) thread, until the queue
  // is empty (functions posted while draining run too). For shutdown; in
  // normal running the loop takes one batch per wake-up.
  void drain();

  // Stops accepting: post() returns false from now on; what is queued
  // still runs at the next drain. THREAD: loop.
  void refuse();

  // Stops accepting, runs what is queued, stops polling. THREAD: loop.
  void close();

 private:
  static void onReadable(uv_poll_t* h, int status, int events);
  bool runBatch();
  void drainUntilEmpty();
  // Makes the eventfd readable, unless a wake-up is already on its way.
  void wake();

  // The eventfd: closed by the destructor only, after polling stopped, so
  // that a post() racing close() writes to it and not to a reused number.
  int fd_ = -1;
  UvHandle<uv_poll_t> poll_;
  // A write to fd_ not yet read by the loop: posts meanwhile need none.
  std::atomic<bool> woken_{false};
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
  bool closed_ = false;
};

}  // namespace evh
