// How POST /reload reaches the loop and comes back: the ops thread asks the
// loop to reload (LoopAccess::reload, posted), and the loop's answer -- when
// the reload has read, checked and applied (or refused) the file -- comes
// back through a uv_async on the ops thread's loop. Nothing on the loop
// waits for the ops thread. A reload that has not answered within
// `timeout_ms` is answered 503 (it goes on; the log and /status tell how it
// ended); at close() every request still waiting is answered 503, and a
// request made after it (or that cannot be posted to the loop) is answered
// 503 "not run".
// THREAD: ops (every member), except what the loop's answer calls.
#pragma once

#include "loop/uv_handle.h"
#include "ops/endpoints.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace evh::ops {

struct ReloadAccess {
  // Queues `fn` to run once on the loop thread; false when the loop takes
  // no more (evhost is stopping). THREAD: any.
  std::function<bool(std::function<void()>)> post;
  // Reloads and calls `done` with the outcome (Server::reload). THREAD: loop.
  std::function<void(ReloadOutcome done)> reload;
};

class ReloadLink {
 public:
  using Done = std::function<void(const Response& response)>;

  // Makes its handles on `ops_loop` (THREAD: that loop's, before it runs or
  // on it). Throws std::runtime_error if a handle cannot be made.
  ReloadLink(uv_loop_t* ops_loop, ReloadAccess access, uint32_t timeout_ms);
  ~ReloadLink();  // close()
  ReloadLink(const ReloadLink&) = delete;
  ReloadLink& operator=(const ReloadLink&) = delete;

  // Asks the loop to reload; `done` runs on the ops thread with the answer.
  void ask(Done done);
  // Answers every waiting request 503; later answers from the loop are
  // dropped. The handles are closed (run the ops loop to free them).
  void close();

 private:
  struct Mailbox;
  struct Waiter {
    Done done;
    uint64_t deadline_ms;
  };
  static void onAnswer(uv_async_t* async);
  static void onTick(uv_timer_t* timer);

  uv_loop_t* loop_;
  ReloadAccess access_;
  uint32_t timeout_ms_;
  std::shared_ptr<Mailbox> mailbox_;
  UvHandle<uv_async_t> async_;
  UvHandle<uv_timer_t> tick_;
  std::map<uint64_t, Waiter> waiting_;
  uint64_t next_id_ = 1;
  bool closed_ = false;
};

}  // namespace evh::ops
