// product_events: what a product event asks of the read model. parseChange()
// validates a PRODUCT_CREATED, PRODUCT_UPDATED or PRODUCT_DELETED event (the
// plan's Step 1.1 payloads) and turns it into a Change: the hash fields to
// write and remove, the name, category and price it gives. An invalid event
// throws evh::Reject with a message naming the field.
#pragma once

#include <evh/plugin.hpp>

#include <optional>
#include <string>
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
  std::vector<std::string> changed;     // PRODUCT_UPDATED: the keys of `changes`, in order
};

// The Change an event asks for; throws evh::Reject naming the field (or the
// event type) that is not valid.
Change parseChange(const evh::Event& ev);

}  // namespace product
