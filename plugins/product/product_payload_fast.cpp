// product_payload_fast: the common product payload read with simdjson (see
// parseChangeFast in product_events.h).
//
// Why a second reader: parsing each payload into nlohmann's ordered_json
// (one allocation per key and string, a linear map) took 12-14 % of evhost's
// CPU in the JollyJet pipeline (2026-12-07). simdjson's DOM parser reuses its
// buffers, and its objects keep the document's key order.
//
// Why it declines instead of rejecting: the checked reader
// (product_events.cpp) is the one definition of what is valid and of every
// error message. This one accepts only what it can read to exactly the same
// Change -- string, number, boolean and null values where a value is
// stored, distinct keys, at most 64 KiB -- and leaves everything else (an
// invalid payload, an object or array value it would store, a duplicate
// key, a number simdjson cannot hold) to that reader. The fuzz
// harness product_payload (tests/fuzz) compares the two.
#include "product_events.h"

#include "product_text.h"

#include <simdjson.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace product {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Keys compared for duplicates one by one: payloads have a handful. More
// than this many keys go to the checked reader.
constexpr size_t kMaxKeys = 64;

// Payloads larger than this go to the checked reader. Why: the parser keeps
// buffers of about 15 bytes per byte of the largest document it has read,
// for the life of the thread (a 1 MiB payload would leave 15 MiB behind),
// while nlohmann's frees everything after each event.
constexpr size_t kMaxBytes = 64 * 1024;

// A number's text as nlohmann's dump() writes it (the checked reader's
// text): integers in decimal, floating-point numbers through nlohmann. False
// for a floating-point negative zero ("-0.0", "-1e-400"), which is left to
// the checked reader ("-0", an integer to both, is "0").
bool numberText(element v, std::string& out) {
  switch (v.type()) {
    case element_type::INT64:
      out = std::to_string(int64_t(v));
      return true;
    case element_type::UINT64:
      out = std::to_string(uint64_t(v));
      return true;
    case element_type::DOUBLE: {
      const double d = double(v);
      if (!std::isfinite(d) || (d == 0.0 && std::signbit(d))) {
        return false;
      }
      // What nlohmann's dump() writes for a finite double: its serializer
      // calls detail::to_chars (Grisu2) on a 64-byte buffer. Called here
      // directly: building a json and a serializer (which reads the locale)
      // for each price took ~1,000 instructions (2026-12-07). The unit test
      // compares the two on random doubles, the fuzz harness the readers.
      char digits[64];
      const char* end = nlohmann::detail::to_chars(digits, digits + sizeof digits, d);
      out.assign(digits, static_cast<size_t>(end - digits));
      return true;
    }
    default:
      return false;
  }
}

// A price: a number >= 0.
bool priceText(element v, std::string& out) {
  switch (v.type()) {
    case element_type::INT64:
      if (int64_t(v) < 0) {
        return false;
      }
      break;
    case element_type::DOUBLE:
      if (!(double(v) >= 0.0)) {
        return false;
      }
      break;
    case element_type::UINT64:
      break;
    default:
      return false;
  }
  return numberText(v, out);
}

bool nonEmptyString(element v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS || s.empty()) {
    return false;
  }
  out.assign(s);
  return true;
}

// A value as a hash field value: a string as it is, a number or boolean as
// its JSON text. Objects and arrays are left to the checked reader.
bool fieldValue(element v, std::string& out) {
  switch (v.type()) {
    case element_type::STRING:
      out.assign(std::string_view(v));
      return true;
    case element_type::BOOL:
      out = bool(v) ? "true" : "false";
      return true;
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return numberText(v, out);
    default:
      return false;
  }
}

// True when the object's keys are distinct (and not too many to compare).
bool distinctKeys(object o) {
  std::string_view seen[kMaxKeys];
  size_t n = 0;
  for (auto field : o) {
    if (n == kMaxKeys) {
      return false;
    }
    for (size_t i = 0; i < n; ++i) {
      if (seen[i] == field.key) {
        return false;
      }
    }
    seen[n++] = field.key;
  }
  return true;
}

bool ownField(std::string_view key) { return key == "createdAt" || key == "updatedAt"; }

