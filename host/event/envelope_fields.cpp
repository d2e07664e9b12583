// The envelope fields' checks and the wording of their detail messages (see envelope_fields.h).
#include "event/envelope_fields.h"

#include "event/json_text.h"
#include "event/timestamp.h"

namespace evh::event {

const char* kindName(Kind kind) noexcept {
  switch (kind) {
    case Kind::Absent:
      return "nothing";
    case Kind::Object:
      return "object";
    case Kind::Array:
      return "array";
    case Kind::String:
      return "string";
    case Kind::Number:
      return "number";
    case Kind::Boolean:
      return "boolean";
    case Kind::Null:
      return "null";
  }
  return "unknown";
}

std::string fieldName(Key key) {
  std::string out = "field \"";
  out += kKeyNames[key];
  out += '"';
  return out;
}

std::string missingDetail(Key key) { return "missing " + fieldName(key); }

std::string duplicateDetail(Key key) { return "duplicate " + fieldName(key); }

std::string wrongTypeDetail(Key key, const char* expected, Kind got) {
  return fieldName(key) + " must be " + expected + ", got " + kindName(got);
}

bool checkNoDuplicates(const Fields& fields, std::initializer_list<Key> keys, Problem& problem) {
  for (const Key key : keys) {
    if (fields[key].duplicate) {
      problem = {Reason::WrongType, duplicateDetail(key)};
      return false;
    }
  }
  return true;
}

bool requireNonEmptyString(const Fields& fields, Key key, Problem& problem) {
  const FieldValue& value = fields[key];
  if (value.kind == Kind::Absent) {
    problem = {Reason::MissingField, missingDetail(key)};
    return false;
  }
  if (value.kind != Kind::String) {
    problem = {Reason::WrongType, wrongTypeDetail(key, "a non-empty string", value.kind)};
    return false;
  }
  if (value.text.empty()) {
    problem = {Reason::WrongType, fieldName(key) + " must be a non-empty string, got an empty string"};
    return false;
  }
  return true;
}

bool checkOptionalString(const Fields& fields, Key key, Problem& problem) {
  const Kind kind = fields[key].kind;
  if (kind == Kind::Absent || kind == Kind::Null || kind == Kind::String) {
    return true;
  }
  problem = {Reason::WrongType, wrongTypeDetail(key, "a string or null", kind)};
  return false;
}

bool parseTimestampString(const FieldValue& value, Key key, int64_t& ms, Problem& problem) {
  if (parseRfc3339(value.text, ms)) {
    return true;
  }
  problem = {Reason::BadTimestamp, fieldName(key) + " is not an RFC 3339 date-time: " + quoted(value.text)};
  return false;
}

bool readTimestamp(const Fields& fields, Key key, int64_t& ms, Problem& problem) {
  const FieldValue& value = fields[key];
  switch (value.kind) {
    case Kind::Absent:
      problem = {Reason::MissingField, missingDetail(key)};
      return false;
    case Kind::String:
      return parseTimestampString(value, key, ms, problem);
    case Kind::Number:
      if (value.is_integer) {
        ms = value.integer;
        return true;
      }
      problem = {Reason::BadTimestamp,
                 fieldName(key) + " must be an integer number of epoch milliseconds, got " + quoted(value.text)};
      return false;
    default:
      problem = {Reason::WrongType, wrongTypeDetail(key, "a string or an integer", value.kind)};
      return false;
  }
}

}  // namespace evh::event
