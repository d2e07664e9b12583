// product_notify: the PRODUCT_NOTIFICATION the product plugin publishes for
// the admin dashboard. notification() builds it as JSON text around the
// members only the read model knows, for kApplyScript to complete and
// PUBLISH in the same step as the writes (see product_read_model.cpp);
// docs/plugins/product.md describes the envelope and its payload.
#include "product.h"

#include "product_text.h"

#include <uuid/uuid.h>

namespace product {
namespace {

constexpr const char* kNotificationType = "PRODUCT_NOTIFICATION";

// The notification's members keep the order they are written in.
using OrderedJson = nlohmann::ordered_json;

// Text of the JSON value j without its closing brace (j is an object), to be
// continued with more members.
std::string openObject(const OrderedJson& j) {
  std::string s = j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  s.pop_back();
  return s;
}

// A random (version 4) UUID, from libuuid.
std::string newEventId() {
  uuid_t id;
  uuid_generate_random(id);
  char text[UUID_STR_LEN];
  uuid_unparse_lower(id, text);
  return text;
}

}  // namespace

// The notification for kApplyScript's ARGV note: the envelope as JSON text
// around the members that depend on the read model before the event (name,
// category, previousCategory), which the script fills in. Key order: the
// envelope's, then productId, action, name, category, previousCategory,
// changedKeys, sourceEventId.
Json Product::notification(const Job& job) {
  const Change& c = job.change;
  OrderedJson envelope = {{"eventId", newEventId()}, {"eventType", kNotificationType}, {"timestamp", isoNow()}};
  if (!job.correlation_id.empty()) {
    envelope["correlationId"] = job.correlation_id;
  }
  OrderedJson head = {{"productId", c.product_id}, {"action", actionName(c.action)}};
  OrderedJson tail = OrderedJson::object();
  if (c.action == Action::Updated) {
    tail["changedKeys"] = c.changed;
  }
  tail["sourceEventId"] = job.event_id;
  Json note = {{"channel", prefix_ + settings_.channel},
               {"head", openObject(envelope) + ",\"payload\":" + openObject(head)},
               {"tail", "," + openObject(tail).substr(1) + "}}"}};
  if (c.name) {
    note["name"] = *c.name;  // else the script uses the read model's
  }
  return note;
}

}  // namespace product
