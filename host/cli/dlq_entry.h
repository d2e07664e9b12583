// evhctl dlq's reading of one dead-letter entry: parsing the stored text, its fields, the row `list` prints and what
// `replay` would publish. Kept apart from the Redis commands so that it can be tested and fuzzed on bytes alone:
// the list is written by any process that can LPUSH, so an entry is untrusted input.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace evh::cli::dlq {

// ordered_json keeps an entry's key order, in `show` and in a replayed event.
using Json = nlohmann::ordered_json;

// Deepest nesting an entry may have: evhost's own entries hold an event of at
// most limits.max_json_depth (at most 1024) one level down. Deeper text is
// refused as corrupt, because parsing and printing it take a stack frame per
// level and would overflow evhctl's stack.
inline constexpr size_t kMaxEntryDepth = 1100;

struct Entry {
  std::string text;  // as stored: LREM needs it byte-exact
  Json json;         // an object
};

// The entry stored as `text`, or nullopt when it is not a JSON object (or is
// nested deeper than kMaxEntryDepth): such elements are counted as corrupt.
std::optional<Entry> parseEntry(std::string text);

// JSON text of `j`: compact (indent -1) or pretty; invalid UTF-8 replaced.
std::string dump(const Json& j, int indent = -1);

// A field as text: strings as they are, other values as JSON, absent or null as "".
std::string field(const Json& entry, const char* name);

// An entry is addressed by its eventId, or by its own id (for entries whose
// eventId is empty: undecodable messages).
bool matches(const Entry& e, const std::string& id);

// `list`'s columns: time, eventId, eventType, plugin, reason ("-" when empty).
std::vector<std::string> listRow(const Entry& e);

// What `replay` names the entry by: "<eventId or id> <eventType> (<reason>)".
std::string replayLabel(const Entry& e);

// What replaying the entry would publish where: its originalEvent (or raw
// text) on its redisChannel (or `prefix` + channel). `error` says why it
// cannot be replayed (then channel and message are empty).
struct ReplayPlan {
  std::string channel;
  std::string message;
  std::string error;
};
ReplayPlan replayPlan(const Entry& e, const std::string& prefix);

}  // namespace evh::cli::dlq