// PRODUCT_CREATED, in one pass over the payload's members: the plan's four
// are noted where they stand, the others (stock, description, ...) go to
// the hash after them, in their order. Looking each of the four up by name
// and then walking the members again to find the others took twice the key
// comparisons (2026-12-08).
bool created(object p, const std::string& at, Change& c) {
  element name_v, price_v, category_v;
  bool has_name = false, has_price = false, has_category = false;
  c.set.reserve(12 + 2 * p.size());
  c.set.resize(12);  // the fixed twelve, filled in once the members are read
  for (auto field : p) {
    const std::string_view key = field.key;
    if (key == "name") {
      name_v = field.value;
      has_name = true;
    } else if (key == "price") {
      price_v = field.value;
      has_price = true;
    } else if (key == "category") {
      category_v = field.value;
      has_category = true;
    } else if (key == "productId" || ownField(key) || key.empty() || field.value.is_null()) {
      continue;
    } else {
      std::string text;
      if (!fieldValue(field.value, text)) {
        return false;
      }
      c.set.emplace_back(key);
      c.set.push_back(std::move(text));
    }
  }
  std::string name, price, category;
  if (!has_name || !nonEmptyString(name_v, name) || !has_price || !priceText(price_v, price) || !has_category ||
      !nonEmptyString(category_v, category)) {
    return false;
  }
  c.set[0] = "productId";
  c.set[1] = c.product_id;
  c.set[2] = "name";
  c.set[3] = name;
  c.set[4] = "price";
  c.set[5] = price;
  c.set[6] = "category";
  c.set[7] = category;
  c.set[8] = "createdAt";
  c.set[9] = at;
  c.set[10] = "updatedAt";
  c.set[11] = at;
  c.name = std::move(name);
  c.price = std::move(price);
  c.category = std::move(category);
  return true;
}

bool updated(object p, const std::string& at, Change& c) {
  object changes;
  if (p["changes"].get_object().get(changes) != simdjson::SUCCESS || !distinctKeys(changes)) {
    return false;
  }
  c.set.reserve(4 + 2 * changes.size());
  c.set.emplace_back("productId");
  c.set.push_back(c.product_id);
  for (auto field : changes) {
    const std::string_view key = field.key;
    const element value = field.value;
    if (key.empty()) {
      return false;
    }
    c.changed.emplace_back(key);
    if (key == "productId") {
      std::string_view id;
      if (value.get_string().get(id) != simdjson::SUCCESS || id != c.product_id) {
        return false;
      }
      continue;
    }
    std::string text;
    if (key == "name" || key == "category") {
      if (!nonEmptyString(value, text)) {
        return false;
      }
      (key == "name" ? c.name : c.category) = text;
    } else if (key == "price") {
      if (!priceText(value, text)) {
        return false;
      }
      c.price = text;
    } else if (ownField(key)) {
      continue;
    } else if (value.is_null()) {
      c.unset.emplace_back(key);
      continue;
    } else if (!fieldValue(value, text)) {
      return false;
    }
    c.set.emplace_back(key);
    c.set.push_back(std::move(text));
  }
  c.set.emplace_back("updatedAt");
  c.set.push_back(at);
  return true;
}

}  // namespace

std::optional<Change> parseChangeFast(Action action, std::string_view type, std::string_view payload,
                                      int64_t timestamp_ms) {
  // One parser per thread (handle() runs on the loop): its buffers are kept
  // from one payload to the next.
  thread_local simdjson::dom::parser parser(kMaxBytes);
  if (payload.size() > kMaxBytes) {
    return std::nullopt;
  }
  object p;
  if (parser.parse(payload.data(), payload.size()).get_object().get(p) != simdjson::SUCCESS || !distinctKeys(p)) {
    return std::nullopt;
  }
  Change c;
  c.action = action;
  c.event_type = std::string(type);
  element id;
  if (p["productId"].get(id) != simdjson::SUCCESS || !nonEmptyString(id, c.product_id)) {
    return std::nullopt;
  }
  const std::string at = isoUtc(timestamp_ms);
  switch (action) {
    case Action::Created:
      if (!created(p, at, c)) {
        return std::nullopt;
      }
      break;
    case Action::Updated:
      if (!updated(p, at, c)) {
        return std::nullopt;
      }
      break;
    case Action::Deleted:
      break;
  }
  return c;
}

}  // namespace product
