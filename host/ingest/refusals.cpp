// Dead-lettering what the ingest pipeline refuses, with throttled log lines.
#include "ingest/refusals.h"

#include "common/log.h"

#include <cstring>

namespace evh::ingest {
namespace {

dispatch::DeadLetterInfo info(std::string reason, std::string error_name, std::string message) {
  dispatch::DeadLetterInfo i;
  i.reason = std::move(reason);
  i.error_name = std::move(error_name);
  i.error_message = std::move(message);
  return i;
}

std::string suppressedNote(const Throttle& t) {
  return t.suppressed() > 0 ? " [" + std::to_string(t.suppressed()) + " more since the last such line]" : std::string();
}

constexpr const char* kRefused = "evhost_ingest_refused_total";
constexpr const char* kRefusedHelp =
    "messages and events dead-lettered before any plugin saw them, by reason: the decoder's (too_large, too_deep, "
    "not_json, not_object, missing_field, wrong_type, bad_timestamp, empty_batch), no_event_field, overloaded, "
    "poison, trimmed, cut_off, and the checks' reasons";

}  // namespace

RefusalStats::RefusalStats(ops::Registry& stats)
    : scope(stats),
      no_event_field(scope.counter(kRefused, kRefusedHelp, {{"reason", "no_event_field"}})),
      overloaded(scope.counter(kRefused, kRefusedHelp, {{"reason", "overloaded"}})),
      poison(scope.counter(kRefused, kRefusedHelp, {{"reason", "poison"}})),
      trimmed(scope.counter(kRefused, kRefusedHelp, {{"reason", "trimmed"}})),
      cut_off(scope.counter(kRefused, kRefusedHelp, {{"reason", "cut_off"}})) {
  for (size_t r = 0; r <= static_cast<size_t>(event::Reason::EmptyBatch); ++r) {
    invalid.push_back(scope.counter(kRefused, kRefusedHelp, {{"reason", event::reasonCode(event::Reason(r))}}));
  }
}

const ops::Counter& RefusalStats::check(const std::string& reason) {
  auto it = checks.find(reason);
  if (it == checks.end()) {
    it = checks.emplace(reason, scope.counter(kRefused, kRefusedHelp, {{"reason", reason}})).first;
  }
  return it->second;
}

Refusals::Refusals(uv_loop_t* loop, dispatch::Dispatcher& dispatcher, event::Decoder& decoder, ops::Registry& stats,
                   std::function<void()> after)
    : loop_(loop), dispatcher_(dispatcher), decoder_(decoder), after_(std::move(after)), stats_(stats) {
  invalid_log_.assign(static_cast<size_t>(event::Reason::EmptyBatch) + 1, Throttle(1000));
}

void Refusals::logInvalid(event::Reason reason, const std::string& line) {
  Throttle& throttle = invalid_log_[static_cast<size_t>(reason)];
  if (throttle.allow(uv_now(loop_))) {
    log::host().warn("{}{}", line, suppressedNote(throttle));
  }
}

void Refusals::invalid(const event::Rejected& rejected, std::string_view logical, std::string_view redis_channel,
                       std::function<void()> done) {
  stats_.invalid[static_cast<size_t>(rejected.reason)].inc();
  const bool from_stream = static_cast<bool>(done);
  dispatcher_.deadLetter(dispatch::makeEntry(info("invalid", event::reasonCode(rejected.reason), rejected.detail),
                                             rejected.rawPart(), logical, redis_channel),
                         std::move(done), from_stream);
  after_();
  if (invalid_log_[static_cast<size_t>(rejected.reason)].allow(uv_now(loop_))) {
    const Throttle& t = invalid_log_[static_cast<size_t>(rejected.reason)];
    log::host().warn("invalid event on {}: {} (reason={}, {} bytes){}", redis_channel, rejected.detail,
                     event::reasonCode(rejected.reason), rejected.raw_length, suppressedNote(t));
  }
}

void Refusals::tooLarge(uint64_t limit, std::string_view logical, std::string_view redis_channel,
                        std::string_view payload, std::string_view delivery_id, std::function<void()> done) {
  stats_.invalid[static_cast<size_t>(event::Reason::TooLarge)].inc();
  const std::string detail =
      "message of " + std::to_string(payload.size()) + " bytes exceeds max_message_bytes " + std::to_string(limit);
  auto i = info("invalid", event::reasonCode(event::Reason::TooLarge),
                delivery_id.empty() ? detail : detail + " [stream entry " + std::string(delivery_id) + "]");
  const bool from_stream = static_cast<bool>(done);
  dispatcher_.deadLetter(dispatch::makeTooLargeEntry(i, payload, logical, redis_channel), std::move(done), from_stream);
  after_();
  logInvalid(event::Reason::TooLarge, "invalid event on " + std::string(redis_channel) + ": " + detail +
                                          " (reason=too_large; dead-lettered with its first " +
                                          std::to_string(dispatch::kTooLargePrefixBytes) + " bytes, size and SHA-256)");
}

void Refusals::noEventField(const runtime::Channel& ch, const std::string& id, std::function<void()> ack) {
  stats_.no_event_field.inc();
  const char* why = "stream entry has no \"event\" field (or it is not a string)";
  log::host().warn("invalid entry {} on stream {}: {}", id, ch.key, why);
  dispatcher_.deadLetter(dispatch::makeEntry(info("invalid", "no_event_field", why), "", ch.name, ch.key),
                         std::move(ack), true);
  after_();
}

void Refusals::streamEntry(const runtime::Channel& ch, const std::string& id, const char* reason,
                           const std::string& why, const std::string* event_field, std::function<void()> ack) {
  // too_large: refused from its length while read; event_field holds the
  // first bytes the reader had (raw).
  const bool too_large = std::strcmp(reason, "too_large") == 0;
  if (too_large) {
    stats_.invalid[static_cast<size_t>(event::Reason::TooLarge)].inc();
  } else if (std::strcmp(reason, "poison") == 0) {
    stats_.poison.inc();
  } else {
    stats_.trimmed.inc();
  }
  auto i = info(too_large ? "invalid" : reason, reason, why + " [stream entry " + id + "]");
  // A payload that decodes to one event keeps its eventId and eventType in
  // the entry (evhctl dlq show <eventId> finds it); anything else is kept raw.
  dispatch::DeadLetterEntry entry;
  std::vector<event::Item> items;
  if (event_field != nullptr && !too_large) {
    decoder_.decode(event::makeMessage(*event_field, ch.name, ch.key, id, true), items);
  }
  if (items.size() == 1 && std::holds_alternative<event::Event>(items[0])) {
    const auto& ev = std::get<event::Event>(items[0]);
    log::host().warn("stream {}: entry {} (eventId={} eventType={}) dead-lettered (reason={}): {}", ch.key, id,
                     ev.eventId(), ev.eventType(), reason, why);
    entry = dispatch::makeEntry(i, ev);
  } else {
    log::host().warn("stream {}: entry {} dead-lettered (reason={}): {}", ch.key, id, reason, why);
    entry = dispatch::makeEntry(i, event_field != nullptr ? std::string_view(*event_field) : std::string_view(),
                                ch.name, ch.key);
  }
  dispatcher_.deadLetter(std::move(entry), std::move(ack), true);
  after_();
}

void Refusals::cutOff(std::string_view head, uint64_t held) {
  stats_.cut_off.inc();
  // Cut off at the reader: its channel and most of its bytes were never
  // read. The entry keeps what the reader held first (raw RESP).
  const std::string detail =
      "a Pub/Sub message over the reader's bound (2 x limits.max_message_bytes + 64 KiB) was cut off after " +
      std::to_string(held) + " bytes; the subscriber connection was dropped and taken again";
  log::host().error("invalid event: {} (reason=too_large)", detail);
  dispatcher_.deadLetter(
      dispatch::makeEntry(info("invalid", event::reasonCode(event::Reason::TooLarge), detail), head, "", ""));
  after_();
}

void Refusals::checkFailed(const char* check, const Refusal& refusal, const event::Event& ev,
                           std::function<void()> done, bool from_stream) {
  stats_.check(refusal.reason).inc();
  dispatcher_.deadLetter(dispatch::makeEntry(info(refusal.reason, check, refusal.detail), ev), std::move(done),
                         from_stream);
  after_();
  if (check_log_.allow(uv_now(loop_))) {
    log::host().warn("event {} (eventType={}) on {} refused by the {} check: {} (reason={}){}", ev.eventId(),
                     ev.eventType(), ev.redisChannel(), check, refusal.detail, refusal.reason,
                     suppressedNote(check_log_));
  }
}

void Refusals::messageRefused(const char* reason, const char* what, const std::string& detail, std::string_view logical,
                              std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
                              std::function<void()> done) {
  stats_.check(reason).inc();
  const std::string where = delivery_id.empty() ? std::string() : " [stream entry " + std::string(delivery_id) + "]";
  const bool from_stream = static_cast<bool>(done);
  dispatcher_.deadLetter(dispatch::makeEntry(info(reason, what, detail + where), payload, logical, redis_channel),
                         std::move(done), from_stream);
  after_();
  if (check_log_.allow(uv_now(loop_))) {
    log::host().warn("message on {}{} refused: {} (reason={}, {}){}", redis_channel, where, detail, reason, what,
                     suppressedNote(check_log_));
  }
}

void Refusals::overloaded(const event::Event& ev, std::string_view logical, size_t in_flight) {
  stats_.overloaded.inc();
  dispatcher_.deadLetter(dispatch::makeEntry(
      info("overloaded", "overloaded", std::to_string(in_flight) + " events in flight (limits.max_in_flight)"), ev));
  after_();
  if (overload_log_.allow(uv_now(loop_))) {
    log::host().warn(
        "overloaded: {} events in flight (limits.max_in_flight); event {} on {} dead-lettered (reason=overloaded){}",
        in_flight, ev.eventId(), logical, suppressedNote(overload_log_));
  }
}

void Refusals::overloaded(std::string_view payload, std::string_view logical, std::string_view redis_channel,
                          size_t in_flight) {
  stats_.overloaded.inc();
  dispatcher_.deadLetter(dispatch::makeEntry(
      info("overloaded", "overloaded", std::to_string(in_flight) + " events in flight (limits.max_in_flight)"), payload,
      logical, redis_channel));
  after_();
  if (overload_log_.allow(uv_now(loop_))) {
    log::host().warn(
        "overloaded: {} events in flight (limits.max_in_flight); a signed message on {} dead-lettered "
        "(reason=overloaded){}",
        in_flight, redis_channel, suppressedNote(overload_log_));
  }
}

}  // namespace evh::ingest
