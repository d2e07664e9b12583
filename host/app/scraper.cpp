#include "app/scraper.h"

#include <time.h>

#include <utility>

namespace evh::app {
namespace {

const ops::Buckets kCollectBuckets{{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000}, 1e6};

// The calling thread's CPU time: what a collect costs the loop whatever
// else runs on the machine (wall time would count the moments the loop was
// not scheduled).
int64_t threadCpuUs() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

Scraper::Scraper(uv_loop_t* loop, ops::Registry& stats, uint64_t budget_ms)
    : stats_(stats),
      scope_(stats),
      collect_cpu_(scope_.histogram("evhost_ops_collect_cpu_seconds",
                                    "CPU time the event loop's thread spent on its part of one scrape, the "
                                    "computed gauges (not the wait for Redis, nor copying the other series' "
                                    "values and rendering them, which the ops thread does)",
                                    kCollectBuckets)),
      budget_ms_(budget_ms),
      budget_(makeUvHandle<uv_timer_t>(loop, uv_timer_init)) {
  budget_->data = this;
}

Scraper::~Scraper() = default;

void Scraper::addRefresh(Refresh refresh) { refreshes_.push_back(std::move(refresh)); }

void Scraper::clearRefreshes() {
  refreshes_.clear();
  if (!waiting_.empty()) {
    finish();  // nothing left to wait for
  }
}

void Scraper::scrape(Done done) {
  waiting_.push_back(std::move(done));
  if (waiting_.size() > 1) {
    return;  // a round runs: its snapshot serves this request too
  }
  const uint64_t round = ++round_;
  outstanding_ = refreshes_.size() + 1;  // +1: the guard released below
  uv_timer_start(
      budget_.get(), [](uv_timer_t* t) { static_cast<Scraper*>(t->data)->finish(); }, budget_ms_, 0);
  std::weak_ptr<bool> alive = alive_;
  auto answered = [this, round, alive] {
    if (alive.expired()) {
      return;
    }
    if (round == round_ && !waiting_.empty() && --outstanding_ == 0) {
      finish();
    }
  };
  // A copy: a refresh may answer at once, and finish() may then run while
  // this loop goes on.
  const std::vector<Refresh> refreshes = refreshes_;
  for (const auto& refresh : refreshes) {
    refresh(answered);
  }
  answered();
}

void Scraper::finish() {
  uv_timer_stop(budget_.get());
  ++round_;  // late answers of this round are ignored
  ++rounds_;
  std::vector<Done> waiting = std::move(waiting_);
  waiting_.clear();
  const int64_t started = threadCpuUs();
  stats_.computeGauges();
  collect_cpu_.observe(threadCpuUs() - started);
  for (auto& done : waiting) {
    done();
  }
}

}  // namespace evh::app
