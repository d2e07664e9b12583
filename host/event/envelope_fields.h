// The envelope fields the decoder recognises, what one envelope said about each, and the checks that turn them into an
// event or a reason to reject it (shape rules shared by plain events and CloudEvents).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "event/envelope.h"

namespace evh::event {

// Every field any accepted shape reads.
enum Key : uint8_t {
  kEventId,
  kEventType,
  kTimestamp,
  kCorrelationId,
  kPayload,
  kSpecVersion,
  kId,
  kSource,
  kType,
  kTime,
  kData,
  kDataBase64,
  kCorrelationIdExt,
  kMessages,
  kKeyCount
};

inline constexpr std::array<std::string_view, kKeyCount> kKeyNames = {
    "eventId", "eventType", "timestamp", "correlationId", "payload",     "specversion",   "id",
    "source",  "type",      "time",      "data",          "data_base64", "correlationid", "messages"};

// A JSON value's kind; Absent: the field is not in the envelope.
enum class Kind : uint8_t { Absent, Object, Array, String, Number, Boolean, Null };

const char* kindName(Kind kind) noexcept;  // "object", "string", "nothing" ...

// What one envelope said about one recognised key.
struct FieldValue {
  Kind kind = Kind::Absent;
  bool duplicate = false;
  // The text needed unescaping and lives in the parser's string buffer (valid
  // until the next iterate), not in the message.
  bool escaped = false;
  bool is_integer = false;  // a Number that is an integer fitting int64
  // String: unescaped content. Number: the token. Object: its raw JSON text.
  std::string_view text;
  int64_t integer = 0;
};

struct Fields {
  std::array<FieldValue, kKeyCount> values;
  uint32_t members = 0;  // batch members decoded from a top-level "messages" array

  const FieldValue& operator[](Key key) const noexcept { return values[key]; }
};

inline bool isString(const FieldValue& value, std::string_view text) noexcept {
  return value.kind == Kind::String && value.text == text;
}

// A reason to reject one envelope.
struct Problem {
  Reason reason = Reason::WrongType;
  std::string detail;
};

std::string fieldName(Key key);                                        // field "eventId"
std::string missingDetail(Key key);                                    // missing field "eventId"
std::string duplicateDetail(Key key);                                  // duplicate field "eventId"
std::string wrongTypeDetail(Key key, const char* expected, Kind got);  // field "x" must be <expected>, got <kind>

// Each returns false, with `problem` set, when the envelope breaks its rule.
bool checkNoDuplicates(const Fields& fields, std::initializer_list<Key> keys, Problem& problem);
bool requireNonEmptyString(const Fields& fields, Key key, Problem& problem);
// Absent and null both mean "not given".
bool checkOptionalString(const Fields& fields, Key key, Problem& problem);
bool parseTimestampString(const FieldValue& value, Key key, int64_t& ms, Problem& problem);
// Plain shape: an RFC 3339 string or integer epoch milliseconds.
bool readTimestamp(const Fields& fields, Key key, int64_t& ms, Problem& problem);

}  // namespace evh::event
