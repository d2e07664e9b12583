// The stats registry: counters, gauges and histograms that every subsystem
// registers once, when it is built, and then writes through a handle.
//
// A series is a metric name (Prometheus conventions: snake_case, counters
// end in _total, units in the name: _seconds, _bytes) and a small set of
// labels (channel, plugin, group, reason, ...). Label values are bounded by
// construction: they come from the configuration (channel and plugin
// instance names, stream keys and groups) or from fixed reason codes, never
// from an event's content -- so the number of series is known once the
// config is loaded, whatever Redis sends.
//
// The hot path: registration (a lock and a map lookup) happens once; the
// handle it returns points straight at the series' cell, so writing is one
// relaxed atomic operation -- no lookup, no allocation, no lock:
//   - Counter, Gauge, Histogram: written by ONE thread, the series' owner
//     (the loop thread for everything the loop counts). A plain relaxed load
//     and store, no read-modify-write: as cheap as a non-atomic increment,
//     yet any thread may read it without a data race.
//   - SharedCounter, SharedGauge, SharedHistogram: written by any thread
//     (worker pool threads, plugins' own threads). A relaxed fetch_add. Not
//     per-thread shards: the writers are few (the `workers` threads and a
//     plugin's own), each write sits next to a plugin call that costs
//     microseconds, and every cell has a cache line to itself (no false
//     sharing between series), so contention costs little -- while shards
//     would need a per-thread slot lookup on every write and a thread
//     registry to sum them.
// Registering the same name and labels twice returns the same series, and
// it lives until its last registration goes. Both must use the same writer
// discipline (the registry refuses to mix them).
//
// Reading, in two steps (a scrape must not cost the loop a walk over every
// series: about 1 ms for 100 plugins x 20 event types; see
// docs/benchmarks/issue13-scrape-p99.md, "Issue 13: a scrape's cost, within runs"):
//   - computeGauges() runs every computed gauge's callback (they read state
//     only their thread may read: the loop's) and stores the answers;
//   - collect() copies every value -- the cells with relaxed loads, computed
//     gauges as last computed -- into a Collection that shares the
//     registry's Shape (names and labels, rebuilt only after a registration
//     or removal; see collection.h). Any thread: evhost's ops thread.
// Each value is one that was written, but values are not taken at one
// instant (a histogram's buckets and sum may be one observation apart). A
// histogram's count is the sum of its buckets as read, so count == the +Inf
// bucket always.
//
// collect() holds the mutex only to take the current snapshot -- the shape
// and the series it lists, shared and immutable, rebuilt under the mutex
// after a registration or removal -- and copies the values without it: a
// registration on the loop never waits for the ops thread's copy (about
// 40 us for one plugin, 1 ms for 100 plugins x 20 event types).
//
// Lifetime: series are registered through a Scope, which removes its
// registrations when it is destroyed (a subsystem retired by a reload). A
// removed series leaves the registry at once (the next snapshot has it no
// more), but its memory lives as long as a snapshot taken before holds it,
// so a collect in progress reads it safely (its last values, once more).
// Writers never take the mutex. A handle must not be used after its Scope
// is gone (it points into the removed series).
#pragma once

#include "ops/collection.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evh::ops {

// Who writes a series: its owner thread only (load + store), or any thread
// (fetch_add).
enum class Writer { Owner, Any };

// A registration the registry refuses: an invalid name or label, the same
// name with another kind, help, label names or buckets, the same series with
// another writer. A bug in the registering code, hence a logic_error.
class StatsError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Histogram bucket bounds: upper bounds ("le"), strictly increasing, in the
// integer unit the owner observes (e.g. microseconds: an integer add on the
// hot path, no floating point); `divisor` converts that unit into the
// exported one (1e6: microseconds observed, seconds exported -- a division
// of exact integers, so 100 us is exported as exactly 0.0001). +Inf is
// implicit.
struct Buckets {
  std::vector<int64_t> bounds;
  double divisor = 1.0;
};

namespace detail {

// One value, alone on its cache line.
struct alignas(64) Cell {
  std::atomic<int64_t> value{0};
};

struct HistogramCells {
  explicit HistogramCells(std::vector<int64_t> b) : bounds(std::move(b)), buckets(bounds.size() + 1) {}
  std::vector<int64_t> bounds;
  std::vector<Cell> buckets;  // buckets[i]: observations <= bounds[i] and > bounds[i-1]; last: +Inf
  Cell sum;
};

// Where default-constructed handles write: nothing reads it.
Cell& sinkCell() noexcept;
HistogramCells& sinkHistogram() noexcept;

template <Writer W>
inline void bump(std::atomic<int64_t>& a, int64_t n) noexcept {
  if constexpr (W == Writer::Owner) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  } else {
    a.fetch_add(n, std::memory_order_relaxed);
  }
}

}  // namespace detail

// Handles: a pointer to the series' cell, cheap to copy. A default-constructed
// one writes to a sink (so an optional series needs no null check).

template <Writer W>
class BasicCounter {
 public:
  BasicCounter() noexcept : cell_(&detail::sinkCell()) {}
  // n >= 0. THREAD: the owner (Counter), any (SharedCounter).
  void inc(int64_t n = 1) const noexcept { detail::bump<W>(cell_->value, n); }
  int64_t value() const noexcept { return cell_->value.load(std::memory_order_relaxed); }

 private:
  friend class Scope;
  explicit BasicCounter(detail::Cell* cell) noexcept : cell_(cell) {}
  detail::Cell* cell_;
};

