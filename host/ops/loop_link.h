// How the ops thread gets what only the loop thread may compute: the stats
// registry's computed gauges (Server::scrape: streams' backlogs asked of
// Redis, then Registry::computeGauges, whose callbacks read loop-owned
// state) and Server::readiness(). The ops thread posts one scrape to the
// loop; the loop answers, when it has computed them, through a uv_async on
// the ops thread's own loop; the ops thread then copies every series' value
// itself (LoopAccess::collect) -- the loop never walks the series. A
// scrape never has the loop wait for the ops thread's copy (stats.h: the
// copy runs without the registry's mutex).
//
// Bounded work for the loop, whatever the clients do:
//   - only what is asked: a request names the parts it needs (endpoints.h's
//     Parts), and the loop computes those, and those asked for within the
//     last second -- a lone /readyz probe never costs a collect, a lone
//     /metrics scrape never builds /status's JSON, and a flood of mixed
//     requests is served by one scrape per `reuse_ms`;
//   - coalesced: one scrape is outstanding at a time, computing every part
//     the requests waiting when the loop starts it need, and it serves every
//     request it has the parts for (the others ask again at once);
//   - reused: a snapshot younger than `reuse_ms` with the parts asked for
//     answers at once, so a flood of requests costs the loop one scrape per
//     `reuse_ms` and endpoint at most;
//   - a loop that does not answer within `timeout_ms` (stalled in a handler,
//     say) fails the waiting requests -- and, until it answers, new ones at
//     once -- with "not answering", while the scrape stays queued: its
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
  using Reply = std::function<void(LoopSnapshot)>;
  // Queues `fn` to run once on the loop thread (Poster::post); false when
  // the loop takes no more (evhost is stopping). THREAD: any.
  std::function<bool(std::function<void()>)> post;
  // Takes a snapshot with (at least) `parts` and calls `reply` with it,
  // once, on the loop thread -- at once or later (Server::scrape waits up to
  // 0.5 s for Redis) -- or never, if what it waits for goes away (the
  // timeout covers that). THREAD: loop.
  std::function<void(Parts parts, Reply reply)> scrape;
  // Every series (Registry::collect), called on the ops thread once the loop
  // has answered a scrape with kFamilies and without families of its own:
  // the loop computes what only it may read (the computed gauges), and the
  // copying of every value is left to the ops thread. THREAD: ops.
  std::function<Collection()> collect;
  // POST /reload (reload_link.h): reloads and calls `done` with the outcome
  // once, on the loop thread. Unset: /reload is not served (404).
  // THREAD: loop.
  std::function<void(ReloadOutcome done)> reload;
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
  // (before its thread starts, or on it). `scrape_seconds` is observed on the
  // ops thread, once per answered scrape: from asking the loop to its
  // answer. Throws std::runtime_error if a handle cannot be made.
  LoopLink(uv_loop_t* ops_loop, LoopAccess access, Options options, Histogram scrape_seconds);
  ~LoopLink();  // close()
  LoopLink(const LoopLink&) = delete;
  LoopLink& operator=(const LoopLink&) = delete;

  // Answers `done` now (a fresh snapshot with `parts`, or the loop known not
  // to be answering) or once the loop answers or times out. THREAD: ops.
  void get(Parts parts, Done done);

  // Every request waiting gets "evhost is stopping"; an answer arriving
  // later is dropped, and a scrape still queued on the loop is not even
  // started (nor is this object touched); the handles are closed (run the
  // ops loop to free them). THREAD: ops.
  void close();

  // Scrapes asked of the loop so far (for tests).
  uint64_t scrapesAsked() const noexcept { return asked_; }

 private:
  struct Mailbox;
  static void onAnswer(uv_async_t* async);
  static void onTimeout(uv_timer_t* timer);
  struct Waiter {
    Parts parts;
    Done done;
  };
  void ask(Parts parts);
  void answerAll(const LoopAnswer& answer);
  std::string notAnswering() const;

  uv_loop_t* loop_;
  LoopAccess access_;
  Options options_;
  Histogram scrape_seconds_;
  std::shared_ptr<Mailbox> mailbox_;  // shared with the scrapes posted to the loop
  UvHandle<uv_async_t> answered_;     // the loop's wake-up call: an answer is in the mailbox
  UvHandle<uv_timer_t> timer_;        // the outstanding scrape's deadline
  std::vector<Waiter> waiting_;
  std::shared_ptr<const LoopSnapshot> last_;
  static constexpr unsigned kPartBits = 4;  // endpoints.h's parts
  uint64_t requested_at_[kPartBits] = {};   // uv_now of the last request for each part (0: never)
  uint64_t last_at_ = 0;                    // uv_now of the ops loop when last_ arrived
  bool asking_ = false;                     // a scrape is outstanding on the loop
  uint64_t asked_at_ = 0;                   // ... since then (uv_now)
  uint64_t asked_ns_ = 0;                   // ... (uv_hrtime)
  bool stalled_ = false;                    // ... and has been for timeout_ms
  bool closed_ = false;
  uint64_t asked_ = 0;
};

}  // namespace evh::ops
