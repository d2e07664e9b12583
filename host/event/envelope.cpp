// Hot-path envelope decoding with simdjson On Demand: plain, CloudEvents 1.0 and BATCH envelopes. This file is the
// driver (one message in, Items out) and the whole-message errors; the pass over the document (BATCH members
// included) is in envelope_walk.cpp, the choice of shape and the two event shapes in envelope_shapes.cpp, the fields
// and their checks in envelope_fields.{h,cpp}.
//
// Why simdjson On Demand: the decoder runs once per event on the loop thread, and a DOM parse (nlohmann) cost about
// ten times as much for a typical event; most of what is left is the walk over every value described below, not
// simdjson's SIMD stage 1. Measured figures: docs/benchmarks/hot-path-history.md, "Figures moved from code comments".
//
// How it works. simdjson's stage 1 (SIMD, run by parser.iterate) indexes the
// structure and validates UTF-8, unclosed strings and control characters. The
// On Demand iteration after it is lazy: it skips values nobody asks for
// without validating them and without checking depth (parser max_depth only
// matters with SIMDJSON_DEVELOPMENT_CHECKS; a skipped 100,000-deep payload is
// accepted silently -- verified on 3.0.1). So the decoder walks EVERY value
// of the message itself, once, in document order: the fields it needs are
// read as it passes them, everything else (unknown fields, payload contents)
// is validated by a depth-limited recursive walk. That makes "valid Event"
// mean "the whole message is valid JSON within the depth limit", which is what
// plugins re-parsing payload or envelope rely on.
//
// Field order is arbitrary, so one pass collects every field any shape could
// need (Fields) and the shape is decided at the end. For the same reason the
// members of a "messages" array at the top level are decoded as they are
// passed, before it is known whether "type" says BATCH; if it turns out not to
// be a batch they are dropped (a rare, harmless waste).
//
// Errors come in two kinds. Syntax and depth errors abort the whole message
// (nothing after them can be trusted): one Rejected with NotJson or TooDeep.
// Shape errors (missing field, wrong type, bad timestamp) are decided after
// the walk, per envelope, so one bad batch member rejects only itself and a
// deep or broken value anywhere still wins over them.
//
// Duplicate keys: JSON consumers disagree on which duplicate wins (JavaScript
// and nlohmann take the last, most lookups in simdjson the first). If the host
// routed on one eventType while a plugin re-parsing the envelope saw another,
// that would be an injection vector, so a duplicate of any field the chosen
// shape reads rejects that envelope (WrongType, `duplicate field "eventId"`).
// Duplicates of other keys are allowed and ignored.
#include "event/envelope.h"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "event/decoder_impl.h"

