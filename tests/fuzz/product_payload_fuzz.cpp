// Fuzzes the product plugin's two payload readers against each other
// (plugins/product/product_events.h): whatever the fast reader (simdjson)
// accepts, the checked reader (nlohmann, the definition of valid) must accept
// too and turn into exactly the same Change; neither may crash. The first
// byte picks the event type, the rest is the payload.
#include "product_events.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace {

void require(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool same(const product::Change& a, const product::Change& b) {
  return a.action == b.action && a.event_type == b.event_type && a.product_id == b.product_id && a.name == b.name &&
         a.category == b.category && a.price == b.price && a.set == b.set && a.unset == b.unset &&
         a.changed == b.changed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using product::Action;
  if (size == 0) {
    return 0;
  }
  static constexpr Action kActions[] = {Action::Created, Action::Updated, Action::Deleted};
  static constexpr std::string_view kTypes[] = {"PRODUCT_CREATED", "PRODUCT_UPDATED", "PRODUCT_DELETED"};
  const size_t pick = data[0] % 3;
  const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr int64_t kAt = 1705314600123;  // 2024-01-15T10:30:00.123Z

  std::optional<product::Change> checked;
  try {
    checked = product::parseChangeChecked(kActions[pick], kTypes[pick], payload, kAt);
  } catch (const evh::Reject&) {
  }
  std::optional<product::Change> fast = product::parseChangeFast(kActions[pick], kTypes[pick], payload, kAt);
  if (fast) {
    require(checked.has_value());
    require(same(*fast, *checked));
  }
  return 0;
}
