// Messages and the decoded events' views: where each field's text is, and the C view handed to plugins.
#include <string>

#include "event/envelope.h"

namespace evh::event {
namespace {

// Non-NULL target for empty evh_str values, so plugins may memcpy them.
constexpr char kEmptyText[] = "";

}  // namespace

std::shared_ptr<const Message> makeMessage(std::string_view bytes, std::string_view channel,
                                           std::string_view redis_channel, std::string_view delivery_id,
                                           bool redelivered) {
  auto message = std::make_shared<Message>();
  message->bytes.reserve(bytes.size() + Message::kPadding);
  message->bytes.assign(bytes.data(), bytes.size());
  message->setNames(channel, redis_channel, delivery_id);
  message->redelivered = redelivered;
  return message;
}

void Message::setNames(std::string_view channel, std::string_view redis_channel, std::string_view delivery_id) {
  names_.clear();
  names_.reserve(channel.size() + redis_channel.size() + delivery_id.size());
  names_.append(channel).append(redis_channel).append(delivery_id);
  channel_len_ = channel.size();
  redis_channel_len_ = redis_channel.size();
}

const char* reasonCode(Reason reason) noexcept {
  switch (reason) {
    case Reason::TooLarge:
      return "too_large";
    case Reason::TooDeep:
      return "too_deep";
    case Reason::NotJson:
      return "not_json";
    case Reason::NotObject:
      return "not_object";
    case Reason::MissingField:
      return "missing_field";
    case Reason::WrongType:
      return "wrong_type";
    case Reason::BadTimestamp:
      return "bad_timestamp";
    case Reason::EmptyBatch:
      return "empty_batch";
  }
  return "unknown";
}

std::string_view Event::view(const Span& span) const noexcept {
  if (span.local) {
    return std::string_view(local_).substr(span.offset, span.length);
  }
  if (!message_) {
    return {};
  }
  return std::string_view(message_->bytes).substr(span.offset, span.length);
}

std::string_view Event::raw() const noexcept {
  return message_ ? std::string_view(message_->bytes) : std::string_view();
}

std::string_view Event::channel() const noexcept { return message_ ? message_->channel() : std::string_view(); }

std::string_view Event::redisChannel() const noexcept {
  return message_ ? message_->redisChannel() : std::string_view();
}

namespace {

evh_str toStr(std::string_view text) noexcept { return evh_str{text.empty() ? kEmptyText : text.data(), text.size()}; }

}  // namespace

void Event::fillView(evh_event& out, uint32_t attempt, uint32_t max_attempts) const noexcept {
  out = evh_event{};
  out.struct_size = static_cast<uint32_t>(sizeof(evh_event));
  out.attempt = attempt;
  out.max_attempts = max_attempts;
  out.flags = (from_batch_ ? static_cast<uint32_t>(EVH_EVENT_FROM_BATCH) : 0U) |
              (message_ && message_->redelivered ? static_cast<uint32_t>(EVH_EVENT_REDELIVERED) : 0U);
  out.channel = toStr(channel());
  out.redis_channel = toStr(redisChannel());
  out.event_type = toStr(eventType());
  out.event_id = toStr(eventId());
  out.correlation_id = toStr(correlationId());
  out.timestamp = toStr(timestamp());
  out.timestamp_ms = timestamp_ms_;
  out.payload = toStr(payload());
  out.envelope = toStr(envelope());
  out.raw = toStr(raw());
  out.delivery_id = toStr(message_ ? message_->deliveryId() : std::string_view());
  out.idempotency_key = toStr({});  // the dispatcher fills it in for idempotent routes
  out.idempotency_ttl_ms = 0;
}

std::string_view Rejected::rawPart() const noexcept {
  if (!message) {
    return {};
  }
  return std::string_view(message->bytes).substr(raw_offset, raw_length);
}

}  // namespace evh::event
