// Typed reading of a YAML tree: ${VAR} expansion, type and range checks, and
// a report of every problem with file:line and dotted key path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/expand.h"

namespace evh::config {

// One key/value pair of a YAML map, with the dotted path of the value. For a
// list item, key is empty and key_node is the item itself.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  std::string path;
};

// A key a map may hold, and what reads its value.
struct Field {
  const char* name;
  std::function<void(const Entry&)> read;
};

std::string joinKey(const std::string& parent, const std::string& key);  // "a.b"
std::string indexKey(const std::string& parent, size_t index);           // "a[0]"
std::string quote(const std::string& s);
std::string joinList(const std::vector<std::string>& items, const char* separator);

// A whole string as a signed decimal (an optional '+' allowed), or nullopt.
// What integer() accepts, for values that come from elsewhere (environment).
std::optional<int64_t> parseInt64(std::string_view text);

// A whole string as a finite decimal floating-point number, or nullopt.
std::optional<double> parseDouble(std::string_view text);

// Whether a plain scalar is a float by YAML 1.2's core schema:
// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? ("inf" and "nan" are not).
bool looksLikeFloat(std::string_view s);

// "a map", "a list", "no value", or the scalar quoted.
std::string kindOf(const YAML::Node& node);

// "expected <expected>, got <got>" (a semicolon when `expected` is a list).
std::string expectedGot(const std::string& expected, const std::string& got);

// The expanded value quoted, followed by the written one when they differ.
std::string gotValue(const std::string& written, const std::string& expanded);

// Reads values out of one YAML document and collects problems. Readers never
// throw for bad input: they report it and leave their output untouched, so a
// caller can carry on and find the next problem.
class YamlReader {
 public:
  YamlReader(std::string file, const EnvLookup& env);

  const std::string& file() const { return file_; }

  // Records "file:line: key: what" (line and key left out when unknown).
  void error(const YAML::Mark& mark, const std::string& key, const std::string& what);
  size_t errorCount() const { return problems_.size(); }
  // Every problem so far, ordered by line, each on one line of text.
  std::vector<std::string> takeErrors();
  // Records a value taken from the environment (text() does for ${VAR}s).
  void tookFromEnvironment(std::string value) { from_environment_.push_back(std::move(value)); }
  // Every value taken from the environment so far (LoadResult::from_environment).
  std::vector<std::string> takeFromEnvironment() { return std::move(from_environment_); }

  // Where to point for a problem with e.value: an empty value has no position
  // of its own (yaml-cpp marks it at the next token), so its key stands in.
  static YAML::Mark valueMark(const Entry& e);

  // Calls `fn` for each pair of the map e.value, reporting non-string and
  // duplicate keys (yaml-cpp keeps both copies of a duplicate; the first one
  // is used). An absent or empty value counts as an empty map. Returns false,
  // after reporting it, when the value is not a map.
  bool forEachEntry(const Entry& e, const std::function<void(const Entry&)>& fn);

  // forEachEntry over a fixed set of keys; any other key is reported as
  // unknown, with a did-you-mean or the list of valid keys.
  bool readFields(const Entry& e, const std::vector<Field>& fields);

  // The expanded text of the scalar `node`, or nullopt after reporting why
  // there is none (not a scalar, unset variable, malformed reference).
  // `expected` describes the wanted value, for the message.
  // With `from_environment`, appends the values ${VAR} references took from the environment.
  std::optional<std::string> text(const YAML::Node& node, const YAML::Mark& mark, const std::string& path,
                                  const std::string& expected, Quoting quoting = Quoting::Allowed,
                                  std::vector<std::string>* from_environment = nullptr);
  std::optional<std::string> text(const Entry& e, const std::string& expected, Quoting quoting = Quoting::Allowed);

  void readString(const Entry& e, std::string& out);
  // readString for a secret (a password): no message quotes any of its text.
  void readSecret(const Entry& e, std::string& out);
  std::optional<uint64_t> integer(const Entry& e, uint64_t min, uint64_t max);
  template <class T>
  void readInteger(const Entry& e, T& out, uint64_t min, uint64_t max) {
    if (const std::optional<uint64_t> value = integer(e, min, max)) {
      out = static_cast<T>(*value);
    }
  }
  std::optional<double> number(const Entry& e, double min);
  void readBool(const Entry& e, bool& out);
  // The index of the value in `allowed`.
  std::optional<size_t> readChoice(const Entry& e, const std::vector<std::string>& allowed);

  // A free-form block as compact JSON text. Unquoted scalars are typed the
  // way YAML 1.2's core schema does (bool, integer, float, null); quoted ones
  // and !!str stay strings, so `version: "1.0"` stays text. Values are
  // expanded first. A block that stands for more than 100,000 values or
  // 16 MiB of text once its aliases are expanded is refused (an alias bomb).
  // Returns nullopt after reporting problems. With `map`, also records where
  // each value is (by JSON Pointer) and what ${VAR} references took from the
  // environment.
  std::optional<std::string> jsonText(const Entry& e, ConfigBlockMap* map = nullptr);

 private:
  struct Problem {
    int line;
    std::string text;
  };

  std::string file_;
  const EnvLookup& env_;
  std::vector<Problem> problems_;
  std::vector<std::string> from_environment_;
};

}  // namespace evh::config
