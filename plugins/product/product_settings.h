// product_settings: the product plugin's settings, read from the instance's
// `config:` block (evhost hands it over as JSON text): the key templates of
// the read model and the caches, and the notification channel.
// docs/plugins/product.md describes every key. parseSettings() refuses an
// unknown key or placeholder, naming it, and a template that would share one
// key between products or between categories.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace product {

// A Redis key template such as "{prefix}cache:product:{productId}".
class KeyTemplate {
 public:
  enum class Slot { Literal, Prefix, ProductId, Category };

  KeyTemplate() = default;

  // Throws std::invalid_argument naming `where` for an unknown placeholder.
  KeyTemplate(std::string text, const std::string& where);

  bool uses(Slot slot) const;

  // The key for one product, split at each {category}: joining the parts
  // with a category gives that category's key (one part: no {category}).
  // Placeholders are replaced in one pass, so a product id that happens to
  // contain "{category}" stays as it is.
  std::vector<std::string> render(std::string_view prefix, std::string_view product_id) const;

  const std::string& text() const { return text_; }

  // For the start-up log line: the prefix filled in, the rest as written.
  std::string describe(std::string_view prefix) const;

 private:
  static bool isName(std::string_view s);

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

// The settings in the JSON text; defaults for what is absent. Throws
// std::invalid_argument naming the key for a bad value or an unknown key.
Settings parseSettings(std::string_view text);

}  // namespace product
