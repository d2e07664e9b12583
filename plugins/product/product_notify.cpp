// product_notify: the PRODUCT_NOTIFICATION the product plugin publishes for
// the admin dashboard. notification() builds it as JSON text around the
// members only the read model knows, for kApplyScript to complete and
// PUBLISH in the same step as the writes (see product_read_model.cpp);
// docs/plugins/product.md describes the envelope and its payload.
#include "product.h"

#include "product_text.h"

#include <openssl/rand.h>
#include <uuid/uuid.h>

#include <cstring>

namespace product {
namespace {

constexpr const char* kNotificationType = "PRODUCT_NOTIFICATION";

// A random (version 4) UUID. The 122 random bits come from OpenSSL's DRBG,
// drawn 4 KiB (256 UUIDs) at a time; libuuid sets nothing else we need and
// writes the text. Why not libuuid's uuid_generate_random: it costs about
// 6 µs per UUID (util-linux stirs random() with getpid, getuid and
// gettimeofday after each getrandom: four system calls), OpenSSL 1.6 µs per
// 16-byte draw, a share of a 4 KiB draw 33 ns (2026-12-03, this machine).
// Should OpenSSL fail, libuuid's does the UUID. Appended to out.
void appendEventId(std::string& out) {
  thread_local unsigned char pool[4096];
  thread_local size_t used = sizeof pool;
  uuid_t id;
  if (used == sizeof pool && RAND_bytes(pool, sizeof pool) == 1) {
    used = 0;
  }
  if (used < sizeof pool) {
    std::memcpy(id, pool + used, sizeof id);
    std::memset(pool + used, 0, sizeof id);  // each draw serves once
    used += sizeof id;
    id[6] = static_cast<unsigned char>((id[6] & 0x0f) | 0x40);  // version 4 (RFC 9562, 5.4)
    id[8] = static_cast<unsigned char>((id[8] & 0x3f) | 0x80);  // variant 10
  } else {
    uuid_generate_random(id);
  }
  char text[UUID_STR_LEN];
  uuid_unparse_lower(id, text);
  out.append(text, UUID_STR_LEN - 1);
}

}  // namespace

// The notification for kApplyScript: the envelope as JSON text around the
// members that depend on the read model before the event (name, category,
// previousCategory), which the script fills in. Key order: the envelope's,
// then productId, action, name, category, previousCategory, changedKeys,
// sourceEventId. Written as text, each string value through nlohmann's
// escaping: building ordered_json objects to dump them took 12 % of evhost's
// CPU in the JollyJet pipeline (2026-12-07).
Note Product::notification(const Job& job) const {
  const Change& c = job.change;
  // One buffer, kept from one event to the next (the three parts are views
  // into it, taken once it is whole): no allocation per event once it has
  // grown.
  std::string& buf = note_buf_;
  buf.clear();
  buf.append("{\"eventId\":\"");
  appendEventId(buf);
  buf.append("\",\"eventType\":\"").append(kNotificationType).append("\",\"timestamp\":\"");
  appendIsoUtc(buf, nowMs());
  buf.append("\"");
  if (!job.correlation_id.empty()) {
    buf.append(",\"correlationId\":");
    appendJsonString(buf, job.correlation_id);
  }
  buf.append(",\"payload\":{\"productId\":");
  appendJsonString(buf, c.product_id);
  buf.append(",\"action\":\"").append(actionName(c.action)).append("\"");
  const size_t head_end = buf.size();
  if (c.action == Action::Updated) {
    buf.append(",\"changedKeys\":[");
    for (size_t i = 0; i < c.changed.size(); ++i) {
      buf.append(i == 0 ? "" : ",");
      appendJsonString(buf, c.changed[i]);
    }
    buf.append("]");
  }
  buf.append(",\"sourceEventId\":");
  appendJsonString(buf, job.event_id);
  buf.append("}}");
  const size_t tail_end = buf.size();
  if (c.name) {
    appendJsonString(buf, *c.name);
  }
  const std::string_view all(buf);
  return Note{all.substr(0, head_end), all.substr(head_end, tail_end - head_end), all.substr(tail_end)};
}

}  // namespace product
