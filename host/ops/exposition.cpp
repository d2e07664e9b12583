// Rendering families in the Prometheus text format 0.0.4 and OpenMetrics
// 1.0.0, and choosing between them from an Accept header.
#include "ops/exposition.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace evh::ops {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

// One media range of an Accept header: its type and the q and version
// parameters (the only ones that matter here).
struct MediaRange {
  std::string type;  // lower case, e.g. "text/plain"
  std::string version;
  double q = 1.0;
};

MediaRange parseRange(std::string_view text) {
  MediaRange r;
  size_t semi = text.find(';');
  r.type = lower(trim(text.substr(0, semi)));
  while (semi != std::string_view::npos) {
    text.remove_prefix(semi + 1);
    semi = text.find(';');
    const std::string_view param = text.substr(0, semi);
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    const std::string name = lower(trim(param.substr(0, eq)));
    std::string_view value = trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (name == "q") {
      double q = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), q);
      // A q-value that does not parse makes the range unacceptable rather
      // than preferred.
      r.q = ec == std::errc() && ptr == value.data() + value.size() ? std::clamp(q, 0.0, 1.0) : 0.0;
    } else if (name == "version") {
      r.version = std::string(value);
    }
  }
  return r;
}

bool validUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

// Escapes `s` for a label value (quote = true) or a HELP text; see render().
void appendEscaped(std::string& out, std::string_view s, bool quote) {
  const bool valid = validUtf8(s);
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else if (!valid && (static_cast<unsigned char>(c) & 0x80) != 0) {
      out += '?';
    } else {
      out += c;
    }
  }
}

// OpenMetrics' canonical number for an le label: Go's %g with ".0" added
// when it reads like an integer.
std::string canonicalLe(double v) {
  std::string s = formatDouble(v);
  if (std::isfinite(v) && s.find_first_of(".e") == std::string::npos) {
    s += ".0";
  }
  return s;
}

class TextWriter {
 public:
  TextWriter(std::string& out, Format format) : out_(out), om_(format == Format::OpenMetrics) {}

  void family(const FamilySample& f) {
    const std::string_view name = f.name;
    std::string_view base = name;  // the family's name in the metadata lines
    if (om_ && f.kind == Kind::Counter) {
      base = stripSuffix(name, "_total");
    } else if (om_ && f.kind == Kind::Info) {
      base = stripSuffix(name, "_info");
    }
    const char* type = f.kind == Kind::Info && !om_ ? "gauge" : kindName(f.kind);
    if (om_) {
      typeLine(base, type);
      helpLine(base, f.help);
    } else {
      helpLine(base, f.help);
      typeLine(base, type);
    }
    for (const SeriesSample& s : f.series) {
      switch (f.kind) {
        case Kind::Counter:
          // OpenMetrics requires the _total sample name even when the
          // registered name lacks it.
          sample(om_ ? std::string(base) + "_total" : std::string(name), s.labels, nullptr, number(s));
          break;
        case Kind::Gauge:
          sample(name, s.labels, nullptr, number(s));
          break;
        case Kind::Info:
          sample(om_ ? std::string(base) + "_info" : std::string(name), s.labels, nullptr, "1");
          break;
        case Kind::Histogram:
          histogram(name, f.bounds, s);
          break;
      }
    }
  }

  void end() {
    if (om_) {
      out_ += "# EOF\n";
    }
  }

