// product: JollyJet's product events (the plan's Step 2.2): validation, a log line, cache invalidation, a read model,
// notifications.
//
// PRODUCT_CREATED, PRODUCT_UPDATED and PRODUCT_DELETED (the plan's Step 1.1
// payloads) are validated -- an invalid payload is REJECTed with a message
// naming the field -- and then applied to Redis in two asynchronous steps
// through the host's command connection, never blocking the loop:
//
// one asynchronous step through the host's command connection, never
// blocking the loop: one EVAL of kApplyScript writes the product's
// read-model hash and its category set membership, DELs the configured cache
// keys, writes the route's idempotency mark (when the route has one) and
// PUBLISHes a PRODUCT_NOTIFICATION envelope for the admin dashboard.
//
// The call answers OK once the script succeeded and logs one line; any Redis
// error or a lost connection answers RETRY with the error, and the host
// retries per the route's policy. On an idempotent route every effect happens
// once per event, also across crashes (the mark is written with them); see
// kApplyScript. docs/plugins/product.md describes the config, the keys
// written and the notification.
#include <evh/plugin.hpp>

#include <uuid/uuid.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using Json = nlohmann::json;
// Payloads keep their key order, so that changed keys are logged and
// notified in the order the publisher wrote them.
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kCreated = "PRODUCT_CREATED";
constexpr const char* kUpdated = "PRODUCT_UPDATED";
constexpr const char* kDeleted = "PRODUCT_DELETED";
constexpr const char* kNotificationType = "PRODUCT_NOTIFICATION";

