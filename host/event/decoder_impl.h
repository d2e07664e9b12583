// The envelope decoder's implementation class, shared by the files that make it up: envelope.cpp (the driver and
// whole-message errors), envelope_walk.cpp (the one pass over the document, BATCH members included) and
// envelope_shapes.cpp (which shape an envelope is; plain and CloudEvents envelopes into Events). Private to evh_event:
// only these files include simdjson.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "event/envelope.h"
#include "event/envelope_fields.h"
#include "event/json_text.h"

namespace evh::event {

namespace od = simdjson::ondemand;

// Marks a member function that has one caller, in its own file, as to be
// inlined there. While the decoder was one file its helper types had internal
// linkage, and GCC inlined such called-once functions by itself; split into
// files it stopped doing so for readField, emitPlain and emitCloudEvent, and a
// decode cost measurably more (docs/benchmarks/hot-path-history.md, "Splitting the
// decoder into files").
#define EVH_INLINE_ONCE [[gnu::always_inline]] inline

static_assert(Message::kPadding >= simdjson::SIMDJSON_PADDING, "Message::kPadding must cover simdjson's read-ahead");

inline Kind kindOf(od::json_type type) noexcept {
  switch (type) {
    case od::json_type::object:
      return Kind::Object;
    case od::json_type::array:
      return Kind::Array;
    case od::json_type::string:
      return Kind::String;
    case od::json_type::number:
      return Kind::Number;
    case od::json_type::boolean:
      return Kind::Boolean;
    case od::json_type::null:
      return Kind::Null;
  }
  return Kind::Absent;
}

// The text of a value (for a document: of its root value); empty if unknown.
inline std::string_view rawToken(od::value& value) noexcept { return value.raw_json_token(); }
inline std::string_view rawToken(od::document& doc) noexcept {
  std::string_view token;
  return doc.raw_json_token().get(token) == simdjson::SUCCESS ? token : std::string_view();
}

// Validates a number of any size. JSON sets no limit (RFC 8259, section 6)
// and the payload reaches plugins as text, so a number no double can hold --
// 5,000 digits, 1e400 -- is valid input; simdjson refuses to convert it
// (NUMBER_ERROR), and its token is then checked against the grammar instead. Numbers evhost reads itself (an epoch-ms
// timestamp) are range-checked where they are read. A refused conversion leaves the value unconsumed; the enclosing
// object or array skips it. *huge (if given) tells that this happened.
template <class Value>
simdjson::error_code validateNumber(Value& value, bool* huge = nullptr) noexcept {
  double number = 0;
  const simdjson::error_code error = value.get_double().get(number);
  if (error == simdjson::NUMBER_ERROR && isJsonNumber(trimRight(rawToken(value)))) {
    if (huge != nullptr) {
      *huge = true;
    }
    return simdjson::SUCCESS;
  }
  return error;
}

class Decoder::Impl {
 public:
  explicit Impl(const Limits& limits) : limits_(limits) {}

  const Limits& limits() const noexcept { return limits_; }

  void decode(std::shared_ptr<const Message> msg, std::vector<Item>& out);

 private:
  using Span = Event::Span;

  bool decodeDocument(od::document& doc);
  bool collect(od::object& object, size_t depth, Fields& fields, bool root);
  bool readField(od::value& value, size_t depth, FieldValue& field, uint32_t* members);
  bool decodeMembers(od::array& array, size_t depth, uint32_t& count);
  bool walk(od::value& value, size_t depth);
  bool walkObject(od::object& object, size_t depth);
  bool walkArray(od::array& array, size_t depth);
  bool consumedEnd(const char*& end);
  bool atEnd() noexcept;
  bool fail(simdjson::error_code code) noexcept;
  bool tooDeep() noexcept;

  void emitRoot(const Fields& fields);
  void emitEnvelope(const Fields& fields, Span envelope, bool from_batch, uint32_t index);
  void emitPlain(const Fields& fields, Span envelope, bool from_batch, uint32_t index);
  void emitCloudEvent(const Fields& fields, Span envelope, bool from_batch, uint32_t index);
  void emitEvent(Event&& event, Span envelope, bool from_batch, uint32_t index, int64_t timestamp_ms);
  void reject(Reason reason, std::string detail, Span raw, bool from_batch, uint32_t index);
  void rejectFatal();
  void ensureParserCapacity(size_t size);

  Span spanOf(const char* begin, const char* end) const noexcept {
    return Span{static_cast<uint32_t>(begin - base_), static_cast<uint32_t>(end - begin), false};
  }
  Span wholeMessage() const noexcept { return Span{0, static_cast<uint32_t>(size_), false}; }
  void place(Event& event, Span& slot, const FieldValue& value) const;

  Limits limits_;
  od::parser parser_;
  // Padded copy of a Message whose bytes lack spare capacity (not made by
  // makeMessage). Offsets into it equal offsets into the Message.
  std::string scratch_;

  // State of the decode() in progress.
  od::document* doc_ = nullptr;
  const char* base_ = nullptr;  // the bytes being parsed (Message or scratch_)
  size_t size_ = 0;
  const std::shared_ptr<const Message>* message_ = nullptr;
  std::vector<Item>* out_ = nullptr;
  Reason fatal_reason_ = Reason::NotJson;
  simdjson::error_code fatal_code_ = simdjson::SUCCESS;
};

}  // namespace evh::event
