// Dead-letter entries as evhctl reads them back (see dlq_entry.h).
#include "cli/dlq_entry.h"

#include <string_view>
#include <utility>

namespace evh::cli::dlq {

namespace {

std::string orDash(std::string s) { return s.empty() ? "-" : s; }

// Whether arrays and objects in `text` nest deeper than `limit` (brackets
// inside strings do not count). nlohmann's parser builds the tree with one
// stack frame per level (and dump() recurses likewise): a list element of
// 200,000 '[' overflowed evhctl's stack, so the depth is checked first, on
// the bytes, before the parser sees them.
bool nestsDeeperThan(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        return true;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

}  // namespace

std::optional<Entry> parseEntry(std::string text) {
  if (nestsDeeperThan(text, kMaxEntryDepth)) {
    return std::nullopt;
  }
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return std::nullopt;
  }
  return Entry{std::move(text), std::move(j)};
}

std::string dump(const Json& j, int indent) { return j.dump(indent, ' ', false, Json::error_handler_t::replace); }

std::string field(const Json& entry, const char* name) {
  auto it = entry.find(name);
  if (it == entry.end() || it->is_null()) {
    return {};
  }
  return it->is_string() ? it->get<std::string>() : dump(*it);
}

bool matches(const Entry& e, const std::string& id) {
  return field(e.json, "eventId") == id || field(e.json, "id") == id;
}

std::vector<std::string> listRow(const Entry& e) {
  return {orDash(field(e.json, "timestamp")), orDash(field(e.json, "eventId")), orDash(field(e.json, "eventType")),
          orDash(field(e.json, "plugin")), orDash(field(e.json, "reason"))};
}

std::string replayLabel(const Entry& e) {
  const Json& j = e.json;
  // Undecodable messages have no eventId: name them by the entry's own id.
  std::string name = field(j, "eventId").empty() ? orDash(field(j, "id")) : field(j, "eventId");
  return name + " " + orDash(field(j, "eventType")) + " (" + orDash(field(j, "reason")) + ")";
}

ReplayPlan replayPlan(const Entry& e, const std::string& prefix) {
  const Json& j = e.json;
  ReplayPlan plan;
  if (auto it = j.find("originalEvent"); it != j.end() && !it->is_null()) {
    plan.message = dump(*it);
  } else if (auto raw = j.find("raw"); raw != j.end() && raw->is_string()) {
    plan.message = raw->get<std::string>();
  } else {
    return ReplayPlan{{}, {}, "the entry has neither originalEvent nor raw; kept"};
  }
  plan.channel = field(j, "redisChannel");
  if (plan.channel.empty() && !field(j, "channel").empty()) {
    plan.channel = prefix + field(j, "channel");
  }
  if (plan.channel.empty()) {
    return ReplayPlan{{}, {}, "the entry has neither redisChannel nor channel; kept"};
  }
  return plan;
}

}  // namespace evh::cli::dlq
