// Fuzzes evhctl dlq's reading of dead-letter entries: any element of the list
// (which anything that can LPUSH may write) is either counted as corrupt or
// parsed into an entry that `list`, `show` and `replay` can print and replay
// -- never an exception escaping, a crash or unbounded recursion.
#include "cli/dlq_entry.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

namespace {

void require(bool ok) {
  if (!ok) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace dlq = evh::cli::dlq;
  std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<dlq::Entry> entry = dlq::parseEntry(text);
  if (!entry) {
    return 0;
  }
  require(entry->text == text && entry->json.is_object());
  // list
  require(dlq::listRow(*entry).size() == 5);
  // show: pretty and compact, and back (the replace handler makes any text valid UTF-8)
  const std::string shown = dlq::dump(entry->json, 2);
  require(dlq::parseEntry(dlq::dump(entry->json)).has_value());
  require(!shown.empty());
  // show / remove / replay by id
  (void)dlq::matches(*entry, dlq::field(entry->json, "eventId"));
  (void)dlq::matches(*entry, "");
  // replay
  require(!dlq::replayLabel(*entry).empty());
  const dlq::ReplayPlan plan = dlq::replayPlan(*entry, "dev:");
  require(plan.error.empty() == !plan.channel.empty());
  return 0;
}
