// product_settings: parsing the product plugin's config (see
// product_settings.h): key templates, split into literal text and
// placeholders once at start-up, and the config's keys and their checks.
#include "product_settings.h"

#include "product_text.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <utility>

namespace product {

// ---- key templates ---------------------------------------------------------------

KeyTemplate::KeyTemplate(std::string text) : text_(std::move(text)) {
  if (text_.empty()) {
    throw std::invalid_argument("must be a non-empty string");
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
      throw std::invalid_argument("unknown placeholder {" + name + "} in " + quote(text_) +
                                  " (known: {prefix}, {productId}, {category})");
    }
    if (!literal.empty()) {
      pieces_.push_back({Slot::Literal, std::move(literal)});
      literal.clear();
    }
    pieces_.push_back({slot, {}});
    parts_ += slot == Slot::Category ? 1 : 0;
    i = close + 1;
  }
  if (!literal.empty()) {
    pieces_.push_back({Slot::Literal, std::move(literal)});
  }
}

bool KeyTemplate::uses(Slot slot) const {
  for (const auto& p : pieces_) {
    if (p.slot == slot) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> KeyTemplate::render(std::string_view prefix, std::string_view product_id) const {
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

void KeyTemplate::renderTo(Args& out, std::string_view prefix, std::string_view product_id) const {
  for (const auto& p : pieces_) {
    switch (p.slot) {
      case Slot::Literal:
        out.append(p.text);
        break;
      case Slot::Prefix:
        out.append(prefix);
        break;
      case Slot::ProductId:
        out.append(product_id);
        break;
      case Slot::Category:
        out.end();
        break;
    }
  }
  out.end();
}

KeyTemplate KeyTemplate::tagged(std::string_view tag) const {
  KeyTemplate out = *this;
  const std::string text = "{" + std::string(tag) + "}:";
  auto at = out.pieces_.begin();
  if (at != out.pieces_.end() && at->slot == Slot::Prefix) {
    ++at;
  }
  if (at != out.pieces_.end() && at->slot == Slot::Literal) {
    at->text.insert(0, text);
  } else {
    out.pieces_.insert(at, Piece{Slot::Literal, text});
  }
  return out;
}

std::string KeyTemplate::describe(std::string_view prefix) const {
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

bool KeyTemplate::isName(std::string_view s) {
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

// ---- configuration -----------------------------------------------------------------

namespace {

using Json = nlohmann::json;

std::string shown(const Json& got) { return got.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A key template at `where`, or the problem added and nullopt.
std::optional<KeyTemplate> templateAt(const Json& j, const std::string& where, evh::ConfigErrors& errors) {
  if (!j.is_string() || j.get_ref<const std::string&>().empty()) {
    errors.add(where, "must be a non-empty string, got " + shown(j));
    return std::nullopt;
  }
  try {
    return KeyTemplate(j.get<std::string>());
  } catch (const std::invalid_argument& e) {
    errors.add(where, e.what());
    return std::nullopt;
  }
}

// Calls `read(name, value)` for each key of the map at `where`, or adds why it is not a map.
template <class Read>
void forEachKey(const Json& j, const std::string& where, evh::ConfigErrors& errors, Read read) {
  if (!j.is_object()) {
    errors.add(where, "must be a map, got " + shown(j));
    return;
  }
  for (const auto& [name, value] : j.items()) {
    read(name, value);
  }
}

void readReadModel(const Json& j, Settings& s, evh::ConfigErrors& errors) {
  forEachKey(j, "/read_model", errors, [&](const std::string& sub, const Json& v) {
    const std::string where = evh::pointerJoin("/read_model", sub);
    if (sub == "product_key" || sub == "category_key") {
      if (std::optional<KeyTemplate> t = templateAt(v, where, errors)) {
        (sub == "product_key" ? s.product_key : s.category_key) = std::move(*t);
      }
    } else {
      errors.add(where, "unknown key (known: product_key, category_key)");
    }
  });
}

void readNotifications(const Json& j, Settings& s, evh::ConfigErrors& errors) {
  forEachKey(j, "/notifications", errors, [&](const std::string& sub, const Json& v) {
    const std::string where = evh::pointerJoin("/notifications", sub);
    if (sub == "channel") {
      if (v.is_string() && !v.get_ref<const std::string&>().empty()) {
        s.channel = v.get<std::string>();
      } else {
        errors.add(where, "must be a non-empty string, got " + shown(v));
      }
    } else if (sub == "enabled") {
      if (v.is_boolean()) {
        s.notify = v.get<bool>();
      } else {
        errors.add(where, "must be true or false, got " + shown(v));
      }
    } else {
      errors.add(where, "unknown key (known: channel, enabled)");
    }
  });
}

// A Redis hash tag's text: what goes between the braces. Not empty (Redis
// would ignore "{}"), no brace (the tag would end early), printable ASCII
// so that a log line shows it as it is.
void readHashTag(const Json& v, Settings& s, evh::ConfigErrors& errors) {
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    errors.add("/hash_tag", "must be a non-empty string, got " + shown(v));
    return;
  }
  const std::string& tag = v.get_ref<const std::string&>();
  for (char c : tag) {
    if (c == '{' || c == '}' || c <= ' ' || c > '~') {
      errors.add("/hash_tag",
                 "must be printable ASCII without braces or spaces (the braces are added), got " + quote(tag));
      return;
    }
  }
  s.hash_tag = tag;
}

// How many events one script call applies at most: a whole number from 1
// to 1000 (a script blocks Redis while it runs: about 13 µs per event).
void readMaxBatch(const Json& v, Settings& s, evh::ConfigErrors& errors) {
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1000) {
    errors.add("/max_batch", "must be a whole number from 1 to 1000, got " + shown(v));
    return;
  }
  s.max_batch = static_cast<int>(v.get<int64_t>());
}

}  // namespace

std::string Settings::markKey(std::string_view host_key, std::string_view prefix) const {
  if (hash_tag.empty()) {
    return std::string(host_key);
  }
  const std::string tag = "{" + hash_tag + "}:";
  if (!prefix.empty() && host_key.substr(0, prefix.size()) == prefix) {
    return std::string(prefix) + tag + std::string(host_key.substr(prefix.size()));
  }
  return tag + std::string(host_key);
}

Settings parseSettings(std::string_view text, evh::ConfigErrors& errors) {
  Settings s;
  s.cache_keys = {KeyTemplate("{prefix}cache:product:{productId}"), KeyTemplate("{prefix}cache:category:{category}")};
  s.product_key = KeyTemplate("{prefix}jollyjet:product:{productId}");
  s.category_key = KeyTemplate("{prefix}jollyjet:category:{category}");
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    errors.add("", "must be a map, got " + (j.is_discarded() ? std::string("text that is not JSON") : shown(j)));
    return s;
  }
  for (const auto& [name, value] : j.items()) {
    if (name == "cache_keys") {
      if (!value.is_array()) {
        errors.add("/cache_keys", "must be a list of key templates, got " + shown(value));
        continue;
      }
      s.cache_keys.clear();
      for (size_t i = 0; i < value.size(); ++i) {
        if (std::optional<KeyTemplate> t = templateAt(value[i], evh::pointerJoin("/cache_keys", i), errors)) {
          s.cache_keys.push_back(std::move(*t));
        }
      }
    } else if (name == "read_model") {
      readReadModel(value, s, errors);
    } else if (name == "notifications") {
      readNotifications(value, s, errors);
    } else if (name == "hash_tag") {
      readHashTag(value, s, errors);
    } else if (name == "max_batch") {
      readMaxBatch(value, s, errors);
    } else {
      errors.add(evh::pointerJoin("", name),
                 "unknown key (known: cache_keys, read_model, notifications, hash_tag, max_batch)");
    }
  }
  if (!s.hash_tag.empty()) {
    for (auto& t : s.cache_keys) {
      t = t.tagged(s.hash_tag);
    }
    s.product_key = s.product_key.tagged(s.hash_tag);
    s.category_key = s.category_key.tagged(s.hash_tag);
  }
  // One hash per product and one set per category: a template that would
  // share a key between products (or between categories) is a mistake.
  using Slot = KeyTemplate::Slot;
  if (!s.product_key.uses(Slot::ProductId) || s.product_key.uses(Slot::Category)) {
    errors.add("/read_model/product_key",
               "must contain {productId} and not {category} (a product's category changes), got " +
                   quote(s.product_key.text()));
  }
  if (!s.category_key.uses(Slot::Category) || s.category_key.uses(Slot::ProductId)) {
    errors.add("/read_model/category_key",
               "must contain {category} and not {productId} (one set holds the ids of a category), got " +
                   quote(s.category_key.text()));
  }
  return s;
}

Settings parseSettings(std::string_view text) {
  evh::ConfigErrors errors;
  Settings s = parseSettings(text, errors);
  errors.throwIfAny();
  return s;
}

}  // namespace product
