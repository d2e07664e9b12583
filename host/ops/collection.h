// What a collection of the stats registry is, apart from the registry: the
// series' shape (names, help, labels: what changes only when something
// registers or goes) and their values (what changes all the time), kept
// apart so that a scrape copies only numbers.
//
// A scrape of 100 plugins x 20 event types is some 16,000 samples: copying
// each series' labels at every scrape cost about 3 ms of allocation (on the
// loop, then; the ops thread collects now, the loop computes only the
// computed gauges). A Collection instead shares the registry's
// current Shape -- built once after each registration or removal, immutable,
// its labels already rendered for the exposition -- and carries one flat
// array of values. See docs/metrics.md#scraping-evhost.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace evh::ops {

// (name, value) pairs. Sorted by name at registration: {a, b} and {b, a}
// are the same series.
using Label = std::pair<std::string, std::string>;
using Labels = std::vector<Label>;

// Info: a family of constant-1 series whose labels carry the information
// (evhost_build_info). Only the exporter makes one; nothing registers it.
enum class Kind { Counter, Gauge, Histogram, Info };
const char* kindName(Kind kind) noexcept;  // "counter", "gauge", "histogram", "info"

struct SeriesShape {
  Labels labels;           // sorted by name
  std::string label_text;  // the labels as the exposition writes them: a="x",b="y" (escaped); "" without
  size_t slot = 0;         // its first value, counted from its family's first
};

struct FamilyShape {
  std::string name;
  std::string help;
  Kind kind = Kind::Counter;
  std::vector<double> bounds;  // histogram: upper bounds in the exported unit
  std::vector<SeriesShape> series;
  size_t slots = 0;  // values of all its series
  // What the exposition writes the same way at every scrape, rendered once
  // with the shape (renderShape, exposition.h), per format (index: Format):
  // the HELP and TYPE lines, the samples' name, a histogram's le="..." per
  // bucket. Empty: rendered at each scrape instead.
  std::string meta[2];
  std::string sample_name[2];
  std::vector<std::string> les[2];
};

// How many values a series of `family` takes: a counter, gauge or info one;
// a histogram one per bucket (bounds, then +Inf) and one for the sum.
inline size_t slotsOf(const FamilyShape& family) noexcept {
  return family.kind == Kind::Histogram ? family.bounds.size() + 2 : 1;
}

// Every family with at least one series, by name; each family's series by
// labels. Immutable once built: any thread may read it. A family's shape is
// shared by every Shape built while it did not change: a registration
// rebuilds its own family's, not the others'. THREAD: any.
struct Shape {
  struct Entry {
    std::shared_ptr<const FamilyShape> family;
    size_t base = 0;  // its first value in Collection::values
  };
  std::vector<Entry> families;
  size_t slots = 0;  // values in a collection of this shape
};

struct Value {
  double value = 0;     // a counter or gauge; a histogram's sum (in the exported unit)
  int64_t exact = 0;    // a counter or gauge written through a handle: its integer (a double loses precision
                        // beyond 2^53); a histogram bucket: the cumulative count up to its bound
  bool present = true;  // false: a computed gauge whose callback threw, left out of this collection
};

struct Collection {
  std::shared_ptr<const Shape> shape;
  std::vector<Value> values;  // shape->slots of them, in the shape's order
};

// The same as whole samples: what tests and small producers (the ops
// thread's process series, build info) read and write.
struct SeriesSample {
  Labels labels;                  // sorted by name
  double value = 0;               // counter, gauge
  int64_t exact = 0;              // counter, gauge written through a handle: the integer
  std::vector<uint64_t> buckets;  // histogram: cumulative counts per bound, then +Inf
  double sum = 0;                 // histogram, in the exported unit
  uint64_t count = 0;             // histogram: == buckets.back()
};

struct FamilySample {
  std::string name;
  std::string help;
  Kind kind = Kind::Counter;
  std::vector<double> bounds;  // histogram: upper bounds in the exported unit
  std::vector<SeriesSample> series;
};

// A collection's samples, series left out where a value is not present.
std::vector<FamilySample> samplesOf(const Collection& collection);
// A collection holding `families` (each family once; histograms with
// bounds.size() + 1 buckets).
Collection collectionOf(const std::vector<FamilySample>& families);

}  // namespace evh::ops
