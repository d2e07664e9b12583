// Fuzzes the envelope decoder (plan envelope, CloudEvents, BATCH): any bytes
// from Redis either decode to events whose every view lies in the message and
// whose JSON texts are valid (nlohmann::json as the independent oracle), or
// are rejected with a reason -- never a crash, a leak or undefined behaviour.
#include "event/envelope.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using evh::event::Decoder;
using evh::event::Event;
using evh::event::Item;
using evh::event::Rejected;

// The harness's own assertion: a broken invariant is a finding, like a crash.
void require(bool ok) {
  if (!ok) {
    std::abort();
  }
}

// Whether `text` is one valid JSON value, by nlohmann::json. It refuses a
// number a double cannot hold (out_of_range 406, "number overflow"), which
// evhost accepts on purpose (only a number's syntax is checked; plugins get
// the text): that is no disagreement, so it counts as valid.
bool validJson(std::string_view text) {
  try {
    (void)nlohmann::json::parse(text);
    return true;
  } catch (const nlohmann::json::out_of_range&) {
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

bool within(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check(const std::vector<Item>& items, std::string_view bytes) {
  require(!items.empty());
  for (const Item& item : items) {
    if (const auto* ev = std::get_if<Event>(&item)) {
      require(ev->raw() == bytes);
      require(within(ev->envelope(), ev->raw()));
      require(validJson(bytes));
      require(validJson(ev->envelope()));
      require(!ev->payload().empty() && ev->payload().front() == '{' && validJson(ev->payload()));
      evh_event view{};
      ev->fillView(view, 1, 3);
      for (const evh_str& s : {view.channel, view.event_type, view.event_id, view.correlation_id, view.timestamp,
                               view.payload, view.envelope, view.raw}) {
        require(s.ptr != nullptr);
      }
    } else {
      const auto& rejected = std::get<Rejected>(item);
      require(within(rejected.rawPart(), rejected.message->bytes));
      require(evh::event::reasonCode(rejected.reason) != nullptr);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The default limits, and tight ones so that too_large and too_deep are
  // reached by small inputs too.
  static Decoder wide;
  static Decoder tight(Decoder::Limits{512, 4});
  static std::vector<Item> items;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (Decoder* decoder : {&wide, &tight}) {
    auto message = evh::event::makeMessage(bytes, "product", "dev:jollyjet:events:product");
    decoder->decode(message, items);
    check(items, message->bytes);
  }
  // A Message built without makeMessage (no padding): the copying path.
  auto bare = std::make_shared<evh::event::Message>();
  bare->bytes.assign(bytes);
  bare->setNames("product", "", "");
  wide.decode(bare, items);
  check(items, bare->bytes);
  items.clear();
  return 0;
}
