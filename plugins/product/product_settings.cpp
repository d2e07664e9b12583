// product_settings: parsing the product plugin's config (see
// product_settings.h): key templates, split into literal text and
// placeholders once at start-up, and the config's keys and their checks.
#include "product_settings.h"

#include "product_text.h"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <utility>

namespace product {

// ---- key templates ---------------------------------------------------------------

KeyTemplate::KeyTemplate(std::string text, const std::string& where) : text_(std::move(text)) {
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

}  // namespace

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

}  // namespace product
