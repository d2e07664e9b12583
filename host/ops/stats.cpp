// The stats registry: registration, removal and collection (the write path
// is inline in stats.h).
#include "ops/stats.h"

#include "ops/exposition.h"

#include <algorithm>
#include <cstring>

namespace evh::ops {

struct Registry::Series {
  Labels labels;
  Writer writer = Writer::Owner;
  bool computed = false;
  size_t refs = 0;
  detail::Cell cell;                                  // counter, gauge; computed gauge: its last value's bits
  std::atomic<bool> present{false};                   // computed gauge: its callback answered last time
  std::unique_ptr<detail::HistogramCells> histogram;  // histogram
  // Computed gauge: one callback per registration; the latest is read.
  std::vector<std::pair<const Scope*, std::function<double()>>> reads;
};

struct Registry::Family {
  std::string name;
  std::string help;
  Kind kind = Kind::Counter;
  std::vector<std::string> label_names;
  Buckets buckets;
  // Shared with the snapshots that list it (see stats.h, Lifetime).
  std::map<Labels, std::shared_ptr<Series>> series;
  // Its part of the registry's shape; null once a series came or went.
  mutable std::shared_ptr<const FamilyShape> shape;
};

namespace {

bool nameChar(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

bool validName(std::string_view s, bool colon) {
  if (s.empty()) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (!nameChar(s[i], i == 0, colon)) {
      return false;
    }
  }
  return true;
}

[[noreturn]] void refuse(std::string_view name, const std::string& why) {
  throw StatsError("metric " + std::string(name) + ": " + why);
}

// The scope's labels and the series' own, sorted by name, checked.
Labels mergeLabels(std::string_view name, Kind kind, const Labels& scope, Labels own) {
  own.insert(own.end(), scope.begin(), scope.end());
  std::sort(own.begin(), own.end(), [](const Label& a, const Label& b) { return a.first < b.first; });
  for (size_t i = 0; i < own.size(); ++i) {
    const std::string& n = own[i].first;
    if (!validName(n, false) || n.rfind("__", 0) == 0) {
      refuse(name, "invalid label name \"" + n + "\"");
    }
    if (kind == Kind::Histogram && n == "le") {
      refuse(name, "a histogram cannot have a label \"le\"");
    }
    if (i > 0 && own[i - 1].first == n) {
      refuse(name, "label \"" + n + "\" given twice");
    }
  }
  return own;
}

std::vector<std::string> labelNames(const Labels& labels) {
  std::vector<std::string> names;
  names.reserve(labels.size());
  for (const auto& l : labels) {
    names.push_back(l.first);
  }
  return names;
}

}  // namespace

const char* kindName(Kind kind) noexcept {
  switch (kind) {
    case Kind::Counter:
      return "counter";
    case Kind::Gauge:
      return "gauge";
    case Kind::Histogram:
      return "histogram";
    case Kind::Info:
      return "info";
  }
  return "untyped";
}

namespace detail {

Cell& sinkCell() noexcept {
  static Cell sink;
  return sink;
}

HistogramCells& sinkHistogram() noexcept {
  static HistogramCells sink({});
  return sink;
}

}  // namespace detail

Registry::Registry() = default;
Registry::~Registry() = default;

std::shared_ptr<const FamilyShape> Registry::shapeOf(const std::string& name, const Family& family) {
  auto fs = std::make_shared<FamilyShape>();
  fs->name = name;
  fs->help = family.help;
  fs->kind = family.kind;
  for (int64_t b : family.buckets.bounds) {
    fs->bounds.push_back(static_cast<double>(b) / family.buckets.divisor);
  }
  fs->series.reserve(family.series.size());
  for (const auto& entry : family.series) {
    fs->series.push_back(SeriesShape{entry.first, labelText(entry.first), fs->slots});
    fs->slots += slotsOf(*fs);
  }
  renderShape(*fs);
  return fs;
}

void Registry::reshape() const {
  auto shape = std::make_shared<Shape>();
  shape->families.reserve(families_.size());
  auto snapshot = std::make_shared<Snapshot>();
  computed_.clear();
  size_t slot = 0;
  for (const auto& [name, family] : families_) {
    if (family.series.empty()) {
      continue;  // left by a registration that failed half way
    }
    if (!family.shape) {
      family.shape = shapeOf(name, family);
    }
    shape->families.push_back(Shape::Entry{family.shape, slot});
    slot += family.shape->slots;
    for (const auto& entry : family.series) {
      snapshot->slots.push_back(Slot{entry.second, family.buckets.divisor});
      if (entry.second->computed) {
        computed_.push_back(entry.second.get());
      }
    }
  }
  shape->slots = slot;
  snapshot->shape = std::move(shape);
  snapshot_ = std::move(snapshot);
  changed_ = false;
}

void Registry::computeGauges() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (changed_) {
    reshape();
  }
  for (Series* s : computed_) {
    try {
      const double v = s->reads.back().second();
      int64_t bits = 0;
      static_assert(sizeof bits == sizeof v);
      std::memcpy(&bits, &v, sizeof bits);
      s->cell.value.store(bits, std::memory_order_relaxed);
      s->present.store(true, std::memory_order_release);
    } catch (...) {
      s->present.store(false, std::memory_order_release);  // left out of collections until it answers again
    }
  }
}

