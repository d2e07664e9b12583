// Blocking lanes: runner jobs on the worker pool, stuck calls and refusals.
#include "dispatch/lane.h"

#include "dispatch/attempt.h"
#include "dispatch/worker_pool.h"
#include "loop/current_call.h"
#include "plugin/instance.h"

#include <spdlog/spdlog.h>
#include <uv.h>

namespace evh::dispatch {
namespace {

uint64_t monoMs() { return uv_hrtime() / 1000000; }

}  // namespace

Lane::Lane(plugin::Instance& plugin, PluginCounters& counters, uint32_t limit, uint32_t timeout_ms, WorkerPool& pool,
           Poster& poster, LaneEvents& events, std::shared_ptr<std::atomic<bool>> alive)
    : plugin_(plugin),
      counters_(counters),
      limit_(limit),
      timeout_ms_(timeout_ms),
      pool_(pool),
      poster_(poster),
      events_(events),
      alive_(std::move(alive)) {}

void Lane::enqueue(Attempt* a) {
  ++running_;
  bool start_runner = false;
  {
    std::lock_guard<std::mutex> lock(queue_->mutex);
    queue_->queue.push_back(a);
    if (queue_->runners < limit_) {
      ++queue_->runners;
      start_runner = true;
    }
  }
  if (start_runner) {
    submitRunner();
  }
}

// One runner job: takes the lane's calls one after the other, posting each
// outcome to the loop, until the lane is empty -- or after kTurn calls, when
// it queues itself again behind other plugins' jobs (fairness).
void Lane::submitRunner() {
  pool_.submit([this, q = queue_, token = alive_, on_worker = on_worker_] {
    constexpr int kTurn = 64;
    for (int turn = 0;; ++turn) {
      Attempt* a = nullptr;
      {
        std::lock_guard<std::mutex> lock(q->mutex);
        if (q->queue.empty() || !token->load()) {
          --q->runners;
          return;
        }
        if (turn == kTurn) {
          break;  // the lane keeps this runner: submitted again below
        }
        a = q->queue.front();
        q->queue.pop_front();
        a->started_ms = monoMs();
      }
      // Count first, then look at the token: abandon() clears the token and
      // then reads the count, so either it sees this call as running or this
      // call sees the token cleared and never enters the plugin. An attempt a
      // timeout gave up on before it started is not started either.
      on_worker->fetch_add(1);
      evh_status s = EVH_RETRY;
      if (token->load() && !a->given_up.load()) {
        // Named by the fatal-signal handler, should the plugin crash.
        const CallSite site{plugin_.name(), "handle", &a->view, plugin_.library().desc().name};
        ThreadCallScope scope(site);
        s = a->callPlugin();
      }
      if (a->workerReturned()) {
        pool_.unmarkStuck();  // this thread is back: the replacement may go
      }
      on_worker->fetch_sub(1);
      if (!token->load()) {
        continue;  // the loop dropped it: leave at the top
      }
      poster_.post([this, a, s, token] {
        if (token->load()) {
          events_.returned(a, s);
        }
      });
    }
    submitRunner();
  });
}

void Lane::onReturned(Attempt* a) {
  --running_;
  if (a->stuck) {
    noteUnstuck(a);
  }
}

uint64_t Lane::startedMs(const Attempt* a) const {
  std::lock_guard<std::mutex> lock(queue_->mutex);
  return a->started_ms;
}

size_t Lane::queued() const {
  std::lock_guard<std::mutex> lock(queue_->mutex);
  return queue_->queue.size();
}

bool Lane::refusing() const { return stuck_ > 0 && (stuck_ >= limit_ || !pool_.canReplace()); }

std::string Lane::refusal() const {
  return "refused: " + std::to_string(stuck_) +
         " call(s) of this plugin are stuck in handle() past timeout_ms=" + std::to_string(timeout_ms_) +
         " (it may run " + std::to_string(limit_) + " at once)";
}

bool Lane::noteStuck(Attempt* a, uint64_t ran_ms) {
  bool replaced = false;
  if (!a->markStuck(pool_, replaced)) {
    return false;
  }
  ++stuck_;
  counters_.stuck.inc();
  if (replaced) {
    plugin_.logger().error(
        "worker thread stuck: handle() for eventId={} still running after {} ms (timeout_ms={}); started a "
        "replacement thread ({} stuck, at most {} replaced)",
        a->eventId(), ran_ms, timeout_ms_, pool_.stuck(), pool_.maxReplacements());
  } else {
    plugin_.logger().error(
        "worker thread stuck: handle() for eventId={} still running after {} ms (timeout_ms={}); no replacement: "
        "{} threads are stuck and at most {} are replaced, so the pool is short of threads until one returns",
        a->eventId(), ran_ms, timeout_ms_, pool_.stuck(), pool_.maxReplacements());
  }
  if (!refusing()) {
    return false;
  }
  if (!refusing_logged_) {
    refusing_logged_ = true;
    plugin_.logger().error(
        "{} call(s) stuck (it may run {} at once{}): its further calls are refused (error stuck) until one returns",
        stuck_, limit_, pool_.canReplace() ? "" : ", and the pool replaces no more");
  }
  // Calls queued behind stuck ones could only start when those return.
  return stuck_ >= limit_;
}

void Lane::noteUnstuck(Attempt* a) {
  --stuck_;
  plugin_.logger().warn("a stuck handle() returned after {} ms; its worker thread is back ({} call(s) still stuck)",
                        monoMs() - startedMs(a), stuck_);
  if (refusing_logged_ && !refusing()) {
    refusing_logged_ = false;
    plugin_.logger().info("calls are accepted again");
  }
}

std::deque<Attempt*> Lane::takeQueued() {
  std::deque<Attempt*> queued;
  {
    std::lock_guard<std::mutex> lock(queue_->mutex);
    queued.swap(queue_->queue);
  }
  running_ -= static_cast<uint32_t>(queued.size());
  return queued;
}

void Lane::clear() {
  std::lock_guard<std::mutex> lock(queue_->mutex);
  queue_->queue.clear();
}

}  // namespace evh::dispatch
