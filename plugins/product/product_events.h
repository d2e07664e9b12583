// product_events: what a product event asks of the read model. parseChange()
// validates a PRODUCT_CREATED, PRODUCT_UPDATED or PRODUCT_DELETED event (the
// plan's Step 1.1 payloads) and turns it into a Change: the hash fields to
// write and remove, the name, category and price it gives. An invalid event
// throws evh::Reject with a message naming the field.
#pragma once

#include <evh/plugin.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace product {

enum class Action { Created, Updated, Deleted };

// "created", "updated" or "deleted": for the log line and the notification.
const char* actionName(Action a);

// What one valid event asks of the read model.
struct Change {
  Action action = Action::Created;
  std::string event_type;
  std::string product_id;
  std::optional<std::string> name;      // the name the event gives, if any
  std::optional<std::string> category;  // the category the event gives, if any
  std::optional<std::string> price;     // the price the event gives, as JSON number text
  std::vector<std::string> set;         // hash fields and values to write: field, value, ...
  std::vector<std::string> unset;       // hash fields to remove (a change to null)
  // (set and unset are moved into the apply script's arguments when the
  // event joins a batch: empty after that)
  std::vector<std::string> changed;  // PRODUCT_UPDATED: the keys of `changes`, in order
};

// The Change an event asks for; throws evh::Reject naming the field (or the
// event type) that is not valid. Tries parseChangeFast, then
// parseChangeChecked.
Change parseChange(const evh::Event& ev);

// The two payload readers behind parseChange, public for the differential
// fuzz harness (tests/fuzz/product_payload_fuzz.cpp). `type` is the event
// type `action` stands for, timestamp_ms the event's time.
//
// parseChangeChecked (nlohmann, product_events.cpp) reads any payload and
// defines what is valid: it throws evh::Reject naming the field.
// parseChangeFast (simdjson, product_payload_fast.cpp) reads the common ones
// faster and gives exactly the Change parseChangeChecked would; anything
// else -- invalid, an object or array as a value to store, a duplicate key,
// over 64 KiB -- it declines (std::nullopt).
Change parseChangeChecked(Action action, std::string_view type, std::string_view payload, int64_t timestamp_ms);
std::optional<Change> parseChangeFast(Action action, std::string_view type, std::string_view payload,
                                      int64_t timestamp_ms);

}  // namespace product
