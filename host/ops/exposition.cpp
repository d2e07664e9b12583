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

// Appends `n` in decimal.
void appendInt(std::string& out, int64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

std::string_view stripSuffix(std::string_view name, std::string_view suffix) {
  if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
    name.remove_suffix(suffix.size());
  }
  return name;
}

class TextWriter {
 public:
  TextWriter(std::string& out, Format format) : out_(out), om_(format == Format::OpenMetrics) {}

  void family(const FamilyShape& f, const Value* values) {
    const int fmt = om_ ? 1 : 0;
    if (f.meta[fmt].empty()) {  // a shape not rendered ahead (renderShape)
      FamilyShape rendered = f;
      renderShape(rendered);
      family(rendered, values);
      return;
    }
    out_ += f.meta[fmt];
    if (f.kind == Kind::Histogram) {
      histogram(f, f.les[fmt], values);
      return;
    }
    const std::string& sample_name = f.sample_name[fmt];
    for (const SeriesShape& s : f.series) {
      const Value& v = values[s.slot];
      if (!v.present) {
        continue;
      }
      head(sample_name, "", s.label_text);
      if (f.kind == Kind::Info) {
        out_ += '1';
      } else {
        number(v);
      }
      out_ += '\n';
    }
  }

  // The family's HELP and TYPE lines, its samples' name and its les, as
  // this writer's format writes them.
  void metadata(FamilyShape& f) {
    const int fmt = om_ ? 1 : 0;
    const std::string_view name = f.name;
    std::string_view base = name;  // the family's name in the metadata lines
    if (om_ && f.kind == Kind::Counter) {
      base = stripSuffix(name, "_total");
    } else if (om_ && f.kind == Kind::Info) {
      base = stripSuffix(name, "_info");
    }
    const char* type = f.kind == Kind::Info && !om_ ? "gauge" : kindName(f.kind);
    std::string meta;
    TextWriter lines(meta, om_ ? Format::OpenMetrics : Format::Prometheus);
    if (om_) {
      lines.typeLine(base, type);
      lines.helpLine(base, f.help);
    } else {
      lines.helpLine(base, f.help);
      lines.typeLine(base, type);
    }
    f.meta[fmt] = std::move(meta);
    // OpenMetrics requires the _total sample name even when the registered
    // name lacks it.
    f.sample_name[fmt] = std::string(name);
    if (om_ && f.kind == Kind::Counter) {
      f.sample_name[fmt] = std::string(base) + "_total";
    } else if (om_ && f.kind == Kind::Info) {
      f.sample_name[fmt] = std::string(base) + "_info";
    }
    f.les[fmt].clear();
    if (f.kind == Kind::Histogram) {
      for (double b : f.bounds) {
        f.les[fmt].push_back("le=\"" + (om_ ? canonicalLe(b) : formatDouble(b)) + '"');
      }
      f.les[fmt].emplace_back("le=\"+Inf\"");
    }
  }

  void end() {
    if (om_) {
      out_ += "# EOF\n";
    }
  }

 private:
  // Counters and gauges written through a handle carry their exact integer;
  // a computed gauge carries only its double (exact is 0 then).
  void number(const Value& v) {
    if (v.exact != 0 || v.value == 0.0) {
      appendInt(out_, v.exact);
    } else {
      out_ += formatDouble(v.value);
    }
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

  // `name``suffix`{`labels`} and the space before the value; `le`, already
  // rendered as le="...", after the labels when given.
  void head(std::string_view name, std::string_view suffix, std::string_view labels, std::string_view le = {}) {
    out_ += name;
    out_ += suffix;
    if (!labels.empty() || !le.empty()) {
      out_ += '{';
      out_ += labels;
      if (!labels.empty() && !le.empty()) {
        out_ += ',';
      }
      out_ += le;
      out_ += '}';
    }
    out_ += ' ';
  }

  void histogram(const FamilyShape& f, const std::vector<std::string>& les, const Value* values) {
    for (const SeriesShape& s : f.series) {
      const Value* v = values + s.slot;
      for (size_t i = 0; i < les.size(); ++i) {
        head(f.name, "_bucket", s.label_text, les[i]);
        appendInt(out_, v[i].exact);
        out_ += '\n';
      }
      head(f.name, "_sum", s.label_text);
      out_ += formatDouble(v[les.size()].value);
      out_ += '\n';
      head(f.name, "_count", s.label_text);
      appendInt(out_, v[les.size() - 1].exact);
      out_ += '\n';
    }
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

std::string labelText(const Labels& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) {
      out += ',';
    }
    out += name;
    out += "=\"";
    appendEscaped(out, value, true);
    out += '"';
  }
  return out;
}

void renderShape(FamilyShape& family) {
  std::string unused;
  TextWriter(unused, Format::Prometheus).metadata(family);
  TextWriter(unused, Format::OpenMetrics).metadata(family);
}

std::string render(const std::vector<FamilyRef>& families, Format format) {
  std::string out;
  size_t lines = 0;
  for (const FamilyRef& f : families) {
    lines += 2 + f.family->series.size() * (f.family->kind == Kind::Histogram ? f.family->bounds.size() + 3 : 1);
  }
  out.reserve(lines * 80);
  TextWriter writer(out, format);
  for (const FamilyRef& f : families) {
    writer.family(*f.family, f.values);
  }
  writer.end();
  return out;
}

std::string render(const std::vector<FamilySample>& families, Format format) {
  const Collection all = collectionOf(families);
  std::vector<FamilyRef> refs;
  refs.reserve(all.shape->families.size());
  for (const auto& [family, base] : all.shape->families) {
    refs.push_back(FamilyRef{family.get(), all.values.data() + base});
  }
  return render(refs, format);
}

}  // namespace evh::ops