Collection Registry::collect() const {
  std::shared_ptr<const Snapshot> snapshot;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (changed_) {
      reshape();
    }
    snapshot = snapshot_;
  }
  // The copy, without the mutex: the snapshot keeps its series alive.
  Collection out{snapshot->shape, std::vector<Value>(snapshot->shape->slots)};
  Value* v = out.values.data();
  for (const Slot& slot : snapshot->slots) {
    const Series& s = *slot.series;
    if (s.histogram) {
      int64_t running = 0;
      for (const auto& b : s.histogram->buckets) {
        running += b.value.load(std::memory_order_relaxed);
        (v++)->exact = running;
      }
      (v++)->value = static_cast<double>(s.histogram->sum.value.load(std::memory_order_relaxed)) / slot.divisor;
    } else if (s.computed) {
      v->present = s.present.load(std::memory_order_acquire);
      const int64_t bits = s.cell.value.load(std::memory_order_relaxed);
      std::memcpy(&v->value, &bits, sizeof bits);
      ++v;
    } else {
      v->exact = s.cell.value.load(std::memory_order_relaxed);
      v->value = static_cast<double>(v->exact);
      ++v;
    }
  }
  return out;
}

Scope::Scope(Registry& registry, Labels labels) : registry_(registry), labels_(std::move(labels)) {}

Scope::~Scope() { clear(); }

void Scope::clear() {
  std::lock_guard<std::mutex> lock(registry_.mutex_);
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) {
    Registry::Family* family = it->first;
    Registry::Series* series = it->second;
    if (series->computed) {
      auto& reads = series->reads;
      for (auto r = reads.rbegin(); r != reads.rend(); ++r) {
        if (r->first == this) {
          reads.erase(std::next(r).base());
          break;
        }
      }
    }
    if (--series->refs > 0) {
      continue;
    }
    registry_.changed_ = true;
    family->shape.reset();
    family->series.erase(family->series.find(series->labels));
    if (family->series.empty()) {
      registry_.families_.erase(registry_.families_.find(family->name));
    }
  }
  held_.clear();
}

