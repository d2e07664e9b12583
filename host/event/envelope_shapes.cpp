// Which shape an envelope is -- a BATCH, the plan's plain envelope or a CloudEvents 1.0 structured event -- and the
// two event shapes checked field by field and turned into an Event (or one Rejected).
#include <string>
#include <utility>

#include "event/decoder_impl.h"

namespace evh::event {
namespace {

// The payload of a CloudEvent without data.
constexpr std::string_view kEmptyObject = "{}";

}  // namespace

void Decoder::Impl::emitRoot(const Fields& fields) {
  const bool is_batch = isString(fields[kType], "BATCH") && fields[kMessages].kind == Kind::Array;
  if (is_batch) {
    // The members are already in out_, decoded while "messages" was passed.
    Problem problem;
    if (!checkNoDuplicates(fields, {kType, kMessages}, problem)) {
      out_->clear();
      reject(problem.reason, std::move(problem.detail), wholeMessage(), false, 0);
    } else if (fields.members == 0) {
      reject(Reason::EmptyBatch, "batch has an empty \"messages\" array", wholeMessage(), false, 0);
    }
    return;
  }
  out_->clear();  // members decoded speculatively from a non-batch's "messages"
  emitEnvelope(fields, wholeMessage(), false, 0);
}

void Decoder::Impl::emitEnvelope(const Fields& fields, Span envelope, bool from_batch, uint32_t index) {
  const bool says_batch = isString(fields[kType], "BATCH");
  const bool cloud_event = fields[kSpecVersion].kind != Kind::Absent;
  // A BATCH-looking thing: "type":"BATCH" with "messages", or "type":"BATCH"
  // with nothing that makes it a plain event or a CloudEvent.
  const bool batch_like = says_batch && (fields[kMessages].kind == Kind::Array ||
                                         (!cloud_event && fields[kEventType].kind == Kind::Absent));
  if (batch_like) {
    if (from_batch) {
      reject(Reason::WrongType, "a BATCH member cannot itself be a BATCH", envelope, true, index);
    } else if (fields[kMessages].kind == Kind::Absent) {
      reject(Reason::MissingField, missingDetail(kMessages), envelope, false, 0);
    } else {
      reject(Reason::WrongType, wrongTypeDetail(kMessages, "an array", fields[kMessages].kind), envelope, false, 0);
    }
    return;
  }
  if (cloud_event) {
    emitCloudEvent(fields, envelope, from_batch, index);
  } else {
    emitPlain(fields, envelope, from_batch, index);
  }
}

EVH_INLINE_ONCE void Decoder::Impl::emitPlain(const Fields& fields, Span envelope, bool from_batch, uint32_t index) {
  Problem problem;
  int64_t timestamp_ms = 0;
  if (!checkNoDuplicates(fields, {kEventId, kEventType, kTimestamp, kCorrelationId, kPayload}, problem) ||
      !requireNonEmptyString(fields, kEventId, problem) || !requireNonEmptyString(fields, kEventType, problem) ||
      !readTimestamp(fields, kTimestamp, timestamp_ms, problem) ||
      !checkOptionalString(fields, kCorrelationId, problem)) {
    reject(problem.reason, std::move(problem.detail), envelope, from_batch, index);
    return;
  }
  const FieldValue& payload = fields[kPayload];
  if (payload.kind != Kind::Object) {
    reject(
        payload.kind == Kind::Absent ? Reason::MissingField : Reason::WrongType,
        payload.kind == Kind::Absent ? missingDetail(kPayload) : wrongTypeDetail(kPayload, "an object", payload.kind),
        envelope, from_batch, index);
    return;
  }

  Event event;
  place(event, event.event_id_, fields[kEventId]);
  place(event, event.event_type_, fields[kEventType]);
  place(event, event.timestamp_, fields[kTimestamp]);
  if (fields[kCorrelationId].kind == Kind::String) {
    place(event, event.correlation_id_, fields[kCorrelationId]);
  }
  place(event, event.payload_, payload);
  emitEvent(std::move(event), envelope, from_batch, index, timestamp_ms);
}

EVH_INLINE_ONCE void Decoder::Impl::emitCloudEvent(const Fields& fields, Span envelope, bool from_batch,
                                                   uint32_t index) {
  Problem problem;
  if (!checkNoDuplicates(fields, {kSpecVersion, kId, kSource, kType, kTime, kData, kDataBase64, kCorrelationIdExt},
                         problem)) {
    reject(problem.reason, std::move(problem.detail), envelope, from_batch, index);
    return;
  }
  const FieldValue& spec_version = fields[kSpecVersion];
  if (spec_version.kind != Kind::String) {
    reject(Reason::WrongType, wrongTypeDetail(kSpecVersion, "the string \"1.0\"", spec_version.kind), envelope,
           from_batch, index);
    return;
  }
  if (spec_version.text != "1.0") {
    reject(Reason::WrongType,
           fieldName(kSpecVersion) + " must be \"1.0\" (CloudEvents 1.0), got " + quoted(spec_version.text), envelope,
           from_batch, index);
    return;
  }
  if (!requireNonEmptyString(fields, kId, problem) || !requireNonEmptyString(fields, kSource, problem) ||
      !requireNonEmptyString(fields, kType, problem) || !checkOptionalString(fields, kCorrelationIdExt, problem)) {
    reject(problem.reason, std::move(problem.detail), envelope, from_batch, index);
    return;
  }
  // "time" is optional; null counts as absent, like every optional attribute.
  const FieldValue& time = fields[kTime];
  int64_t timestamp_ms = 0;
  if (time.kind == Kind::String) {
    if (!parseTimestampString(time, kTime, timestamp_ms, problem)) {
      reject(problem.reason, std::move(problem.detail), envelope, from_batch, index);
      return;
    }
  } else if (time.kind != Kind::Absent && time.kind != Kind::Null) {
    reject(Reason::WrongType, wrongTypeDetail(kTime, "a string", time.kind), envelope, from_batch, index);
    return;
  }
  // Plugins get the payload as a JSON object; binary data has no such form.
  const Kind base64 = fields[kDataBase64].kind;
  if (base64 != Kind::Absent && base64 != Kind::Null) {
    reject(Reason::WrongType,
           fieldName(kDataBase64) + " is not supported: the payload must be a JSON object in \"data\"", envelope,
           from_batch, index);
    return;
  }
  const FieldValue& data = fields[kData];
  if (data.kind != Kind::Absent && data.kind != Kind::Null && data.kind != Kind::Object) {
    reject(Reason::WrongType, wrongTypeDetail(kData, "an object", data.kind), envelope, from_batch, index);
    return;
  }

  Event event;
  place(event, event.event_id_, fields[kId]);
  place(event, event.event_type_, fields[kType]);
  if (time.kind == Kind::String) {
    place(event, event.timestamp_, time);
  }
  if (fields[kCorrelationIdExt].kind == Kind::String) {
    place(event, event.correlation_id_, fields[kCorrelationIdExt]);
  }
  if (data.kind == Kind::Object) {
    place(event, event.payload_, data);
  } else {
    FieldValue empty;
    empty.escaped = true;  // i.e. not in the message: copy it into the event
    empty.text = kEmptyObject;
    place(event, event.payload_, empty);
  }
  emitEvent(std::move(event), envelope, from_batch, index, timestamp_ms);
}

void Decoder::Impl::emitEvent(Event&& event, Span envelope, bool from_batch, uint32_t index, int64_t timestamp_ms) {
  event.message_ = *message_;
  event.envelope_ = envelope;
  event.timestamp_ms_ = timestamp_ms;
  event.from_batch_ = from_batch;
  event.batch_index_ = index;
  out_->emplace_back(std::in_place_type<Event>, std::move(event));
}

// Writes the span in place rather than returning it: a returned 12-byte
// Span with a bool stalled on store forwarding (measured; docs/benchmarks/hot-path-history.md).
void Decoder::Impl::place(Event& event, Span& slot, const FieldValue& value) const {
  slot.length = static_cast<uint32_t>(value.text.size());
  if (!value.escaped) {
    slot.offset = static_cast<uint32_t>(value.text.data() - base_);
    slot.local = false;
    return;
  }
  slot.offset = static_cast<uint32_t>(event.local_.size());
  slot.local = true;
  event.local_.append(value.text);
}

void Decoder::Impl::reject(Reason reason, std::string detail, Span raw, bool from_batch, uint32_t index) {
  Rejected rejected;
  rejected.reason = reason;
  rejected.detail = std::move(detail);
  rejected.message = *message_;
  rejected.raw_offset = raw.offset;
  rejected.raw_length = raw.length;
  rejected.from_batch = from_batch;
  rejected.batch_index = index;
  out_->emplace_back(std::in_place_type<Rejected>, std::move(rejected));
}

}  // namespace evh::event
