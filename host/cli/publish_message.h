// evhctl publish's messages: the text read from a file, --payload or stdin; the envelope made around a bare payload
// (or copies of a whole envelope with fresh ids); and evhost's own decoder as the check before anything is sent.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "cli/publish_options.h"
#include "config/config.h"
#include "event/envelope.h"

namespace evh::cli::publish {

// ordered_json keeps an envelope's key order when --count rewrites its ids.
using Json = nlohmann::ordered_json;

// A random (version 4) UUID, from libuuid.
std::string newUuid();

// The message's text, and how to name where it came from in errors.
std::pair<std::string, std::string> readMessage(const Options& o);

// How evhost's decoder would take a JSON value: a bare payload to wrap, or an
// envelope to send as is.
enum class Shape { Payload, Plain, Cloud, Batch };

// Makes the messages to send: one, or --count of them with fresh ids.
class Messages {
 public:
  // Throws Failure or UsageError when the text cannot be sent as asked.
  Messages(const Options& o, std::string text, const std::string& where);

  // The next message to send; sets event_id to its eventId (or "" for a BATCH).
  std::string make(std::string& event_id);

 private:
  void freshId(Json& e);
  std::string idOf(const Json& e) const;

  const Options& o_;
  std::string text_;
  Json json_;
  Shape shape_ = Shape::Payload;
};

// evhost's own decoder, with the deployment's limits: what it would refuse
// is not sent.
class Checker {
 public:
  explicit Checker(const config::Config& cfg);

  // Throws Failure naming the reason when evhost would refuse `message`.
  void check(const std::string& message, const std::string& logical, const std::string& key);

 private:
  event::Decoder decoder_;
  std::vector<event::Item> items_;
};

}  // namespace evh::cli::publish