// Applies one event to the read model, invalidates the caches, writes the
// idempotency mark and publishes the notification, in one atomic step.
//
// Why a script and not separate commands or MULTI/EXEC: an update has to read
// the product's current category before it can move the set membership and
// name the old category's cache, and a script is the one way to make that
// read and the writes a single step that no other client (nor another event
// for the same product in flight on our own connection) can interleave with.
// MULTI cannot branch on a read, and separate commands would let two
// concurrent updates of one product each read the same old category and
// leave the product in two sets.
//
// Why the mark and the PUBLISH are in it too: on an idempotent route the host
// writes the mark only after the plugin answered OK, so a crash in between
// redelivers an event whose effects already happened. The read-model writes
// would merely repeat (they are idempotent), but a notification would be
// published twice. With the mark written here, atomically with every effect,
// an event is applied -- and announced -- exactly once: a redelivery finds
// the mark (the host skips the call, or this script returns "already
// applied" if the two raced). Without idempotency there is no mark and the
// script still publishes, so a retry after a lost reply may announce twice
// (subscribers can deduplicate on payload.sourceEventId).
//
// Redis does not roll a script back when a command in it fails, so the script
// checks the type of every key it writes before writing anything (a WRONGTYPE
// then changes nothing), and writes the set memberships before the hash: were
// a write to fail anyway (say, out of memory), the retry still reads the same
// previous category and repeats every step. Every write is idempotent (SREM,
// SADD, HSET, HDEL, DEL); the mark comes after them (a mark before a failed
// write would make the retry skip the event), the PUBLISH last.
//
// KEYS[1]: the product's hash; KEYS[2], if given: the idempotency mark, with
// ARGV[2] its TTL in ms. ARGV[1]: JSON {action, productId, category? (the
// category the product has afterwards, when the event gives one), set:
// [field, value, ...], unset: [field, ...], categoryKey: parts, cacheKeys:
// [key, ...], cacheCategoryKeys: [parts, ...], note?: {channel, head, name?,
// tail}}, where "parts" is a key template already rendered except for
// {category}, split there: the key is table.concat(parts, category); and
// note is the notification as JSON text around the members only the read
// model knows: head .. [,"name":..][,"category":..][,"previousCategory":..] .. tail.
// Returns {existed (0/1), previous name or nil, previous category or nil,
// applied (1, or 0 when the mark was already there and nothing was done)}.
constexpr const char* kApplyScript = R"lua(
local a = cjson.decode(ARGV[1])
local hash = KEYS[1]
local mark = KEYS[2]
if mark and redis.call('EXISTS', mark) == 1 then return {0, false, false, 0} end
local function keyOf(parts, category) return table.concat(parts, category) end
local function wrongType(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ' value, not a ' .. want
  end
  return nil
end
local function inChunks(cmd, key, items)
  for i = 1, #items, 500 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
  end
end
local err = wrongType(hash, 'hash')
if err then return redis.error_reply(err) end
local existed = redis.call('EXISTS', hash)
local prev = redis.call('HMGET', hash, 'name', 'category')
local prevName, prevCategory = prev[1], prev[2]
local category = prevCategory
if a.action == 'deleted' then
  category = false
elseif a.category then
  category = a.category
end
local oldSet, newSet
if prevCategory and prevCategory ~= category then oldSet = keyOf(a.categoryKey, prevCategory) end
if category then newSet = keyOf(a.categoryKey, category) end
for _, key in ipairs({oldSet or false, newSet or false}) do
  if key then
    err = wrongType(key, 'set')
    if err then return redis.error_reply(err) end
  end
end
if oldSet then redis.call('SREM', oldSet, a.productId) end
if newSet then redis.call('SADD', newSet, a.productId) end
if a.action == 'deleted' then
  redis.call('DEL', hash)
else
  if #a.set > 0 then inChunks('HSET', hash, a.set) end
  if #a.unset > 0 then inChunks('HDEL', hash, a.unset) end
end
local caches = {}
for _, key in ipairs(a.cacheKeys) do caches[#caches + 1] = key end
for _, parts in ipairs(a.cacheCategoryKeys) do
  if prevCategory then caches[#caches + 1] = keyOf(parts, prevCategory) end
  if category and category ~= prevCategory then caches[#caches + 1] = keyOf(parts, category) end
end
if #caches > 0 then redis.call('DEL', unpack(caches)) end
if mark then redis.call('SET', mark, '1', 'PX', ARGV[2]) end
if a.note then
  local n = a.note
  local msg = n.head
  local function member(name, value)
    if value then msg = msg .. ',"' .. name .. '":' .. cjson.encode(value) end
  end
  member('name', n.name or prevName)
  if a.action == 'deleted' then member('category', prevCategory) else member('category', category) end
  if a.action ~= 'deleted' and a.category and prevCategory and a.category ~= prevCategory then
    member('previousCategory', prevCategory)
  end
  redis.call('PUBLISH', n.channel, msg .. n.tail)
end
return {existed, prevName, prevCategory, 1}
)lua";

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// A JSON value for an error message, shortened: payloads can be large.
std::string preview(const OrderedJson& j) {
  constexpr size_t kMax = 80;
  std::string s = j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  return s.size() <= kMax ? s : s.substr(0, kMax) + "...";
}

// ---- ISO-8601 times ----------------------------------------------------------

// "2024-01-15T10:30:00.000Z" for milliseconds since the Unix epoch.
std::string isoUtc(int64_t ms) {
  int64_t secs = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) {  // floor, for times before 1970
    rem += 1000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) {
    return std::to_string(ms);
  }
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

std::string isoNow() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return isoUtc(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

// ---- log values ------------------------------------------------------------------

// A value in a key=value log line: bare when that is unambiguous, otherwise
// quoted with escapes, so that a name with spaces or a line break can
// neither split the line nor fake another field.
std::string logQuoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string logValue(std::string_view s) {
  bool bare = !s.empty();
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '\\' || c == '=' || c == ',' || c == '[' || c == ']') {
      bare = false;
      break;
    }
  }
  return bare ? std::string(s) : logQuoted(s);
}

// ---- key templates ---------------------------------------------------------------

// A Redis key template such as "{prefix}cache:product:{productId}".
class KeyTemplate {
 public:
  enum class Slot { Literal, Prefix, ProductId, Category };

  KeyTemplate() = default;

  // Throws std::invalid_argument naming `where` for an unknown placeholder.
  KeyTemplate(std::string text, const std::string& where) : text_(std::move(text)) {
    if (text_.empty()) {
      throw std::invalid_argument("config key " + quote(where) + ": must be a non-empty string");
    }
    std::string literal;
    size_t i = 0;
    while (i < text_.size()) {
      size_t close = text_[i] == '{' ? text_.find('}', i) : std::string::npos;
      if (close == std::string::npos || !isName(std::string_view(text_).substr(i + 1, close - i - 1))) {
        literal += text_[i];  // a brace that opens no placeholder is part of the key
        ++i;
        continue;
      }
      std::string name = text_.substr(i + 1, close - i - 1);
      Slot slot = Slot::Literal;
      if (name == "prefix") {
        slot = Slot::Prefix;
      } else if (name == "productId") {
        slot = Slot::ProductId;
      } else if (name == "category") {
        slot = Slot::Category;
      } else {
        throw std::invalid_argument("config key " + quote(where) + ": unknown placeholder {" + name + "} in " +
                                    quote(text_) + " (known: {prefix}, {productId}, {category})");
      }
      if (!literal.empty()) {
        pieces_.push_back({Slot::Literal, std::move(literal)});
        literal.clear();
      }
      pieces_.push_back({slot, {}});
      i = close + 1;
    }
    if (!literal.empty()) {
      pieces_.push_back({Slot::Literal, std::move(literal)});
    }
  }

  bool uses(Slot slot) const {
    for (const auto& p : pieces_) {
      if (p.slot == slot) {
        return true;
      }
    }
    return false;
  }

  // The key for one product, split at each {category}: joining the parts
  // with a category gives that category's key (one part: no {category}).
  // Placeholders are replaced in one pass, so a product id that happens to
  // contain "{category}" stays as it is.
  std::vector<std::string> render(std::string_view prefix, std::string_view product_id) const {
    std::vector<std::string> parts(1);
    for (const auto& p : pieces_) {
      switch (p.slot) {
        case Slot::Literal:
          parts.back() += p.text;
          break;
        case Slot::Prefix:
          parts.back() += prefix;
          break;
        case Slot::ProductId:
          parts.back() += product_id;
          break;
        case Slot::Category:
          parts.emplace_back();
          break;
      }
    }
    return parts;
  }

  const std::string& text() const { return text_; }

  // For the start-up log line: the prefix filled in, the rest as written.
  std::string describe(std::string_view prefix) const {
    std::string out;
    for (const auto& p : pieces_) {
      switch (p.slot) {
        case Slot::Literal:
          out += p.text;
          break;
        case Slot::Prefix:
          out += prefix;
          break;
        case Slot::ProductId:
          out += "{productId}";
          break;
        case Slot::Category:
          out += "{category}";
          break;
      }
    }
    return out;
  }

 private:
  static bool isName(std::string_view s) {
    if (s.empty()) {
      return false;
    }
    for (char c : s) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  struct Piece {
    Slot slot;
    std::string text;
  };
  std::string text_;
  std::vector<Piece> pieces_;
};

// ---- configuration -----------------------------------------------------------------

struct Settings {
  std::vector<KeyTemplate> cache_keys;
  KeyTemplate product_key;
  KeyTemplate category_key;
  std::string channel = "jollyjet:events:notifications";
  bool notify = true;
};

[[noreturn]] void badValue(const std::string& key, const std::string& rule, const Json& got) {
  throw std::invalid_argument("config key " + quote(key) + ": " + rule + ", got " +
                              got.dump(-1, ' ', false, Json::error_handler_t::replace));
}

std::string stringAt(const Json& j, const std::string& key) {
  if (!j.is_string() || j.get_ref<const std::string&>().empty()) {
    badValue(key, "must be a non-empty string", j);
  }
  return j.get<std::string>();
}

const Json& objectAt(const Json& j, const std::string& key) {
  if (!j.is_object()) {
    badValue(key, "must be a map", j);
  }
  return j;
}

[[noreturn]] void unknownKey(const std::string& where, const std::string& name, const std::string& known) {
  throw std::invalid_argument("unknown config key " + quote(where.empty() ? name : where + "." + name) +
                              " (known: " + known + ")");
}

Settings parseSettings(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw std::invalid_argument("config must be a map (got " + std::string(text) + ")");
  }
  Settings s;
  s.cache_keys = {KeyTemplate("{prefix}cache:product:{productId}", "cache_keys[0]"),
                  KeyTemplate("{prefix}cache:category:{category}", "cache_keys[1]")};
  s.product_key = KeyTemplate("{prefix}jollyjet:product:{productId}", "read_model.product_key");
  s.category_key = KeyTemplate("{prefix}jollyjet:category:{category}", "read_model.category_key");
  for (const auto& [name, value] : j.items()) {
    if (name == "cache_keys") {
      if (!value.is_array()) {
        badValue(name, "must be a list of key templates", value);
      }
      s.cache_keys.clear();
      for (size_t i = 0; i < value.size(); ++i) {
        std::string where = "cache_keys[" + std::to_string(i) + "]";
        s.cache_keys.emplace_back(stringAt(value[i], where), where);
      }
    } else if (name == "read_model") {
      for (const auto& [sub, v] : objectAt(value, name).items()) {
        std::string where = name + "." + sub;
        if (sub == "product_key") {
          s.product_key = KeyTemplate(stringAt(v, where), where);
        } else if (sub == "category_key") {
          s.category_key = KeyTemplate(stringAt(v, where), where);
        } else {
          unknownKey(name, sub, "product_key, category_key");
        }
      }
    } else if (name == "notifications") {
      for (const auto& [sub, v] : objectAt(value, name).items()) {
        std::string where = name + "." + sub;
        if (sub == "channel") {
          s.channel = stringAt(v, where);
        } else if (sub == "enabled") {
          if (!v.is_boolean()) {
            badValue(where, "must be true or false", v);
          }
          s.notify = v.get<bool>();
        } else {
          unknownKey(name, sub, "channel, enabled");
        }
      }
    } else {
      unknownKey("", name, "cache_keys, read_model, notifications");
    }
  }
  // One hash per product and one set per category: a template that would
  // share a key between products (or between categories) is a mistake.
  using Slot = KeyTemplate::Slot;
  if (!s.product_key.uses(Slot::ProductId) || s.product_key.uses(Slot::Category)) {
    throw std::invalid_argument(
        "config key \"read_model.product_key\": must contain {productId} and not "
        "{category} (a product's category changes), got " +
        quote(s.product_key.text()));
  }
  if (!s.category_key.uses(Slot::Category) || s.category_key.uses(Slot::ProductId)) {
    throw std::invalid_argument(
        "config key \"read_model.category_key\": must contain {category} and not "
        "{productId} (one set holds the ids of a category), got " +
        quote(s.category_key.text()));
  }
  return s;
}

// ---- events ------------------------------------------------------------------------

enum class Action { Created, Updated, Deleted };

const char* actionName(Action a) {
  switch (a) {
    case Action::Created:
      return "created";
    case Action::Updated:
      return "updated";
    case Action::Deleted:
      return "deleted";
  }
  return "?";
}

// What one valid event asks of the read model.
struct Change {
  Action action = Action::Created;
  std::string event_type;
  std::string product_id;
  std::optional<std::string> name;      // the name the event gives, if any
  std::optional<std::string> category;  // the category the event gives, if any
  std::optional<std::string> price;     // the price the event gives, as JSON number text
  std::vector<std::string> set;         // hash fields and values to write: field, value, ...
  std::vector<std::string> unset;       // hash fields to remove (a change to null)
  std::vector<std::string> changed;     // PRODUCT_UPDATED: the keys of `changes`, in order
};

// Validates the payload of a product event; throws evh::Reject naming the
// field. Field paths are written as in the event ("payload.changes.price").
class PayloadReader {
 public:
  explicit PayloadReader(std::string type) : type_(std::move(type)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& rule, const OrderedJson* got) const {
    throw evh::Reject(type_ + " " + path + ": " + rule + (got ? ", got " + preview(*got) : std::string(", missing")));
  }

  std::string nonEmptyString(const OrderedJson& obj, const std::string& key, const std::string& path) const {
    auto it = obj.find(key);
    if (it == obj.end()) {
      fail(path, "must be a non-empty string", nullptr);
    }
    return nonEmptyString(*it, path);
  }
  std::string nonEmptyString(const OrderedJson& v, const std::string& path) const {
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      fail(path, "must be a non-empty string", &v);
    }
    return v.get<std::string>();
  }

  std::string price(const OrderedJson& obj, const std::string& key, const std::string& path) const {
    auto it = obj.find(key);
    if (it == obj.end()) {
      fail(path, "must be a number >= 0", nullptr);
    }
    return price(*it, path);
  }
  // The price as JSON number text ("12.5"), which is what the hash stores.
  std::string price(const OrderedJson& v, const std::string& path) const {
    bool ok = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0) ||
              (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() >= 0.0);
    if (!ok) {
      fail(path, "must be a number >= 0", &v);
    }
    return v.dump();
  }

 private:
  std::string type_;
};

