// product: JollyJet's product events (the plan's Step 2.2): validation, a log line, cache invalidation, a read model,
// notifications.
//
// PRODUCT_CREATED, PRODUCT_UPDATED and PRODUCT_DELETED (the plan's Step 1.1
// payloads) are validated -- an invalid payload is REJECTed with a message
// naming the field -- and then applied to Redis in one asynchronous step
// through the host's command connection, never blocking the loop: kApplyScript
// writes the product's read-model hash and its category set membership, DELs
// the configured cache keys, writes the route's idempotency mark (when the
// route has one) and PUBLISHes a PRODUCT_NOTIFICATION envelope for the admin
// dashboard. The events handed over together share one EVALSHA of it (up to
// `max_batch`), each with an outcome of its own.
//
// The call answers OK once the script succeeded and logs one line; any Redis
// error or a lost connection answers RETRY with the error, and the host
// retries per the route's policy. On an idempotent route every effect happens
// once per event, also across crashes (the mark is written with them); see
// kApplyScript. docs/plugins/product.md describes the config, the keys
// written and the notification.
//
// Files: product.cpp (this: the entry point, handle(), the log line),
// product.h (the plugin's class), product_events.cpp (validating an event),
// product_payload_fast.cpp (the common payloads, read faster),
// product_read_model.cpp (kApplyScript and its batches), product_notify.cpp
// (the notification), product_settings.cpp (the config and key templates),
// product_text.cpp (quoting, ISO times, log values).
#include "product.h"

#include "product_text.h"

#include <evh/plugin.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace product {
namespace {

// The product's name and category after the event, as far as known (null:
// not known). Pointers into c or b, not copies: the log line reads them.
const std::string* nameAfter(const Change& c, const Before& b) {
  const auto& name = c.name ? c.name : b.name;
  return name ? &*name : nullptr;
}
const std::string* categoryAfter(const Change& c, const Before& b) {
  // A deleted product's is what it was: that is what a reader wants to know.
  const auto& category = c.action == Action::Deleted ? b.category : c.category ? c.category : b.category;
  return category ? &*category : nullptr;
}
bool moved(const Change& c, const Before& b) {
  return c.action != Action::Deleted && c.category && b.category && *c.category != *b.category;
}

}  // namespace

Product::Product(evh::Host host, std::string_view config_json)
    : Plugin(host),
      settings_(parseSettings(config_json)),
      prefix_(host.envPrefix()),
      category_key_(settings_.category_key.render(prefix_, "")),
      script_sha_(scriptSha()),
      created_(host.counter("created", "PRODUCT_CREATED events applied")),
      updated_(host.counter("updated", "PRODUCT_UPDATED events applied")),
      deleted_(host.counter("deleted", "PRODUCT_DELETED events applied")),
      rejected_(host.counter("rejected", "events rejected: unsupported type or invalid payload")),
      redis_errors_(host.counter("redis_errors", "Redis errors and failed requests (each answered RETRY)")),
      already_applied_(
          host.counter("already_applied", "events found already applied by their idempotency mark (answered OK)")) {
  std::string caches;
  for (const auto& t : settings_.cache_keys) {
    caches += (caches.empty() ? "" : ", ") + t.describe(prefix_);
  }
  host.info("read model " + settings_.product_key.describe(prefix_) + " + " + settings_.category_key.describe(prefix_) +
            "; invalidates [" + caches + "]; notifications " +
            (settings_.notify ? "on " + prefix_ + settings_.channel : std::string("off")));
}

evh::Result Product::handle(const evh::Event& ev, evh::Call& call) {
  Change change;
  try {
    change = parseChange(ev);
  } catch (const evh::Reject& e) {
    rejected_.add();
    return evh::Result::reject(e.what());
  }
  apply(ev, Job{std::move(change), std::string(ev.id()), std::string(ev.correlationId()), call.defer()});
  return evh::Result::pending();
}

// Every Redis step succeeded: log the one line and answer OK.
void Product::finish(const Job& job, const Before& before) {
  const Change& c = job.change;
  switch (c.action) {
    case Action::Created:
      created_.add();
      break;
    case Action::Updated:
      updated_.add();
      break;
    case Action::Deleted:
      deleted_.add();
      break;
  }
  if (host().logEnabled(evh::LogLevel::Info)) {
    // One buffer, appended to: the line is built for every event.
    std::string line;
    line.reserve(256);
    line.append("product ").append(actionName(c.action)).append(" productId=");
    appendLogValue(line, c.product_id);
    if (c.action == Action::Updated) {
      line.append(" changed=[");
      for (size_t i = 0; i < c.changed.size(); ++i) {
        line.append(i == 0 ? "" : ",");
        appendLogValue(line, c.changed[i]);
      }
      line.append("]");
    }
    if (const std::string* name = nameAfter(c, before)) {
      line.append(" name=");
      appendLogQuoted(line, *name);
    }
    if (const std::string* category = categoryAfter(c, before)) {
      line.append(" category=");
      appendLogValue(line, *category);
    }
    if (moved(c, before)) {
      line.append(" previousCategory=");
      appendLogValue(line, *before.category);
    }
    if (c.price) {
      line.append(" price=").append(*c.price);
    }
    if (c.action != Action::Created && !before.existed) {
      line.append(" inReadModel=false");
    }
    line.append(" eventId=");
    appendLogValue(line, job.event_id);
    if (!job.correlation_id.empty()) {
      line.append(" correlationId=");
      appendLogValue(line, job.correlation_id);
    }
    host().info(line);
  }
  job.done.complete(evh::Result::ok());
}

}  // namespace product

EVH_PLUGIN(product::Product, "product", "0.2.0")
