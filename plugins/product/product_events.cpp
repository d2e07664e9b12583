// product_events: validating a product event's payload and turning it into
// a Change (see product_events.h). Payload paths in the messages are written
// as in the event ("payload.changes.price"); payloads are read with their key
// order kept.
#include "product_events.h"

#include "product_text.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <utility>

namespace product {

// ---- events ------------------------------------------------------------------------

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

namespace {

constexpr const char* kCreated = "PRODUCT_CREATED";
constexpr const char* kUpdated = "PRODUCT_UPDATED";
constexpr const char* kDeleted = "PRODUCT_DELETED";

// Payloads keep their key order, so that changed keys are logged and
// notified in the order the publisher wrote them.
using OrderedJson = nlohmann::ordered_json;

// A JSON value for an error message, shortened: payloads can be large.
std::string preview(const OrderedJson& j) {
  constexpr size_t kMax = 80;
  std::string s = j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  return s.size() <= kMax ? s : s.substr(0, kMax) + "...";
}

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

}  // namespace

Change parseChange(const evh::Event& ev) {
  const std::string_view type = ev.type();
  Action action;
  if (type == kCreated) {
    action = Action::Created;
  } else if (type == kUpdated) {
    action = Action::Updated;
  } else if (type == kDeleted) {
    action = Action::Deleted;
  } else {
    throw evh::Reject("unsupported eventType " + quote(type) + " (product handles " + kCreated + ", " + kUpdated +
                      ", " + kDeleted + ")");
  }
  if (auto c = parseChangeFast(action, type, ev.payload(), ev.timestampMs())) {
    return std::move(*c);
  }
  return parseChangeChecked(action, type, ev.payload(), ev.timestampMs());
}

Change parseChangeChecked(Action action, std::string_view type, std::string_view text, int64_t timestamp_ms) {
  Change c;
  c.action = action;
  c.event_type = std::string(type);
  PayloadReader r(c.event_type);
  OrderedJson p = OrderedJson::parse(text.begin(), text.end(), nullptr, false);
  if (p.is_discarded() || !p.is_object()) {
    r.fail("payload", "must be a JSON object", p.is_discarded() ? nullptr : &p);
  }
  c.product_id = r.nonEmptyString(p, "productId", "payload.productId");
  // The event's time, normalised (it may have been sent as epoch ms): a
  // retry writes the same value again.
  std::string at = isoUtc(timestamp_ms);

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

}  // namespace product
