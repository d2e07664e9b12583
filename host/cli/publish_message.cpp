// evhctl publish's messages (see publish_message.h).
#include "cli/publish_message.h"

#include <uuid/uuid.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <variant>

#include "cli/errors.h"
#include "common/clock.h"

namespace evh::cli::publish {
namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) {
    return {};
  }
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

Json parseJson(const std::string& text, const std::string& where) {
  if (text.empty()) {
    throw Failure(where + " is empty");
  }
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    std::string what = e.what();
    if (size_t p = what.find("] "); p != std::string::npos) {
      what.erase(0, p + 2);
    }
    throw Failure(where + " is not valid JSON: " + what);
  }
}

// How evhost's decoder would take this object.
Shape shapeOf(const Json& j) {
  if (!j.is_object()) {
    return Shape::Payload;
  }
  if (auto t = j.find("type"); t != j.end() && t->is_string() && t->get_ref<const std::string&>() == "BATCH" &&
                               (j.contains("messages") || (!j.contains("eventType") && !j.contains("specversion")))) {
    return Shape::Batch;
  }
  if (j.contains("specversion")) {
    return Shape::Cloud;
  }
  return j.contains("eventType") ? Shape::Plain : Shape::Payload;
}

}  // namespace

std::string newUuid() {
  uuid_t id;
  uuid_generate_random(id);
  char text[UUID_STR_LEN];
  uuid_unparse_lower(id, text);
  return text;
}

std::pair<std::string, std::string> readMessage(const Options& o) {
  switch (o.source) {
    case Source::Payload:
      return {o.source_arg, "the JSON given with --payload"};
    case Source::File: {
      std::ifstream in(o.source_arg, std::ios::binary);
      if (!in) {
        throw Failure("cannot read " + o.source_arg + ": " + std::strerror(errno));
      }
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (in.bad()) {
        throw Failure("cannot read " + o.source_arg + ": " + std::strerror(errno));
      }
      return {text, o.source_arg};
    }
    case Source::Stdin:
    case Source::None:
      break;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (std::cin.bad()) {
    throw Failure(std::string("cannot read stdin: ") + std::strerror(errno));
  }
  return {text, "the JSON read from stdin"};
}

Messages::Messages(const Options& o, std::string text, const std::string& where) : o_(o), text_(trim(text)) {
  json_ = parseJson(text_, where);
  shape_ = shapeOf(json_);
  if (shape_ == Shape::Payload) {
    if (!json_.is_object()) {
      throw Failure(where + " must be a JSON object (the event's payload, or a whole envelope), not " +
                    std::string(json_.is_array() ? "an array" : json_.type_name()));
    }
    if (!o.type) {
      throw UsageError(where +
                       " has no eventType, so it is the payload of a new envelope: give its event type "
                       "with --type TYPE");
    }
    return;
  }
  if (o.type || o.id || o.correlation_id) {
    const char* what = shape_ == Shape::Batch ? "a BATCH" : shape_ == Shape::Cloud ? "a CloudEvent" : "an envelope";
    throw UsageError(where + " is already " + std::string(what) +
                     ", sent as is: --type, --id and --correlation-id are only for a bare payload");
  }
}

std::string Messages::make(std::string& event_id) {
  if (shape_ == Shape::Payload) {
    event_id = o_.id ? *o_.id : newUuid();
    Json head = Json::object();
    head["eventId"] = event_id;
    head["eventType"] = *o_.type;
    head["timestamp"] = isoTime(wallMs());
    if (o_.correlation_id) {
      head["correlationId"] = *o_.correlation_id;
    }
    // The payload goes in byte for byte: numbers keep their exact text.
    std::string out = head.dump();
    out.pop_back();
    return out + ",\"payload\":" + text_ + "}";
  }
  if (o_.count == 1) {
    event_id = idOf(json_);
    return text_;
  }
  // Copies of a whole envelope: each with fresh ids, or evhost (and any
  // idempotent plugin) would see one event N times.
  Json copy = json_;
  if (shape_ == Shape::Batch) {
    if (auto m = copy.find("messages"); m != copy.end() && m->is_array()) {
      for (auto& member : *m) {
        freshId(member);
      }
    }
  } else {
    freshId(copy);
  }
  event_id = idOf(copy);
  return copy.dump();
}

void Messages::freshId(Json& e) {
  if (e.is_object()) {
    e[e.contains("specversion") ? "id" : "eventId"] = newUuid();
  }
}
std::string Messages::idOf(const Json& e) const {
  if (shape_ == Shape::Batch) {
    return {};
  }
  auto it = e.find(shape_ == Shape::Cloud ? "id" : "eventId");
  return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Checker::Checker(const config::Config& cfg)
    // The loader keeps the limits within what the decoder supports.
    : decoder_(event::Decoder::Limits{cfg.limits.max_message_bytes, cfg.limits.max_json_depth}) {}

void Checker::check(const std::string& message, const std::string& logical, const std::string& key) {
  decoder_.decode(event::makeMessage(message, logical, key), items_);
  for (const auto& item : items_) {
    if (const auto* r = std::get_if<event::Rejected>(&item)) {
      throw Failure("evhost would refuse this message" +
                    (r->from_batch ? " (BATCH member " + std::to_string(r->batch_index) + ")" : std::string()) + ": " +
                    r->detail + " (reason=" + event::reasonCode(r->reason) + "); nothing sent");
    }
  }
}

}  // namespace evh::cli::publish
