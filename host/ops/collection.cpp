// Between a Collection (shape + values) and whole samples.
#include "ops/collection.h"

#include "ops/exposition.h"

namespace evh::ops {

std::vector<FamilySample> samplesOf(const Collection& collection) {
  std::vector<FamilySample> out;
  if (!collection.shape) {
    return out;
  }
  out.reserve(collection.shape->families.size());
  for (const auto& [shared, base] : collection.shape->families) {
    const FamilyShape& family = *shared;
    FamilySample fs;
    fs.name = family.name;
    fs.help = family.help;
    fs.kind = family.kind;
    fs.bounds = family.bounds;
    fs.series.reserve(family.series.size());
    for (const SeriesShape& series : family.series) {
      const Value* v = collection.values.data() + base + series.slot;
      SeriesSample ss;
      ss.labels = series.labels;
      if (family.kind == Kind::Histogram) {
        for (size_t i = 0; i <= family.bounds.size(); ++i) {
          ss.buckets.push_back(static_cast<uint64_t>(v[i].exact));
        }
        ss.count = ss.buckets.back();
        ss.sum = v[family.bounds.size() + 1].value;
      } else {
        if (!v->present) {
          continue;
        }
        ss.value = v->value;
        ss.exact = v->exact;
      }
      fs.series.push_back(std::move(ss));
    }
    out.push_back(std::move(fs));
  }
  return out;
}

Collection collectionOf(const std::vector<FamilySample>& families) {
  auto shape = std::make_shared<Shape>();
  shape->families.reserve(families.size());
  std::vector<Value> values;
  for (const FamilySample& f : families) {
    auto family = std::make_shared<FamilyShape>();
    family->name = f.name;
    family->help = f.help;
    family->kind = f.kind;
    family->bounds = f.bounds;
    family->series.reserve(f.series.size());
    const size_t base = values.size();
    for (const SeriesSample& s : f.series) {
      family->series.push_back(SeriesShape{s.labels, labelText(s.labels), values.size() - base});
      if (f.kind == Kind::Histogram) {
        for (size_t i = 0; i <= f.bounds.size(); ++i) {
          values.push_back(Value{0, i < s.buckets.size() ? static_cast<int64_t>(s.buckets[i]) : 0, true});
        }
        values.push_back(Value{s.sum, 0, true});
      } else {
        values.push_back(Value{s.value, s.exact, true});
      }
    }
    family->slots = values.size() - base;
    renderShape(*family);
    shape->families.push_back(Shape::Entry{std::move(family), base});
  }
  shape->slots = values.size();
  return Collection{std::move(shape), std::move(values)};
}

}  // namespace evh::ops
