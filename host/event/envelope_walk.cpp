// Decoding one envelope's document in a single pass: the recognised fields are read as they are passed, every other
// value is validated by a depth-limited walk (see envelope.cpp for why every value is walked), and the members of a
// top-level "messages" array are decoded as they are passed (before it is known whether "type" says BATCH).
#include <utility>

#include "event/decoder_impl.h"

namespace evh::event {
namespace {

// The Key a recognised field name stands for, or -1. Dispatches on length
// first: most keys are rejected after one comparison. Called for every key
// of every envelope: kept here, in the one file that calls it, so that it is
// inlined into collect().
int keyIndex(std::string_view key) noexcept {
  switch (key.size()) {
    case 2:
      return key == "id" ? kId : -1;
    case 4:
      if (key == "type") {
        return kType;
      }
      if (key == "time") {
        return kTime;
      }
      return key == "data" ? kData : -1;
    case 6:
      return key == "source" ? kSource : -1;
    case 7:
      if (key == "eventId") {
        return kEventId;
      }
      return key == "payload" ? kPayload : -1;
    case 8:
      return key == "messages" ? kMessages : -1;
    case 9:
      if (key == "eventType") {
        return kEventType;
      }
      return key == "timestamp" ? kTimestamp : -1;
    case 11:
      if (key == "specversion") {
        return kSpecVersion;
      }
      return key == "data_base64" ? kDataBase64 : -1;
    case 13:
      if (key == "correlationId") {
        return kCorrelationId;
      }
      return key == "correlationid" ? kCorrelationIdExt : -1;
    default:
      return -1;
  }
}

}  // namespace

// One pass over an envelope object: recognised keys are read into `fields`
// (the first occurrence wins; later ones are validated and flagged), all
// other values are validated and dropped.
bool Decoder::Impl::collect(od::object& object, size_t depth, Fields& fields, bool root) {
  for (auto result : object) {
    od::field field;
    if (const auto error = std::move(result).get(field)) {
      return fail(error);
    }
    std::string_view key;
    if (const auto error = field.unescaped_key().get(key)) {
      return fail(error);
    }
    od::value& value = field.value();
    const int index = keyIndex(key);
    if (index < 0) {
      if (!walk(value, depth + 1)) {
        return false;
      }
      continue;
    }
    FieldValue& slot = fields.values[static_cast<size_t>(index)];
    if (slot.kind != Kind::Absent) {
      slot.duplicate = true;
      if (!walk(value, depth + 1)) {
        return false;
      }
      continue;
    }
    // Only a top-level envelope may be a batch; members are walked, not decoded.
    uint32_t* members = root && index == kMessages ? &fields.members : nullptr;
    if (!readField(value, depth + 1, slot, members)) {
      return false;
    }
  }
  return true;
}

// Reads one recognised field's value (at `depth`) into `field`, validating it.
// Inlined into collect(), its one caller (EVH_INLINE_ONCE: why, in decoder_impl.h).
EVH_INLINE_ONCE bool Decoder::Impl::readField(od::value& value, size_t depth, FieldValue& field, uint32_t* members) {
  // The token runs from the value's first byte up to the next structural
  // character, so it may carry trailing whitespace. Taken before consuming.
  const std::string_view token = value.raw_json_token();
  od::json_type type{};
  if (const auto error = value.type().get(type)) {
    return fail(error);
  }
  field.kind = kindOf(type);
  switch (type) {
    case od::json_type::string: {
      std::string_view unescaped;
      if (const auto error = value.get_string().get(unescaped)) {
        return fail(error);
      }
      const std::string_view quoted_text = trimRight(token);
      if (quoted_text.size() < 2 || quoted_text.back() != '"') {
        return fail(simdjson::STRING_ERROR);
      }
      const std::string_view content = quoted_text.substr(1, quoted_text.size() - 2);
      // Every escape sequence is longer than what it stands for, so equal
      // lengths mean no escapes: point into the message instead of copying.
      field.escaped = unescaped.size() != content.size();
      field.text = field.escaped ? unescaped : content;
      return true;
    }
    case od::json_type::number: {
      field.text = trimRight(token);
      int64_t integer = 0;
      // get_int64 refuses fractions, exponents and out-of-range values
      // without consuming the value, so it can be validated again as a double.
      if (value.get_int64().get(integer) == simdjson::SUCCESS) {
        field.is_integer = true;
        field.integer = integer;
        return true;
      }
      if (const auto error = validateNumber(value)) {
        return fail(error);
      }
      return true;
    }
    case od::json_type::object: {
      if (depth > limits_.max_depth) {
        return tooDeep();
      }
      od::object object;
      if (const auto error = value.get_object().get(object)) {
        return fail(error);
      }
      if (!walkObject(object, depth)) {
        return false;
      }
      const char* end = nullptr;
      if (!consumedEnd(end)) {
        return false;
      }
      field.text = std::string_view(token.data(), static_cast<size_t>(end - token.data()));
      return true;
    }
    case od::json_type::array: {
      if (depth > limits_.max_depth) {
        return tooDeep();
      }
      od::array array;
      if (const auto error = value.get_array().get(array)) {
        return fail(error);
      }
      return members != nullptr ? decodeMembers(array, depth, *members) : walkArray(array, depth);
    }
    case od::json_type::boolean:
    case od::json_type::null:
      return walk(value, depth);
  }
  return fail(simdjson::TAPE_ERROR);
}

// Validates a value completely; `depth` is the depth it has if it is a container.
bool Decoder::Impl::walk(od::value& value, size_t depth) {
  od::json_type type{};
  if (const auto error = value.type().get(type)) {
    return fail(error);
  }
  simdjson::error_code error = simdjson::SUCCESS;
  switch (type) {
    case od::json_type::object: {
      if (depth > limits_.max_depth) {
        return tooDeep();
      }
      od::object object;
      if ((error = value.get_object().get(object))) {
        return fail(error);
      }
      return walkObject(object, depth);
    }
    case od::json_type::array: {
      if (depth > limits_.max_depth) {
        return tooDeep();
      }
      od::array array;
      if ((error = value.get_array().get(array))) {
        return fail(error);
      }
      return walkArray(array, depth);
    }
    case od::json_type::string: {
      std::string_view text;  // unescaping is what validates the escapes
      error = value.get_string().get(text);
      break;
    }
    case od::json_type::number: {
      error = validateNumber(value);
      break;
    }
    case od::json_type::boolean: {
      bool flag = false;
      error = value.get_bool().get(flag);
      break;
    }
    case od::json_type::null: {
      bool is_null = false;
      error = value.is_null().get(is_null);
      if (!error && !is_null) {
        error = simdjson::N_ATOM_ERROR;
      }
      break;
    }
  }
  return error ? fail(error) : true;
}

bool Decoder::Impl::walkObject(od::object& object, size_t depth) {
  for (auto result : object) {
    od::field field;
    if (const auto error = std::move(result).get(field)) {
      return fail(error);
    }
    std::string_view key;
    if (const auto error = field.unescaped_key().get(key)) {
      return fail(error);
    }
    if (!walk(field.value(), depth + 1)) {
      return false;
    }
  }
  return true;
}

bool Decoder::Impl::walkArray(od::array& array, size_t depth) {
  for (auto result : array) {
    od::value element;
    if (const auto error = std::move(result).get(element)) {
      return fail(error);
    }
    if (!walk(element, depth + 1)) {
      return false;
    }
  }
  return true;
}

// End of the value just consumed. The iterator now rests on the next
// structural character (',' ']' or '}' of the enclosing container, which
// always exists for a nested value); only whitespace lies between.
bool Decoder::Impl::consumedEnd(const char*& end) {
  const char* next = nullptr;
  if (const auto error = doc_->current_location().get(next)) {
    return fail(error);
  }
  while (next > base_ && isJsonSpace(next[-1])) {
    --next;
  }
  end = next;
  return true;
}

// True when nothing but whitespace follows the top-level value.
bool Decoder::Impl::atEnd() noexcept {
  const char* next = nullptr;
  return doc_->current_location().get(next) == simdjson::OUT_OF_BOUNDS;
}

// Decodes each member of a BATCH's "messages" array (at `depth`) into one Item.
bool Decoder::Impl::decodeMembers(od::array& array, size_t depth, uint32_t& count) {
  uint32_t index = 0;
  for (auto result : array) {
    od::value member;
    if (const auto error = std::move(result).get(member)) {
      return fail(error);
    }
    const char* begin = member.raw_json_token().data();
    od::json_type type{};
    if (const auto error = member.type().get(type)) {
      return fail(error);
    }
    const size_t member_depth = depth + 1;
    const char* end = nullptr;
    if (type == od::json_type::object) {
      if (member_depth > limits_.max_depth) {
        return tooDeep();
      }
      od::object object;
      if (const auto error = member.get_object().get(object)) {
        return fail(error);
      }
      Fields fields;
      if (!collect(object, member_depth, fields, false) || !consumedEnd(end)) {
        return false;
      }
      emitEnvelope(fields, spanOf(begin, end), true, index);
    } else {
      if (!walk(member, member_depth) || !consumedEnd(end)) {
        return false;
      }
      reject(Reason::NotObject, std::string("batch member is a JSON ") + kindName(kindOf(type)) + ", not an object",
             spanOf(begin, end), true, index);
    }
    ++index;
  }
  count = index;
  return true;
}

bool Decoder::Impl::fail(simdjson::error_code code) noexcept {
  fatal_reason_ = Reason::NotJson;
  fatal_code_ = code;
  return false;
}

bool Decoder::Impl::tooDeep() noexcept {
  fatal_reason_ = Reason::TooDeep;
  fatal_code_ = simdjson::DEPTH_ERROR;
  return false;
}

}  // namespace evh::event
