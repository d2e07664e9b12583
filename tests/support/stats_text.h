// A Prometheus-like text rendering of a stats registry, for tests to check
// names, labels and values (the real exporter is issue 13's /metrics).
#pragma once

#include "ops/stats.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace evh::test {

// Shortest fixed-point text that reads back as the same double ("0.0001", "3", "-4").
inline std::string statsNumber(double v) {
  char buf[400];  // fixed notation of any double
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  return std::string(buf, res.ptr);
}

inline std::string statsLabels(const ops::Labels& labels, const std::string& le = "") {
  std::string out;
  for (const auto& [name, value] : labels) {
    out += (out.empty() ? "" : ",") + name + "=\"" + value + "\"";
  }
  if (!le.empty()) {
    out += (out.empty() ? "" : ",") + std::string("le=\"") + le + "\"";
  }
  return out.empty() ? "" : "{" + out + "}";
}

inline std::string renderStats(const ops::Registry& registry) {
  std::string out;
  for (const auto& f : registry.samples()) {
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name + " " + ops::kindName(f.kind) + "\n";
    for (const auto& s : f.series) {
      if (f.kind != ops::Kind::Histogram) {
        out += f.name + statsLabels(s.labels) + " " + statsNumber(s.value) + "\n";
        continue;
      }
      for (size_t i = 0; i < s.buckets.size(); ++i) {
        const std::string le = i < f.bounds.size() ? statsNumber(f.bounds[i]) : "+Inf";
        out += f.name + "_bucket" + statsLabels(s.labels, le) + " " + std::to_string(s.buckets[i]) + "\n";
      }
      out += f.name + "_sum" + statsLabels(s.labels) + " " + statsNumber(s.sum) + "\n";
      out += f.name + "_count" + statsLabels(s.labels) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

// The value of one counter or gauge series; -1 when it does not exist.
inline double statValue(const ops::Registry& registry, const std::string& name, const ops::Labels& labels) {
  ops::Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (const auto& f : registry.samples()) {
    if (f.name != name) {
      continue;
    }
    for (const auto& s : f.series) {
      if (s.labels == sorted) {
        return s.value;
      }
    }
  }
  return -1;
}

}  // namespace evh::test
