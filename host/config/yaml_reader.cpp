// Typed reading of a YAML tree: ${VAR} expansion, type and range checks, and
// a report of every problem with file:line and dotted key path.
#include "config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <utility>

#include "config/expand.h"
#include "config/suggest.h"

namespace evh::config {
namespace {

// Escapes control characters so that every reported error is one line, even
// when it quotes a multi-line value.
std::string oneLine(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<double> parseDouble(std::string_view text) {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
  }
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// from_chars alone would also take "inf" and "nan", which must stay text.
bool looksLikeFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    ++i;
  }
  size_t int_digits = 0;
  while (i < s.size() && isDigit(s[i])) {
    ++i;
    ++int_digits;
  }
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && isDigit(s[i])) {
      ++i;
      ++frac_digits;
    }
  }
  if (int_digits == 0 && frac_digits == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
      ++i;
    }
    size_t exp_digits = 0;
    while (i < s.size() && isDigit(s[i])) {
      ++i;
      ++exp_digits;
    }
    if (exp_digits == 0) {
      return false;
    }
  }
  return i == s.size();
}

std::optional<int64_t> parseInt64(std::string_view text) {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
  }
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return value;
}

std::string joinKey(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string indexKey(const std::string& parent, size_t index) { return parent + "[" + std::to_string(index) + "]"; }

std::string quote(const std::string& s) { return "\"" + s + "\""; }

std::string joinList(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) {
      out += separator;
    }
    out += item;
  }
  return out;
}

std::string kindOf(const YAML::Node& node) {
  if (node.IsMap()) {
    return "a map";
  }
  if (node.IsSequence()) {
    return "a list";
  }
  if (node.IsScalar()) {
    return quote(node.Scalar());
  }
  return "no value";
}

std::string expectedGot(const std::string& expected, const std::string& got) {
  // A list of choices already holds commas, so a semicolon introduces the value.
  const char* joint = expected.find(',') == std::string::npos ? ", got " : "; got ";
  return "expected " + expected + joint + got;
}

std::string gotValue(const std::string& written, const std::string& expanded) {
  // Both, so that a bad environment variable is easy to trace.
  if (written == expanded) {
    return quote(expanded);
  }
  return quote(expanded) + " (from " + quote(written) + ")";
}

YamlReader::YamlReader(std::string file, const EnvLookup& env) : file_(std::move(file)), env_(env) {}

void YamlReader::error(const YAML::Mark& mark, const std::string& key, const std::string& what) {
  const int line = mark.is_null() ? 0 : mark.line + 1;
  std::string text = file_;
  if (line > 0) {
    text += ":" + std::to_string(line);
  }
  text += ": ";
  if (!key.empty()) {
    text += key + ": ";
  }
  text += what;
  problems_.push_back({line, oneLine(text)});
}

std::vector<std::string> YamlReader::takeErrors() {
  // Stable, so that problems on one line keep the order they were found in;
  // checks made after the walk (such as undefined plugins) fall into place.
  std::stable_sort(problems_.begin(), problems_.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
  std::vector<std::string> errors;
  errors.reserve(problems_.size());
  for (Problem& p : problems_) {
    errors.push_back(std::move(p.text));
  }
  problems_.clear();
  return errors;
}

YAML::Mark YamlReader::valueMark(const Entry& e) {
  if (!e.value.IsDefined() || e.value.IsNull() || e.value.Mark().is_null()) {
    return e.key_node.Mark();
  }
  return e.value.Mark();
}

bool YamlReader::forEachEntry(const Entry& e, const std::function<void(const Entry&)>& fn) {
  const YAML::Node& map = e.value;
  if (!map.IsDefined() || map.IsNull()) {
    return true;
  }
  if (!map.IsMap()) {
    error(valueMark(e), e.path, expectedGot("a map", kindOf(map)));
    return false;
  }
  std::map<std::string, int> first_line;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key_node = it->first;  // a copy: `it->` yields a temporary
    if (!key_node.IsScalar()) {
      error(key_node.Mark(), e.path, "keys must be strings, got " + kindOf(key_node));
      continue;
    }
    const std::string& key = key_node.Scalar();
    const std::string path = joinKey(e.path, key);
    const auto [seen, inserted] = first_line.emplace(key, key_node.Mark().line + 1);
    if (!inserted) {
      error(key_node.Mark(), path, "duplicate key (first defined on line " + std::to_string(seen->second) + ")");
      continue;
    }
    fn(Entry{key, key_node, it->second, path});
  }
  return true;
}

