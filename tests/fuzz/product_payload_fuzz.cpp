// Fuzzes the product plugin's two payload readers against each other
// (plugins/product/product_events.h): whatever the fast reader (simdjson)
// accepts, the checked reader (nlohmann, the definition of valid) must accept
// too and turn into exactly the same Change; neither may crash. The first
// byte picks the event type, the rest is the payload.
//
// simdjson picks one of its kernels for the CPU it runs on; scripts/fuzz runs
// this harness once under each kernel this CPU can run (simdjson's own
// SIMDJSON_FORCE_IMPLEMENTATION), listed by the harness itself when
// EVH_FUZZ_LIST_SIMDJSON is set.
#include "product_events.h"

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
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

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (std::getenv("EVH_FUZZ_LIST_SIMDJSON") != nullptr) {
    for (const simdjson::implementation* impl : simdjson::get_available_implementations()) {
      if (impl->supported_by_runtime_system()) {
        std::printf("%s\n", impl->name().c_str());
      }
    }
    std::exit(0);
  }
  return 0;
}

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
