// The loop's part of a metrics scrape: the registry's computed gauges (they
// read loop-owned state), computed once the figures that are Redis's to tell
// (a stream group's pending count and lag) are refreshed. The ops thread
// then collects every series itself (Registry::collect), so the loop never
// walks them. Refreshes run for at most `budget_ms`, so that a slow or
// paused Redis delays a scrape by that much and never fails it (those
// gauges then show what they last knew). Requests that arrive while a
// refresh runs share it: a flood of scrapes costs Redis one round of
// commands per budget at most.
#pragma once

#include "loop/uv_handle.h"
#include "ops/stats.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace evh::app {

class Scraper {
 public:
  // Called once the computed gauges are computed: collect now.
  using Done = std::function<void()>;
  // Refreshes some gauges, then calls its argument once -- or never, if
  // what it refreshes goes away first (the budget covers that).
  using Refresh = std::function<void(std::function<void()>)>;

  // Registers evhost_ops_collect_cpu_seconds in `stats`.
  Scraper(uv_loop_t* loop, ops::Registry& stats, uint64_t budget_ms = 500);
  ~Scraper();
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;

  // Adds a refresh run at every scrape. THREAD: loop.
  void addRefresh(Refresh refresh);
  // Forgets every refresh (before what they refresh is destroyed): scrapes
  // from now on collect at once. THREAD: loop.
  void clearRefreshes();
  // Computes the registry's computed gauges and calls `done`, on the loop
  // thread, once the refreshes have answered or the budget is spent.
  // THREAD: loop.
  void scrape(Done done);
  // Scrapes so far (each answered once, whatever its waiters). For tests.
  uint64_t rounds() const noexcept { return rounds_; }

 private:
  void finish();

  const ops::Registry& stats_;
  ops::Scope scope_;            // before the handles on its series
  ops::Histogram collect_cpu_;  // the loop thread's CPU time per scrape
  uint64_t budget_ms_;
  UvHandle<uv_timer_t> budget_;
  std::vector<Refresh> refreshes_;
  std::vector<Done> waiting_;
  uint64_t round_ = 0;      // the refresh round running; answers of older rounds are ignored
  size_t outstanding_ = 0;  // refreshes of this round not answered yet
  uint64_t rounds_ = 0;
  // Refreshes may answer after this scraper is gone (a reply in flight at
  // shutdown): their callbacks check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evh::app