// A JSON value as a hash field value: strings as they are, anything else as
// its JSON text.
std::string fieldValue(const OrderedJson& v) {
  return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// Hash fields the plugin maintains itself: an event's own "createdAt" or
// "updatedAt" is not written over them.
bool ownField(const std::string& key) { return key == "createdAt" || key == "updatedAt"; }

Change parseChange(const evh::Event& ev) {
  Change c;
  c.event_type = std::string(ev.type());
  if (c.event_type == kCreated) {
    c.action = Action::Created;
  } else if (c.event_type == kUpdated) {
    c.action = Action::Updated;
  } else if (c.event_type == kDeleted) {
    c.action = Action::Deleted;
  } else {
    throw evh::Reject("unsupported eventType " + quote(c.event_type) + " (product handles " + kCreated + ", " +
                      kUpdated + ", " + kDeleted + ")");
  }
  PayloadReader r(c.event_type);
  std::string_view text = ev.payload();
  OrderedJson p = OrderedJson::parse(text.begin(), text.end(), nullptr, false);
  if (p.is_discarded() || !p.is_object()) {
    r.fail("payload", "must be a JSON object", p.is_discarded() ? nullptr : &p);
  }
  c.product_id = r.nonEmptyString(p, "productId", "payload.productId");
  // The event's time, normalised (it may have been sent as epoch ms): a
  // retry writes the same value again.
  std::string at = isoUtc(ev.timestampMs());

  switch (c.action) {
    case Action::Created: {
      c.name = r.nonEmptyString(p, "name", "payload.name");
      c.price = r.price(p, "price", "payload.price");
      c.category = r.nonEmptyString(p, "category", "payload.category");
      c.set = {"productId", c.product_id, "name",      *c.name, "price",     *c.price,
               "category",  *c.category,  "createdAt", at,      "updatedAt", at};
      // Fields beyond the plan's four (stock, description, ...) are kept
      // like the changes of an update, for search and inventory.
      for (const auto& [key, value] : p.items()) {
        if (key == "productId" || key == "name" || key == "price" || key == "category" || ownField(key) ||
            key.empty() || value.is_null()) {
          continue;
        }
        c.set.push_back(key);
        c.set.push_back(fieldValue(value));
      }
      break;
    }
    case Action::Updated: {
      auto it = p.find("changes");
      if (it == p.end() || !it->is_object()) {
        r.fail("payload.changes", "must be an object", it == p.end() ? nullptr : &*it);
      }
      c.set = {"productId", c.product_id};
      for (const auto& [key, value] : it->items()) {
        std::string path = "payload.changes." + key;
        if (key.empty()) {
          r.fail("payload.changes", "has an empty key", &*it);
        }
        c.changed.push_back(key);
        if (key == "productId") {
          // Ids are keys: a product cannot be renamed by an update.
          if (!value.is_string() || value.get<std::string>() != c.product_id) {
            r.fail(path, "cannot change (it must equal payload.productId)", &value);
          }
          continue;
        }
        if (key == "name") {
          c.name = r.nonEmptyString(value, path);
          c.set.insert(c.set.end(), {key, *c.name});
        } else if (key == "price") {
          c.price = r.price(value, path);
          c.set.insert(c.set.end(), {key, *c.price});
        } else if (key == "category") {
          c.category = r.nonEmptyString(value, path);
          c.set.insert(c.set.end(), {key, *c.category});
        } else if (ownField(key)) {
          continue;
        } else if (value.is_null()) {
          c.unset.push_back(key);
        } else {
          c.set.insert(c.set.end(), {key, fieldValue(value)});
        }
      }
      c.set.insert(c.set.end(), {"updatedAt", at});
      break;
    }
    case Action::Deleted:
      break;
  }
  return c;
}

// What the read model held before the event, as the script reports it.
struct Before {
  bool existed = false;
  std::optional<std::string> name;
  std::optional<std::string> category;
};

// Everything a call needs after handle() has returned.
struct Job {
  Change change;
  std::string event_id;
  std::string correlation_id;
  evh::Completion done;
};

// Text of the JSON value j without its closing brace (j is an object), to be
// continued with more members.
std::string openObject(const OrderedJson& j) {
  std::string s = j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  s.pop_back();
  return s;
}

// ---- the plugin -------------------------------------------------------------------

class Product final : public evh::Plugin {
 public:
  static constexpr const char* kDescription =
      "JollyJet product events: PRODUCT_CREATED/UPDATED/DELETED -> read model, cache invalidation, notifications";

  Product(evh::Host host, std::string_view config_json)
      : Plugin(host),
        settings_(parseSettings(config_json)),
        prefix_(host.envPrefix()),
        category_key_(settings_.category_key.render(prefix_, "")),
        created_(host.counter("created", "PRODUCT_CREATED events applied")),
        updated_(host.counter("updated", "PRODUCT_UPDATED events applied")),
        deleted_(host.counter("deleted", "PRODUCT_DELETED events applied")),
        rejected_(host.counter("rejected", "events rejected: unsupported type or invalid payload")),
        redis_errors_(host.counter("redis_errors", "Redis errors and failed requests (each answered RETRY)")),
        already_applied_(
            host.counter("already_applied", "events found already applied by their idempotency mark (answered OK)")) {
    std::string caches;
    for (const auto& t : settings_.cache_keys) {
      caches += (caches.empty() ? "" : ", ") + t.describe(prefix_);
    }
    host.info("read model " + settings_.product_key.describe(prefix_) + " + " +
              settings_.category_key.describe(prefix_) + "; invalidates [" + caches + "]; notifications " +
              (settings_.notify ? "on " + prefix_ + settings_.channel : std::string("off")));
  }

  evh::Result handle(const evh::Event& ev, evh::Call& call) override {
    Change change;
    try {
      change = parseChange(ev);
    } catch (const evh::Reject& e) {
      rejected_.add();
      return evh::Result::reject(e.what());
    }
    std::string hash = settings_.product_key.render(prefix_, change.product_id).front();
    auto job = std::make_shared<Job>(
        Job{std::move(change), std::string(ev.id()), std::string(ev.correlationId()), call.defer()});
    std::string args = scriptArgs(*job);
    // On an idempotent route the script writes the mark with the effects.
    std::string ttl = std::to_string(ev.idempotencyTtlMs());
    std::vector<std::string_view> argv{"EVAL", kApplyScript, "1", hash, args};
    if (!ev.idempotencyKey().empty()) {
      argv = {"EVAL", kApplyScript, "2", hash, ev.idempotencyKey(), args, ttl};
    }
    evh_status s = host().command(argv, [this, job](const evh::Reply& r) { onApplied(job, r); });
    if (s != EVH_OK) {
      redis_errors_.add();
      return evh::Result::retry("product: cannot send EVAL for " + hash + ": " + describeStatus(s));
    }
    return evh::Result::pending();
  }

 private:
  static std::string describeStatus(evh_status s) {
    switch (s) {
      case EVH_ERR_UNAVAILABLE:
        return "redis unavailable";
      case EVH_ERR_CANCELLED:
        return "host shutting down";
      case EVH_ERR_NOMEM:
        return "out of memory";
      default:
        return "status " + std::to_string(s);
    }
  }

  std::string scriptArgs(const Job& job) {
    const Change& c = job.change;
    Json a = {{"action", actionName(c.action)},
              {"productId", c.product_id},
              {"set", c.set},
              {"unset", c.unset},
              {"categoryKey", category_key_},
              {"cacheKeys", Json::array()},
              {"cacheCategoryKeys", Json::array()}};
    if (c.category) {
      a["category"] = *c.category;
    }
    for (const auto& t : settings_.cache_keys) {
      std::vector<std::string> parts = t.render(prefix_, c.product_id);
      if (parts.size() == 1) {
        a["cacheKeys"].push_back(parts.front());
      } else {
        a["cacheCategoryKeys"].push_back(parts);
      }
    }
    if (settings_.notify) {
      a["note"] = notification(job);
    }
    return a.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

  void fail(const std::shared_ptr<Job>& job, const std::string& step, const evh::Reply& r) {
    redis_errors_.add();
    job->done.complete(evh::Result::retry("product: " + step + " failed: " + r.describe()));
  }

  // The script ran: the read model is written, the caches invalidated, the
  // notification published -- or the mark said it all happened before.
  void onApplied(const std::shared_ptr<Job>& job, const evh::Reply& r) {
    if (!r.ok() || r.type() != EVH_REPLY_ARRAY || r.size() != 4) {
      if (r.ok()) {
        redis_errors_.add();
        job->done.complete(evh::Result::retry("product: unexpected reply to EVAL"));
        return;
      }
      fail(job, "applying " + job->change.event_type + " for productId=" + job->change.product_id, r);
      return;
    }
    if (r[3].integer() == 0) {
      already_applied_.add();
      host().debug("product eventId=" + logValue(job->event_id) + " productId=" + logValue(job->change.product_id) +
                   " already applied (its idempotency mark exists): nothing done");
      job->done.complete(evh::Result::ok());
      return;
    }
    Before before;
    before.existed = r[0].integer() != 0;
    if (r[1].type() == EVH_REPLY_STRING) {
      before.name = std::string(r[1].str());
    }
    if (r[2].type() == EVH_REPLY_STRING) {
      before.category = std::string(r[2].str());
    }
    finish(*job, before);
  }

  // The product's name and category after the event, as far as known.
  static std::optional<std::string> nameAfter(const Change& c, const Before& b) { return c.name ? c.name : b.name; }
  static std::optional<std::string> categoryAfter(const Change& c, const Before& b) {
    if (c.action == Action::Deleted) {
      return b.category;  // what it was: that is what a reader wants to know
    }
    return c.category ? c.category : b.category;
  }
  static bool moved(const Change& c, const Before& b) {
    return c.action != Action::Deleted && c.category && b.category && *c.category != *b.category;
  }

  // The notification for kApplyScript's ARGV note: the envelope as JSON text
  // around the members that depend on the read model before the event (name,
  // category, previousCategory), which the script fills in. Key order: the
  // envelope's, then productId, action, name, category, previousCategory,
  // changedKeys, sourceEventId.
  Json notification(const Job& job) {
    const Change& c = job.change;
    OrderedJson envelope = {{"eventId", newEventId()}, {"eventType", kNotificationType}, {"timestamp", isoNow()}};
    if (!job.correlation_id.empty()) {
      envelope["correlationId"] = job.correlation_id;
    }
    OrderedJson head = {{"productId", c.product_id}, {"action", actionName(c.action)}};
    OrderedJson tail = OrderedJson::object();
    if (c.action == Action::Updated) {
      tail["changedKeys"] = c.changed;
    }
    tail["sourceEventId"] = job.event_id;
    Json note = {{"channel", prefix_ + settings_.channel},
                 {"head", openObject(envelope) + ",\"payload\":" + openObject(head)},
                 {"tail", "," + openObject(tail).substr(1) + "}}"}};
    if (c.name) {
      note["name"] = *c.name;  // else the script uses the read model's
    }
    return note;
  }

  // Every Redis step succeeded: log the one line and answer OK.
  void finish(const Job& job, const Before& before) {
    const Change& c = job.change;
    switch (c.action) {
      case Action::Created:
        created_.add();
        break;
      case Action::Updated:
        updated_.add();
        break;
      case Action::Deleted:
        deleted_.add();
        break;
    }
    if (host().logEnabled(evh::LogLevel::Info)) {
      std::string line = std::string("product ") + actionName(c.action) + " productId=" + logValue(c.product_id);
      if (c.action == Action::Updated) {
        std::string keys;
        for (const auto& k : c.changed) {
          keys += (keys.empty() ? "" : ",") + logValue(k);
        }
        line += " changed=[" + keys + "]";
      }
      if (auto name = nameAfter(c, before)) {
        line += " name=" + logQuoted(*name);
      }
      if (auto category = categoryAfter(c, before)) {
        line += " category=" + logValue(*category);
      }
      if (moved(c, before)) {
        line += " previousCategory=" + logValue(*before.category);
      }
      if (c.price) {
        line += " price=" + *c.price;
      }
      if (c.action != Action::Created && !before.existed) {
        line += " inReadModel=false";
      }
      line += " eventId=" + logValue(job.event_id);
      if (!job.correlation_id.empty()) {
        line += " correlationId=" + logValue(job.correlation_id);
      }
      host().info(line);
    }
    job.done.complete(evh::Result::ok());
  }

  // A random (version 4) UUID, from libuuid.
  static std::string newEventId() {
    uuid_t id;
    uuid_generate_random(id);
    char text[UUID_STR_LEN];
    uuid_unparse_lower(id, text);
    return text;
  }

  const Settings settings_;
  const std::string prefix_;
  const std::vector<std::string> category_key_;  // the category set's key, split at {category}
  evh::Metric created_;
  evh::Metric updated_;
  evh::Metric deleted_;
  evh::Metric rejected_;
  evh::Metric redis_errors_;
  evh::Metric already_applied_;
};

}  // namespace

EVH_PLUGIN(Product, "product", "0.2.0")
