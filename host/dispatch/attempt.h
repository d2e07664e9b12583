// One handle() invocation -- the host side of an evh_call -- and its state
// machine:
//   Running -> Returned (handle answered PENDING) -> Done (complete)
//   Running -> CompletedEarly (complete ran before handle returned) -> Done
//   Running -> Done (handle answered OK, RETRY or REJECT)
// so that complete() may come from any thread at any time, and counts once.
// The plugin holds a generation-checked handle (plugin/call_table.h), never
// this object's address: once the call is over -- its outcome known, its
// timeout passed, or abandoned at the shutdown deadline -- the handle answers
// EVH_ERR_STATE, however late it comes back.
#pragma once

#include "common/recycled.h"
#include "dispatch/delivery.h"
#include "loop/poster.h"
#include "loop/uv_handle.h"
#include "plugin/call_table.h"

#include <evh/plugin.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace evh::dispatch {

class Attempt;
class WorkerPool;

// What an attempt reports to whoever runs it (the dispatcher), on the loop.
class AttemptEvents {
 public:
  // complete() gave the outcome of a call whose handle() had answered PENDING.
  virtual void completed(Attempt* a, evh_status status) = 0;
  // The attempt's timeout_ms timer fired.
  virtual void timedOut(Attempt* a) = 0;

 protected:
  ~AttemptEvents() = default;
};

class Attempt final : public plugin::CallTarget, public Recycled<Attempt> {
 public:
  enum State : int { Running, Returned, CompletedEarly, Done };

  // Opens the plugin's call. `dead_letter_channel` names the channel of a
  // dead-letter delivery's view; `idempotency_key` (may be empty) is what
  // the view's idempotency_key points at. THREAD: loop.
  Attempt(AttemptEvents& events, Poster& poster, std::shared_ptr<std::atomic<bool>> alive, Delivery* del,
          std::string_view dead_letter_channel, std::string idempotency_key);
  // Ends the call if it is still open and gives its slot back. THREAD: loop.
  ~Attempt();

  // The one place a plugin's handle() is called. A C++ plugin written
  // without the SDK wrapper may still throw through the C boundary: that
  // costs a retry, not the host. THREAD: loop, or the worker running it.
  evh_status callPlugin();

  // handle() has returned `status` (on the loop). True when the attempt is
  // finished, with its final outcome in `status`; false while it waits for
  // complete().
  bool afterReturn(evh_status& status);
  // The worker is back from handle(). Returns whether the call had been
  // marked stuck meanwhile. THREAD: the worker.
  bool workerReturned();
  // What a timeout finds.
  enum class GiveUp {
    Lost,     // the outcome is already on its way: the timeout loses
    Running,  // given up; handle() may still run on a worker, reading the view
    Idle,     // given up; handle() answered PENDING: nothing holds the attempt
  };
  GiveUp giveUp();
  // Marks a given-up call whose handle() still runs on its worker as
  // holding the thread; false when handle() has returned meanwhile.
  // `replaced` tells whether the pool started a replacement thread.
  bool markStuck(WorkerPool& pool, bool& replaced);
  // At the shutdown deadline, or for a call refused before it started: the
  // call ends here, and any outcome arriving later is dropped.
  void abandon(plugin::CallEnd why);
  std::string takeError();
  // Starts (or starts again) the timer that reports timedOut() after ms. THREAD: loop.
  void armTimeout(uv_loop_t* loop, uint64_t ms);

  evh_call* call() const noexcept { return call_; }
  std::string_view eventId() const noexcept;

  // plugin::CallTarget, with the slot's mutex held.
  void setError(std::string_view msg) override;
  evh_status complete(evh_status status, std::string_view msg) override;

  Delivery* delivery;  // nullptr once a timeout (or the deadline) gave up on this attempt
  PluginState* ps;
  // What `view` borrows from, held for as long as the attempt lives.
  InFlight* inflight;
  std::shared_ptr<const DeadLetterEntry> entry;
  std::atomic<bool> given_up{false};  // a worker must not start it any more
  // Monotonic ms when a worker took it off its lane, 0 while it waits
  // there: a timeout measures the plugin's running time, not the wait for a
  // worker. Guarded by the lane's mutex.
  uint64_t started_ms = 0;
  evh_event view{};
  UvHandle<uv_timer_t> timeout;
  bool stuck = false;       // timed out with handle() still running on its worker (slot mutex; loop reads)
  Attempt* prev = nullptr;  // the dispatcher's list of unfinished attempts
  Attempt* next = nullptr;

 private:
  AttemptEvents& events_;
  Poster& poster_;
  std::shared_ptr<std::atomic<bool>> alive_;  // drops completions after abandon() or the dispatcher's end
  std::string idempotency_key_;
  plugin::CallSlot* slot_ = nullptr;  // its mutex guards the fields below
  evh_call* call_ = nullptr;
  State state_ = Running;
  bool returned_ = false;  // handle() has returned on its worker
  evh_status completed_status_ = EVH_OK;
  std::string error_;
};

}  // namespace evh::dispatch
