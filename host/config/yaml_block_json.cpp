// A free-form config block (a plugin's `config:`) as JSON text: unquoted
// scalars typed by YAML 1.2's core schema, ${VAR}s expanded, where each value
// is recorded by JSON Pointer, and a budget against alias bombs.
#include "config/yaml_reader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <map>
#include <string>

namespace evh::config {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

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

// The recursive half of YamlReader::jsonText.
// Stops (returning null) once `budget` is spent; the caller reports that.
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

std::optional<std::string> YamlReader::jsonText(const Entry& e, ConfigBlockMap* map) {
  const size_t before = errorCount();
  BlockBudget budget;
  const nlohmann::json json = toJson(*this, e.value, valueMark(e), e.path, 0, budget, BlockPlace{map, ""});
  if (budget.exceeded) {
    error(e.key_node.Mark(), e.path,
          "too large: more than " + std::to_string(kMaxBlockValues) + " values or " +
              std::to_string(kMaxBlockBytes >> 20) +
              " MiB of text once its aliases are expanded (aliases of aliases multiply); refused");
    return std::nullopt;
  }
  if (errorCount() != before) {
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