 private:
  static std::string_view stripSuffix(std::string_view name, std::string_view suffix) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      name.remove_suffix(suffix.size());
    }
    return name;
  }

  // Counters and gauges written through a handle carry their exact integer;
  // a computed gauge carries only its double (exact is 0 then).
  static std::string number(const SeriesSample& s) {
    if (s.exact != 0 || s.value == 0.0) {
      return std::to_string(s.exact);
    }
    return formatDouble(s.value);
  }

  void typeLine(std::string_view name, const char* type) {
    out_ += "# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void helpLine(std::string_view name, const std::string& help) {
    if (help.empty()) {
      return;
    }
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    appendEscaped(out_, help, om_);
    out_ += '\n';
  }

  void sample(std::string_view name, const Labels& labels, const std::string* le, const std::string& value) {
    out_ += name;
    if (!labels.empty() || le != nullptr) {
      out_ += '{';
      bool first = true;
      for (const auto& [label, v] : labels) {
        if (!first) {
          out_ += ',';
        }
        first = false;
        labelPair(label, v);
      }
      if (le != nullptr) {
        if (!first) {
          out_ += ',';
        }
        labelPair("le", *le);
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

  void labelPair(std::string_view name, std::string_view value) {
    out_ += name;
    out_ += "=\"";
    appendEscaped(out_, value, true);
    out_ += '"';
  }

  void histogram(std::string_view name, const std::vector<double>& bounds, const SeriesSample& s) {
    const std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i < s.buckets.size(); ++i) {
      const std::string le =
          i < bounds.size() ? (om_ ? canonicalLe(bounds[i]) : formatDouble(bounds[i])) : std::string("+Inf");
      sample(bucket, s.labels, &le, std::to_string(s.buckets[i]));
    }
    sample(std::string(name) + "_sum", s.labels, nullptr, formatDouble(s.sum));
    sample(std::string(name) + "_count", s.labels, nullptr, std::to_string(s.count));
  }

  std::string& out_;
  bool om_;
};

}  // namespace

Format negotiate(std::string_view accept) {
  double om_q = 0;
  double text_q = 0;
  size_t om_at = 0;
  size_t text_at = 0;
  size_t index = 0;
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    const MediaRange r = parseRange(accept.substr(0, comma));
    accept.remove_prefix(comma == std::string_view::npos ? accept.size() : comma + 1);
    ++index;
    if (r.type == "application/openmetrics-text") {
      if ((r.version.empty() || r.version == "1.0.0" || r.version == "0.0.1") && r.q > om_q) {
        om_q = r.q;
        om_at = index;
      }
    } else if ((r.type == "text/plain" && (r.version.empty() || r.version == "0.0.4")) || r.type == "text/*" ||
               r.type == "*/*") {
      if (r.q > text_q) {
        text_q = r.q;
        text_at = index;
      }
    }
  }
  const bool om = om_q > 0 && (om_q > text_q || (om_q == text_q && om_at < text_at));
  return om ? Format::OpenMetrics : Format::Prometheus;
}

const char* contentType(Format format) noexcept {
  return format == Format::OpenMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                       : "text/plain; version=0.0.4; charset=utf-8";
}

std::string formatDouble(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (v == 0) {
    return "0";  // -0 too: a sign on zero only confuses
  }
  // The shortest digits that read back as v, in scientific notation; then,
  // as Go's %g does for the shortest precision, fixed notation when the
  // exponent is in -4..5.
  char buf[64];
  const auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string_view text(buf, static_cast<size_t>(sci.ptr - buf));
  std::string_view exp_text = text.substr(text.find('e') + 1);  // "+06", "-05"
  if (!exp_text.empty() && exp_text.front() == '+') {
    exp_text.remove_prefix(1);  // from_chars takes no '+'
  }
  int exponent = 0;
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  if (exponent < -4 || exponent >= 6) {
    return std::string(text);
  }
  char fixed[64];
  const auto fix = std::to_chars(fixed, fixed + sizeof fixed, v, std::chars_format::fixed);
  return std::string(fixed, fix.ptr);
}

std::string render(const std::vector<const FamilySample*>& families, Format format) {
  std::string out;
  size_t lines = 0;
  for (const FamilySample* f : families) {
    lines += 2 + f->series.size() * (f->kind == Kind::Histogram ? f->bounds.size() + 3 : 1);
  }
  out.reserve(lines * 80);
  TextWriter writer(out, format);
  for (const FamilySample* f : families) {
    writer.family(*f);
  }
  writer.end();
  return out;
}

std::string render(const std::vector<FamilySample>& families, Format format) {
  std::vector<const FamilySample*> all;
  all.reserve(families.size());
  for (const auto& f : families) {
    all.push_back(&f);
  }
  return render(all, format);
}

}  // namespace evh::ops