Registry::Series& Scope::add(std::string_view name, std::string_view help, Kind kind, Writer writer,
                             const Buckets* buckets, Labels labels, std::function<double()> computed) {
  if (!validName(name, true)) {
    refuse(name, "invalid name (want [a-zA-Z_:][a-zA-Z0-9_:]*)");
  }
  if (buckets != nullptr) {
    for (size_t i = 1; i < buckets->bounds.size(); ++i) {
      if (buckets->bounds[i] <= buckets->bounds[i - 1]) {
        refuse(name, "bucket bounds must be strictly increasing");
      }
    }
  }
  Labels all = mergeLabels(name, kind, labels_, std::move(labels));
  std::lock_guard<std::mutex> lock(registry_.mutex_);
  auto fit = registry_.families_.find(name);
  if (fit == registry_.families_.end()) {
    Registry::Family f;
    f.name.assign(name);
    f.help.assign(help);
    f.kind = kind;
    f.label_names = labelNames(all);
    if (buckets != nullptr) {
      f.buckets = *buckets;
    }
    fit = registry_.families_.emplace(std::string(name), std::move(f)).first;
  } else {
    const Registry::Family& f = fit->second;
    if (f.kind != kind) {
      refuse(name, std::string("registered as a ") + kindName(f.kind) + ", now as a " + kindName(kind));
    }
    if (f.help != help) {
      refuse(name, "registered with the help \"" + f.help + "\", now with \"" + std::string(help) + "\"");
    }
    if (f.label_names != labelNames(all)) {
      refuse(name, "registered with other label names");
    }
    if (buckets != nullptr && (f.buckets.bounds != buckets->bounds || f.buckets.divisor != buckets->divisor)) {
      refuse(name, "registered with other buckets");
    }
  }
  Registry::Family& family = fit->second;
  auto sit = family.series.find(all);
  const bool is_computed = static_cast<bool>(computed);
  if (sit == family.series.end()) {
    auto s = std::make_shared<Registry::Series>();
    s->labels = all;
    s->writer = writer;
    s->computed = is_computed;
    if (buckets != nullptr) {
      s->histogram = std::make_unique<detail::HistogramCells>(buckets->bounds);
    }
    sit = family.series.emplace(std::move(all), std::move(s)).first;
    registry_.changed_ = true;
    family.shape.reset();
  } else if (sit->second->writer != writer || sit->second->computed != is_computed) {
    refuse(name, "the same series registered by writers of another kind (owner thread / any thread / computed)");
  }
  Registry::Series& series = *sit->second;
  if (held_.size() == held_.capacity()) {
    held_.reserve(held_.size() * 2 + 8);  // room first: nothing below may throw once the series counts this hold
  }
  if (is_computed) {
    series.reads.emplace_back(this, std::move(computed));
  }
  ++series.refs;
  held_.emplace_back(&family, &series);
  return series;
}

Counter Scope::counter(std::string_view name, std::string_view help, Labels labels) {
  return Counter(&add(name, help, Kind::Counter, Writer::Owner, nullptr, std::move(labels), nullptr).cell);
}

SharedCounter Scope::sharedCounter(std::string_view name, std::string_view help, Labels labels) {
  return SharedCounter(&add(name, help, Kind::Counter, Writer::Any, nullptr, std::move(labels), nullptr).cell);
}

Gauge Scope::gauge(std::string_view name, std::string_view help, Labels labels) {
  return Gauge(&add(name, help, Kind::Gauge, Writer::Owner, nullptr, std::move(labels), nullptr).cell);
}

SharedGauge Scope::sharedGauge(std::string_view name, std::string_view help, Labels labels) {
  return SharedGauge(&add(name, help, Kind::Gauge, Writer::Any, nullptr, std::move(labels), nullptr).cell);
}

Histogram Scope::histogram(std::string_view name, std::string_view help, const Buckets& buckets, Labels labels) {
  return Histogram(
      add(name, help, Kind::Histogram, Writer::Owner, &buckets, std::move(labels), nullptr).histogram.get());
}

SharedHistogram Scope::sharedHistogram(std::string_view name, std::string_view help, const Buckets& buckets,
                                       Labels labels) {
  return SharedHistogram(
      add(name, help, Kind::Histogram, Writer::Any, &buckets, std::move(labels), nullptr).histogram.get());
}

void Scope::computedGauge(std::string_view name, std::string_view help, std::function<double()> read, Labels labels) {
  if (!read) {
    refuse(name, "a computed gauge needs a callback");
  }
  add(name, help, Kind::Gauge, Writer::Owner, nullptr, std::move(labels), std::move(read));
}

}  // namespace evh::ops