bool YamlReader::readFields(const Entry& e, const std::vector<Field>& fields) {
  return forEachEntry(e, [&](const Entry& child) {
    for (const Field& field : fields) {
      if (child.key == field.name) {
        field.read(child);
        return;
      }
    }
    std::vector<std::string> names;
    names.reserve(fields.size());
    for (const Field& field : fields) {
      names.emplace_back(field.name);
    }
    if (const std::optional<std::string> guess = closestMatch(child.key, names)) {
      error(child.key_node.Mark(), child.path, "unknown key (did you mean " + quote(*guess) + "?)");
    } else {
      error(child.key_node.Mark(), child.path, "unknown key (expected one of: " + joinList(names, ", ") + ")");
    }
  });
}

std::optional<std::string> YamlReader::text(const YAML::Node& node, const YAML::Mark& mark, const std::string& path,
                                            const std::string& expected, Quoting quoting,
                                            std::vector<std::string>* from_environment) {
  if (!node.IsScalar()) {
    error(mark, path, expectedGot(expected, kindOf(node)));
    return std::nullopt;
  }
  Expansion expansion = expandVariables(node.Scalar(), env_, quoting);
  if (!expansion.errors.empty()) {
    for (const std::string& why : expansion.errors) {
      error(mark, path, why);
    }
    return std::nullopt;
  }
  if (from_environment != nullptr) {
    from_environment->insert(from_environment->end(), expansion.from_environment.begin(),
                             expansion.from_environment.end());
  }
  for (std::string& v : expansion.from_environment) {
    tookFromEnvironment(std::move(v));
  }
  return std::move(expansion.value);
}

std::optional<std::string> YamlReader::text(const Entry& e, const std::string& expected, Quoting quoting) {
  return text(e.value, valueMark(e), e.path, expected, quoting);
}

void YamlReader::readString(const Entry& e, std::string& out) {
  if (std::optional<std::string> value = text(e, "a string")) {
    out = std::move(*value);
  }
}

void YamlReader::readSecret(const Entry& e, std::string& out) {
  if (std::optional<std::string> value = text(e, "a string", Quoting::Never)) {
    out = std::move(*value);
  }
}

std::optional<uint64_t> YamlReader::integer(const Entry& e, uint64_t min, uint64_t max) {
  const std::string expected = "an integer in " + std::to_string(min) + ".." + std::to_string(max);
  const std::optional<std::string> value = text(e, expected);
  if (!value) {
    return std::nullopt;
  }
  const std::optional<int64_t> parsed = parseInt64(*value);
  if (!parsed || *parsed < 0 || static_cast<uint64_t>(*parsed) < min || static_cast<uint64_t>(*parsed) > max) {
    error(valueMark(e), e.path, expectedGot(expected, gotValue(e.value.Scalar(), *value)));
    return std::nullopt;
  }
  return static_cast<uint64_t>(*parsed);
}

std::optional<double> YamlReader::number(const Entry& e, double min) {
  std::string bound = std::to_string(min);
  // to_string gives "1.000000"; trim the zeros for the message.
  bound.erase(bound.find_last_not_of('0') + 1);
  if (!bound.empty() && bound.back() == '.') {
    bound.pop_back();
  }
  const std::string expected = "a number >= " + bound;
  const std::optional<std::string> value = text(e, expected);
  if (!value) {
    return std::nullopt;
  }
  const std::optional<double> parsed = looksLikeFloat(*value) ? parseDouble(*value) : std::nullopt;
  if (!parsed || *parsed < min) {
    error(valueMark(e), e.path, expectedGot(expected, gotValue(e.value.Scalar(), *value)));
    return std::nullopt;
  }
  return parsed;
}

void YamlReader::readBool(const Entry& e, bool& out) {
  const std::string expected = "a boolean (true or false)";
  const std::optional<std::string> value = text(e, expected);
  if (!value) {
    return;
  }
  // yaml-cpp's own spellings (true/false, yes/no, on/off, y/n, in lower,
  // Title or UPPER case), applied to the expanded text.
  bool parsed = false;
  if (!YAML::convert<bool>::decode(YAML::Node(*value), parsed)) {
    error(valueMark(e), e.path, expectedGot(expected, gotValue(e.value.Scalar(), *value)));
    return;
  }
  out = parsed;
}

std::optional<size_t> YamlReader::readChoice(const Entry& e, const std::vector<std::string>& allowed) {
  const std::string expected = "one of " + joinList(allowed, ", ");
  const std::optional<std::string> value = text(e, expected);
  if (!value) {
    return std::nullopt;
  }
  const auto it = std::find(allowed.begin(), allowed.end(), *value);
  if (it == allowed.end()) {
    error(valueMark(e), e.path, expectedGot(expected, gotValue(e.value.Scalar(), *value)));
    return std::nullopt;
  }
  return static_cast<size_t>(it - allowed.begin());
}

}  // namespace evh::config
