// Incoming messages, the events decoded from them, and the hot-path envelope decoder.
#pragma once

#include <evh/plugin.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "event/limits.h"

namespace evh::event {

// The bytes of one message as received from Redis and where they came from.
// Immutable once made and shared (std::shared_ptr<const Message>) by every
// event and rejection unpacked from it, so a batch of 100 events holds one copy.
struct Message {
  // Created by makeMessage() with at least kPadding bytes of spare capacity
  // after size() so the decoder can parse it in place. A Message built any
  // other way still decodes, through one extra copy.
  std::string bytes;
  bool redelivered = false;  // a stream entry delivered before (our pending entries, or claimed)

  // The logical channel from the config, without the environment prefix.
  std::string_view channel() const noexcept { return std::string_view(names_).substr(0, channel_len_); }
  // The channel or stream key as seen on Redis, prefix included.
  std::string_view redisChannel() const noexcept {
    return std::string_view(names_).substr(channel_len_, redis_channel_len_);
  }
  // The stream entry id; empty for Pub/Sub.
  std::string_view deliveryId() const noexcept {
    return std::string_view(names_).substr(channel_len_ + redis_channel_len_);
  }
  // Sets the three, kept in one string: one allocation a message, not three
  // (a stream key and a channel name are mostly longer than a std::string
  // holds without one).
  void setNames(std::string_view channel, std::string_view redis_channel, std::string_view delivery_id);

  // simdjson reads up to this many bytes past the end of the input
  // (simdjson::SIMDJSON_PADDING; equality is checked in envelope.cpp).
  static constexpr size_t kPadding = 64;

 private:
  std::string names_;  // channel, redis channel and delivery id, one after the other
  size_t channel_len_ = 0;
  size_t redis_channel_len_ = 0;
};

// Copies `bytes` into a new Message with parsing padding reserved.
std::shared_ptr<const Message> makeMessage(std::string_view bytes, std::string_view channel,
                                           std::string_view redis_channel, std::string_view delivery_id = {},
                                           bool redelivered = false);

// Why a message, or one member of a batch, was not turned into an event.
enum class Reason {
  TooLarge,      // over Limits::max_message_bytes; not parsed at all
  TooDeep,       // arrays/objects nested deeper than Limits::max_depth anywhere
  NotJson,       // empty, invalid JSON, invalid UTF-8, trailing content
  NotObject,     // valid JSON whose top level (or batch member) is not an object
  MissingField,  // a required field is absent
  WrongType,     // a field has the wrong JSON type or an unacceptable value (also
                 // duplicates of a field the decoder reads, and nested BATCHes)
  BadTimestamp,  // timestamp/time is neither RFC 3339 nor integer epoch ms
  EmptyBatch,    // a BATCH whose messages array is empty
};

// Stable snake_case code for logs, metrics labels and dead-letter entries:
// "too_large", "too_deep", "not_json", "not_object", "missing_field",
// "wrong_type", "bad_timestamp", "empty_batch".
const char* reasonCode(Reason reason) noexcept;

// One decoded event. Owns what it needs: the shared Message plus a small
// string for the rare fields that needed unescaping. Field locations are
// offsets, not pointers, so moving or copying an Event keeps every view valid.
class Event {
 public:
  Event() = default;  // empty: every view is empty

