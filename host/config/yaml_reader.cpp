// Typed reading of a YAML tree: ${VAR} expansion, type and range checks, and
// a report of every problem with file:line and dotted key path.
#include "config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "config/expand.h"
#include "config/suggest.h"

namespace evh::config {
namespace {

// A config block is free-form, and yaml-cpp lets an alias point at its own
// ancestor, which makes the tree infinite; the conversion needs a floor.
constexpr int kMaxBlockDepth = 64;

// yaml-cpp keeps an alias as a second reference to its anchor's node, so a
// few lines of aliases of aliases ("billion laughs") stand for a tree of
// billions of values -- which the conversion to JSON would build. A config
// block is a plugin's settings: far below these bounds when written out.
constexpr size_t kMaxBlockValues = 100000;
constexpr size_t kMaxBlockBytes = size_t{16} << 20;  // keys and scalar text

// What the conversion of one block may still produce.
struct BlockBudget {
  size_t values = kMaxBlockValues;
  size_t bytes = kMaxBlockBytes;
  bool exceeded = false;

  // Counts one value of `bytes` bytes of text; false once over either bound.
  bool take(size_t text_bytes) {
    if (exceeded || values == 0 || text_bytes > bytes) {
      exceeded = true;
      return false;
    }
    --values;
    bytes -= text_bytes;
    return true;
  }
};

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

// Parses a whole string as a finite decimal floating-point number.
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

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
// (from_chars alone would also take "inf" and "nan", which must stay text).
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

// Types an unquoted scalar the way the YAML 1.2 core schema does. Values JSON
// cannot hold (.inf, .nan, integers beyond 64 bits) stay text.
nlohmann::json plainScalarToJson(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") {
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    return false;
  }
  if (s == "null" || s == "Null" || s == "NULL" || s == "~") {
    return nullptr;
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    uint64_t value = 0;
    const int base = s[1] == 'x' ? 16 : 8;
    const char* end = s.data() + s.size();
    const auto [ptr, ec] = std::from_chars(s.data() + 2, end, value, base);
    if (ec == std::errc() && ptr == end) {
      return value;
    }
    return s;
  }
  const size_t sign = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  const std::string_view unsigned_part = std::string_view(s).substr(sign);
  const bool integral = !unsigned_part.empty() && std::all_of(unsigned_part.begin(), unsigned_part.end(), isDigit);
  if (integral) {
    if (const std::optional<int64_t> value = parseInt64(s)) {
      return *value;
    }
    // Past int64: unsigned when positive, like JSON parsers that keep 2^64-1.
    uint64_t big = 0;
    const std::string_view digits = std::string_view(s).substr(s[0] == '+' ? 1 : 0);
    const char* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, big);
    if (ec == std::errc() && ptr == end) {
      return big;
    }
  }
  if (looksLikeFloat(s)) {
    if (const std::optional<double> value = parseDouble(s)) {
      return *value;
    }
  }
  return s;
}

// The recursive half of YamlReader::jsonText.
// Stops (returning null) once `budget` is spent; the caller reports that.
// "/a" + "b/c" -> "/a/b~1c" (RFC 6901).
std::string pointerJoin(const std::string& parent, const std::string& key) {
  std::string out = parent + "/";
  for (const char c : key) {
    out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  }
  return out;
}

// Where a block's values are: the JSON Pointer of the value being converted,
// and the map being filled (nullptr: not wanted).
struct BlockPlace {
  ConfigBlockMap* map;
  std::string pointer;

  BlockPlace child(const std::string& token, int line) const {
    BlockPlace c{map, pointerJoin(pointer, token)};
    if (map != nullptr) {
      map->lines.emplace(c.pointer, line);
    }
    return c;
  }
};

nlohmann::json toJson(YamlReader& reader, const YAML::Node& node, const YAML::Mark& fallback, const std::string& path,
                      int depth, BlockBudget& budget, const BlockPlace& place) {
  if (!budget.take(node.IsScalar() ? node.Scalar().size() : 0)) {
    return nullptr;
  }
  const YAML::Mark mark = node.Mark().is_null() || node.IsNull() ? fallback : node.Mark();
  if (depth > kMaxBlockDepth && (node.IsMap() || node.IsSequence())) {
    reader.error(
        mark, path,
        "nested deeper than " + std::to_string(kMaxBlockDepth) + " levels (is an alias referring to its own parent?)");
    return nullptr;
  }
  if (node.IsMap()) {
    nlohmann::json object = nlohmann::json::object();
    std::map<std::string, int> first_line;
    for (auto it = node.begin(); it != node.end() && !budget.exceeded; ++it) {
      const YAML::Node key_node = it->first;  // a copy: `it->` yields a temporary
      if (!key_node.IsScalar()) {
        reader.error(key_node.Mark(), path, "keys must be strings, got " + kindOf(key_node));
        continue;
      }
      const std::string& key = key_node.Scalar();
      if (!budget.take(key.size())) {
        break;
      }
      const std::string child = joinKey(path, key);
      const auto [seen, inserted] = first_line.emplace(key, key_node.Mark().line + 1);
      if (!inserted) {
        reader.error(key_node.Mark(), child,
                     "duplicate key (first defined on line " + std::to_string(seen->second) + ")");
        continue;
      }
      object[key] = toJson(reader, it->second, key_node.Mark(), child, depth + 1, budget,
                           place.child(key, key_node.Mark().line + 1));
    }
    return object;
  }
  if (node.IsSequence()) {
    nlohmann::json array = nlohmann::json::array();
    size_t index = 0;
    for (auto it = node.begin(); it != node.end() && !budget.exceeded; ++it, ++index) {
      const YAML::Mark item = it->Mark().is_null() ? mark : it->Mark();
      array.push_back(toJson(reader, *it, mark, indexKey(path, index), depth + 1, budget,
                             place.child(std::to_string(index), item.line + 1)));
    }
    return array;
  }
  if (node.IsScalar()) {
    std::optional<std::string> value = reader.text(node, mark, path, "a value", Quoting::Allowed,
                                                   place.map != nullptr ? &place.map->expanded : nullptr);
    if (!value) {
      return nullptr;
    }
    // "!" is yaml-cpp's tag for a quoted scalar.
    if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
      return std::move(*value);
    }
    return plainScalarToJson(*value);
  }
  return nullptr;
}

}  // namespace

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

std::optional<std::string> YamlReader::jsonText(const Entry& e, ConfigBlockMap* map) {
  const size_t before = problems_.size();
  BlockBudget budget;
  const nlohmann::json json = toJson(*this, e.value, valueMark(e), e.path, 0, budget, BlockPlace{map, ""});
  if (budget.exceeded) {
    error(e.key_node.Mark(), e.path,
          "too large: more than " + std::to_string(kMaxBlockValues) + " values or " +
              std::to_string(kMaxBlockBytes >> 20) +
              " MiB of text once its aliases are expanded (aliases of aliases multiply); refused");
    return std::nullopt;
  }
  if (problems_.size() != before) {
    return std::nullopt;
  }
  try {
    return json.dump();
  } catch (const nlohmann::json::exception&) {
    // dump() refuses invalid UTF-8 rather than passing it to a plugin.
    error(valueMark(e), e.path, "contains text that is not valid UTF-8");
    return std::nullopt;
  }
}

}  // namespace evh::config
