// How the ops thread gets what only the loop thread may compute: the stats
// registry's collect() (computed gauges read loop-owned state) and
// Server::readiness(). The ops thread posts one collect to the loop; the loop
// runs it and hands the snapshot back through a uv_async on the ops thread's
// own loop. Nothing on the loop waits for the ops thread, ever.
//
// Bounded work for the loop, whatever the clients do:
//   - coalesced: one collect is outstanding at a time, and it serves every
//     request waiting when it arrives;
//   - reused: a snapshot younger than `reuse_ms` answers at once, so a flood
//     of requests costs the loop one collect per `reuse_ms` at most;
//   - a loop that does not answer within `timeout_ms` (stalled in a handler,
//     say) fails the waiting requests -- and, until it answers, new ones at
//     once -- with "not answering", while the collect stays queued: its
//     answer, when it comes, is used.
#pragma once

#include "loop/uv_handle.h"
#include "ops/endpoints.h"
#include "ops/stats.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace evh::ops {

// The loop's side, as the server gives it.
struct LoopAccess {
  // Queues `fn` to run once on the loop thread (Poster::post); false when
  // the loop takes no more (evhost is stopping). THREAD: any.
  std::function<bool(std::function<void()>)> post;
  // What the loop hands over per collect. THREAD: loop.
  std::function<LoopSnapshot()> collect;
};

class LoopLink {
 public:
  struct Options {
    uint32_t reuse_ms = 100;
    uint32_t timeout_ms = 3000;
  };
  // Called with the loop's answer: a snapshot no older than reuse_ms, or
  // none and why. The snapshot is valid during the call only.
  using Done = std::function<void(const LoopAnswer& answer)>;

  // Makes its handles on `ops_loop`: call on the thread that owns that loop
  // (before its thread starts, or on it). `collect_seconds` is observed on
  // the loop thread, once per collect: how long the loop spent collecting.
  // Throws std::runtime_error if a handle cannot be made.
  LoopLink(uv_loop_t* ops_loop, LoopAccess access, Options options, Histogram collect_seconds);
  ~LoopLink();  // close()
  LoopLink(const LoopLink&) = delete;
  LoopLink& operator=(const LoopLink&) = delete;

  // Answers `done` now (a fresh snapshot, or the loop known not to be
  // answering) or once the loop answers or times out. THREAD: ops.
  void get(Done done);

  // Every request waiting gets "evhost is stopping"; an answer arriving
  // later is dropped without running `collect` (nor touching this object);
  // the handles are closed (run the ops loop to free them). THREAD: ops.
  void close();

  // Collects asked of the loop so far (for tests and the benchmark note).
  uint64_t collectsAsked() const noexcept { return asked_; }

 private:
  struct Mailbox;
  static void onAnswer(uv_async_t* async);
  static void onTimeout(uv_timer_t* timer);
  void ask();
  void answerAll(const LoopAnswer& answer);
  std::string notAnswering() const;

  uv_loop_t* loop_;
  LoopAccess access_;
  Options options_;
  Histogram collect_seconds_;
  std::shared_ptr<Mailbox> mailbox_;  // shared with the collects posted to the loop
  UvHandle<uv_async_t> answered_;     // the loop's wake-up call: an answer is in the mailbox
  UvHandle<uv_timer_t> timer_;        // the outstanding collect's deadline
  std::vector<Done> waiting_;
  std::shared_ptr<const LoopSnapshot> last_;
  uint64_t last_at_ = 0;   // uv_now of the ops loop when last_ arrived
  bool asking_ = false;    // a collect is queued on the loop
  uint64_t asked_at_ = 0;  // ... since then
  bool stalled_ = false;   // ... and has been for timeout_ms
  bool closed_ = false;
  uint64_t asked_ = 0;
};

}  // namespace evh::ops