template <Writer W>
class BasicGauge {
 public:
  BasicGauge() noexcept : cell_(&detail::sinkCell()) {}
  // THREAD: the owner (Gauge), any (SharedGauge).
  void set(int64_t v) const noexcept { cell_->value.store(v, std::memory_order_relaxed); }
  void add(int64_t d) const noexcept { detail::bump<W>(cell_->value, d); }
  int64_t value() const noexcept { return cell_->value.load(std::memory_order_relaxed); }

 private:
  friend class Scope;
  explicit BasicGauge(detail::Cell* cell) noexcept : cell_(cell) {}
  detail::Cell* cell_;
};

template <Writer W>
class BasicHistogram {
 public:
  BasicHistogram() noexcept : cells_(&detail::sinkHistogram()) {}
  // `v` in the unit of the registration's Buckets. A linear scan: bucket
  // lists are short (about 10), and a scan of them beats a binary search.
  // THREAD: the owner (Histogram), any (SharedHistogram).
  void observe(int64_t v) const noexcept {
    const std::vector<int64_t>& b = cells_->bounds;
    size_t i = 0;
    while (i < b.size() && v > b[i]) {
      ++i;
    }
    detail::bump<W>(cells_->buckets[i].value, 1);
    detail::bump<W>(cells_->sum.value, v);
  }

 private:
  friend class Scope;
  explicit BasicHistogram(detail::HistogramCells* cells) noexcept : cells_(cells) {}
  detail::HistogramCells* cells_;
};

using Counter = BasicCounter<Writer::Owner>;
using SharedCounter = BasicCounter<Writer::Any>;
using Gauge = BasicGauge<Writer::Owner>;
using SharedGauge = BasicGauge<Writer::Any>;
using Histogram = BasicHistogram<Writer::Owner>;
using SharedHistogram = BasicHistogram<Writer::Any>;

class Scope;

class Registry {
 public:
  Registry();
  ~Registry();  // every Scope must be gone first
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Runs every computed gauge's callback and keeps its answer for the
  // collections that follow (a callback that throws leaves its series out
  // of them until it answers again). THREAD: the one computed gauges are
  // written for -- evhost's loop (see Scope::computedGauge).
  void computeGauges() const;
  // Every family with at least one series, by name; its series by labels;
  // a computed gauge as computeGauges() last left it (left out before its
  // first computation). Copies numbers only, except the first time after a
  // registration or a removal, which builds a new Shape. THREAD: any.
  Collection collect() const;
  // computeGauges(), then collect(), as whole samples (tests; THREAD: as
  // computeGauges()).
  std::vector<FamilySample> samples() const {
    computeGauges();
    return samplesOf(collect());
  }

 private:
  friend class Scope;
  struct Series;
  struct Family;
  mutable std::mutex mutex_;  // registration, removal, taking a snapshot; never a write
  std::map<std::string, Family, std::less<>> families_;
  // What collect() reads: the shape, and its series in the shape's order
  // (each kept alive by the snapshot). Immutable once built; rebuilt when
  // `changed_`.
  struct Slot {
    std::shared_ptr<const Series> series;
    double divisor;  // histogram: to the exported unit
  };
  struct Snapshot {
    std::shared_ptr<const Shape> shape;
    std::vector<Slot> slots;
  };
  void reshape() const;
  static std::shared_ptr<const FamilyShape> shapeOf(const std::string& name, const Family& family);
  mutable bool changed_ = true;
  mutable std::shared_ptr<const Snapshot> snapshot_;
  mutable std::vector<Series*> computed_;  // the computed gauges among them (under the mutex)
};

// A subsystem's registrations: every series registered through it is
// released when it is destroyed (the series goes when its last registration
// does). As a member, declare it before whatever may still write its series
// while being destroyed (so that it outlives them), and a computed gauge's
// callback must not outlive what it reads: clear() first in the destructor.
// Registration THREAD: any (the registry's mutex).
class Scope {
 public:
  // `labels`: added to every series registered through this scope (e.g.
  // {{"plugin", name}}).
  explicit Scope(Registry& registry, Labels labels = {});
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  // Throws StatsError on a refused registration (see StatsError).
  Counter counter(std::string_view name, std::string_view help, Labels labels = {});
  SharedCounter sharedCounter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge gauge(std::string_view name, std::string_view help, Labels labels = {});
  SharedGauge sharedGauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram histogram(std::string_view name, std::string_view help, const Buckets& buckets, Labels labels = {});
  SharedHistogram sharedHistogram(std::string_view name, std::string_view help, const Buckets& buckets,
                                  Labels labels = {});
  // A gauge whose value `read` computes when asked. THREAD: `read` runs on
  // the thread calling Registry::computeGauges(), with the registry's mutex
  // held: it must not block nor register anything. evhost computes them on
  // the loop thread (once per scrape, before the ops thread collects), so
  // `read` may read loop-owned state; state other threads write must be
  // read through atomics. Registered twice (a reload's
  // successor before its predecessor is gone), the latest registration's
  // callback is the one read.
  void computedGauge(std::string_view name, std::string_view help, std::function<double()> read, Labels labels = {});

  // Releases every registration now (the destructor does it too).
  void clear();
  Registry& registry() const noexcept { return registry_; }

 private:
  Registry::Series& add(std::string_view name, std::string_view help, Kind kind, Writer writer, const Buckets* buckets,
                        Labels labels, std::function<double()> computed);

  Registry& registry_;
  Labels labels_;
  std::vector<std::pair<Registry::Family*, Registry::Series*>> held_;  // under registry_.mutex_
};

}  // namespace evh::ops
