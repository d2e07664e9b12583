// product_settings: the product plugin's settings, read from the instance's
// `config:` block (evhost hands it over as JSON text): the key templates of
// the read model and the caches, and the notification channel.
// docs/plugins/product.md describes every key. One parser serves
// validate_config (every problem, with where it is) and the constructor
// (refusing on any): an unknown key or placeholder, a bad value, a template
// that would share one key between products or between categories.
#pragma once

#include "product_args.h"

#include <string>
#include <string_view>
#include <vector>

#include <evh/plugin.hpp>

namespace product {

// A Redis key template such as "{prefix}cache:product:{productId}".
class KeyTemplate {
 public:
  enum class Slot { Literal, Prefix, ProductId, Category };

  KeyTemplate() = default;

  // Throws std::invalid_argument for an empty text or an unknown
  // placeholder (the message names the placeholder, not the key).
  explicit KeyTemplate(std::string text);

  bool uses(Slot slot) const;

  // The key for one product, split at each {category}: joining the parts
  // with a category gives that category's key (one part: no {category}).
  // Placeholders are replaced in one pass, so a product id that happens to
  // contain "{category}" stays as it is.
  std::vector<std::string> render(std::string_view prefix, std::string_view product_id) const;
  // The same parts added to `out`, one argument each; and how many there are.
  void renderTo(Args& out, std::string_view prefix, std::string_view product_id) const;
  size_t parts() const noexcept { return parts_; }

  const std::string& text() const { return text_; }

  // The same template with the hash tag "{tag}:" put right after a leading
  // {prefix}, or at the start when it has none (the `hash_tag` setting).
  KeyTemplate tagged(std::string_view tag) const;

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
  size_t parts_ = 1;  // {category} slots + 1
};

// ---- configuration -----------------------------------------------------------------

struct Settings {
  std::vector<KeyTemplate> cache_keys;
  KeyTemplate product_key;
  KeyTemplate category_key;
  std::string channel = "jollyjet:events:notifications";
  bool notify = true;
  // `hash_tag`: empty, or the tag every key the plugin uses carries (already
  // put into the templates above by parseSettings) so that they share one
  // Redis Cluster slot.
  std::string hash_tag;
  // `max_batch`: at most this many events applied by one script call. The
  // events handed over together (one stream read, one burst of Pub/Sub
  // messages) share one EVALSHA; 1 makes it one call per event.
  int max_batch = 64;

  // The key of the event's idempotency mark as the script writes it: the
  // host's key, tagged like the templates (after `prefix` when it starts
  // with it) when hash_tag is set; as it is otherwise.
  std::string markKey(std::string_view host_key, std::string_view prefix) const;
};

// The settings in the JSON text; defaults for what is absent. Adds every
// problem to `errors` (JSON Pointer and message, see evh::ConfigErrors);
// with any, the settings are not to be used. Touches nothing.
Settings parseSettings(std::string_view text, evh::ConfigErrors& errors);

// The same, throwing std::invalid_argument with every problem (the constructor's).
Settings parseSettings(std::string_view text);

}  // namespace product
