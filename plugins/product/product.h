// product.h: the product plugin's class and what one call carries from
// handle() to the reply, shared by the files that implement it: product.cpp
// (the entry point, handle(), the log line), product_read_model.cpp (the
// script that applies an event and its reply) and product_notify.cpp (the
// notification). Internal to the plugin; product.cpp describes what it does.
#pragma once

#include "product_events.h"
#include "product_settings.h"

#include <evh/plugin.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace product {

using Json = nlohmann::json;

// What the read model held before the event, as the script reports it.
struct Before {
  bool existed = false;
  std::optional<std::string> name;
  std::optional<std::string> category;
};

// The notification as kApplyScript completes and publishes it: JSON text
// around the members only the read model knows (product_notify.cpp). Views
// into the plugin's notification buffer: valid until the next notification().
struct Note {
  std::string_view head;
  std::string_view tail;
  std::string_view name;  // the name the event gives, as JSON text; empty when it gives none
};

// Everything a call needs after handle() has returned.
struct Job {
  Change change;
  std::string event_id;
  std::string correlation_id;
  evh::Completion done;
};

// The events one apply script call applies, in the order handle() got them,
// with the script's keys and arguments (see kApplyScript), kept until its
// reply: a NOSCRIPT answer sends them again with the script's text.
struct Batch {
  Args keys;
  Args args;  // the shared arguments, then each event's (the number of events goes before them when sent)
  std::vector<Job> jobs;
};

class Product final : public evh::Plugin {
 public:
  static constexpr const char* kDescription =
      "JollyJet product events: PRODUCT_CREATED/UPDATED/DELETED -> read model, cache invalidation, notifications";
  // The apply script checks and writes the idempotency mark with the
  // effects (product_read_model.cpp): the host leaves the mark to it.
  static constexpr uint32_t kFlags = EVH_PLUGIN_OWN_IDEMPOTENCY;

  // validate_config (ABI 1.3): the constructor's parser, every problem reported.
  static void validateConfig(std::string_view config_json, evh::ConfigErrors& errors) {
    parseSettings(config_json, errors);
  }

  Product(evh::Host host, std::string_view config_json);

  evh::Result handle(const evh::Event& ev, evh::Call& call) override;

 private:
  // product_read_model.cpp
  void apply(const evh::Event& ev, Job job);
  void flush();
  static std::string scriptSha();  // the apply script's name for EVALSHA; throws if OpenSSL fails
  evh_status sendScript(const std::shared_ptr<Batch>& batch, bool by_sha);
  void scriptArgs(const Job& job, Args& args) const;
  void failAll(Batch& batch, const evh::Result& why);
  void onApplied(Batch& batch, const evh::Reply& r);
  void onEventApplied(const Job& job, const evh::Reply& r);

  // product_notify.cpp
  Note notification(const Job& job) const;
  mutable std::string note_buf_;  // notification()'s text; THREAD: the loop (handle() and what it posts)

  // product.cpp
  void finish(const Job& job, const Before& before);

  const Settings settings_;
  const std::string prefix_;
  const std::vector<std::string> category_key_;  // the category set's key, split at {category}
  const std::string script_sha_;                 // scriptSha(), once
  std::shared_ptr<Batch> open_;                  // the events handle() took since the last flush()
  bool flush_posted_ = false;                    // a flush() is posted to the loop
  evh::Metric created_;
  evh::Metric updated_;
  evh::Metric deleted_;
  evh::Metric rejected_;
  evh::Metric redis_errors_;
  evh::Metric already_applied_;
};

}  // namespace product
