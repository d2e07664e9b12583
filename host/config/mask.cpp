// Masking environment values in messages: see mask.h.
#include "config/mask.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

namespace evh::config {
namespace {

bool isWordByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || c == '_' || u >= 0x80;
}

void maskAll(std::string& text, const std::string& value, bool whole_word) {
  static const std::string kMask = "***";
  size_t at = 0;
  while ((at = text.find(value, at)) != std::string::npos) {
    const size_t end = at + value.size();
    const bool bounded = (at == 0 || !isWordByte(text[at - 1])) && (end == text.size() || !isWordByte(text[end]));
    if (whole_word && !bounded) {
      at += 1;
      continue;
    }
    text.replace(at, value.size(), kMask);
    at += kMask.size();
  }
}

}  // namespace

std::string maskValues(std::string text, const std::vector<std::string>& values) {
  std::vector<std::string> masks;
  for (const std::string& v : values) {
    if (v.empty()) {
      continue;
    }
    masks.push_back(v);
    // As JSON would write it ("a\"b", "\u0001"): a plugin quoting it, or a
    // message quoting a JSON text.
    std::string quoted = nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    quoted = quoted.substr(1, quoted.size() - 2);
    if (quoted != v) {
      masks.push_back(std::move(quoted));
    }
  }
  std::sort(masks.begin(), masks.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& v : masks) {
    maskAll(text, v, v.size() < 4);
  }
  return text;
}

}  // namespace evh::config