namespace evh::event {

void Decoder::Impl::decode(std::shared_ptr<const Message> msg, std::vector<Item>& out) {
  out.clear();
  if (!msg) {
    msg = std::make_shared<const Message>();  // decodes as an empty message
  }
  message_ = &msg;
  out_ = &out;
  const std::string& bytes = msg->bytes;
  size_ = bytes.size();

  if (size_ > limits_.max_message_bytes) {
    Rejected rejected;
    rejected.reason = Reason::TooLarge;
    rejected.detail = "message of " + std::to_string(size_) + " bytes exceeds max_message_bytes " +
                      std::to_string(limits_.max_message_bytes);
    rejected.message = msg;
    rejected.raw_length = size_;
    out.emplace_back(std::in_place_type<Rejected>, std::move(rejected));
    return;
  }

  size_t capacity = bytes.capacity();
  if (capacity >= size_ + simdjson::SIMDJSON_PADDING) {
    base_ = bytes.data();
  } else {
    scratch_.reserve(size_ + simdjson::SIMDJSON_PADDING);
    scratch_.assign(bytes);
    base_ = scratch_.data();
    capacity = scratch_.capacity();
  }
  ensureParserCapacity(size_);

  fatal_code_ = simdjson::SUCCESS;
  bool ok = false;
  {
    od::document doc;
    const simdjson::error_code error = parser_.iterate(base_, size_, capacity).get(doc);
    if (error) {
      ok = fail(error);
    } else {
      doc_ = &doc;
      ok = decodeDocument(doc);
      doc_ = nullptr;
    }
  }
  if (!ok) {
    rejectFatal();
  }
}

void Decoder::Impl::ensureParserCapacity(size_t size) {
  if (parser_.capacity() >= size) {
    return;
  }
  // Grow geometrically so that a slowly growing series of messages does not
  // reallocate every time; never beyond the largest message accepted.
  const size_t wanted =
      std::max(size, std::min(std::max<size_t>(parser_.capacity() * 2, 4096), limits_.max_message_bytes));
  if (parser_.allocate(wanted, limits_.max_depth + 1) != simdjson::SUCCESS) {
    throw std::bad_alloc();
  }
}

bool Decoder::Impl::decodeDocument(od::document& doc) {
  od::json_type type{};
  if (const auto error = doc.type().get(type)) {
    return fail(error);
  }
  if (type == od::json_type::object) {
    od::object object;
    if (const auto error = doc.get_object().get(object)) {
      return fail(error);
    }
    Fields fields;
    if (!collect(object, 1, fields, true)) {
      return false;
    }
    if (!atEnd()) {
      return fail(simdjson::TRAILING_CONTENT);
    }
    emitRoot(fields);
    return true;
  }

  // Any other top-level value is refused, but validated first so that broken
  // or hostile input is reported as such rather than as NotObject.
  simdjson::error_code error = simdjson::SUCCESS;
  switch (type) {
    case od::json_type::array: {
      od::array array;  // depth 1 is always allowed (max_depth >= 1)
      error = doc.get_array().get(array);
      if (!error && !walkArray(array, 1)) {
        return false;
      }
      break;
    }
    case od::json_type::string: {
      std::string_view text;
      error = doc.get_string().get(text);
      break;
    }
    case od::json_type::number: {
      bool huge = false;
      error = validateNumber(doc, &huge);
      if (!error && huge) {
        // A huge number is left unconsumed, so whether only whitespace
        // follows is read from its token rather than by atEnd().
        const std::string_view token = rawToken(doc);
        if (!token.empty() &&
            trimRight(std::string_view(token.data(), static_cast<size_t>(base_ + size_ - token.data()))) ==
                trimRight(token)) {
          reject(Reason::NotObject, "message is a JSON number, not an object", wholeMessage(), false, 0);
          return true;
        }
      }
      break;
    }
    case od::json_type::boolean: {
      bool flag = false;
      error = doc.get_bool().get(flag);
      break;
    }
    case od::json_type::null: {
      bool is_null = false;
      error = doc.is_null().get(is_null);
      if (!error && !is_null) {
        error = simdjson::N_ATOM_ERROR;
      }
      break;
    }
    case od::json_type::object:
      break;  // handled above
  }
  if (error) {
    return fail(error);
  }
  if (!atEnd()) {
    return fail(simdjson::TRAILING_CONTENT);
  }
  reject(Reason::NotObject, std::string("message is a JSON ") + kindName(kindOf(type)) + ", not an object",
         wholeMessage(), false, 0);
  return true;
}

void Decoder::Impl::rejectFatal() {
  if (fatal_code_ == simdjson::MEMALLOC) {
    throw std::bad_alloc();  // not the message's fault: do not dead-letter it
  }
  out_->clear();  // members decoded before the error cannot be trusted
  Reason reason = fatal_reason_;
  if (reason == Reason::NotJson && nestsDeeperThan(std::string_view(base_, size_), limits_.max_depth)) {
    reason = Reason::TooDeep;
  }
  std::string detail;
  if (reason == Reason::TooDeep) {
    detail = "nesting deeper than " + std::to_string(limits_.max_depth);
  } else if (fatal_code_ == simdjson::EMPTY) {
    detail = "empty message";
  } else {
    detail = std::string("invalid JSON: ") + simdjson::error_message(fatal_code_);
  }
  reject(reason, std::move(detail), wholeMessage(), false, 0);
}

Decoder::Decoder() : Decoder(Limits{}) {}

Decoder::Decoder(Limits limits) {
  if (limits.max_depth < 1 || limits.max_depth > kMaxSupportedDepth) {
    throw std::invalid_argument("max_depth must be between 1 and " + std::to_string(kMaxSupportedDepth));
  }
  if (limits.max_message_bytes < 1 || limits.max_message_bytes > kMaxSupportedMessageBytes) {
    throw std::invalid_argument("max_message_bytes must be between 1 and " + std::to_string(kMaxSupportedMessageBytes));
  }
  impl_ = std::make_unique<Impl>(limits);
}

Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;
Decoder::~Decoder() = default;

const Decoder::Limits& Decoder::limits() const noexcept { return impl_->limits(); }

void Decoder::decode(std::shared_ptr<const Message> msg, std::vector<Item>& out) { impl_->decode(std::move(msg), out); }

}  // namespace evh::event