  std::string_view eventId() const noexcept { return view(event_id_); }
  std::string_view eventType() const noexcept { return view(event_type_); }
  // Empty when absent or null.
  std::string_view correlationId() const noexcept { return view(correlation_id_); }
  // The timestamp as sent: the unescaped string content for RFC 3339, the
  // digits for epoch ms; empty for a CloudEvent without "time".
  std::string_view timestamp() const noexcept { return view(timestamp_); }
  // Milliseconds since the Unix epoch; 0 when there was no timestamp.
  int64_t timestampMs() const noexcept { return timestamp_ms_; }
  // JSON text of the payload object, exactly as in the message ("{}" for a
  // CloudEvent without data).
  std::string_view payload() const noexcept { return view(payload_); }
  // JSON text of this event's envelope object: the whole message, or the
  // member's text for a batch member.
  std::string_view envelope() const noexcept { return view(envelope_); }
  // The whole message exactly as received (for a batch member: the batch).
  std::string_view raw() const noexcept;
  std::string_view channel() const noexcept;
  std::string_view redisChannel() const noexcept;
  bool fromBatch() const noexcept { return from_batch_; }
  // Position in the BATCH's messages array; 0 when not from a batch.
  uint32_t batchIndex() const noexcept { return batch_index_; }
  const std::shared_ptr<const Message>& message() const noexcept { return message_; }

  // Fills the C view handed to plugins. Every evh_str points into this Event
  // or its Message (never NULL, so a plugin may memcpy even empty ones) and
  // stays valid while this Event is alive and unmodified.
  void fillView(evh_event& out, uint32_t attempt, uint32_t max_attempts) const noexcept;

 private:
  friend class Decoder;

  // Where one field's text is: in message_->bytes, or in local_ when the
  // field needed unescaping (or has no source text, like a default payload).
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
    bool local = false;
  };

  std::string_view view(const Span& span) const noexcept;

  std::shared_ptr<const Message> message_;
  std::string local_;
  Span event_id_;
  Span event_type_;
  Span correlation_id_;
  Span timestamp_;
  Span payload_;
  Span envelope_;
  int64_t timestamp_ms_ = 0;
  uint32_t batch_index_ = 0;
  bool from_batch_ = false;
};

// A message, or one member of a batch, that could not be decoded. Holds the
// Message so the raw text can be dead-lettered later.
struct Rejected {
  Reason reason = Reason::NotJson;
  std::string detail;  // names the field, e.g. `missing field "eventId"`
  std::shared_ptr<const Message> message;
  size_t raw_offset = 0;  // the rejected text within message->bytes: the
  size_t raw_length = 0;  // member's JSON for a batch member, else the whole message
  bool from_batch = false;
  uint32_t batch_index = 0;  // position in the BATCH when from_batch

  std::string_view rawPart() const noexcept;
};

using Item = std::variant<Event, Rejected>;

// Decodes envelopes with simdjson On Demand. Not thread-safe: one Decoder per
// thread, reused for every message (it keeps the parser's buffers warm).
class Decoder {
 public:
  struct Limits {
    size_t max_message_bytes = 1024 * 1024;
    // The top-level value is depth 1, so a plain event's payload object is
    // depth 2 and a batch member's payload depth 4. Scalars do not count.
    size_t max_depth = 64;
  };
  // Largest accepted settings (event/limits.h, which the config loader checks too).
  static constexpr size_t kMaxSupportedDepth = kMaxSupportedJsonDepth;
  static constexpr size_t kMaxSupportedMessageBytes = event::kMaxSupportedMessageBytes;

  Decoder();
  // Throws std::invalid_argument for a zero or over-large limit.
  explicit Decoder(Limits limits);
  // A moved-from Decoder may only be destroyed or assigned to.
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  ~Decoder();

  const Limits& limits() const noexcept;

  // Clears `out` (keeping its capacity) and appends one Item per event: one
  // for a plain envelope, one per member for a BATCH (in order). A whole
  // message that cannot be decoded yields exactly one Rejected. Never throws
  // except std::bad_alloc.
  //
  // Accepted shapes:
  //  - {"eventId","eventType","timestamp","correlationId"?,"payload":{}}
  //  - CloudEvents 1.0 structured JSON (has "specversion")
  //  - {"type":"BATCH","messages":[envelope, ...]} (no nesting)
  // Unknown fields are ignored, but the whole message must be valid JSON.
  void decode(std::shared_ptr<const Message> msg, std::vector<Item>& out);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evh::event
